//! An AlertChain user's policy repository, as they keep it (`policy/alert`,
//! `policy/action`, Rego tests over `testdata/` and over `play`'s output,
//! Jsonnet scenarios importing event files), run through the real binary
//! with AlertChain's commands and flags: `play -d -s -o -p`, then `test`
//! (what `opa test` did for them), `check`, `run -i -s -p`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn cli(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_alert-responder"))
        .args(args)
        .current_dir(dir)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("POLICY_DIR")
        .env_remove("POLICY_ENGINE")
        .env_remove("ENABLE_PRINT")
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// A copy of the repository in tests/alertchain (play writes into it).
fn repository() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/alertchain"),
        root.path(),
    );
    root
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

fn play(dir: &Path) -> Run {
    cli(
        dir,
        &[
            "play",
            "-d",
            "policy",
            "-s",
            "scenario",
            "-o",
            "policy/play/output",
            "-p",
        ],
    )
}

fn read_json(path: PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn play_then_test_over_its_output_as_alertchain_users_do() {
    let repo = repository();
    let played = play(repo.path());
    assert_eq!(played.code, 0, "{}{}", played.stdout, played.stderr);
    assert!(played.stdout.contains("PASS  first_and_repeat"), "{}", played.stdout);
    assert!(played.stdout.contains("PASS  low"), "{}", played.stdout);
    assert!(played.stdout.contains("PASS  critical_stopped"), "{}", played.stdout);
    // An action with no mocked result returns null, as in AlertChain, and says so.
    assert!(
        played
            .stdout
            .contains("no mocked result for action \"notify\" (slack.post)"),
        "{}",
        played.stdout
    );
    // The event files beside the scenarios are not scenarios.
    assert!(
        played.stdout.contains("guardduty_high.json skipped"),
        "{}",
        played.stdout
    );
    // `-p`: the alert policy's print(), with file and line.
    assert!(
        played
            .stderr
            .contains("print: policy/alert/guardduty.rego:32: finding type: UnauthorizedAccess:EC2/SSHBruteForce"),
        "{}",
        played.stderr
    );

    let output = repo.path().join("policy/play/output");
    let log = read_json(output.join("first_and_repeat/data.json"));
    assert_eq!(log["id"], "first_and_repeat");
    let results = log["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "each event is a new alert: {log:#}");
    let alert = &results[0]["alert"];
    assert_eq!(alert["schema"], "aws_guardduty");
    assert_eq!(alert["namespace"], "guardduty/i-99999999");
    assert_eq!(alert["refs"][0]["title"], "GuardDuty finding");
    assert!(alert.get("data").is_none() && alert.get("raw").is_none(), "{alert:#}");
    assert_eq!(
        alert["created_at"], "1970-01-01T00:00:00Z",
        "fixed: the same output every run"
    );
    assert_ne!(results[0]["alert"]["id"], results[1]["alert"]["id"]);
    // One key twice: two attributes, each with its own id and all six fields.
    let regions: Vec<&Value> = alert["attrs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["key"] == "region")
        .collect();
    assert_eq!(regions.len(), 2, "{alert:#}");
    assert_ne!(regions[0]["id"], regions[1]["id"]);
    for field in ["id", "key", "value", "type", "persist", "ttl"] {
        assert!(
            regions[0].get(field).is_some(),
            "attribute without {field}: {:#}",
            regions[0]
        );
    }
    // Actions in order with their round; commit-only entries are actions too.
    let first: Vec<(u64, &str)> = results[0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["seq"].as_u64().unwrap(), a["id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        first,
        [(0, "ask-chatgpt"), (0, "count"), (1, "notify"), (1, "open-issue")],
        "{log:#}"
    );
    // Unlike AlertChain, secrets never reach the output.
    let text = std::fs::read_to_string(output.join("first_and_repeat/data.json")).unwrap();
    for secret in ["sk-test-not-a-key", "ghp_test_not_a_token", "hooks.slack.com"] {
        assert!(!text.contains(secret), "{secret} in data.json");
    }
    // No alert: no `results`, as AlertChain writes it.
    let low = read_json(output.join("low/data.json"));
    assert!(low.get("results").is_none(), "{low:#}");
    // A playbook of two scenarios; `abort` alone ends the workflow after its
    // round (the comment of the next round never runs), entries without id
    // run, the attachment is the payload as it came.
    let uses = |id: &str| -> Vec<String> {
        read_json(output.join(id).join("data.json"))["results"][0]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["uses"].as_str().filter(|u| !u.is_empty()).map(str::to_string))
            .collect()
    };
    assert_eq!(
        uses("critical"),
        ["jira.create_issue", "jira.add_attachment", "jira.add_comment"]
    );
    assert_eq!(uses("critical_stopped"), ["jira.create_issue", "jira.add_attachment"]);
    let index = read_json(output.join("result.json"));
    assert_eq!(index["scenarios"].as_array().unwrap().len(), 4);
    assert_eq!(index["scenarios"][0]["success"], true);

    // The Rego tests read testdata/ and the play output from the policy directory.
    let tested = cli(repo.path(), &["test", "-d", "policy"]);
    assert_eq!(tested.code, 0, "{}{}", tested.stdout, tested.stderr);
    assert!(tested.stdout.contains("11 passed, 0 failed"), "{}", tested.stdout);
}

#[test]
fn the_tests_over_play_output_fail_when_the_behaviour_changes() {
    let repo = repository();
    // Before any play there is no output: the tests that read it fail.
    let tested = cli(repo.path(), &["test", "-d", "policy"]);
    assert_eq!(tested.code, 1, "{}{}", tested.stdout, tested.stderr);
    assert!(tested.stdout.contains("4 passed, 7 failed"), "{}", tested.stdout);

    // The issue number GitHub returns changes: the persisted value the
    // second alert comments on changes with it, and the tests say so.
    let scenario = repo.path().join("scenario/first_and_repeat.jsonnet");
    let text = std::fs::read_to_string(&scenario).unwrap();
    std::fs::write(&scenario, text.replace("number: 42", "number: 43")).unwrap();
    assert_eq!(play(repo.path()).code, 0);
    let log = read_json(repo.path().join("policy/play/output/first_and_repeat/data.json"));
    let comment = log["results"][1]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["uses"] == "github.create_comment")
        .unwrap()
        .clone();
    assert_eq!(comment["args"]["issue_number"], 43, "{log:#}");
    let tested = cli(repo.path(), &["test", "-d", "policy"]);
    assert_eq!(tested.code, 1, "{}", tested.stdout);
    for name in [
        "test_first_alert_opens_an_issue",
        "test_repeat_comments_on_the_persisted_issue",
    ] {
        assert!(
            tested.stdout.lines().any(|l| l.starts_with("FAIL") && l.contains(name)),
            "{name}: {}",
            tested.stdout
        );
    }
}

#[test]
fn one_scenario_by_file_or_by_target_and_a_playbook_given_as_json() {
    let repo = repository();
    let only = cli(
        repo.path(),
        &["play", "-d", "policy", "-s", "scenario/low.jsonnet", "-o", "out"],
    );
    assert_eq!(only.code, 0, "{}{}", only.stdout, only.stderr);
    assert!(only.stdout.contains("1 passed, 0 failed"), "{}", only.stdout);

    let targeted = cli(
        repo.path(),
        &[
            "play",
            "-d",
            "policy",
            "-s",
            "scenario",
            "-o",
            "out",
            "-t",
            "first_and_repeat",
        ],
    );
    assert!(targeted.stdout.contains("1 passed, 0 failed"), "{}", targeted.stdout);
    assert!(!targeted.stdout.contains("PASS  low"), "{}", targeted.stdout);
    let unknown = cli(repo.path(), &["play", "-d", "policy", "-s", "scenario", "-t", "nope"]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("no scenario with id \"nope\""),
        "{}",
        unknown.stderr
    );

    // The same playbook evaluated to JSON (as `jsonnet` prints it) plays the same.
    let event: Value = read_json(repo.path().join("scenario/events/guardduty_high.json"));
    let playbook = serde_json::json!({
        "id": "as_json",
        "env": {"CHATGPT_API_KEY": "k"},
        "events": [{
            "schema": "aws_guardduty",
            "input": event,
            "actions": {"chatgpt.query": [{"choices": [{"message": {"content": "from JSON"}}]}]}
        }]
    });
    let json_dir = repo.path().join("json");
    std::fs::create_dir_all(&json_dir).unwrap();
    std::fs::write(json_dir.join("as_json.json"), playbook.to_string()).unwrap();
    let played = cli(repo.path(), &["play", "-d", "policy", "-s", "json", "-o", "out"]);
    assert_eq!(played.code, 0, "{}{}", played.stdout, played.stderr);
    let log = read_json(repo.path().join("out/as_json/data.json"));
    let asked = log["results"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["uses"] == "chatgpt.query")
        .unwrap_or_else(|| panic!("{log:#}"))
        .clone();
    assert_eq!(asked["commit"][0]["value"], "from JSON", "{log:#}");
}

#[test]
fn a_jsonnet_mistake_names_the_file_and_line() {
    let repo = repository();
    std::fs::write(
        repo.path().join("scenario/broken.jsonnet"),
        "{\n  id: 'broken',\n  events: [ { schema: 'aws_guardduty', input: import 'events/missing.json' } ],\n}\n",
    )
    .unwrap();
    let played = play(repo.path());
    assert_eq!(played.code, 1, "{}{}", played.stdout, played.stderr);
    let all = format!("{}{}", played.stdout, played.stderr);
    assert!(all.contains("broken.jsonnet"), "{all}");
    assert!(all.contains("missing.json"), "{all}");
}

#[test]
fn check_reads_the_scenarios_and_catches_a_misspelt_action() {
    let repo = repository();
    let checked = cli(repo.path(), &["check", "-d", "policy", "-s", "scenario"]);
    assert_eq!(checked.code, 0, "{}{}", checked.stdout, checked.stderr);
    // Every `run` rule is reached by a scenario's event and mocks.
    assert!(!checked.stderr.contains("no scenario"), "{}", checked.stderr);

    let action = repo.path().join("policy/action/main.rego");
    let text = std::fs::read_to_string(&action).unwrap();
    std::fs::write(&action, text.replace("github.create_comment", "github.create_coment")).unwrap();
    let checked = cli(repo.path(), &["check", "-d", "policy", "-s", "scenario"]);
    assert_eq!(checked.code, 1, "{}{}", checked.stdout, checked.stderr);
    let all = format!("{}{}", checked.stdout, checked.stderr);
    assert!(all.contains("github.create_coment"), "{all}");
    assert!(all.contains("main.rego"), "{all}");
}

#[test]
fn run_takes_an_event_and_its_schema_and_prints_only_when_asked() {
    let repo = repository();
    std::fs::write(
        repo.path().join("mocks.yaml"),
        "chatgpt.query:\n  - result: {choices: [{message: {content: hello}}]}\ngithub.create_issue:\n  - result: {number: 5}\n",
    )
    .unwrap();
    let args = [
        "run",
        "-d",
        "policy",
        "-i",
        "scenario/events/guardduty_high.json",
        "-s",
        "aws_guardduty",
        "--mocks",
        "mocks.yaml",
        "--env",
        "CHATGPT_API_KEY=k",
        "--env",
        "GITHUB_TOKEN=t",
    ];
    let quiet = cli(repo.path(), &args);
    assert_eq!(quiet.code, 0, "{}{}", quiet.stdout, quiet.stderr);
    assert!(!quiet.stderr.contains("finding type"), "{}", quiet.stderr);
    let outcomes: Vec<Value> = quiet.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let issue = outcomes
        .iter()
        .find(|o| o["action"]["uses"] == "github.create_issue")
        .unwrap_or_else(|| panic!("{}", quiet.stdout));
    assert_eq!(issue["alert"]["schema"], "aws_guardduty", "{issue:#}");

    let printed = cli(repo.path(), &[&args[..], &["-p"]].concat());
    assert!(
        printed
            .stderr
            .contains("print: policy/alert/guardduty.rego:32: finding type:"),
        "{}",
        printed.stderr
    );
}

/// An AlertChain scenario's `http.fetch` mock written as AlertChain's action
/// returned it (the body alone) plays here as written, yet the action
/// returns `{status, headers, body}` deployed: play says so.
#[test]
fn an_http_fetch_mock_shaped_as_alertchains_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "policy/alert/uptime.rego",
        "package alert.uptime\n\nalert contains {\"title\": \"down\"} if input.status == \"down\"\n",
    );
    write(
        "policy/action/main.rego",
        "package action\n\nrun contains {\"id\": \"lookup\", \"uses\": \"http.fetch\", \"args\": {\"url\": \"https://intel.example.org/x\"}, \"commit\": [{\"key\": \"country\", \"path\": \"country\"}]} if input.seq == 0\n",
    );
    let playbook = |mock: Value| {
        serde_json::json!({
            "id": "fetch",
            "events": [{"schema": "uptime", "input": {"status": "down"}, "actions": {"http.fetch": [mock]}}]
        })
        .to_string()
    };
    write("scenario/fetch.json", &playbook(serde_json::json!({"country": "DE"})));
    let played = cli(dir.path(), &["play", "-d", "policy", "-s", "scenario", "-o", "out"]);
    assert_eq!(played.code, 0, "{}{}", played.stdout, played.stderr);
    assert!(
        played.stdout.contains(
            "warning: event 0: the mocked result of action \"lookup\" (http.fetch) has no `status` and `body`"
        ),
        "{}",
        played.stdout
    );
    // Shaped as the action returns it: nothing to say.
    write(
        "scenario/fetch.json",
        &playbook(serde_json::json!({"status": 200, "headers": {}, "body": {"country": "DE"}})),
    );
    let played = cli(dir.path(), &["play", "-d", "policy", "-s", "scenario", "-o", "out"]);
    assert_eq!(played.code, 0, "{}{}", played.stdout, played.stderr);
    assert!(!played.stdout.contains("warning"), "{}", played.stdout);
}
