//! A replay's report: counts per alert (rule) and per action `uses`, the
//! first differences in detail; as text, JSON, or a self-contained HTML
//! page with a side-by-side table per changed alert.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Compared, Side};
use crate::model::decision::{ActionEntry, AlertEntry};

/// Differences of one kind, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Changes with a difference here.
    pub changes: usize,
    pub alerts_added: usize,
    pub alerts_removed: usize,
    pub alerts_changed: usize,
    pub actions_added: usize,
    pub actions_removed: usize,
    pub actions_changed: usize,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.changes += other.changes;
        self.alerts_added += other.alerts_added;
        self.alerts_removed += other.alerts_removed;
        self.alerts_changed += other.alerts_changed;
        self.actions_added += other.actions_added;
        self.actions_removed += other.actions_removed;
        self.actions_changed += other.actions_changed;
    }

    fn brief(&self) -> String {
        format!(
            "alerts +{} -{} ~{}, actions +{} -{} ~{}",
            self.alerts_added,
            self.alerts_removed,
            self.alerts_changed,
            self.actions_added,
            self.actions_removed,
            self.actions_changed
        )
    }
}

/// What a replay found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub candidate: String,
    pub baseline: String,
    /// Changes read and replayed.
    pub changes: usize,
    /// Inputs with nothing to decide again (rejected messages' records…).
    pub skipped: usize,
    pub differing: usize,
    /// Changes whose result differs (e.g. a policy error on one side).
    pub results_changed: usize,
    pub candidate_policy_errors: usize,
    pub totals: Counts,
    /// By alert title (one per detection rule, for Matano).
    pub by_alert: BTreeMap<String, Counts>,
    /// By action `uses`.
    pub by_uses: BTreeMap<String, Counts>,
    /// The first differing changes, in input order.
    pub differences: Vec<Compared>,
    /// How many differences `differences` holds at most.
    #[serde(skip)]
    pub keep: usize,
}

impl Report {
    pub fn new(candidate: String, baseline: String, keep: usize) -> Report {
        Report {
            candidate,
            baseline,
            keep,
            ..Report::default()
        }
    }

    pub fn add(&mut self, compared: Compared) {
        self.changes += 1;
        if compared.candidate.error.is_some() && compared.baseline.error.is_none() {
            self.candidate_policy_errors += 1;
        }
        if !compared.differs() {
            return;
        }
        self.differing += 1;
        if compared.baseline.result != compared.candidate.result {
            self.results_changed += 1;
        }
        let d = &compared.divergence;
        let mut by_alert: BTreeMap<&str, Counts> = BTreeMap::new();
        let mut by_uses: BTreeMap<&str, Counts> = BTreeMap::new();
        for a in &d.alerts_added {
            by_alert.entry(&a.title).or_default().alerts_added += 1;
        }
        for a in &d.alerts_removed {
            by_alert.entry(&a.title).or_default().alerts_removed += 1;
        }
        for a in &d.alerts_changed {
            by_alert.entry(&a.title).or_default().alerts_changed += 1;
        }
        for a in &d.actions_added {
            by_alert.entry(&a.alert).or_default().actions_added += 1;
            by_uses.entry(&a.uses).or_default().actions_added += 1;
        }
        for a in &d.actions_removed {
            by_alert.entry(&a.alert).or_default().actions_removed += 1;
            by_uses.entry(&a.uses).or_default().actions_removed += 1;
        }
        for a in &d.actions_changed {
            by_alert.entry(&a.alert).or_default().actions_changed += 1;
            by_uses.entry(&a.candidate_uses).or_default().actions_changed += 1;
        }
        for (key, mut counts) in by_alert {
            counts.changes = 1;
            self.totals.add(&Counts { changes: 0, ..counts });
            self.by_alert.entry(key.to_string()).or_default().add(&counts);
        }
        for (key, mut counts) in by_uses {
            counts.changes = 1;
            self.by_uses.entry(key.to_string()).or_default().add(&counts);
        }
        self.totals.changes += 1;
        self.keep_difference(compared);
    }

    /// Keeps the first `keep` differences by input position.
    fn keep_difference(&mut self, compared: Compared) {
        let at = self.differences.partition_point(|c| c.seq < compared.seq);
        if at < self.keep {
            self.differences.insert(at, compared);
            self.differences.truncate(self.keep);
        }
    }

