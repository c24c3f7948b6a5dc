//! `ACTION_BUDGETS`: how many times matching actions may run per window.
//! A leaf (the configuration's vocabulary): parsed once at init, enforced
//! by the workflow (`workflow::guard`).

use std::time::Duration;

use serde::Deserialize;

/// Which actions a budget counts: by `uses` or by action id, `*` matching
/// any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetMatch {
    Uses(String),
    Id(String),
}

/// At most `limit` runs of the matching actions per `per` window, across
/// every instance (with a state table) or per instance (without).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionBudget {
    pub matches: BudgetMatch,
    pub limit: u32,
    pub per: Duration,
}

impl ActionBudget {
    /// Whether the budget counts an action.
    pub fn applies(&self, uses: &str, action_id: &str) -> bool {
        match &self.matches {
            BudgetMatch::Uses(pattern) => glob_match(pattern, uses),
            BudgetMatch::Id(pattern) => glob_match(pattern, action_id),
        }
    }

    /// Its name in records, outcomes and the state table: `uses=virustotal.*`.
    pub fn name(&self) -> String {
        match &self.matches {
            BudgetMatch::Uses(pattern) => format!("uses={pattern}"),
            BudgetMatch::Id(pattern) => format!("id={pattern}"),
        }
    }

    /// `uses=virustotal.* (4 per 60 s)`.
    pub fn describe(&self) -> String {
        format!("{} ({} per {} s)", self.name(), self.limit, self.per.as_secs())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    uses: Option<String>,
    id: Option<String>,
    limit: u32,
    per_seconds: u64,
}

/// Longest `uses` or `id` pattern.
const MAX_PATTERN_BYTES: usize = 256;

/// Parses `ACTION_BUDGETS`: a JSON list of `{"uses"|"id": glob, "limit": n,
/// "per_seconds": s}`. An error names the entry and what is wrong with it.
pub fn parse_action_budgets(text: &str) -> Result<Vec<ActionBudget>, String> {
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|err| format!("expected a JSON list of budgets: {err}"))?;
    let budgets = entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let written: Written = serde_json::from_value(entry).map_err(|err| {
                format!(
                    "budget [{index}]: {err} (expected {{\"uses\" or \"id\": glob, \"limit\": n, \"per_seconds\": s}})"
                )
            })?;
            let matches = match (written.uses, written.id) {
                (Some(uses), None) if !uses.trim().is_empty() => BudgetMatch::Uses(uses),
                (None, Some(id)) if !id.trim().is_empty() => BudgetMatch::Id(id),
                (Some(_), Some(_)) => return Err(format!("budget [{index}]: give `uses` or `id`, not both")),
                _ => return Err(format!("budget [{index}]: needs a non-empty `uses` or `id` pattern")),
            };
            let (BudgetMatch::Uses(pattern) | BudgetMatch::Id(pattern)) = &matches;
            // Action names and ids have no surrounding spaces: such a pattern
            // would match nothing, silently.
            if pattern.trim() != pattern {
                return Err(format!(
                    "budget [{index}]: the pattern {pattern:?} starts or ends with whitespace, so it matches no action"
                ));
            }
            // The counter's partition key holds the pattern (DynamoDB allows 2 KiB):
            // a pattern near that would fail every count.
            if pattern.len() > MAX_PATTERN_BYTES {
                return Err(format!(
                    "budget [{index}]: the pattern is {} bytes long; at most {MAX_PATTERN_BYTES}",
                    pattern.len()
                ));
            }
            if written.limit == 0 {
                return Err(format!(
                    "budget [{index}]: `limit` must be at least 1 (to stop an action, pause actions instead)"
                ));
            }
            if written.per_seconds == 0 || written.per_seconds > 31 * 86_400 {
                return Err(format!(
                    "budget [{index}]: `per_seconds` must be from 1 to 2678400 (31 days)"
                ));
            }
            Ok(ActionBudget {
                matches,
                limit: written.limit,
                per: Duration::from_secs(written.per_seconds),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    // Counters are named by pattern and window: two such budgets would share
    // one, and every run would count twice.
    for (index, budget) in budgets.iter().enumerate() {
        if let Some(first) = budgets[..index]
            .iter()
            .position(|earlier| earlier.matches == budget.matches && earlier.per == budget.per)
        {
            return Err(format!(
                "budget [{index}]: counts the same actions over the same window as budget [{first}] ({} per {} s); keep one",
                budget.name(),
                budget.per.as_secs()
            ));
        }
    }
    Ok(budgets)
}

/// `*` matches any run of characters (none included); everything else
/// matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_written() {
        for (pattern, text, expected) in [
            ("virustotal.*", "virustotal.lookup", true),
            ("virustotal.*", "virustotal.", true),
            ("virustotal.*", "otx.indicator", false),
            ("page-*", "page-oncall", true),
            ("*-critical", "page-critical", true),
            ("*", "anything", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXcYYb", false),
            ("ab*ba", "aba", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(glob_match(pattern, text), expected, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn budgets_parse_and_match() {
        let budgets = parse_action_budgets(
            r#"[{"uses": "virustotal.*", "limit": 4, "per_seconds": 60}, {"id": "page-*", "limit": 10, "per_seconds": 3600}]"#,
        )
        .unwrap();
        assert_eq!(budgets.len(), 2);
        assert!(budgets[0].applies("virustotal.lookup", "vt-1"));
        assert!(!budgets[0].applies("otx.indicator", "virustotal.x"));
        assert!(budgets[1].applies("pagerduty.trigger", "page-oncall"));
        // Each matches by its own field only.
        assert!(
            !budgets[1].applies("page-oncall", "pd-1"),
            "an `id` budget against a matching `uses`"
        );
        assert_eq!(budgets[0].describe(), "uses=virustotal.* (4 per 60 s)");
    }

    #[test]
    fn a_bad_budget_names_its_entry() {
        let long = format!(r#"[{{"id": "{}", "limit": 1, "per_seconds": 1}}]"#, "p".repeat(257));
        for (text, expected) in [
            ("{}", "expected a JSON list"),
            (
                r#"[{"uses": "a", "limit": 1, "per_seconds": 1}, {"limit": 1, "per_seconds": 1}]"#,
                "budget [1]: needs",
            ),
            (
                r#"[{"uses": "a", "id": "b", "limit": 1, "per_seconds": 1}]"#,
                "not both",
            ),
            (
                r#"[{"uses": "a", "limit": 0, "per_seconds": 1}]"#,
                "`limit` must be at least 1",
            ),
            (
                r#"[{"uses": "a", "limit": 1, "per_seconds": 0}]"#,
                "`per_seconds` must be",
            ),
            (r#"[{"uses": "a", "limit": 1}]"#, "missing field `per_seconds`"),
            (
                r#"[{"uses": "a", "limit": 1, "per_seconds": 1, "window": "x"}]"#,
                "unknown field `window`",
            ),
            (r#"[{"uses": "a", "limit": -1, "per_seconds": 1}]"#, "budget [0]"),
            (
                r#"[{"uses": "a", "limit": 1, "per_seconds": 1}, {"uses": " virustotal.*", "limit": 1, "per_seconds": 1}]"#,
                "budget [1]: the pattern \" virustotal.*\" starts or ends with whitespace",
            ),
            (long.as_str(), "budget [0]: the pattern is 257 bytes long; at most 256"),
            (
                r#"[{"uses": "vt.*", "limit": 4, "per_seconds": 60}, {"id": "vt.*", "limit": 1, "per_seconds": 60},
                    {"uses": "vt.*", "limit": 100, "per_seconds": 3600}, {"uses": "vt.*", "limit": 2, "per_seconds": 60}]"#,
                "budget [3]: counts the same actions over the same window as budget [0] (uses=vt.* per 60 s)",
            ),
        ] {
            let error = parse_action_budgets(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
