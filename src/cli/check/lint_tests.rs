use super::*;

fn registry() -> Registry {
    Registry::with_http(crate::http::HttpSettings::default())
}

fn findings(policy: &str) -> Vec<String> {
    check_run_entries(
        vec![PolicyFile {
            name: "policies/action.rego".into(),
            text: policy.into(),
        }],
        &registry(),
        true,
    )
    .unwrap()
    .iter()
    .map(ToString::to_string)
    .collect()
}

#[test]
fn unknown_uses_and_missing_or_unknown_args_are_found_with_lines() {
    let shown = findings(
        r#"package action

run contains {"id": "page", "uses": "pagerduty.trigger", "args": {"summary": "x"}} if true

run contains {"id": "typo", "uses": "slack.pots", "args": {}} if true

run contains {"id": "ok", "uses": "http.fetch", "args": {"url": input.env.URL}} if true

run contains {"id": "extra", "uses": "http.fetch", "args": {"url": "u", "methd": "GET"}} if true

run contains {"id": "computed", "uses": "http.fetch", "args": args} if { args := {} }
"#,
    );
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown[0].starts_with(
            "policies/action.rego:3: run entry \"page\" (pagerduty.trigger): argument `secret_routing_key` is required"
        ),
        "{}",
        shown[0]
    );
    assert!(
        shown[1].starts_with("policies/action.rego:5: run entry \"typo\": unknown action \"slack.pots\": use one of "),
        "{}",
        shown[1]
    );
    assert!(
        shown[2].starts_with("policies/action.rego:9: run entry \"extra\" (http.fetch): argument `methd` is not an argument of this action"),
        "{}",
        shown[2]
    );
}

/// What a real run rejected but `check` used to let through, each with its
/// file, line, the argument and the fix.
#[test]
fn what_a_run_would_reject_fails_check() {
    let shown = findings(
        r#"package action

run contains {"id": "gh", "uses": "github.create_issue", "args": {"owner": "acme", "repo": 5, "secret_token": "t", "labels": "matano"}}

run contains {"id": "fetch", "uses": "http.fetch", "args": {"url": "https://x", "timeout_ms": "3000"}}

run contains {"id": "slack", "uses": "slack.post", "args": {"text": "hi"}}

run contains {"id": "bare"}

run contains {"id": "commits", "uses": "http.fetch", "args": {"url": "u"}, "commit": [
	{"key": "a", "path": "body["},
	{"key": "b", "value": 1, "op": "sum"},
	{"key": "c", "value": 1, "ttl": "1h"},
]}

run contains {"id": "twice", "uses": "http.fetch", "args": {"url": "a"}}

run contains {"id": "twice", "uses": "http.fetch", "args": {"url": "b"}}

run contains {"id": "typo", "uses": "http.fetch", "args": {"url": "u"}, "forse": true}
"#,
    );
    let has = |line: u32, parts: &[&str]| {
        assert!(
            shown
                .iter()
                .any(|f| f.starts_with(&format!("policies/action.rego:{line}:")) && parts.iter().all(|p| f.contains(p))),
            "no finding at line {line} with {parts:?} in {shown:#?}"
        )
    };
    has(
        3,
        &[
            "\"gh\"",
            "argument `repo` must be a string (got the number 5)",
            "write it in quotes",
        ],
    );
    has(
        3,
        &["argument `labels` must be an array of strings (got the string \"matano\")"],
    );
    has(
        5,
        &[
            "argument `timeout_ms` must be a whole number",
            "(got the string \"3000\")",
            "without quotes",
        ],
    );
    has(
        7,
        &["arguments `secret_webhook_url` and `secret_token`: give exactly one of them (0 given)"],
    );
    has(
        9,
        &["run entry \"bare\": no `uses`, `commit` or `abort`", "name the action"],
    );
    has(
        11,
        &["commit[0]: `path` \"body[\" is not JSONPath", "\"$.body.country\""],
    );
    has(11, &["commit[1]: `op` \"sum\" is not set or add"]);
    has(11, &["commit[2]: `ttl` must be a whole number of seconds (got \"1h\")"]);
    has(
        19,
        &["run entry \"twice\" differs from the entry with the same id at policies/action.rego:17"],
    );
    has(21, &["`forse` is not a field of a run entry"]);
}

