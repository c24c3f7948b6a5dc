use super::*;
use serde_json::json;

fn file(name: &str, text: &str) -> PolicyFile {
    PolicyFile {
        name: name.to_string(),
        text: text.to_string(),
    }
}

const ACTION: &str =
    "package action\nrun contains {\"id\": \"a\", \"uses\": \"http.fetch\"} if input.alert.severity == \"high\"\n";

#[test]
fn bundled_policies_compile() {
    let set = PolicySet::load(&PolicySource::Bundled, Duration::from_secs(1)).unwrap();
    assert!(set.has_schema("matano"));
    assert!(set.files().iter().all(|f| !f.ends_with("_test.rego")));
    // The starter kit runs wholly on the VM.
    assert!(set.interpreted_rules().is_empty(), "{:?}", set.interpreted_rules());
}

#[test]
fn syntax_error_names_file_and_line() {
    let err = PolicySet::compile(
        vec![
            file("policies/action.rego", ACTION),
            file(
                "policies/broken.rego",
                "package alert.x\n\nalert contains x if {\n  x := \n}\n",
            ),
        ],
        Duration::from_secs(1),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("policies/broken.rego:"), "{message}");
    assert!(message.contains(":5:") || message.contains(":4:"), "{message}");
}

#[test]
fn unsafe_variable_fails_at_init() {
    let err = PolicySet::compile(
        vec![
            file("a.rego", ACTION),
            file("u.rego", "package alert.x\nalert contains y if { z == 1 }\n"),
        ],
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(err.to_string().contains("u.rego"), "{err}");
}

/// Alert policies alone decide alerts and run nothing (AlertChain accepts
/// such a directory); files with neither kind of policy are an error.
#[test]
fn alert_policies_alone_compile_and_no_policy_is_an_error() {
    let alerts = "package alert.x\nalert contains {\"title\": \"t\"} if true\n";
    let set = PolicySet::compile(vec![file("x.rego", alerts)], Duration::from_secs(1)).unwrap();
    assert!(!set.has_action_policy());
    assert!(set
        .eval_actions(regorus::Value::new_object(), None, &HashSet::new())
        .unwrap()
        .is_empty());
    let err = PolicySet::compile(vec![file("y.rego", "package other\nx := 1\n")], Duration::from_secs(1)).unwrap_err();
    assert!(matches!(err, PolicyError::NoPolicy), "{err}");
}

/// `sequential := true` in the action policy is read once, at load.
#[test]
fn the_sequential_switch_is_read_at_load() {
    let plain = PolicySet::compile(vec![file("a.rego", ACTION)], Duration::from_secs(1)).unwrap();
    assert!(!plain.sequential());
    let text = format!("{ACTION}\nsequential := true\n");
    let set = PolicySet::compile(vec![file("a.rego", &text)], Duration::from_secs(1)).unwrap();
    assert!(set.sequential());
}

#[test]
fn alert_policy_output_is_validated() {
    let set = PolicySet::compile(
        vec![
            file("a.rego", ACTION),
            file("x.rego", "package alert.x\nalert contains {\"title\": 7} if true\n"),
            file("y.rego", "package alert.y\nalert := {\"title\": \"t\"}\n"),
            file(
                "z.rego",
                "package alert.z\nalert := [{\"title\": \"one\"}, {\"title\": \"two\"}]\n",
            ),
            file(
                "n.rego",
                "package alert.n\nalert contains {\"title\": \"t\", \"description\": null, \"source\": null, \"severity\": null, \"namespace\": null, \"attrs\": [{\"key\": \"k\", \"value\": 1, \"persist\": null}], \"refs\": null} if true\n",
            ),
        ],
        Duration::from_secs(1),
    )
    .unwrap();
    let err = set.eval_alerts("x", &json!({}), None).unwrap_err().to_string();
    assert!(err.contains("data.alert.x.alert") && err.contains("`title`"), "{err}");
    let err = set.eval_alerts("y", &json!({}), None).unwrap_err().to_string();
    assert!(err.contains("expected a set"), "{err}");
    // An array, as AlertChain reads it, in its order.
    let titles: Vec<String> = set
        .eval_alerts("z", &json!({}), None)
        .unwrap()
        .into_iter()
        .map(|draft| draft.title)
        .collect();
    assert_eq!(titles, ["one", "two"]);
    // `null` is "none", as Go reads it.
    let drafts = set.eval_alerts("n", &json!({}), None).unwrap();
    assert_eq!(drafts.len(), 1);
    assert!(drafts[0].description.is_empty() && drafts[0].namespace.is_empty() && drafts[0].refs.is_empty());
    assert!(!drafts[0].attrs[0].persist);
}

/// A namespace or attribute id too long to key the state table is the
/// alert policy's error, not a retry without end.
#[test]
fn alert_ids_too_long_to_store_are_named() {
    let long = "n".repeat(crate::model::ids::MAX_ID_BYTES + 1);
    let set = PolicySet::compile(
        vec![
            file("a.rego", ACTION),
            file(
                "x.rego",
                &format!("package alert.x\nalert contains {{\"title\": \"t\", \"namespace\": \"{long}\"}} if true\n"),
            ),
            file(
                "y.rego",
                &format!(
                    "package alert.y\nalert contains {{\"title\": \"t\", \"attrs\": [{{\"id\": \"{long}\", \"key\": \"k\", \"value\": 1}}]}} if true\n"
                ),
            ),
        ],
        Duration::from_secs(1),
    )
    .unwrap();
    let err = set.eval_alerts("x", &json!({}), None).unwrap_err().to_string();
    assert!(err.contains("`namespace` is 513 bytes long, over 512"), "{err}");
    let err = set.eval_alerts("y", &json!({}), None).unwrap_err().to_string();
    assert!(err.contains("`attrs[0].id` is 513 bytes long"), "{err}");
}

#[test]
fn action_policy_output_errors_name_the_entry_and_field() {
    let set = PolicySet::compile(
        vec![file(
            "a.rego",
            "package action\nrun contains {\"id\": \"page\", \"uses\": \"sns.publish\", \"force\": \"yes\"} if true\nrun contains {\"uses\": 3} if input.seq > 0\n",
        )],
        Duration::from_secs(1),
    )
    .unwrap();
    let input = |seq: u32| regorus::Value::from(json!({"seq": seq}));
    let err = set
        .eval_actions(input(0), None, &HashSet::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data.action.run") && err.contains("entry \"page\"") && err.contains("at `force`"),
        "{err}"
    );
    let seen = HashSet::from(["page".to_string()]);
    let err = set.eval_actions(input(1), None, &seen).unwrap_err().to_string();
    assert!(err.contains("element 0") && err.contains("at `uses`"), "{err}");
}

