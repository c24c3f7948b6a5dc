//! The policy developer's loop: `test` (Rego unit tests) and `play`
//! (scenarios with mocked results) on the starter kit, and on broken copies
//! of it, through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn cli(args: &[&str]) -> Run {
    cli_with(args, &[])
}

fn cli_with(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_alert-responder"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("POLICY_DIR")
        .env_remove("STATE_TABLE")
        .env_remove("POLICY_ENGINE")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// A copy of the starter kit (policies, scenarios and the sample they use).
/// `file` as `edit` makes it of its text.
fn rewrite(file: &Path, edit: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(file).unwrap();
    std::fs::write(file, edit(text)).unwrap();
}

fn starter_kit_copy() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        &root.path().join("policies"),
    );
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
        &root.path().join("examples"),
    );
    let policies = root.path().join("policies");
    (root, policies)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// `play` on a starter-kit copy's scenarios and policies.
fn play_copy(policies: &Path, out: &Path, extra: &[&str]) -> Run {
    let scenarios = policies.join("scenarios");
    let mut args = vec![
        "play",
        "--scenarios",
        scenarios.to_str().unwrap(),
        "--policies",
        policies.to_str().unwrap(),
    ];
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    cli(&args)
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn starter_kit_tests_pass() {
    let run = cli(&["test", "--policies", "policies"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.ends_with("13 passed, 0 failed\n"), "{}", run.stdout);
}

#[test]
fn test_filter_and_coverage() {
    let run = cli(&[
        "test",
        "--policies",
        "policies",
        "--run",
        "accounts_are_suppressed$",
        "-v",
        "--coverage",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("PASS  alert.matano_test.test_service_accounts_are_suppressed"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("1 passed, 0 failed"), "{}", run.stdout);
    assert!(
        run.stdout.contains("coverage policies/alert/matano.rego:"),
        "{}",
        run.stdout
    );
    // `opa test`'s names match too; no match is said as such.
    let full = cli(&[
        "test",
        "--policies",
        "policies",
        "--run",
        "^data\\.alert\\.matano_test\\.test_service",
    ]);
    assert!(full.stdout.contains("1 passed, 0 failed"), "{}", full.stdout);
    let none = cli(&["test", "--policies", "policies", "--run", "nomatch"]);
    assert_eq!(none.code, 1);
    assert!(
        none.stderr
            .contains("no test matches --run \"nomatch\" (13 test(s) found)"),
        "{}",
        none.stderr
    );
}

/// A mocked result no run takes (an id misspelt) is said, the scenario
/// still judged by its expectations.
#[test]
fn play_names_mocked_results_no_run_took() {
    let (_root, policies) = starter_kit_copy();
    rewrite(&policies.join("scenarios/critical_pages.yaml"), |text| {
        text.replace("actions:\n", "actions:\n  page_oncal:\n    - result: {}\n")
    });
    let run = cli(&["play", "--policies", policies.to_str().unwrap(), "-t", "critical-pages"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("warning: 1 mocked result(s) of \"page_oncal\" never used"),
        "{}",
        run.stdout
    );
}

/// A production rule that reads a data file beside the policies passes
/// its tests (`test` loads the file) and reads undefined deployed: `check`
/// (and so `bundle`) refuses it, naming the place.
#[test]
fn check_refuses_a_policy_that_reads_a_data_file() {
    let (_root, policies) = starter_kit_copy();
    std::fs::create_dir_all(policies.join("vip")).unwrap();
    std::fs::write(policies.join("vip/users.json"), r#"{"users": ["alice"]}"#).unwrap();
    let fine = cli(&["check", "--policies", policies.to_str().unwrap()]);
    assert_eq!(
        fine.code, 0,
        "a data file no policy reads: {}{}",
        fine.stdout, fine.stderr
    );
    rewrite(&policies.join("alert/matano.rego"), |text| {
        format!("{text}\nvip_user if input.updated_alert.context.related.user[_] in data.vip.users\n")
    });
    let run = cli(&["check", "--policies", policies.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("alert/matano.rego:")
            && run
                .stderr
                .contains("data.vip.users is read from a data file beside the policies, which only `test` loads"),
        "{}",
        run.stderr
    );
}

/// `check` on a directory whose `scenarios/` holds none yet still checks
/// the rest (over the sample change), and says so.
#[test]
fn check_runs_with_an_empty_scenarios_directory() {
    let (_root, policies) = starter_kit_copy();
    let scenarios = policies.join("scenarios");
    std::fs::remove_dir_all(&scenarios).unwrap();
    std::fs::create_dir_all(&scenarios).unwrap();
    let run = cli(&["check", "--policies", policies.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("holds no scenarios"), "{}", run.stderr);
}

#[test]
fn a_failing_rego_test_fails_the_command_naming_file_and_line() {
    let (_root, policies) = starter_kit_copy();
    // Break the policy: service accounts are no longer suppressed.
    edit(
        &policies.join("alert/matano.rego"),
        "service_accounts := {\"svc-backup\", \"terraform-ci\"}",
        "service_accounts := {\"svc-other\"}",
    );
    let run = cli(&["test", "--policies", policies.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL  alert.matano_test.test_service_accounts_are_suppressed"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(line.contains("alert/matano_test.rego:44"), "{line}");
    assert!(run.stdout.ends_with("12 passed, 1 failed\n"), "{}", run.stdout);
}

#[test]
fn a_rego_runtime_error_in_a_test_is_an_error_and_its_prints_are_shown() {
    let (_root, policies) = starter_kit_copy();
    std::fs::write(
        policies.join("extra_test.rego"),
        "package extra_test\n\ntest_divides if {\n    print(\"about to divide\")\n    1 / 0 > 0\n}\n",
    )
    .unwrap();
    let run = cli(&["test", "--policies", policies.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("ERROR extra_test.test_divides ("), "{}", run.stdout);
    assert!(run.stdout.contains("extra_test.rego:3"), "{}", run.stdout);
    assert!(
        run.stdout.contains("print: ") && run.stdout.contains("about to divide"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with("13 passed, 1 failed\n"), "{}", run.stdout);
}

#[test]
fn starter_kit_scenarios_pass_and_results_are_deterministic() {
    let out = tempfile::tempdir().unwrap();
    let first = out.path().join("first");
    let second = out.path().join("second");
    let run = cli(&[
        "play",
        "--scenarios",
        "policies/scenarios",
        "--out",
        first.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.ends_with("7 passed, 0 failed\n"), "{}", run.stdout);
    let again = cli(&[
        "play",
        "--scenarios",
        "policies/scenarios",
        "--out",
        second.to_str().unwrap(),
    ]);
    assert_eq!(again.code, 0);
    for id in SCENARIO_IDS {
        let a = std::fs::read(first.join(id).join("result.json")).unwrap();
        let b = std::fs::read(second.join(id).join("result.json")).unwrap();
        assert_eq!(a, b, "result.json of {id} differs between runs");
    }
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first.join("benign-abort/result.json")).unwrap()).unwrap();
    let alert = &result["events"][0]["alerts"][0];
    assert_eq!(
        alert["stop"],
        serde_json::json!({"reason": "aborted", "action_id": "close_benign"})
    );
    assert_eq!(
        alert["rounds"][1]["actions"][0]["result"],
        serde_json::json!({"status": 200})
    );
}

const SCENARIO_IDS: [&str; 6] = [
    "escalate-high",
    "critical-pages",
    "known-values-no-lookup",
    "service-account-suppressed",
    "benign-abort",
    "lookup-failure-forced",
];

/// The VM is the production path; the interpreter is the reference. Every
/// starter-kit scenario must decide the same, byte for byte, on both.
#[test]
fn scenarios_decide_the_same_on_the_vm_and_the_interpreter() {
    let out = tempfile::tempdir().unwrap();
    for engine in ["vm", "interpreter"] {
        let dir = out.path().join(engine);
        let run = cli_with(
            &[
                "play",
                "--scenarios",
                "policies/scenarios",
                "--out",
                dir.to_str().unwrap(),
            ],
            &[("POLICY_ENGINE", engine), ("LOG_LEVEL", "info")],
        );
        assert_eq!(run.code, 0, "{engine}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.ends_with("7 passed, 0 failed\n"), "{engine}: {}", run.stdout);
        // No rule may fall back to the interpreter, or this compares it with itself.
        assert!(
            !run.stderr.contains("runs on the interpreter") || engine == "interpreter",
            "{}",
            run.stderr
        );
    }
    for id in SCENARIO_IDS {
        let vm = std::fs::read(out.path().join("vm").join(id).join("result.json")).unwrap();
        let interpreter = std::fs::read(out.path().join("interpreter").join(id).join("result.json")).unwrap();
        assert!(vm.len() > 100, "{id}: {}", String::from_utf8_lossy(&vm));
        assert_eq!(
            String::from_utf8(vm).unwrap(),
            String::from_utf8(interpreter).unwrap(),
            "{id} decides differently on the VM"
        );
    }
}

#[test]
fn a_failed_expectation_fails_play_naming_the_scenario() {
    let (_root, policies) = starter_kit_copy();
    edit(
        &policies.join("scenarios/escalate_high.yaml"),
        "country_185.220.101.4: DE",
        "country_185.220.101.4: FR",
    );
    let out = tempfile::tempdir().unwrap();
    let run = play_copy(&policies, out.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("FAIL  escalate-high ("), "{}", run.stdout);
    assert!(run.stdout.contains("escalate_high.yaml"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("expected final attr country_185.220.101.4 = \"FR\", got \"DE\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with("6 passed, 1 failed\n"), "{}", run.stdout);
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("escalate-high/result.json")).unwrap()).unwrap();
    assert_eq!(result["passed"], false);
}

#[test]
fn a_policy_runtime_error_fails_play() {
    let (_root, policies) = starter_kit_copy();
    edit(
        &policies.join("action.rego"),
        "lookup_id(ip) := sprintf(\"lookup_ip_%s\", [ip])",
        "lookup_id(ip) := sprintf(\"lookup_ip_%s\", [ip / 0])",
    );
    let out = tempfile::tempdir().unwrap();
    let run = play_copy(&policies, out.path(), &["--id", "escalate-high"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("FAIL  escalate-high"), "{}", run.stdout);
    assert!(run.stdout.ends_with("0 passed, 1 failed\n"), "{}", run.stdout);
    // The VM (production) makes the broken body undefined, so no lookup is
    // decided; play names the error the interpreter reports, as a hint.
    assert!(run.stdout.contains("got []"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("hint: on the interpreter (POLICY_ENGINE=interpreter): ")
            && run.stdout.contains("evaluating data.action.run failed"),
        "{}",
        run.stdout
    );
}

/// Two definitions of one rule both true with different values are a
/// conflict (OPA's eval_conflict_error) on every engine: `play` fails the
/// scenario, where the VM alone would have made the rule undefined.
#[test]
fn a_conflict_between_definitions_fails_play() {
    let (_root, policies) = starter_kit_copy();
    edit(
        &policies.join("action.rego"),
        "intel_base := object.get(input.env, \"INTEL_URL\", \"https://ipinfo.io\")",
        "intel_base := object.get(input.env, \"INTEL_URL\", \"https://ipinfo.io\") if true\n\nintel_base := \"https://other.example\" if true",
    );
    let out = tempfile::tempdir().unwrap();
    let run = play_copy(&policies, out.path(), &["--id", "escalate-high"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("FAIL  escalate-high") && run.stdout.contains("rule conflicts with rule"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_action_without_a_mocked_result_fails_play_naming_it() {
    let (_root, policies) = starter_kit_copy();
    edit(
        &policies.join("scenarios/escalate_high.yaml"),
        "  webhook.post:\n    - result: {status: 200, body: {ok: true}}\n",
        "",
    );
    let out = tempfile::tempdir().unwrap();
    let run = play_copy(&policies, out.path(), &["--id", "escalate-high"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("no mocked result for action \"notify_webhook\" (webhook.post)"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_malformed_scenario_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "id: x\nevents:\n  - input: {}\nexpect:\n  rounds: 3\n",
    )
    .unwrap();
    let run = cli(&["play", "--scenarios", dir.path().to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("bad.yaml") && run.stderr.contains("expect.rounds"),
        "{}",
        run.stderr
    );
}

/// A policy directory with a "page once per namespace" action policy, the
/// sample change beside it, and `scenarios`.
fn page_once_kit(scenarios: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    std::fs::create_dir_all(dir.join("alert")).unwrap();
    std::fs::create_dir_all(dir.join("scenarios")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/matano_alert_change.json"),
        dir.join("change.json"),
    )
    .unwrap();
    std::fs::write(
        dir.join("alert/matano.rego"),
        r#"package alert.matano

alert contains {
	"title": input.updated_alert.title,
	"severity": input.updated_alert.severity,
	"source": "matano",
	"namespace": "root-activity",
} if true
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("action.rego"),
        r#"package action

paged if {
	some a in input.alert.attrs
	a.key == "paged"
	a.value == true
}

run contains {
	"id": "page",
	"uses": "webhook.post",
	"args": {"url": "https://hooks.example.org/page", "data": {"title": input.alert.title}},
	"commit": [
		{"key": "paged", "value": true, "persist": true, "ttl": 3600},
		{"key": "pages", "value": 1, "op": "add", "persist": true, "ttl": 86400},
	],
} if {
	input.seq == 0
	not paged
}
"#,
    )
    .unwrap();
    for (name, text) in scenarios {
        std::fs::write(dir.join("scenarios").join(name), text).unwrap();
    }
    root
}

/// State in `play`: persisted attributes carry from one event to the next
/// (one page for two alerts of a namespace), expire on the virtual clock
/// (`advance`), can be seeded, and a stale change is not acted on; every
/// expectation can be per event.
#[test]
fn play_carries_state_across_events_and_seeds_it() {
    let kit = page_once_kit(&[
        (
            "page_once.yaml",
            r#"id: page-once
events:
  - input_file: ../change.json
    input_patch: {updated_alert: {id: alert-one}}
    expect: {rounds: [[page]], attrs: {pages: 1}}
  - input_file: ../change.json
    input_patch: {updated_alert: {id: alert-two}}
    expect: {rounds: [], not_run: [page], alerts: {attrs: {paged: true, pages: 1}}}
  - input_file: ../change.json
    input_patch: {updated_alert: {id: alert-two, update_count: 1}}
    expect: {stale: true}
  - input_file: ../change.json
    input_patch: {updated_alert: {id: alert-three}}
    advance: 2h
    expect: {rounds: [[page]], attrs: {pages: 2}}
actions:
  webhook.post: [{result: {status: 200}}, {result: {status: 200}}]
expect:
  rounds: [[page, page]]
"#,
        ),
        (
            "seeded.yaml",
            r#"id: seeded
state: {root-activity: {paged: true, pages: 4}}
events:
  - input_file: ../change.json
    expect: {not_run: [page], alerts: {attrs: {pages: 4}}}
"#,
        ),
    ]);
    let out = tempfile::tempdir().unwrap();
    let run = cli(&[
        "play",
        "--policies",
        kit.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.ends_with("2 passed, 0 failed\n"), "{}", run.stdout);
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("page-once/result.json")).unwrap()).unwrap();
    assert_eq!(result["events"][2]["stale"], true, "{result:#}");
    assert!(result["events"][1]["alerts"][0]["rounds"]
        .as_array()
        .unwrap()
        .is_empty());

    // The same expectations fail when the state is not what they say.
    let wrong = page_once_kit(&[(
        "wrong.yaml",
        r#"id: wrong
state: {root-activity: {paged: true}}
events:
  - input_file: ../change.json
    expect: {rounds: [[page]]}
  - input_file: ../change.json
    expect: {stale: true}
"#,
    )]);
    let run = cli(&[
        "play",
        "--policies",
        wrong.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("event 0: expected rounds [[\"page\"]], got []"),
        "{}",
        run.stdout
    );
    // The same change again is a duplicate, not a stale one: decided (and replayed).
    assert!(
        run.stdout
            .contains("event 1: expected a stale change (not acted on), but it was decided"),
        "{}",
        run.stdout
    );
}

/// The README's "Writing your first policy" walkthrough, as it is written:
/// `examples/first-policy` passes `check`, `test` and `play` (a stateful
/// scenario and a seeded one), and `run --mocks` shows the page.
#[test]
fn the_first_policy_walkthrough_works_as_written() {
    let dir = "examples/first-policy";
    let check = cli(&["check", "--policies", dir]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check
            .stdout
            .starts_with("policies: directory examples/first-policy (2 file(s), 1 test file(s)"),
        "{}",
        check.stdout
    );
    let test = cli(&["test", "--policies", dir]);
    assert_eq!(test.code, 0, "{}{}", test.stdout, test.stderr);
    assert!(test.stdout.ends_with("3 passed, 0 failed\n"), "{}", test.stdout);
    let out = tempfile::tempdir().unwrap();
    let play = cli(&["play", "--policies", dir, "--out", out.path().to_str().unwrap()]);
    assert_eq!(play.code, 0, "{}{}", play.stdout, play.stderr);
    assert!(play.stdout.ends_with("2 passed, 0 failed\n"), "{}", play.stdout);
    let run = cli(&["run", "--policies", dir, "--mocks", "examples/first-policy/mocks.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outcome: serde_json::Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        (outcome["action"]["id"].as_str(), outcome["status"].as_str()),
        (Some("page"), Some("succeeded"))
    );
    assert_eq!(outcome["commits"][0]["key"], "paged:AWS Root Credentials Change");
}

/// `play`'s mocks check arguments exactly as the real actions do, rules
/// between arguments included: a Slack post with neither a webhook URL nor
/// a token fails the scenario naming both.
#[test]
fn play_mocks_check_the_rules_between_arguments() {
    let (_root, policies) = starter_kit_copy();
    edit(
        &policies.join("action.rego"),
        "\"secret_webhook_url\": {\"secret\": input.env.SLACK_WEBHOOK_SECRET},",
        "",
    );
    let out = tempfile::tempdir().unwrap();
    let run = play_copy(&policies, out.path(), &["--id", "slack-hostile-title"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("arguments `secret_webhook_url` and `secret_token`: give exactly one of them (0 given)"),
        "{}",
        run.stdout
    );
}

/// The README's approvals example (`examples/approvals`): `check` says an
/// approval needs a state table until it has one, the unit tests pass, and
/// `play` answers the approval from its mocks (approved, timed out).
#[test]
fn the_approvals_example_checks_tests_and_plays_its_answers() {
    let dir = "examples/approvals";
    let without = cli(&["check", "--policies", dir]);
    assert_eq!(without.code, 1, "{}{}", without.stdout, without.stderr);
    assert!(
        without
            .stderr
            .contains("action.rego:12: run entry \"ask-isolate\": approval.request suspends the workflow")
            && without.stderr.contains("STATE_TABLE"),
        "{}",
        without.stderr
    );
    let check = cli(&["check", "--policies", dir, "--table", "alert-responder-state"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    let test = cli(&["test", "--policies", dir]);
    assert!(
        test.stdout.ends_with("4 passed, 0 failed\n"),
        "{}{}",
        test.stdout,
        test.stderr
    );
    let out = tempfile::tempdir().unwrap();
    let play = cli(&["play", "--policies", dir, "--out", out.path().to_str().unwrap()]);
    assert_eq!(play.code, 0, "{}{}", play.stdout, play.stderr);
    assert!(
        play.stdout.contains("PASS  approved") && play.stdout.contains("PASS  timeout"),
        "{}",
        play.stdout
    );
}
