//! The CLI as a user runs it: `run` on the bundled sample, on files and
//! stdin, and `check`.

mod common;

use std::process::Stdio;

use common::{assert_valid_outcome, fixture, Reply, TestServer};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

struct Output {
    code: i32,
    stdout: String,
    /// For `run`: every stdout line, parsed (each must be JSON).
    outcomes: Vec<Value>,
    stderr: String,
}

async fn cli(args: &[&str], stdin: Option<&str>) -> Output {
    cli_in(env!("CARGO_MANIFEST_DIR"), args, stdin).await
}

/// The CLI run from `dir`.
async fn cli_in(dir: &str, args: &[&str], stdin: Option<&str>) -> Output {
    cli_with(dir, args, stdin, &[]).await
}

/// The CLI run from `dir` with these environment variables.
async fn cli_with(dir: &str, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    cli_without(dir, args, stdin, env, &[]).await
}

/// [`cli_with`], these variables unset too.
async fn cli_without(dir: &str, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)], unset: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alert-responder"));
    for name in unset {
        command.env_remove(name);
    }
    let mut child = command
        .current_dir(dir)
        .args(args)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("POLICY_BUNDLE")
        .envs(env.iter().copied())
        .env_remove("POLICY_DIR")
        .env_remove("POLICY_ENV")
        .env_remove("OUTCOME_TOPIC_ARN")
        .env("HTTP_ALLOW_PRIVATE", "true")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
    }
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let is_run = args.first() == Some(&"run");
    Output {
        code: output.status.code().unwrap_or(-1),
        outcomes: stdout
            .lines()
            .filter(|_| is_run)
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}")))
            .collect(),
        stdout,
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn brief(outcomes: &[Value]) -> Vec<(u64, String, String)> {
    outcomes
        .iter()
        .map(|o| {
            assert_valid_outcome(o);
            (
                o["seq"].as_u64().unwrap(),
                o["action"]["id"].as_str().unwrap().to_string(),
                o["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn run_on_the_bundled_sample_chains_enrichment_into_a_webhook() {
    let intel = TestServer::start(|_| Reply::json(200, json!({"country": "RO"}))).await;
    let webhook = TestServer::ok().await;
    let out = cli(
        &[
            "run",
            "--env",
            &format!("INTEL_URL={}", intel.url("")),
            "--env",
            &format!("WEBHOOK_URL={}", webhook.url("/hook")),
        ],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        brief(&out.outcomes),
        vec![
            (0, "lookup_ip_185.220.101.4".to_string(), "succeeded".to_string()),
            (1, "notify_webhook".to_string(), "succeeded".to_string()),
        ]
    );
    assert_eq!(intel.requests()[0].path, "/185.220.101.4/json");
    assert_eq!(
        webhook.requests()[0].json()["data"]["countries"],
        json!({"country_185.220.101.4": "RO"})
    );
    assert!(
        out.stderr
            .contains("1 record(s): 0 rejected, 1 alert(s), 2 action(s) (0 failed)"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn dry_run_prints_the_plan_and_calls_nothing() {
    let webhook = TestServer::ok().await;
    let out = cli(
        &[
            "run",
            "--dry-run",
            "--env",
            &format!("WEBHOOK_URL={}", webhook.url("/")),
        ],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        brief(&out.outcomes),
        vec![
            (0, "lookup_ip_185.220.101.4".to_string(), "dry_run".to_string()),
            (1, "notify_webhook".to_string(), "dry_run".to_string()),
        ]
    );
    assert!(webhook.requests().is_empty());
}

#[tokio::test]
async fn run_reads_files_and_stdin_in_every_envelope_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("event.json");
    std::fs::write(
        &path,
        fixture("sns_event_matano.json").replace("\\\"medium\\\"", "\\\"critical\\\""),
    )
    .unwrap();
    let from_file = cli(
        &[
            "run",
            "--dry-run",
            "--env",
            "PAGE_TOPIC_ARN=arn:aws:sns:us-east-1:123456789012:page",
            "--input",
            path.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);
    assert_eq!(
        brief(&from_file.outcomes),
        vec![(0, "page_oncall".to_string(), "dry_run".to_string())]
    );
    assert_eq!(
        from_file.outcomes[0]["source_message"]["message_id"],
        "95df01b4-ee98-5cb9-9903-4c221d41eb5e"
    );

    let payload = fixture("matano_alert_change_v2.json").replace("\"medium\"", "\"critical\"");
    let notification = json!({"Type": "Notification", "MessageId": "http-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts", "Message": payload});
    let from_stdin = cli(
        &[
            "run",
            "--dry-run",
            "--env",
            "PAGE_TOPIC_ARN=arn:aws:sns:us-east-1:123456789012:page",
            "--input",
            "-",
        ],
        Some(&notification.to_string()),
    )
    .await;
    assert_eq!(from_stdin.code, 0, "{}", from_stdin.stderr);
    assert_eq!(from_stdin.outcomes[0]["source_message"]["message_id"], "http-1");
    assert_eq!(from_stdin.outcomes[0]["action"]["id"], "page_oncall");
}

#[tokio::test]
async fn bad_input_is_rejected_with_an_outcome_and_exit_2() {
    let out = cli(&["run", "--input", "-"], Some("{\"updated_alert\": {\"id\": 1}}")).await;
    assert_eq!(out.code, 2);
    assert_eq!(out.outcomes.len(), 1);
    let outcome = &out.outcomes[0];
    assert_valid_outcome(outcome);
    assert_eq!(outcome["status"], "rejected");
    assert_eq!(outcome["rejected"]["original"], "{\"updated_alert\": {\"id\": 1}}");
    assert!(
        outcome["error"].as_str().unwrap().contains("`updated_alert.id`"),
        "{outcome}"
    );
    assert!(out.stderr.contains("message rejected"), "{}", out.stderr);
}

/// A usage error exits 1, as the README says (2 is a rejected message);
/// `--help` is no error.
#[tokio::test]
async fn a_usage_error_exits_1_and_help_0() {
    for args in [
        &["run", "--no-such-flag"][..],
        &["run", "--timeout", "0"],
        &["run", "--env", "NO_EQUALS_SIGN"],
        &["no-such-command"],
    ] {
        let out = cli(args, None).await;
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("error"), "{args:?}: {}", out.stderr);
    }
    let help = cli(&["help", "run"], None).await;
    assert_eq!(help.code, 0, "{}", help.stderr);
    assert!(help.stdout.contains("--dry-run"), "{}", help.stdout);
}

/// `args` run with `env` and without `unset` fails (exit 1) naming `named`.
async fn fails_naming(args: &[&str], env: &[(&str, &str)], unset: &[&str], named: &str) {
    let out = cli_without(env!("CARGO_MANIFEST_DIR"), args, None, env, unset).await;
    assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
    assert!(out.stderr.contains(named), "{args:?}: {}", out.stderr);
    assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
}

/// The kill switch in an incident, from a shell that lacks something: each
/// error names what to give (exit 1; 3 is `status` saying "paused"). No AWS
/// call is made: each is refused before one would be sent.
#[tokio::test]
async fn the_kill_switch_names_what_it_lacks() {
    const KEYS: &[(&str, &str)] = &[("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")];
    fails_naming(&["actions", "status"], KEYS, &["STATE_TABLE"], "give --table TABLE").await;
    fails_naming(
        &["actions", "pause", "--table", "t"],
        KEYS,
        &["AWS_REGION", "AWS_DEFAULT_REGION"],
        "set AWS_REGION",
    )
    .await;
    fails_naming(
        &["actions", "resume", "--table", "t"],
        &[("AWS_REGION", "us-east-1")],
        &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"],
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    )
    .await;
}

/// What the README tells SAM users to run before deploying
/// `ActionBudgetsJson`: a bad value exits 1 naming the entry.
#[tokio::test]
async fn run_checks_action_budgets_before_a_deploy() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let bad =
        r#"[{"uses": "virustotal.*", "limit": 4, "per_seconds": 60}, {"id": "page-*", "limit": 0, "per_seconds": 60}]"#;
    let out = cli_with(dir, &["run", "--dry-run"], None, &[("ACTION_BUDGETS", bad)]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("budget [1]"), "{}", out.stderr);
    let good = r#"[{"uses": "virustotal.*", "limit": 4, "per_seconds": 60}]"#;
    let out = cli_with(dir, &["run", "--dry-run"], None, &[("ACTION_BUDGETS", good)]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[tokio::test]
async fn missing_input_file_is_a_clear_error() {
    let out = cli(&["run", "--input", "/nonexistent/alert.json"], None).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("reading /nonexistent/alert.json"), "{}", out.stderr);
}

#[tokio::test]
async fn check_reports_policies_and_compile_errors_with_file_and_line() {
    let ok = cli(&["check"], None).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let last = ok.stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("ok: 2 policy file(s)") && last.contains("schema(s): matano"),
        "{}",
        ok.stdout
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("action.rego"),
        "package action\nrun contains {\"id\": \"a\", \"uses\": \"http.fetch\"} if true\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("alert")).unwrap();
    std::fs::write(
        dir.path().join("alert/broken.rego"),
        "package alert.matano\n\nalert contains x if {\n  x := [1,\n}\n",
    )
    .unwrap();
    let broken = cli(&["check", "--policies", dir.path().to_str().unwrap()], None).await;
    assert_eq!(broken.code, 1);
    assert!(broken.stderr.contains("alert/broken.rego:4:"), "{}", broken.stderr);
}

/// A policy directory of one alert policy and one action policy.
fn policy_dir(alert: &str, action: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alert.rego"), alert).unwrap();
    std::fs::write(dir.path().join("action.rego"), action).unwrap();
    dir
}

#[tokio::test]
async fn check_reports_unknown_actions_and_missing_arguments() {
    let dir = policy_dir(
        "package alert.matano\nalert contains {\"title\": \"t\"} if true\n",
        "package action\n\nrun contains {\"id\": \"page\", \"uses\": \"pagerduty.trigger\"} if true\n\nrun contains {\"id\": \"x\", \"uses\": \"pager.page\"} if true\n",
    );
    let out = cli(&["check", "--policies", dir.path().to_str().unwrap()], None).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "action.rego:3: run entry \"page\" (pagerduty.trigger): argument `secret_routing_key` is required"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("action.rego:5: run entry \"x\": unknown action \"pager.page\""),
        "{}",
        out.stderr
    );
}

/// A package with a partial object rule has its entry rules evaluated on
/// the interpreter (conflicts are reported there): `check` says so, as
/// the interpreter's known differences then apply in production.
#[tokio::test]
async fn check_names_the_rules_production_runs_on_the_interpreter() {
    let dir = policy_dir(
        "package alert.matano\nalert contains {\"title\": \"t\"} if true\n",
        "package action\n\nurls[ip] := sprintf(\"https://intel.example.org/%s\", [ip]) if some ip in input.alert.data.context_diff.source.ip\n\nrun contains {\"id\": ip, \"uses\": \"http.fetch\", \"args\": {\"url\": url}} if some ip, url in urls\n",
    );
    let out = cli(&["check", "--policies", dir.path().to_str().unwrap()], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let note = out
        .stderr
        .lines()
        .find(|line| line.starts_with("note: data.action.run runs on the interpreter"))
        .unwrap_or_else(|| panic!("no note for data.action.run: {}", out.stderr));
    assert!(
        note.contains("data.action.urls (") && note.contains("action.rego:3) is a partial object rule"),
        "{note}"
    );
    assert!(note.contains("Known differences"), "{note}");
    // The starter kit runs wholly on the VM: no such note.
    let kit = cli(&["check"], None).await;
    assert!(!kit.stderr.contains("runs on the interpreter"), "{}", kit.stderr);
}

/// Entries computed by a function or in a body are checked by evaluating
/// the policies over the scenarios beside them and the sample change, rounds
/// included (a mocked result feeds the next round).
#[tokio::test]
async fn check_evaluates_computed_entries_over_the_scenarios() {
    let dir = policy_dir(
        "package alert.matano\nalert contains {\"title\": \"t\", \"severity\": input.updated_alert.severity} if true\n",
        r#"package action

entry(id, uses, args) := {"id": id, "uses": uses, "args": args}

run contains entry("lookup", "http.fetch", {"url": "https://intel.example/x"})

run contains entry("notify", "slack.post", {"text": "found"}) if {
	some c in input.called
	c.id == "lookup"
	c.result.body.verdict == "bad"
}

run contains entry("page", "pager.page", {}) if {
	input.alert.severity == "critical"
}

run contains {"id": "never", "uses": "webhook.post", "args": {"url": "https://hooks.example/n"}} if input.alert.severity == "nope"

run contains {"id": "lookup", "uses": "http.fetch", "args": {"url": "https://intel.example/x"}} if input.alert.title

run contains {"id": "stop", "abort": true} if input.alert.title == "never"

run contains {"id": "halt", "abort": true} if { some c in input.called; c.id == "lookup" }
"#,
    );
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    let sample = dir.path().join("sample.json");
    std::fs::write(&sample, include_str!("../examples/matano_alert_change.json")).unwrap();
    std::fs::write(
        dir.path().join("scenarios/bad.yaml"),
        format!(
            "id: bad\nevents:\n  - input_file: {}\nactions:\n  lookup: [{{result: {{status: 200, body: {{verdict: bad}}}}}}]\n",
            sample.display()
        ),
    )
    .unwrap();
    let out = cli(&["check", "--policies", dir.path().to_str().unwrap()], None).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("scenario \"bad\", event 0, round 1: run entry \"notify\" (slack.post): arguments `secret_webhook_url` and `secret_token`: give exactly one of them (0 given)"),
        "{}",
        out.stderr
    );
    // The page rule's input (a critical alert) is in no scenario: said, not silently passed.
    assert!(
        out.stderr.contains("note: ")
            && out
                .stderr
                .contains("action.rego:13: no scenario (nor the sample change) produces an entry of this `run` rule"),
        "{}",
        out.stderr
    );
    // A rule on one line: its body's evaluation covers the line, but no
    // entry "never" came of it. One whose entry came is not listed.
    assert!(
        out.stderr
            .contains("action.rego:17: no scenario (nor the sample change) produces an entry of this `run` rule"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("action.rego:19:"), "{}", out.stderr);
    // An abort-only entry runs nothing: produced, it is not listed.
    assert!(out.stderr.contains("action.rego:21: no scenario"), "{}", out.stderr);
    assert!(!out.stderr.contains("action.rego:23:"), "{}", out.stderr);
}

/// Every command names the policies it runs on its first line: `./policies`
/// by default where it exists, else the bundled starter kit (the same
/// digest); `run` says it on stderr, its stdout being outcomes.
#[tokio::test]
async fn every_command_says_which_policies_it_runs() {
    let here = cli(&["check"], None).await;
    let first = here.stdout.lines().next().unwrap_or_default().to_string();
    assert!(
        first.starts_with("policies: directory policies (2 file(s), 2 test file(s), sha256:"),
        "{first}"
    );
    let digest = first
        .rsplit("sha256:")
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    assert_eq!(digest.len(), 12, "{first}");

    let elsewhere = tempfile::tempdir().unwrap();
    let cwd = elsewhere.path().to_str().unwrap();
    for command in [&["check"][..], &["test"][..]] {
        let out = cli_in(cwd, command, None).await;
        assert_eq!(out.code, 0, "{command:?}: {}{}", out.stdout, out.stderr);
        let first = out.stdout.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!("policies: the starter kit bundled in this binary (2 file(s), 2 test file(s), sha256:{digest})"),
            "{command:?}"
        );
    }
    let run = cli_in(cwd, &["run", "--dry-run"], None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("policies: the starter kit bundled in this binary"),
        "{}",
        run.stderr
    );
    // `play` there has no scenarios to find and says so.
    let play = cli_in(cwd, &["play"], None).await;
    assert_eq!(play.code, 1);
    assert!(play.stderr.contains("give --scenarios DIR"), "{}", play.stderr);

    let mine = tempfile::tempdir().unwrap();
    std::fs::create_dir(mine.path().join("policies")).unwrap();
    std::fs::write(
        mine.path().join("policies/alert.rego"),
        "package alert.matano\nalert contains {\"title\": \"t\"} if true\n",
    )
    .unwrap();
    std::fs::write(
        mine.path().join("policies/action.rego"),
        "package action\nrun contains {\"id\": \"n\", \"uses\": \"http.fetch\", \"args\": {\"url\": \"https://example.org\"}} if true\n",
    )
    .unwrap();
    let out = cli_in(mine.path().to_str().unwrap(), &["check"], None).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .starts_with("policies: directory policies (2 file(s), 0 test file(s), sha256:"),
        "{}",
        out.stdout
    );
}

/// `run` decides with `POLICY_BUNDLE` as the function does (a re-drive of
/// a real change must act as production would), unless `--policies` names
/// a directory; a bundle that cannot be loaded fails the run, named.
#[tokio::test]
async fn run_decides_with_the_policy_bundle_unless_policies_names_a_directory() {
    let work = tempfile::tempdir().unwrap();
    let policies = work.path().join("candidate");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(
        policies.join("alert.rego"),
        "package alert.matano\nalert contains {\"title\": \"from the bundle\"} if true\n",
    )
    .unwrap();
    std::fs::write(
        policies.join("action.rego"),
        "package action\nrun contains {\"id\": \"bundled\", \"uses\": \"http.fetch\", \"args\": {\"url\": \"https://example.org\"}} if {\n\tprint(\"printed by the bundle\")\n}\n",
    )
    .unwrap();
    let bundle = work.path().join("prod.tar.gz");
    let (policies, bundle) = (policies.to_str().unwrap(), bundle.to_str().unwrap());
    let built = cli(&["bundle", "--policies", policies, "--out", bundle], None).await;
    assert_eq!(built.code, 0, "{}{}", built.stdout, built.stderr);

    let cwd = work.path().to_str().unwrap();
    let env = [("POLICY_BUNDLE", bundle)];
    let run = cli_with(cwd, &["run", "--dry-run", "-p"], None, &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("printed by the bundle"),
        "--enable-print reaches the bundle: {}",
        run.stderr
    );
    assert!(
        run.stderr.starts_with(&format!("policies: bundle {bundle} (sha256:")),
        "{}",
        run.stderr
    );
    let ids: Vec<&Value> = run.outcomes.iter().map(|o| &o["action"]["id"]).collect();
    assert_eq!(ids, [&json!("bundled")], "{:#?}", run.outcomes);
    assert_eq!(run.outcomes[0]["alert"]["title"], "from the bundle");

    let starter = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
    let chosen = cli_with(cwd, &["run", "--dry-run", "--policies", starter], None, &env).await;
    assert_eq!(chosen.code, 0, "{}", chosen.stderr);
    assert!(chosen.stderr.starts_with("policies: directory"), "{}", chosen.stderr);
    assert!(chosen.outcomes.iter().all(|o| o["action"]["id"] != "bundled"));

    let missing = work.path().join("none.tar.gz");
    let missing = missing.to_str().unwrap();
    let bad = cli_with(cwd, &["run", "--dry-run"], None, &[("POLICY_BUNDLE", missing)]).await;
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(bad.stderr.contains(missing), "{}", bad.stderr);
    // Said once, not once more as its cause.
    assert_eq!(bad.stderr.matches(missing).count(), 1, "{}", bad.stderr);
    assert!(bad.outcomes.is_empty());
}

/// `run --mocks`: a dry run whose later rounds see the mocked results;
/// nothing is called, and an action without a mock fails naming it.
#[tokio::test]
async fn run_with_mocks_shows_the_whole_chain_calling_nothing() {
    let webhook = TestServer::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let mocks = dir.path().join("mocks.yaml");
    std::fs::write(
        &mocks,
        "lookup_ip_185.220.101.4:\n  - result: {status: 200, body: {country: RU}}\nwebhook.post:\n  - result: {status: 200}\n",
    )
    .unwrap();
    let webhook_env = format!("WEBHOOK_URL={}", webhook.url("/hook"));
    let args = ["run", "--mocks", mocks.to_str().unwrap(), "--env", webhook_env.as_str()];
    let out = cli(&args, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        brief(&out.outcomes),
        vec![
            (0, "lookup_ip_185.220.101.4".to_string(), "succeeded".to_string()),
            (1, "notify_webhook".to_string(), "succeeded".to_string()),
        ]
    );
    // Round 1 was decided on round 0's mocked result.
    assert_eq!(
        out.outcomes[1]["action"]["args"]["data"]["countries"],
        json!({"country_185.220.101.4": "RU"})
    );
    assert!(out.stderr.contains("nothing was called"), "{}", out.stderr);
    assert!(webhook.requests().is_empty());

    std::fs::write(
        &mocks,
        "lookup_ip_185.220.101.4:\n  - result: {status: 200, body: {country: RU}}\n",
    )
    .unwrap();
    let out = cli(&args, None).await;
    assert_eq!(out.outcomes[1]["status"], "failed", "{:#?}", out.outcomes);
    assert!(
        out.stderr
            .contains("mock missing: no mocked result for action \"notify_webhook\" (webhook.post)"),
        "{}",
        out.stderr
    );

    std::fs::write(&mocks, "webhook.post: {result: 1}\n").unwrap();
    let out = cli(&args, None).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("mocks.yaml") && out.stderr.contains("webhook.post"),
        "{}",
        out.stderr
    );
}

/// Logs written to a file or a pipe carry no colour codes and no Rust
/// `Debug` text.
#[tokio::test]
async fn logs_to_a_pipe_are_plain_text() {
    let out = cli(
        &["run", "--dry-run", "--log-level", "info", "--input", "-"],
        Some("{\"detail\": 1}"),
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("message rejected"), "{}", out.stderr);
    assert!(!out.stderr.contains('\u{1b}'), "colour codes in: {:?}", out.stderr);
    assert!(!out.stderr.contains("Some("), "Debug text in: {}", out.stderr);
}

/// `check --builtins` lists what policies may call in this build: the
/// groups the README names, never a builtin that does I/O.
#[tokio::test]
async fn check_lists_the_builtins_of_this_build() {
    let out = cli(&["check", "--builtins"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let names: Vec<&str> = out.stdout.lines().collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    for present in [
        "count",
        "sprintf",
        "regex.match",
        "glob.match",
        "net.cidr_contains",
        "json.patch",
        "base64url.encode",
        "time.now_ns",
        "time.parse_rfc3339_ns",
        "uuid.rfc4122",
        "semver.compare",
        "yaml.marshal",
        "graph.reachable",
        "units.parse_bytes",
        "bits.and",
        "print",
        "escape.slack",
        "escape.markdown",
        "crypto.sha256",
        "io.jwt.decode",
        "net.cidr_intersects",
    ] {
        assert!(names.contains(&present), "{present} missing from {names:?}");
    }
    for absent in ["http.send", "net.lookup_ip_addr", "opa.runtime", "io.jwt.decode_verify"] {
        assert!(!names.contains(&absent), "{absent} listed");
    }
    assert!(names.len() > 100, "only {} builtins", names.len());
}

/// Decision records given to `run` are decided again under the change keys
/// they were decided with (the README's replay after a pause): the same
/// alert, so with the state table what ran replays; a change recorded
/// twice (delivered twice) is decided once; a record this build cannot
/// read is an error naming its line.
#[tokio::test]
async fn run_decides_decision_records_under_their_recorded_keys() {
    let dir = policy_dir(
        "package alert.custom\nalert contains {\"title\": input.finding, \"severity\": \"low\"} if true\n",
        "package action\nrun contains {\"id\": \"note\", \"uses\": \"webhook.post\", \"args\": {\"url\": \"https://hooks.example/n\"}}\n",
    );
    let policies = dir.path().to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let notification = json!({
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:custom",
        "Message": json!({"finding": "port scan"}).to_string(),
        "Timestamp": "2026-12-07T10:00:00.000Z",
        "MessageAttributes": {"schema": {"Type": "String", "Value": "custom"}},
    });
    let (alert_id, record) = decided_and_recorded(policies, work.path(), "sns", &notification).await;
    // A raw SQS delivery (no SNS message id): its record keeps its key too.
    let raw_sqs = json!({"Records": [{
        "messageId": "sqs-id-1", "receiptHandle": "r-1", "body": json!({"finding": "port scan"}).to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1765101600000"},
        "messageAttributes": {"schema": {"stringValue": "custom", "dataType": "String"}},
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ingest", "awsRegion": "us-east-1",
    }]});
    let (sqs_alert, sqs_record) = decided_and_recorded(policies, work.path(), "sqs", &raw_sqs).await;
    let sqs_records = work.path().join("sqs.jsonl");
    std::fs::write(&sqs_records, format!("{sqs_record}\n")).unwrap();
    let replayed = cli(
        &[
            "run",
            "--dry-run",
            "--policies",
            policies,
            "--input",
            sqs_records.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    assert_eq!(
        replayed.outcomes[0]["alert"]["id"], sqs_alert,
        "the raw SQS change's alert"
    );
    let twice = work.path().join("records.jsonl");
    let args = [
        "run",
        "--dry-run",
        "--policies",
        policies,
        "--input",
        twice.to_str().unwrap(),
    ];
    let run_records = || cli(&args, None);
    std::fs::write(&twice, format!("{record}\n{record}\n")).unwrap();
    let again = run_records().await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.outcomes.len(), 1, "decided once: {:?}", again.outcomes);
    assert_eq!(again.outcomes[0]["alert"]["id"], alert_id, "the same alert");
    let mut old: Value = serde_json::from_str(&record).unwrap();
    old["schema_version"] = json!(0);
    std::fs::write(&twice, format!("{record}\n{old}\n")).unwrap();
    let refused = run_records().await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("input:2: a decision record of schema_version 0"),
        "{}",
        refused.stderr
    );
}

/// Runs `input` (written under `work` as `name`) with decision records
/// kept: the first outcome's alert id and the record's line.
async fn decided_and_recorded(policies: &str, work: &std::path::Path, name: &str, input: &Value) -> (Value, String) {
    let path = work.join(format!("{name}.json"));
    std::fs::write(&path, input.to_string()).unwrap();
    let records = work.join(format!("{name}-records"));
    let first = cli(
        &[
            "run",
            "--dry-run",
            "--policies",
            policies,
            "--input",
            path.to_str().unwrap(),
            "--records",
            records.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let mut lines = String::new();
    for path in common::files_under(&records) {
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()),
            &mut text,
        )
        .unwrap();
        lines.push_str(&text);
    }
    let record = lines.lines().next().expect("a decision record").to_string();
    (first.outcomes[0]["alert"]["id"].clone(), record)
}

/// A proxy in the environment is not used by actions: it would resolve the
/// names the SSRF guard never sees. The post goes direct (and fails: the
/// name does not resolve), the proxy sees nothing.
#[tokio::test]
async fn actions_take_no_proxy_from_the_environment() {
    let proxy = TestServer::start(|_| Reply::text(200, "proxied")).await;
    let dir = policy_dir(
        "package alert.matano\nalert contains {\"title\": \"t\", \"severity\": \"low\"} if true\n",
        "package action\nrun contains {\"id\": \"hook\", \"uses\": \"webhook.post\", \"args\": {\"url\": \"http://internal.invalid/hook\"}} if true\n",
    );
    let input = fixture("matano_alert_change_v1.json");
    let proxy_url = proxy.url("");
    let out = cli_with(
        env!("CARGO_MANIFEST_DIR"),
        &["run", "--policies", dir.path().to_str().unwrap(), "--input", "-"],
        Some(&input),
        &[
            ("HTTP_PROXY", &proxy_url),
            ("http_proxy", &proxy_url),
            ("ALL_PROXY", &proxy_url),
        ],
    )
    .await;
    assert!(
        proxy.requests().is_empty(),
        "the proxy was used: {:?}",
        proxy.requests()
    );
    let hook = out
        .outcomes
        .iter()
        .find(|o| o["action"]["id"] == "hook")
        .unwrap_or_else(|| panic!("no outcome: {}", out.stderr));
    assert_eq!(hook["status"], "failed", "{hook}");
}
