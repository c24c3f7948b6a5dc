//! `replay` and `bundle` from the outside: records written by `run
//! --records`, replayed with changed policies (added, removed and changed
//! actions, a policy error), JSON and exit codes, bad inputs named by file
//! and line, and the HTML report rendered by headless Chromium.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const ALERT: &str = r#"package alert.matano
alert contains {"title": input.updated_alert.title, "severity": input.updated_alert.severity} if true
"#;

const ACTIONS: &str = r#"package action
run contains {"id": "notify", "uses": "webhook.post", "args": {"url": "https://hooks.example.com/a", "data": {"t": input.alert.title}}}
run contains {"id": "ticket", "uses": "webhook.post", "args": {"url": "https://tickets.example.com/", "data": {"at": object.get(input.alert, "created_at", "")}}}
"#;

fn bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alert-responder"))
        .args(args)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("POLICY_DIR")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr)
}

fn policies(dir: &Path, actions: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("alert.rego"), ALERT).unwrap();
    std::fs::write(dir.join("action.rego"), actions).unwrap();
}

/// Three Matano changes decided (dry run) with `dir`, recorded under `records`.
fn record_changes(dir: &Path, records: &Path, titles: &[&str]) {
    for (i, title) in titles.iter().enumerate() {
        let mut payload: Value = serde_json::from_str(include_str!("fixtures/matano_alert_change_v1.json")).unwrap();
        payload["updated_alert"]["id"] = Value::String(format!("replay-{i}"));
        payload["updated_alert"]["title"] = Value::String(title.to_string());
        // No time of its own: `created_at` is when it was read, on record.
        payload["updated_alert"]["creation_time"] = Value::Null;
        let input = records.with_extension(format!("{i}.json"));
        std::fs::write(&input, payload.to_string()).unwrap();
        let run = bin(&[
            "run",
            "--dry-run",
            "--policies",
            dir.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--records",
            records.to_str().unwrap(),
        ]);
        assert!(run.status.success(), "{}", text(&run));
    }
}

/// `replay --from FROM --policies POLICIES` and its output.
fn replay_from(from: &Path, policies: &Path) -> Output {
    bin(&[
        "replay",
        "--from",
        from.to_str().unwrap(),
        "--policies",
        policies.to_str().unwrap(),
    ])
}

fn replay_json(args: &[&str]) -> (Value, Output) {
    let mut all = vec!["replay", "--json"];
    all.extend_from_slice(args);
    let output = bin(&all);
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", text(&output)));
    (report, output)
}