#[test]
fn unknown_functions_fail_the_compile_naming_where() {
    let policy =
        "package action\nrun contains {\"id\": \"x\", \"uses\": \"u\", \"args\": {\"n\": nosuch.fn(1)}} if false\n";
    let err = PolicySet::compile(vec![file("a.rego", policy)], Duration::from_secs(1)).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, PolicyError::UnknownFunctions(_)), "{message}");
    assert!(message.contains("a.rego:2: unknown function nosuch.fn"), "{message}");
    assert!(!message.contains("--features"), "{message}");
}

/// `escape.*` without its import is unknown, and the error says what to add.
#[test]
fn escape_functions_without_the_import_say_to_import_them() {
    let policy = "package action\nrun contains {\"id\": \"x\", \"uses\": \"u\", \"args\": {\"t\": escape.slack(\"a\")}} if true\n";
    let message = PolicySet::compile(vec![file("a.rego", policy)], Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(message.contains("a.rego:2: unknown function escape.slack"), "{message}");
    assert!(message.contains("import data.escape"), "{message}");
}

/// A call is resolved wherever it is: a rule body, a function, an `else`,
/// a comprehension, `every`, `with`, a package nothing reaches, a test
/// file. Each unknown one is named with its file and line.
#[test]
fn every_call_is_resolved_at_load() {
    let unreached = "package lib.unused\n\nhelper(x) := y if {\n  y := json.patches(x, [])\n}\n";
    let action = "package action\n\nimport data.lib.util\nimport data.lib.util as u2\n\n\
        f(x) := foo.bar(x)\n\
        g(x) := 1 if x > 1 else := yaml.marshall(x)\n\
        h := [n | some m in [1]; n := uuid.rfc9999(m)]\n\
        k if every v in [1] { crypto.x509.parse_certificates(v) }\n\
        t := z if { z := time.now_nanos() }\n\
        ok := [util.twice(1), u2.twice(2), data.lib.util.twice(3), sprintf(\"%d\", [1]), local(1)]\n\
        local(x) := x\n\
        run contains {\"id\": \"a\", \"uses\": \"u\"} if http.send({})\n";
    let util = "package lib.util\ntwice(x) := x * 2\n";
    let test = "package action_test\ntest_x if io.jwt.decode_verify(\"t\", {})\n";
    let err = PolicySet::compile(
        vec![
            file("action.rego", action),
            file("lib/unused.rego", unreached),
            file("lib/util.rego", util),
            file("action_test.rego", test),
        ],
        Duration::from_secs(1),
    )
    .unwrap_err();
    let PolicyError::UnknownFunctions(calls) = &err else {
        panic!("expected unknown functions, got {err}");
    };
    let shown: Vec<&str> = calls.iter().map(|c| c.split(" (").next().unwrap()).collect();
    assert_eq!(
        shown,
        [
            "action.rego:6: unknown function foo.bar",
            "action.rego:7: unknown function yaml.marshall",
            "action.rego:8: unknown function uuid.rfc9999",
            "action.rego:9: unknown function crypto.x509.parse_certificates",
            "action.rego:10: unknown function time.now_nanos",
            "action.rego:13: unknown function http.send",
            "action_test.rego:2: unknown function io.jwt.decode_verify",
            "lib/unused.rego:4: unknown function json.patches",
        ],
        "{err}"
    );
    let said = |name: &str| calls.iter().find(|c| c.contains(name)).unwrap().clone();
    assert!(said("http.send").contains("actions act"), "{}", said("http.send"));
    assert!(
        said("crypto.x509").contains("nor this host implements"),
        "{}",
        said("crypto.x509")
    );
}

/// The kinds of rule whose definitions can disagree: on the VM a conflict
/// would just make the rule undefined, so their entry rules run on the
/// interpreter, where a conflict is an error, as in OPA.
#[test]
fn conflicts_are_errors_on_every_engine() {
    let cases = [
        ("complete", "c := 1 if input.a\nc := 2 if input.a\n", "c"),
        ("function", "f(x) := 1 if input.a\nf(x) := 2 if input.a\n", "f(1)"),
        (
            "partial object",
            "o[k] := v if { some k, v in {\"a\": 1} }\no[k] := v if { some k, v in {\"a\": 2} }\n",
            "o",
        ),
        ("iterating", "c := v if { some v in [1, 2] }\n", "c"),
    ];
    for (kind, rules, used) in cases {
        let text = format!("package alert.x\n{rules}alert contains {{\"title\": sprintf(\"%v\", [{used}])}} if true\n");
        let set = PolicySet::compile(
            vec![file("a.rego", ACTION), file("x.rego", &text)],
            Duration::from_secs(1),
        )
        .unwrap();
        let interpreted = set.interpreted_rules();
        assert!(
            interpreted
                .iter()
                .any(|(rule, why)| rule == "data.alert.x.alert" && why.contains("conflicts")),
            "{kind}: {interpreted:?}"
        );
        for engine in [PolicyEngine::Vm, PolicyEngine::Interpreter] {
            let err = set
                .clone()
                .with_engine(engine)
                .eval_alerts("x", &json!({"a": true}), None);
            assert!(
                matches!(err, Err(PolicyError::Eval { .. })),
                "{kind} on {engine:?}: {err:?}"
            );
        }
    }
}

/// Several definitions that cannot disagree stay on the VM: the same
/// constant (`respond if a`, `respond if b`), or functions whose arguments
/// are different constants.
#[test]
fn definitions_that_cannot_conflict_stay_on_the_vm() {
    let text = "package alert.x\n\
        respond if input.a\nrespond if input.b\n\
        level := \"high\" if input.a\nlevel := \"high\" if input.b\n\
        rank(\"high\") := 3\nrank(\"low\") := 1\n\
        default escalate := false\nescalate if input.a\n\
        names := {n | some n in input.names}\n\
        alert contains {\"title\": sprintf(\"%v %v %v %v\", [level, rank(\"high\"), escalate, count(names)])} if respond\n";
    let set = PolicySet::compile(
        vec![file("a.rego", ACTION), file("x.rego", text)],
        Duration::from_secs(1),
    )
    .unwrap();
    assert!(set.interpreted_rules().is_empty(), "{:?}", set.interpreted_rules());
    let alerts = set
        .eval_alerts("x", &json!({"a": true, "b": true, "names": ["u"]}), None)
        .unwrap();
    assert_eq!(alerts[0].title, "high 3 true 1");
}

/// The default build has every builtin group of the engine but the ones
/// that do I/O, time zones included; JSON Schema is a feature, and a policy
/// using it without the feature fails at init saying how to get it.
#[test]
fn builtins_of_the_default_build() {
    let policy = "package action\nrun contains {\"id\": \"x\", \"uses\": \"u\", \"args\": {\"at\": time.now_ns(), \"clock\": time.clock([0, \"Asia/Kolkata\"]), \"v\": semver.compare(\"1.2.3\", \"1.10.0\"), \"y\": yaml.marshal({\"a\": 1}), \"u\": uuid.parse(\"c0ffee00-0000-4000-8000-000000000001\").version, \"p\": json.patch({}, [{\"op\": \"add\", \"path\": \"/z\", \"value\": 1}])}} if true\n";
    let set = PolicySet::compile(vec![file("a.rego", policy)], Duration::from_secs(1)).unwrap();
    let requests = set
        .eval_actions(regorus::Value::new_object(), None, &HashSet::new())
        .unwrap();
    let args = &requests[0].args;
    assert!(args["at"].as_i64().unwrap() > 1_700_000_000_000_000_000);
    assert_eq!(args["clock"], json!([5, 30, 0]));
    assert_eq!(args["v"], json!(-1));
    assert_eq!(args["y"], json!("a: 1\n"));
    assert_eq!(args["u"], json!(4));
    assert_eq!(args["p"], json!({"z": 1}));
    let schema = "package action\nrun contains {\"id\": \"x\", \"uses\": \"u\"} if json.match_schema({}, {})[0]\n";
    let compiled = PolicySet::compile(vec![file("a.rego", schema)], Duration::from_secs(1));
    if cfg!(feature = "policy-jsonschema") {
        assert!(compiled.is_ok());
    } else {
        let message = compiled.unwrap_err().to_string();
        assert!(
            message.contains("json.match_schema") && message.contains("--features policy-jsonschema"),
            "{message}"
        );
    }
}

/// VMs are reused between evaluations: nothing of one evaluation (rule
/// values, builtin results, input) may show in the next, also after one
/// that failed.
#[test]
fn reused_vms_carry_nothing_between_evaluations() {
    let policy = "package action\nname := sprintf(\"n-%v\", [input.a])\nrun contains {\"id\": name, \"uses\": \"u\", \"args\": {\"m\": regex.match(input.p, \"abc\")}} if input.a\nrun contains {\"id\": \"boom\", \"uses\": \"u\"} if 1 / input.z\n";
    let set = PolicySet::compile(vec![file("a.rego", policy)], Duration::from_secs(1)).unwrap();
    let eval = |input: Value| {
        set.eval_actions(regorus::Value::from(input), None, &HashSet::new())
            .map(|requests| {
                requests
                    .iter()
                    .map(|r| (r.id.clone(), r.args["m"].clone()))
                    .collect::<Vec<_>>()
            })
    };
    assert_eq!(
        eval(json!({"a": 1, "p": "^a"})).unwrap(),
        vec![("n-1".to_string(), json!(true))]
    );
    assert_eq!(
        eval(json!({"a": 2, "p": "^z"})).unwrap(),
        vec![("n-2".to_string(), json!(false))]
    );
    assert_eq!(
        set.programs[ACTION_RULE].idle.lock().unwrap().len(),
        1,
        "the VM is kept"
    );
    // Undefined input, then a body error: neither leaves anything behind.
    assert!(eval(json!({})).unwrap().is_empty());
    assert!(eval(json!({"z": "x"})).unwrap().is_empty());
    assert_eq!(
        eval(json!({"a": 3, "p": "b"})).unwrap(),
        vec![("n-3".to_string(), json!(true))]
    );
}

/// One alert body divides by zero, the other is fine.
const HALF_BROKEN: &str = "package alert.x\nalert contains {\"title\": t} if { t := sprintf(\"%v\", [input.a / input.b]) }\nalert contains {\"title\": \"fine\"} if input.a\n";

/// On the interpreter a division by zero is OPA's default too (the body is
/// undefined); an error regorus keeps strict there fails the evaluation,
/// naming the rule.
#[test]
fn runtime_error_names_the_rule_on_the_interpreter() {
    let set = PolicySet::compile(
        vec![file("a.rego", ACTION), file("x.rego", HALF_BROKEN)],
        Duration::from_secs(1),
    )
    .unwrap()
    .with_engine(PolicyEngine::Interpreter);
    let alerts = set.eval_alerts("x", &json!({"a": 1, "b": 0}), None).unwrap();
    let titles: Vec<&str> = alerts.iter().map(|a| a.title.as_str()).collect();
    assert_eq!(titles, ["fine"]);
    let strict = "package alert.x\nalert contains {\"title\": t} if { t := sprintf(\"%v\", [to_number(input.s)]) }\n";
    let set = PolicySet::compile(
        vec![file("a.rego", ACTION), file("x.rego", strict)],
        Duration::from_secs(1),
    )
    .unwrap()
    .with_engine(PolicyEngine::Interpreter);
    let err = set
        .eval_alerts("x", &json!({"s": "abc"}), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("data.alert.x.alert") && err.contains("to_number"), "{err}");
}

#[test]
fn runtime_error_makes_only_its_body_undefined_on_the_vm() {
    let set = PolicySet::compile(
        vec![file("a.rego", ACTION), file("x.rego", HALF_BROKEN)],
        Duration::from_secs(1),
    )
    .unwrap();
    assert!(set.interpreted_rules().is_empty(), "{:?}", set.interpreted_rules());
    let alerts = set.eval_alerts("x", &json!({"a": 1, "b": 0}), None).unwrap();
    let titles: Vec<&str> = alerts.iter().map(|a| a.title.as_str()).collect();
    assert_eq!(titles, ["fine"]);
    // Without the error both bodies count, on both engines.
    for set in [set.clone(), set.clone().with_engine(PolicyEngine::Interpreter)] {
        let alerts = set.eval_alerts("x", &json!({"a": 4, "b": 2}), None).unwrap();
        let mut titles: Vec<&str> = alerts.iter().map(|a| a.title.as_str()).collect();
        titles.sort();
        assert_eq!(titles, ["2", "fine"]);
    }
}

/// A builtin error inside a comprehension skips that element (OPA's
/// default), instead of leaving the VM's undefined in the collection,
/// where it reached attributes and action arguments as "<undefined>".
#[test]
fn a_builtin_error_in_a_comprehension_skips_its_element_on_the_vm() {
    let text = "package alert.x\n\
        alert contains {\"title\": \"t\", \"attrs\": [\n\
          {\"key\": \"ports\", \"value\": [to_number(p) | some p in input.ports]},\n\
          {\"key\": \"by\", \"value\": {k: to_number(v) | some k, v in input.named}},\n\
          {\"key\": \"set\", \"value\": {to_number(p) | some p in input.ports}}\n\
        ]} if true\n";
    let set = PolicySet::compile(
        vec![file("a.rego", ACTION), file("x.rego", text)],
        Duration::from_secs(1),
    )
    .unwrap();
    assert!(set.interpreted_rules().is_empty());
    let input = json!({"ports": ["80", "http", "443"], "named": {"a": "1", "b": "x"}});
    let alerts = set.eval_alerts("x", &input, None).unwrap();
    let values: Vec<Value> = alerts[0].attrs.iter().map(|attr| attr.value.clone()).collect();
    assert_eq!(values, [json!([80, 443]), json!({"a": 1}), json!([80, 443])]);
}

/// The VM program is run with its rules' metadata cut down
/// (`vm::lean_rule_infos`): functions whose parameters are patterns, with
/// `else` chains, and several bodies decide as the interpreter does.
#[test]
fn lean_rule_metadata_decides_as_the_interpreter_does() {
    let text = "package alert.x\n\
        pair([a, b]) := sprintf(\"%v-%v\", [a, b])\n\
        first_name({\"first\": f}) := f\n\
        size(n) := \"big\" if n > 10 else := \"mid\" if n > 5 else := \"small\"\n\
        titles contains pair(p) if some p in input.pairs\n\
        titles contains size(n) if some n in input.nums\n\
        titles contains first_name(input.person)\n\
        alert contains {\"title\": t} if some t in titles\n";
    let set = PolicySet::compile(
        vec![file("a.rego", ACTION), file("x.rego", text)],
        Duration::from_secs(1),
    )
    .unwrap();
    assert!(set.interpreted_rules().is_empty(), "{:?}", set.interpreted_rules());
    let titles = |set: &PolicySet, input: &Value| {
        let mut titles: Vec<String> = set
            .eval_alerts("x", input, None)
            .unwrap()
            .into_iter()
            .map(|alert| alert.title)
            .collect();
        titles.sort();
        titles
    };
    // `[3]` does not match `[a, b]`: that call is undefined (OPA's answer),
    // on both engines (the interpreter's partial rules are rewritten so).
    let input = json!({"pairs": [[1, 2], [3], ["a", "b"]], "nums": [2, 7, 20], "person": {"first": "ada"}});
    assert_eq!(titles(&set, &input), ["1-2", "a-b", "ada", "big", "mid", "small"]);
    let interpreted = set.clone().with_engine(PolicyEngine::Interpreter);
    assert_eq!(titles(&interpreted, &input), titles(&set, &input));
}

#[test]
fn rules_the_vm_does_not_take_run_on_the_interpreter() {
    let set = PolicySet::compile(
        vec![
            file("a.rego", ACTION),
            file(
                "x.rego",
                "package alert.x\nalert contains {\"title\": input.t} if { print(\"saw\", input.t) }\n",
            ),
        ],
        Duration::from_secs(1),
    )
    .unwrap();
    let interpreted = set.interpreted_rules();
    assert_eq!(interpreted.len(), 1, "{interpreted:?}");
    assert_eq!(interpreted[0].0, "data.alert.x.alert");
    assert!(interpreted[0].1.contains("print"), "{interpreted:?}");
    let alerts = set.eval_alerts("x", &json!({"t": "hello"}), None).unwrap();
    assert_eq!(alerts[0].title, "hello");
}

/// OPA's hash and HMAC builtins, which regorus lacks, are the host's: the
/// rules reaching them run on the interpreter, and a bad argument makes
/// the call undefined (OPA's default), not the evaluation fail.
#[test]
fn crypto_builtins_are_served_by_the_host_on_the_interpreter() {
    let set = PolicySet::compile(
        vec![
            file("a.rego", ACTION),
            file(
                "x.rego",
                "package alert.x\n\
                 alert contains {\"title\": t} if { t := crypto.sha256(input.t) }\n\
                 alert contains {\"title\": \"mac\"} if crypto.hmac.equal(crypto.hmac.sha256(input.t, \"k\"), input.mac)\n\
                 alert contains {\"title\": \"never\"} if crypto.md5(input.n)\n",
            ),
        ],
        Duration::from_secs(1),
    )
    .unwrap();
    let interpreted = set.interpreted_rules();
    assert_eq!(interpreted.len(), 1, "{interpreted:?}");
    assert_eq!(interpreted[0].0, "data.alert.x.alert");
    assert!(interpreted[0].1.contains("crypto."), "{interpreted:?}");
    let mac = "342e519ce0ad6c03a36b98eeb3f1d130db4813b9df4d1160eda488d712dc78ee";
    let alerts = set
        .eval_alerts("x", &json!({"t": "abc", "mac": mac, "n": 1}), None)
        .unwrap();
    let mut titles: Vec<&str> = alerts.iter().map(|a| a.title.as_str()).collect();
    titles.sort_unstable();
    assert_eq!(
        titles,
        [
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "mac"
        ]
    );
}

/// A host function called with another number of arguments fails the
/// load, naming the file, the line and what it takes.
#[test]
fn host_functions_with_the_wrong_number_of_arguments_fail_the_load() {
    let err = PolicySet::compile(
        vec![
            file("a.rego", ACTION),
            file(
                "x.rego",
                "package alert.x\nalert contains {\"title\": crypto.sha256(input.t, \"salt\")} if true\n",
            ),
        ],
        Duration::from_secs(1),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("x.rego:2: crypto.sha256 takes 1 argument(s), given 2"),
        "{err}"
    );
    // `with` cannot replace a host function (regorus refuses `with f as
    // crypto.md5` itself: `crypto` is an unsafe variable to it).
    let mocked = "package action_test\nimport data.action\n\
        test_a if { action.run with crypto.sha256 as \"x\" }\n\
        test_b if { action.run with crypto.md5 as \"y\" }\n\
        test_c if { crypto.sha1(\"a\") == \"x\" }\n";
    let err = PolicySet::compile(
        vec![file("a.rego", ACTION), file("a_test.rego", mocked)],
        Duration::from_secs(1),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("a_test.rego:3: `with` cannot replace crypto.sha256"),
        "{err}"
    );
    assert!(err.contains("a_test.rego:4: `with` cannot replace crypto.md5"), "{err}");
    assert!(!err.contains(":5:"), "a call is no misuse: {err}");
}

/// A host function reached through an import's alias, or through a
/// reference that names a parent of its package (`data.checks[name]`),
/// sends the entry rule to the interpreter too.
#[test]
fn host_functions_reached_through_imports_and_parent_packages_run_on_the_interpreter() {
    let set = PolicySet::compile(
        vec![
            file("a.rego", ACTION),
            file("lib/util.rego", "package lib.util\nh(x) := crypto.sha256(x)\n"),
            file("checks/a.rego", "package checks.a\nverdict := crypto.md5(\"a\")\n"),
            file(
                "x.rego",
                "package alert.x\nimport data.lib\nalert contains {\"title\": lib.util.h(input.t)} if true\n",
            ),
            file(
                "y.rego",
                "package alert.y\nalert contains {\"title\": v} if { some name; v := data.checks[name].verdict }\n",
            ),
        ],
        Duration::from_secs(1),
    )
    .unwrap();
    let interpreted: Vec<&str> = set.interpreted_rules().iter().map(|(rule, _)| rule.as_str()).collect();
    assert_eq!(interpreted, ["data.alert.x.alert", "data.alert.y.alert"]);
    // Found by the analysis, not by the VM compiler failing.
    for (rule, reason) in set.interpreted_rules() {
        assert!(
            reason.starts_with("host functions run on the interpreter"),
            "{rule}: {reason}"
        );
    }
    let x = set.eval_alerts("x", &json!({"t": "abc"}), None).unwrap();
    assert_eq!(
        x[0].title,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let y = set.eval_alerts("y", &json!({}), None).unwrap();
    assert_eq!(y[0].title, "0cc175b9c0f1b6a831c399e269772661");
}

#[test]
fn large_inputs_are_not_cut_by_an_instruction_cap() {
    // regorus's VM stops at 25,000 instructions by default; only the
    // policy timeout may bound an evaluation here.
    let set = PolicySet::compile(
        vec![
            file("a.rego", ACTION),
            file(
                "x.rego",
                "package alert.x\nalert contains {\"title\": sprintf(\"%d\", [count(big)])} if { big := {v | some v in input.values; v % 2 == 0} }\n",
            ),
        ],
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(set.interpreted_rules().is_empty());
    let values: Vec<u32> = (0..50_000).collect();
    let alerts = set.eval_alerts("x", &json!({"values": values}), None).unwrap();
    assert_eq!(alerts[0].title, "25000");
}

fn slow_files() -> Vec<PolicyFile> {
    vec![
            file("a.rego", ACTION),
            file(
                "slow.rego",
                "package alert.slow\nalert contains {\"title\": sprintf(\"%d\", [n])} if {\n  n := count([x | some a in numbers.range(1, 2000); some b in numbers.range(1, 2000); x := a * b])\n}\n",
            ),
        ]
}

#[test]
fn slow_rule_hits_the_timer() {
    let set = PolicySet::compile(slow_files(), Duration::from_millis(50)).unwrap();
    let err = set.eval_alerts("slow", &json!({}), None).unwrap_err().to_string();
    assert!(err.contains("data.alert.slow.alert"), "{err}");
    // The invocation's deadline bounds it too, below the policy timeout.
    let long = PolicySet::compile(slow_files(), Duration::from_secs(60)).unwrap();
    let started = Instant::now();
    let deadline = Some(Instant::now() + Duration::from_millis(50));
    assert!(long.eval_alerts("slow", &json!({}), deadline).is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.to_lowercase().contains("time") || err.contains("limit"), "{err}");
}

/// A builtin call that would build an unbounded value is refused before
/// it allocates, on both engines, as an error naming the rule.
#[test]
fn unbounded_builtin_calls_are_refused_before_they_allocate() {
    let cases = [
        "count([x | some x in numbers.range(1, 200000000); x % 7 == 0])",
        "count(numbers.range(0, 9223372036854775807))",
        "count(numbers.range_step(1, 900000000000, 3))",
        "count(net.cidr_expand(\"::/0\"))",
        "bits.lsh(1, 4294967295)",
        "sprintf(\"%4000000000d\", [1])",
        "count(net.cidr_contains_matches(numbers.range(1, 1001), numbers.range(1, 1001)))",
    ];
    for expression in cases {
        assert_answered_at_once(
            expression,
            |result| matches!(result, Err(PolicyError::Eval { rule, .. }) if rule == "data.alert.x.alert"),
        );
    }
}

type Answer = Result<Vec<AlertDraft>, PolicyError>;

/// No alert: a refusal (an error, or undefined on the VM).
fn no_alert(result: &Answer) -> bool {
    result.as_ref().map_or(true, |alerts| alerts.is_empty())
}

/// `expression` in an alert's title answers as `expected` says within two
/// seconds, on both engines.
fn assert_answered_at_once(expression: &str, expected: fn(&Answer) -> bool) {
    let text = format!("package alert.x\nalert contains {{\"title\": sprintf(\"%v\", [{expression}])}} if true\n");
    let set = PolicySet::compile(
        vec![file("a.rego", ACTION), file("x.rego", &text)],
        Duration::from_secs(5),
    )
    .unwrap();
    for engine in [PolicyEngine::Vm, PolicyEngine::Interpreter] {
        let started = Instant::now();
        let result = set.clone().with_engine(engine).eval_alerts("x", &json!({}), None);
        assert!(expected(&result), "{expression} on {engine:?}: {result:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{expression} on {engine:?} took {:?}",
            started.elapsed()
        );
    }
}

/// Calls that made regorus panic, overflow the stack or build one string
/// past any budget are refused at once, on both engines: a path of
/// thousands of segments, a chain of thousands of graph
/// nodes, `replace` with an empty needle and a long replacement.
#[test]
fn calls_that_crashed_the_engine_are_refused_at_once() {
    let cases = [
        "json.filter({}, [concat(\"\", [\"a/\" | some _ in numbers.range(1, 5000)])])",
        "json.remove({}, [[\"a\" | some _ in numbers.range(1, 5000)]])",
        "graph.reachable_paths({sprintf(\"%d\", [i]): [sprintf(\"%d\", [i + 1])] | some i in numbers.range(1, 3000)}, [\"1\"])",
        "replace(concat(\"\", [\"a\" | some _ in numbers.range(1, 100000)]), \"\", concat(\"\", [\"b\" | some _ in numbers.range(1, 1000)]))",
        "strings.replace_n({\"\": concat(\"\", [\"b\" | some _ in numbers.range(1, 1000)])}, concat(\"\", [\"a\" | some _ in numbers.range(1, 100000)]))",
    ];
    for expression in cases {
        assert_answered_at_once(&format!("count({expression})"), no_alert);
    }
}

/// A number whose text asks regorus for an exact power of ten beyond
/// reach (`1e2000000000`: minutes and gigabytes no timer stops) is
/// refused at once, on both engines, wherever its text is read.
#[test]
fn numbers_with_unbounded_exponents_are_refused_at_once() {
    let cases = [
        "to_number(\"1e2000000000\")",
        "units.parse(\"1e2000000000\")",
        "units.parse_bytes(\"1E+2000000000\")",
        "json.unmarshal(\"{\\\"$serde_json::private::Number\\\": \\\"1e2000000000\\\"}\")",
        "yaml.unmarshal(\"{\\\"$serde_json::private::Number\\\": \\\"1e2000000000\\\"}\")",
        "json.is_valid(\"{\\\"$serde_json::private::Number\\\": \\\"1e2000000000\\\"}\")",
    ];
    for expression in cases {
        assert_answered_at_once(expression, no_alert);
    }
    // An exponent within the limit is read as before.
    let text = "package alert.x\nalert contains {\"title\": sprintf(\"%v\", [to_number(\"1e3\")])} if true\n";
    let set = PolicySet::compile(
        vec![file("a.rego", ACTION), file("x.rego", text)],
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(set.eval_alerts("x", &json!({}), None).unwrap()[0].title, "1000");
}

/// Arguments a guarded builtin would panic on are its ordinary error (on the
/// VM, as for any builtin error, the expression is undefined).
#[test]
fn arguments_that_would_panic_are_errors() {
    for expression in [
        "numbers.range_step(0, 10, 0)",
        "numbers.range_step(10, 0, -1)",
        "sprintf(\"%²d\", [1])",
    ] {
        let text = format!("package alert.x\nalert contains {{\"title\": sprintf(\"%v\", [{expression}])}} if true\nalert contains {{\"title\": \"other\"}} if true\n");
        let set = PolicySet::compile(
            vec![file("a.rego", ACTION), file("x.rego", &text)],
            Duration::from_secs(5),
        )
        .unwrap();
        let titles: Vec<String> = set
            .eval_alerts("x", &json!({}), None)
            .unwrap()
            .into_iter()
            .map(|a| a.title)
            .collect();
        assert_eq!(titles, ["other"], "{expression}");
        let err = set
            .clone()
            .with_engine(PolicyEngine::Interpreter)
            .eval_alerts("x", &json!({}), None);
        assert!(err.is_err(), "{expression}: {err:?}");
    }
    // Within the limits, the builtins answer as before.
    let text = "package alert.x\nalert contains {\"title\": sprintf(\"%v %v %05d\", [numbers.range(1, 3), numbers.range_step(0, 10, 5), 42])} if true\n";
    let set = PolicySet::compile(
        vec![file("a.rego", ACTION), file("x.rego", text)],
        Duration::from_secs(5),
    )
    .unwrap();
    for engine in [PolicyEngine::Vm, PolicyEngine::Interpreter] {
        let alerts = set
            .clone()
            .with_engine(engine)
            .eval_alerts("x", &json!({}), None)
            .unwrap();
        assert_eq!(alerts[0].title, "[1, 2, 3] [0, 5, 10] 00042", "{engine:?}");
    }
}

/// `escape.slack` and `escape.markdown` in a policy give exactly what the
/// host's own rendering gives, on both engines, for hostile strings, once
/// the package imports `data.escape`.
#[test]
fn escape_functions_match_the_hosts_rendering() {
    let text = "package action\nimport data.escape\nrun contains {\"id\": \"e\", \"uses\": \"u\", \"args\": {\"slack\": [escape.slack(s) | some s in input.strings], \"markdown\": [escape.markdown(s) | some s in input.strings], \"number\": escape.slack(5)}} if true\n";
    let set = PolicySet::compile(vec![file("a.rego", text)], Duration::from_secs(5)).unwrap();
    assert!(set.interpreted_rules().is_empty(), "{:?}", set.interpreted_rules());
    let strings = [
        "<!channel> <https://evil.example/mfa|Reset your MFA now> & <@U012AB3CD>",
        "@team ![x](https://t.example/p.png) [ok](https://evil) ```\n# h\n<img src=x> | a | \\ back",
        "bidi \u{202E}evil\u{202C} zero\u{200B}width \u{0007}bell",
        "sep\u{2028}ara\u{2029}tors soft\u{00AD}hyphen mongolian\u{180E} \u{206A}format tag\u{E0041}\u{E0042}s",
        "org/repo#123 see #45 :warning: $x^2$ a\\#1",
        "plain text, ünïcödé ✓",
    ];
    for engine in [PolicyEngine::Vm, PolicyEngine::Interpreter] {
        let requests = set
            .clone()
            .with_engine(engine)
            .eval_actions(regorus::Value::from(json!({"strings": strings})), None, &HashSet::new())
            .unwrap();
        let args = &requests[0].args;
        for (index, s) in strings.iter().enumerate() {
            assert_eq!(
                args["slack"][index],
                json!(crate::action::render::slack(s)),
                "{engine:?} slack {s:?}"
            );
            assert_eq!(
                args["markdown"][index],
                json!(crate::action::render::markdown(s)),
                "{engine:?} markdown {s:?}"
            );
        }
        assert_eq!(args["number"], json!("5"));
    }
}

/// Two interpreted evaluations overlapping on two threads: the first to
/// end leaves the limit on for the other. (Other tests of this binary may
/// interpret at the same time, so whether it is lifted after the last is
/// not checked here: only that nothing lifts it while one runs.)
#[test]
fn the_interpreters_memory_limit_stays_while_another_evaluation_runs() {
    // Far above anything the tests allocate: the limit is process-wide, and
    // other tests evaluate while this one holds it.
    let memory = NonZeroU64::new(1 << 40).expect("non-zero");
    let first = InterpreterBudget::enter(memory);
    let second = std::thread::spawn(move || InterpreterBudget::enter(memory))
        .join()
        .expect("entered on another thread");
    assert!(regorus::global_memory_limit().is_some());
    drop(first);
    assert!(
        regorus::global_memory_limit().is_some(),
        "the first evaluation to end lifted the limit from the one still running"
    );
    drop(second);
}

/// Stopped by the invocation's deadline is a retry; by the policy's own
/// timeout, a policy error — on both engines.
#[test]
fn the_deadline_and_the_policy_timeout_stop_an_evaluation_differently() {
    let text = "package alert.x\nslow if {\n  some i in numbers.range(1, 10000)\n  some j in numbers.range(1, 10000)\n  i * j < 0\n}\nalert contains {\"title\": \"t\"} if not slow\n";
    let set = PolicySet::compile(
        vec![file("a.rego", ACTION), file("x.rego", text)],
        Duration::from_millis(100),
    )
    .unwrap();
    for engine in [PolicyEngine::Vm, PolicyEngine::Interpreter] {
        let set = set.clone().with_engine(engine);
        let soon = Some(Instant::now() + Duration::from_millis(20));
        let late = set.eval_alerts("x", &json!({}), soon);
        assert!(
            matches!(&late, Err(PolicyError::Deadline { rule }) if rule == "data.alert.x.alert"),
            "{engine:?}: {late:?}"
        );
        let far = Some(Instant::now() + Duration::from_secs(60));
        for deadline in [None, far] {
            let timed_out = set.eval_alerts("x", &json!({}), deadline);
            assert!(
                matches!(timed_out, Err(PolicyError::Eval { .. })),
                "{engine:?}: {timed_out:?}"
            );
        }
    }
}

/// A builtin is guarded or replaced, never both: the interpreter would keep
/// the guard's extension and refuse the host's (only a warning), so the
/// two engines would answer otherwise.
#[test]
fn no_builtin_is_both_guarded_and_replaced() {
    let replaced: Vec<&str> = crate::policy::host::replaced().collect();
    assert!(replaced.len() > 30, "{replaced:?}");
    let both: Vec<&str> = crate::policy::guard::guarded()
        .filter(|name| replaced.contains(name))
        .collect();
    assert!(both.is_empty(), "guarded and replaced: {both:?}");
}

/// A rule on the interpreter (it calls a host function) reading a library
/// package through its import alias: regorus evaluates the whole package,
/// and a division by zero in a rule it never needed is OPA's default there
/// too (undefined), not an error failing the alert.
#[test]
fn an_interpreted_rule_is_not_failed_by_an_unused_rules_arithmetic_error() {
    let set = PolicySet::compile(
        vec![
            file(
                "x.rego",
                "package alert.x\nimport data.lib.cfg\nalert contains {\"title\": crypto.sha256(\"t\"), \"severity\": cfg.level} if input.a\n",
            ),
            file("cfg.rego", "package lib.cfg\nratio := input.a / input.b\nlevel := \"high\"\n"),
        ],
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(!set.interpreted_rules().is_empty());
    let drafts = set.eval_alerts("x", &json!({"a": 1, "b": 0}), None).unwrap();
    assert_eq!(drafts[0].severity, "high");
}

/// An import's alias on the interpreter reads one rule, as OPA does: an
/// unrelated rule of the imported package whose builtin errors (strictly,
/// on regorus's interpreter) is never evaluated.
#[test]
fn an_import_alias_reads_only_the_rule_it_names_on_the_interpreter() {
    let set = PolicySet::compile(
        vec![
            file(
                "x.rego",
                "package alert.x\nimport data.lib.cfg as settings\nalert contains {\"title\": crypto.sha256(\"t\"), \"severity\": settings.level} if input.a\n",
            ),
            file("cfg.rego", "package lib.cfg\nport := to_number(input.port)\nlevel := \"high\"\n"),
        ],
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(!set.interpreted_rules().is_empty());
    let drafts = set.eval_alerts("x", &json!({"a": 1, "port": "http"}), None).unwrap();
    assert_eq!(drafts[0].severity, "high");
}

/// A rule that binds an alias's name locally (`every cfg in …`) keeps it
/// local: only the other rules' uses read the import.
#[test]
fn a_local_named_like_an_import_alias_stays_local_on_the_interpreter() {
    let set = PolicySet::compile(
        vec![
            file(
                "x.rego",
                "package alert.x\nimport data.lib.cfg\nall_on if {\n\tevery cfg in input.items {\n\t\tcfg.on\n\t}\n}\nalert contains {\"title\": crypto.sha256(\"t\"), \"severity\": cfg.level, \"description\": sprintf(\"%v\", [all_on])} if true\n",
            ),
            file("cfg.rego", "package lib.cfg\nlevel := \"high\"\non := false\n"),
        ],
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(!set.interpreted_rules().is_empty());
    let drafts = set.eval_alerts("x", &json!({"items": [{"on": true}]}), None).unwrap();
    assert_eq!(
        (drafts[0].severity.as_str(), drafts[0].description.as_str()),
        ("high", "true")
    );
}

/// A rule whose head's comprehension reads a variable of its body runs on
/// the interpreter (the VM kept the comprehension when the variable was
/// undefined: `head_comprehensions.yaml`); one whose comprehension reads
/// only its own variables and rules stays on the VM.
#[test]
fn a_head_comprehension_reading_the_body_runs_on_the_interpreter() {
    let compile = |alert: &str| {
        PolicySet::compile(
            vec![file("a.rego", ACTION), file("x.rego", alert)],
            Duration::from_secs(1),
        )
        .unwrap()
    };
    let reads_body = compile(
        "package alert.x\nalert contains {\"title\": concat(\",\", [v | some v in [t]])} if { t := input.t }\n",
    );
    let interpreted = reads_body.interpreted_rules();
    assert_eq!(interpreted.len(), 1, "{interpreted:?}");
    assert!(
        interpreted[0].1.contains("comprehension of its head"),
        "{interpreted:?}"
    );
    assert!(reads_body.eval_alerts("x", &json!({}), None).unwrap().is_empty());
    // Names the body only calls or reads (a function, a rule) bind nothing.
    let own = compile(
        "package alert.x\nseen := {\"a\"}\nalert contains {\"title\": concat(\",\", [lower(v) | some v in seen])} if { lower(input.t) == \"x\"; count(seen) > 0 }\n",
    );
    assert!(own.interpreted_rules().is_empty(), "{:?}", own.interpreted_rules());
}

/// A package read as one object holds its defined rules only, as in OPA:
/// regorus's VM gave it a key for an undefined rule too, so such a read
/// runs on the interpreter.
#[test]
fn a_package_read_whole_leaves_its_undefined_rules_out() {
    let set = PolicySet::compile(
        vec![
            file(
                "alert.rego",
                "package alert.x\nalert contains {\"title\": json.marshal(data.lib.ctx)} if true\n",
            ),
            file(
                "lib.rego",
                "package lib.ctx\nuser := input.user\nowner := input.owner\n",
            ),
        ],
        Duration::from_secs(1),
    )
    .unwrap();
    let drafts = set.eval_alerts("x", &json!({"user": "backup"}), None).unwrap();
    assert_eq!(drafts[0].title, r#"{"user":"backup"}"#);
    assert!(
        set.interpreted_rules()
            .iter()
            .any(|(rule, why)| rule == "data.alert.x.alert" && why.contains("as a whole")),
        "{:?}",
        set.interpreted_rules()
    );
}

/// A call of a policy's own function with the wrong number of arguments
/// fails the load, as OPA's type checker refuses it (it was undefined,
/// silently); one more argument is the call's output, as in OPA.
#[test]
fn a_function_called_with_the_wrong_number_of_arguments_fails_the_load() {
    let compile = |alert: &str| {
        PolicySet::compile(
            vec![
                file("alert.rego", alert),
                file("lib.rego", "package lib\nscore(sev, weight) := sev * weight\n"),
            ],
            Duration::from_secs(1),
        )
    };
    for (call, given) in [
        ("data.lib.score(3)", "1 argument"),
        ("data.lib.score(1, 2, 3, 4)", "4 arguments"),
    ] {
        let err = compile(&format!(
            "package alert.x\nalert contains {{\"title\": sprintf(\"%v\", [{call}])}} if true\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("alert.rego:2: function data.lib.score has arity 2, got") && err.contains(given),
            "{err}"
        );
    }
    // Through an import, and a local function called short.
    let err = compile("package alert.x\nimport data.lib\nf(a) := a\nalert contains {\"title\": \"t\"} if { lib.score(1) == f(1, 2, 3) }\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("data.lib.score has arity 2, got 1 argument"), "{err}");
    assert!(err.contains("data.alert.x.f has arity 1, got 3 arguments"), "{err}");
    // The output form binds the value.
    let set = compile("package alert.x\nalert contains {\"title\": sprintf(\"%v\", [s])} if data.lib.score(2, 3, s)\n")
        .unwrap();
    assert_eq!(set.eval_alerts("x", &json!({}), None).unwrap()[0].title, "6");
}

/// A rule declaring a local of its own name runs on the interpreter: the VM
/// read the local as the rule and recursed until the stack overflowed.
#[test]
fn a_rule_declaring_a_local_of_its_own_name_does_not_run_on_the_vm() {
    let set = PolicySet::compile(
        vec![file(
            "alert.rego",
            "package alert.x\nx contains v if {\n\tsome x\n\tv := [10, 20][x]\n}\nalert contains {\"title\": sprintf(\"%v\", [count(x)])} if true\n",
        )],
        Duration::from_secs(1),
    )
    .unwrap();
    assert!(
        set.interpreted_rules()
            .iter()
            .any(|(_, why)| why.contains("declares a local named like itself")),
        "{:?}",
        set.interpreted_rules()
    );
    set.eval_alerts("x", &json!({}), None).unwrap();
}

/// `import future.keywords.in` beside `import rego.v1` loads, as in OPA
/// (regorus refused the pair); lines keep their numbers.
#[test]
fn future_keyword_imports_beside_rego_v1_load() {
    let text = "package alert.x\nimport rego.v1\nimport future.keywords.in\nimport future.keywords.if\n\nalert contains {\"title\": t} if {\n\tsome t in [\"a\"]\n\tt in {\"a\"}\n}\n";
    let set = PolicySet::compile(vec![file("alert.rego", text)], Duration::from_secs(1)).unwrap();
    assert_eq!(set.eval_alerts("x", &json!({}), None).unwrap()[0].title, "a");
    // Without rego.v1 the file is as written.
    let plain = "package alert.y\nimport future.keywords.in\nalert contains {\"title\": \"t\"} if \"a\" in [\"a\"]\n";
    assert!(PolicySet::compile(vec![file("alert.rego", plain)], Duration::from_secs(1)).is_ok());
}