/// Entries built in a body, the style of most published AlertChain
/// policies, are checked like literal ones.
#[test]
fn entries_built_in_a_body_are_checked() {
    let shown = findings(
        r#"package action

run contains res if {
	input.alert.severity == "high"
	res := {"id": "notify", "uses": "slak.post", "args": {"text": "x"}}
}
"#,
    );
    assert_eq!(shown.len(), 1, "{shown:#?}");
    assert!(
        shown[0].starts_with("policies/action.rego:5: run entry \"notify\": unknown action \"slak.post\""),
        "{}",
        shown[0]
    );
}

/// AlertChain's entry forms pass `check` as they pass a run: no `id`, a
/// `name`, commit-only and abort-only entries, paths without `$`.
#[test]
fn alertchain_entry_forms_pass() {
    let shown = findings(
        r#"package action

run contains {"uses": "http.fetch", "name": "lookup", "args": {"url": "https://x"}, "commit": [{"key": "c", "path": "body.country"}]}

run contains {"commit": [{"key": "seen", "value": true}]}

run contains {"abort": true}
"#,
    );
    assert!(shown.is_empty(), "{shown:#?}");
}

#[test]
fn actions_that_suspend_need_a_state_table() {
    let policy = r#"package action
run contains {"id": "ask", "uses": "approval.request", "args": {"secret_token": "x", "channel": "C1"}}
run contains {"id": "later", "uses": "wait", "args": {"seconds": 60}}
"#;
    let file = || {
        vec![PolicyFile {
            name: "policies/action.rego".into(),
            text: policy.into(),
        }]
    };
    let without: Vec<String> = check_run_entries(file(), &registry(), false)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(without.len(), 2, "{without:?}");
    assert!(
        without[0].contains("approval.request suspends the workflow") && without[0].contains("STATE_TABLE"),
        "{without:?}"
    );
    assert!(without[1].contains("wait suspends the workflow"), "{without:?}");
    assert!(check_run_entries(file(), &registry(), true).unwrap().is_empty());
}

/// What an approval or a wait would refuse when it runs: out of range
/// durations, too many, repeated or unusable answers.
#[test]
fn approval_and_wait_arguments_a_run_refuses_fail_check() {
    let shown = findings(
        r#"package action
run contains {"id": "w0", "uses": "wait", "args": {"seconds": 0}}
run contains {"id": "w1", "uses": "wait", "args": {"seconds": 604801}}
run contains {"id": "a0", "uses": "approval.request", "args": {"secret_token": "x", "channel": "C1", "timeout_seconds": 0}}
run contains {"id": "a1", "uses": "approval.request", "args": {"secret_token": "x", "channel": "C1", "choices": ["a", "b", "c", "d", "e", "f"]}}
run contains {"id": "a2", "uses": "approval.request", "args": {"secret_token": "x", "channel": "C1", "choices": ["a", "a"]}}
run contains {"id": "a3", "uses": "approval.request", "args": {"secret_token": "x", "channel": "C1", "choices": ["", "x|y"]}}
run contains {"id": "a4", "uses": "approval.request", "args": {"secret_token": "x", "channel": "C1", "choices": ["approve", "timeout"]}}
run contains {"id": "ok", "uses": "approval.request", "args": {"secret_token": "x", "channel": "C1", "choices": ["isolate", "ignore"], "timeout_seconds": 604800}}
run contains {"id": "ok2", "uses": "wait", "args": {"seconds": 1}}
"#,
    );
    for (line, arg) in [(2, "seconds"), (3, "seconds"), (4, "timeout_seconds")] {
        assert!(
            shown
                .iter()
                .any(|f| f.starts_with(&format!("policies/action.rego:{line}:"))
                    && f.contains(&format!("argument `{arg}` must be a whole number from 1 to 604800"))),
            "line {line}: {shown:#?}"
        );
    }
    for line in [5, 6, 7, 8] {
        assert!(
            shown
                .iter()
                .any(|f| f.starts_with(&format!("policies/action.rego:{line}:"))
                    && f.contains("argument `choices` must be an array of at most 5 different strings")),
            "line {line}: {shown:#?}"
        );
    }
    assert_eq!(shown.len(), 7, "{shown:#?}");
}