#[test]
fn a_changed_policy_is_backtested_against_recorded_decisions() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let records = root.path().join("records");
    policies(&live, ACTIONS);
    record_changes(
        &live,
        &records,
        &["Root login", "Console login <script>alert(1)</script>", "Root login"],
    );

    // The same policies: nothing differs, exit 0 even with --fail-on-divergence.
    let (report, output) = replay_json(&[
        "--from",
        records.to_str().unwrap(),
        "--policies",
        live.to_str().unwrap(),
        "--fail-on-divergence",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        (report["changes"].as_u64(), report["differing"].as_u64()),
        (Some(3), Some(0)),
        "{report:#}"
    );

    // A decision that left an action to a retry of its invocation is not
    // replayed: the retry has its own record.
    let retried = root.path().join("retried");
    std::fs::create_dir_all(&retried).unwrap();
    let mut lines = String::new();
    let first_file = std::fs::File::open(common::files_under(&records).remove(0)).unwrap();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(first_file), &mut lines).unwrap();
    let mut record: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    record["alerts"][0]["retries"] = serde_json::json!([{"action_id": "notify", "cause": "HTTP 503"}]);
    std::fs::write(retried.join("r.jsonl"), format!("{record}\n")).unwrap();
    let (report, output) = replay_json(&[
        "--from",
        retried.to_str().unwrap(),
        "--policies",
        live.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        (report["changes"].as_u64(), report["skipped"].as_u64()),
        (Some(0), Some(1)),
        "{report:#}"
    );

    // The candidate changes notify's args, drops ticket, adds page for root logins only.
    let candidate = root.path().join("candidate");
    policies(
        &candidate,
        r#"package action
run contains {"id": "notify", "uses": "webhook.post", "args": {"url": "https://hooks.example.com/b", "data": {"t": input.alert.title}}}
run contains {"id": "page", "uses": "pagerduty.trigger", "args": {"secret_routing_key": "rk-123"}} if contains(input.alert.title, "Root")
"#,
    );
    let (report, output) = replay_json(&[
        "--from",
        records.to_str().unwrap(),
        "--policies",
        candidate.to_str().unwrap(),
        "--fail-on-divergence",
    ]);
    assert_eq!(output.status.code(), Some(1), "--fail-on-divergence: {}", text(&output));
    assert_eq!(report["differing"], 3);
    let totals = &report["totals"];
    assert_eq!(
        (
            totals["actions_added"].as_u64(),
            totals["actions_removed"].as_u64(),
            totals["actions_changed"].as_u64()
        ),
        (Some(2), Some(3), Some(3)),
        "{report:#}"
    );
    assert_eq!(report["by_alert"]["Root login"]["changes"], 2);
    assert_eq!(report["by_uses"]["pagerduty.trigger"]["actions_added"], 2);
    let first = &report["differences"][0];
    assert!(first["at"].as_str().unwrap().contains(".jsonl.gz:1"), "{first:#}");
    // A root login's: the page added.
    let paged = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["divergence"]["actions_added"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        })
        .unwrap_or_else(|| panic!("{report:#}"));
    let added = &paged["divergence"]["actions_added"][0];
    assert_eq!(
        added["args"]["secret_routing_key"], "[REDACTED]",
        "secrets never reach a report"
    );
    assert!(!output.stdout.windows(6).any(|w| w == b"rk-123"));

    // A candidate whose alert policy fails: counted, and a result change.
    let broken = root.path().join("broken");
    policies(&broken, ACTIONS);
    std::fs::write(
        broken.join("alert.rego"),
        "package alert.matano\nlevel := \"a\" if true\nlevel := \"b\" if true\nalert contains {\"title\": level} if true\n",
    )
    .unwrap();
    // `--limit` differences in the JSON, also when a page (which keeps more) is written.
    let page_too = root.path().join("broken.html");
    let limited = [
        "--from",
        records.to_str().unwrap(),
        "--policies",
        broken.to_str().unwrap(),
        "--limit",
        "1",
    ];
    for page in [None, Some(page_too.to_str().unwrap())] {
        let mut args = limited.to_vec();
        args.extend(page.map(|page| ["--report", page]).into_iter().flatten());
        let (report, _) = replay_json(&args);
        assert_eq!(report["differing"], 3, "{report:#}");
        assert_eq!(
            (
                report["candidate_policy_errors"].as_u64(),
                report["results_changed"].as_u64()
            ),
            (Some(3), Some(3))
        );
        assert_eq!(
            report["differences"].as_array().unwrap().len(),
            1,
            "--limit, page {page:?}"
        );
    }
    assert!(page_too.exists());

    // The human summary and the HTML report.
    let html = root.path().join("report.html");
    let output = bin(&[
        "replay",
        "--from",
        records.to_str().unwrap(),
        "--policies",
        candidate.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ]);
    let summary = text(&output);
    assert!(output.status.success(), "{summary}");
    assert!(summary.contains("changes: 3 replayed, 3 differ"), "{summary}");
    assert!(
        summary.contains("+ action page (pagerduty.trigger) on \"Root login\""),
        "{summary}"
    );
    assert!(!summary.contains("rk-123"), "no secret in the summary");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(!page.contains("rk-123"), "no secret in the HTML report");
    assert!(
        page.contains("Console login &lt;script&gt;alert(1)&lt;/script&gt;"),
        "alert text is escaped"
    );
    assert!(!page.contains("<script"), "no script in the page");
    #[cfg(feature = "browser-tests")]
    browser::renders(&html, root.path());
}