    /// Another worker's report of other changes.
    pub fn merge(&mut self, other: Report) {
        self.changes += other.changes;
        self.skipped += other.skipped;
        self.differing += other.differing;
        self.results_changed += other.results_changed;
        self.candidate_policy_errors += other.candidate_policy_errors;
        self.totals.add(&other.totals);
        for (key, counts) in other.by_alert {
            self.by_alert.entry(key).or_default().add(&counts);
        }
        for (key, counts) in other.by_uses {
            self.by_uses.entry(key).or_default().add(&counts);
        }
        for compared in other.differences {
            self.keep_difference(compared);
        }
    }

    /// The summary and the first `detail` differences, for a terminal.
    pub fn text(&self, detail: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "candidate: {}", self.candidate);
        let _ = writeln!(out, "baseline:  {}", self.baseline);
        let _ = writeln!(
            out,
            "changes: {} replayed, {} differ, {} skipped (nothing to decide again); candidate policy errors: {}",
            self.changes, self.differing, self.skipped, self.candidate_policy_errors
        );
        let _ = writeln!(out, "total: {}", self.totals.brief());
        if self.results_changed > 0 {
            let _ = writeln!(
                out,
                "results changed (e.g. a policy error on one side): {}",
                self.results_changed
            );
        }
        if !self.by_alert.is_empty() {
            let _ = writeln!(out, "by alert:");
            for (title, counts) in &self.by_alert {
                let _ = writeln!(out, "  {title:?}: {} change(s): {}", counts.changes, counts.brief());
            }
        }
        if !self.by_uses.is_empty() {
            let _ = writeln!(out, "by action uses:");
            for (uses, counts) in &self.by_uses {
                let _ = writeln!(
                    out,
                    "  {}: {} change(s): actions +{} -{} ~{}",
                    plain(uses),
                    counts.changes,
                    counts.actions_added,
                    counts.actions_removed,
                    counts.actions_changed
                );
            }
        }
        for compared in self.differences.iter().take(detail) {
            let _ = writeln!(out, "\n{} ({})", plain(&compared.at), plain(&compared.change_key));
            for line in difference_lines(compared) {
                let _ = writeln!(out, "  {line}");
            }
        }
        if self.differing > detail.min(self.differences.len()) {
            let _ = writeln!(
                out,
                "\n… {} more differing change(s) (--limit N shows more; --json all counts)",
                self.differing - detail.min(self.differences.len())
            );
        }
        out
    }
}

/// Text from a payload as a terminal shows it: no control characters.
fn plain(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

fn args_text(args: &Map<String, Value>) -> String {
    Value::Object(args.clone()).to_string()
}

/// One line per difference of a change.
pub fn difference_lines(compared: &Compared) -> Vec<String> {
    let mut lines = Vec::new();
    let (b, c) = (&compared.baseline, &compared.candidate);
    if b.result != c.result {
        lines.push(format!(
            "result: {:?} -> {:?}{}",
            b.result,
            c.result,
            c.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
        ));
    }
    let d = &compared.divergence;
    lines.extend(
        d.alerts_added
            .iter()
            .map(|a| format!("+ alert {:?} ({})", a.title, a.severity)),
    );
    lines.extend(
        d.alerts_removed
            .iter()
            .map(|a| format!("- alert {:?} ({})", a.title, a.severity)),
    );
    lines.extend(d.alerts_changed.iter().map(|a| {
        format!(
            "~ alert {:?}: severity {} -> {}",
            a.title, a.baseline_severity, a.candidate_severity
        )
    }));
    lines.extend(d.actions_added.iter().map(|a| {
        format!(
            "+ action {} ({}) on {:?} {}",
            plain(&a.id),
            plain(&a.uses),
            a.alert,
            args_text(&a.args)
        )
    }));
    lines.extend(
        d.actions_removed
            .iter()
            .map(|a| format!("- action {} ({}) on {:?}", plain(&a.id), plain(&a.uses), a.alert)),
    );
    lines.extend(d.actions_changed.iter().map(|a| {
        format!(
            "~ action {} ({}) on {:?}: {} -> {}",
            plain(&a.id),
            plain(&a.candidate_uses),
            a.alert,
            args_text(&a.baseline_args),
            args_text(&a.candidate_args)
        )
    }));
    lines
}

/// Alert and policy text is attacker-influenced: everything is escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}\
table{border-collapse:collapse;width:100%;margin:.5em 0}\
th,td{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;text-align:left}\
th{background:#f3f3f3}.added{background:#e6ffed}.removed{background:#ffeef0}.changed{background:#fff8c5}\
code{font:12px ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}\
.summary td:first-child{font-weight:600}";

fn action_cell(action: Option<&ActionEntry>) -> String {
    match action {
        None => "<td>—</td>".to_string(),
        Some(a) => format!(
            "<td><b>{}</b> ({})<br>status: {}<br><code>{}</code></td>",
            escape(&a.id),
            escape(&a.uses),
            escape(a.status.as_str()),
            escape(&args_text(&a.args))
        ),
    }
}

fn alert_table(compared: &Compared, out: &mut String) {
    let pairs = pair_alerts(&compared.baseline, &compared.candidate);
    for (before, after) in pairs {
        let title = after.or(before).map(|a| a.title.as_str()).unwrap_or_default();
        let class = match (before, after) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            _ => "changed",
        };
        let severity = |a: Option<&AlertEntry>| a.map(|a| escape(&a.severity)).unwrap_or_else(|| "—".into());
        let _ = write!(
            out,
            "<table class=\"alert\"><tr class=\"{class}\"><th colspan=\"2\">{}</th></tr>\
             <tr><th>baseline ({})</th><th>candidate ({})</th></tr>",
            escape(title),
            severity(before),
            severity(after)
        );
        let mut ids: Vec<&str> = Vec::new();
        for alert in [before, after].into_iter().flatten() {
            for action in alert.actions.iter().filter(|a| !a.uses.is_empty()) {
                if !ids.contains(&action.id.as_str()) {
                    ids.push(&action.id);
                }
            }
        }
        for id in ids {
            let (b, c) = (find_action(before, id), find_action(after, id));
            let class = match (b, c) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(b), Some(c)) if b.args != c.args || b.uses != c.uses => "changed",
                _ => "same",
            };
            let _ = write!(out, "<tr class=\"{class}\">{}{}</tr>", action_cell(b), action_cell(c));
        }
        out.push_str("</table>");
    }
}

fn find_action<'a>(alert: Option<&'a AlertEntry>, id: &str) -> Option<&'a ActionEntry> {
    alert.and_then(|a| a.actions.iter().find(|x| x.id == id))
}

/// The alerts of both sides, paired as `compare` pairs them.
fn pair_alerts<'a>(baseline: &'a Side, candidate: &'a Side) -> Vec<(Option<&'a AlertEntry>, Option<&'a AlertEntry>)> {
    let mut pairs = Vec::new();
    let mut used = vec![false; baseline.alerts.len()];
    for after in &candidate.alerts {
        let found = baseline
            .alerts
            .iter()
            .enumerate()
            .find(|(i, b)| !used[*i] && b.id == after.id)
            .or_else(|| {
                baseline
                    .alerts
                    .iter()
                    .enumerate()
                    .find(|(i, b)| !used[*i] && b.title == after.title)
            });
        match found {
            Some((i, before)) => {
                used[i] = true;
                pairs.push((Some(before), Some(after)));
            }
            None => pairs.push((None, Some(after))),
        }
    }
    for (i, before) in baseline.alerts.iter().enumerate() {
        if !used[i] {
            pairs.push((Some(before), None));
        }
    }
    pairs
}

/// A self-contained page (no script, no external resource).
pub fn html(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>alert-responder replay</title><style>{STYLE}</style></head><body>\
         <h1>Replay: {} of {} change(s) differ</h1><table class=\"summary\">\
         <tr><td>candidate</td><td>{}</td></tr><tr><td>baseline</td><td>{}</td></tr>\
         <tr><td>replayed</td><td>{}</td></tr><tr><td>skipped</td><td>{}</td></tr>\
         <tr><td>candidate policy errors</td><td>{}</td></tr><tr><td>total</td><td>{}</td></tr></table>",
        report.differing,
        report.changes,
        escape(&report.candidate),
        escape(&report.baseline),
        report.changes,
        report.skipped,
        report.candidate_policy_errors,
        escape(&report.totals.brief())
    );
    for (heading, rows) in [("By alert", &report.by_alert), ("By action uses", &report.by_uses)] {
        if rows.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "<h2>{heading}</h2><table><tr><th></th><th>changes</th><th>differences</th></tr>"
        );
        for (key, counts) in rows {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(key),
                counts.changes,
                escape(&counts.brief())
            );
        }
        out.push_str("</table>");
    }
    let _ = write!(out, "<h2>Differences (first {})</h2>", report.differences.len());
    for compared in &report.differences {
        let _ = write!(
            out,
            "<h3><code>{}</code> {}</h3>",
            escape(&compared.at),
            escape(&compared.change_key)
        );
        if compared.baseline.result != compared.candidate.result {
            let _ = write!(
                out,
                "<p class=\"changed\">result: {:?} → {:?} {}</p>",
                compared.baseline.result,
                compared.candidate.result,
                escape(compared.candidate.error.as_deref().unwrap_or(""))
            );
        }
        alert_table(compared, &mut out);
    }
    out.push_str("</body></html>\n");
    out
}