#[test]
fn events_and_payloads_need_a_baseline_and_bad_inputs_are_named() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    policies(&live, ACTIONS);
    let event = format!("{}/tests/fixtures/sns_event_matano.json", env!("CARGO_MANIFEST_DIR"));
    let output = bin(&["replay", "--from", &event, "--policies", live.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("no recorded decision to compare with"),
        "{}",
        text(&output)
    );
    let (report, output) = replay_json(&[
        "--from",
        &event,
        "--policies",
        live.to_str().unwrap(),
        "--baseline",
        live.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(report["changes"], 1);

    // A truncated gzip object and a record of another schema version.
    let records = root.path().join("records");
    record_changes(&live, &records, &["Root login"]);
    let object = common::files_under(&records).pop().unwrap();
    let bytes = std::fs::read(&object).unwrap();
    let truncated = root.path().join("truncated.jsonl.gz");
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    let output = replay_from(&truncated, &live);
    let said = text(&output);
    assert!(!output.status.success());
    assert!(said.contains(&format!("{}: gzip:", truncated.display())), "{said}");

    let future = root.path().join("future.jsonl");
    std::fs::write(&future, "{\"record_type\": \"decision\", \"schema_version\": 1, \"x\": 1}\n{\"record_type\": \"decision\", \"schema_version\": 9}\n").unwrap();
    let output = replay_from(&future, &live);
    assert!(
        text(&output).contains(&format!("{}:1: not a decision record", future.display())),
        "{}",
        text(&output)
    );
    std::fs::write(&future, "{\"record_type\": \"decision\", \"schema_version\": 9}\n").unwrap();
    let output = replay_from(&future, &live);
    assert!(
        text(&output).contains(&format!(
            "{}:1: a decision record of schema_version 9, this build reads 1",
            future.display()
        )),
        "{}",
        text(&output)
    );
}

#[test]
fn a_bundle_is_built_only_from_policies_that_pass_and_is_reproducible() {
    let root = tempfile::tempdir().unwrap();
    let good = root.path().join("good");
    policies(&good, ACTIONS);
    std::fs::write(
        good.join("action_test.rego"),
        "package action_test\nimport data.action\ntest_two if count(action.run) == 2 with input as {\"alert\": {\"title\": \"x\"}}\n",
    )
    .unwrap();
    let one = root.path().join("one.tar.gz");
    let two = root.path().join("two.tar.gz");
    let first = bin(&[
        "bundle",
        "--policies",
        good.to_str().unwrap(),
        "--out",
        one.to_str().unwrap(),
    ]);
    assert!(first.status.success(), "{}", text(&first));
    let second = bin(&[
        "bundle",
        "--policies",
        good.to_str().unwrap(),
        "-o",
        two.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(&one).unwrap(),
        std::fs::read(&two).unwrap(),
        "same input, same bytes"
    );
    let digest = String::from_utf8_lossy(&first.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");
    assert_eq!(String::from_utf8_lossy(&second.stdout).lines().last().unwrap(), digest);
    // The digest `run` names for the directory (and outcomes carry).
    let run = bin(&["run", "--dry-run", "--policies", good.to_str().unwrap()]);
    let outcome: Value = serde_json::from_str(String::from_utf8_lossy(&run.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(outcome["bundle_digest"], digest.as_str());

    // A failing unit test refuses the bundle; nothing is written.
    std::fs::write(
        good.join("action_test.rego"),
        "package action_test\nimport data.action\ntest_three if count(action.run) == 3 with input as {\"alert\": {\"title\": \"x\"}}\n",
    )
    .unwrap();
    let refused = root.path().join("refused.tar.gz");
    let output = bin(&[
        "bundle",
        "--policies",
        good.to_str().unwrap(),
        "--out",
        refused.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("bundle refused: a Rego unit test failed"),
        "{}",
        text(&output)
    );
    assert!(!refused.exists());
    // So does a check finding (an unknown action).
    policies(
        &good,
        "package action\nrun contains {\"id\": \"x\", \"uses\": \"nope.nothing\"}\n",
    );
    std::fs::remove_file(good.join("action_test.rego")).unwrap();
    let output = bin(&[
        "bundle",
        "--policies",
        good.to_str().unwrap(),
        "--out",
        refused.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("bundle refused: check failed"),
        "{}",
        text(&output)
    );
    assert!(!refused.exists());
}

#[cfg(feature = "browser-tests")]
mod browser {
    use std::path::Path;
    use std::process::Command;

    /// The report in headless Chromium (installed by scripts/test): the DOM
    /// it built has the tables and no script, and a screenshot is taken.
    pub fn renders(html: &Path, dir: &Path) {
        let chromium = ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find(|c| {
                Command::new(c)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .expect("browser-tests need Chromium (scripts/test installs Debian's chromium)");
        let url = format!("file://{}", html.display());
        let common = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"];
        let dom = Command::new(chromium)
            .args(common)
            .arg("--dump-dom")
            .arg(&url)
            .output()
            .unwrap();
        let dom = String::from_utf8_lossy(&dom.stdout);
        assert!(dom.contains("<table class=\"alert\">"), "{dom}");
        assert!(dom.contains("pagerduty.trigger"), "{dom}");
        assert!(!dom.contains("<script"), "{dom}");
        let shot = dir.join("report.png");
        let taken = Command::new(chromium)
            .args(common)
            .arg(format!("--screenshot={}", shot.display()))
            .arg("--window-size=1200,1600")
            .arg(&url)
            .output()
            .unwrap();
        assert!(taken.status.success(), "{}", String::from_utf8_lossy(&taken.stderr));
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        // A blank 1200x1600 page compresses to a few KiB; text and tables do not.
        assert!(png.len() > 20_000, "the screenshot has content: {} bytes", png.len());
        if let Ok(keep) = std::env::var("REPLAY_SCREENSHOT") {
            std::fs::copy(&shot, keep).unwrap();
        }
    }
}
