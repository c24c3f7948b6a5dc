//! `uses` → executor: the built-in actions, sharing one HTTP client.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::args::{check_args, ArgProblem, Known};
use super::contract::{Action, ActionError};
use super::{approval, github, http, jira, openai, opsgenie, otx, pagerduty, slack, sns, virustotal, webhook};
use crate::config::Endpoints;

/// `uses` → executor.
#[derive(Clone, Default)]
pub struct Registry {
    actions: BTreeMap<&'static str, Arc<dyn Action>>,
}

impl Registry {
    /// The built-in actions, sharing one HTTP client.
    pub fn builtin(
        http: crate::http::HttpClient,
        endpoints: &Endpoints,
        topics: Option<Arc<dyn sns::TopicPublisher>>,
        default_topic: Option<String>,
    ) -> Registry {
        let mut registry = Registry::default();
        registry.register(http::Fetch::new(http.clone()));
        registry.register(webhook::Post::new(http.clone()));
        registry.register(sns::Publish::new(topics, default_topic));
        registry.register(slack::Post::new(http.clone(), endpoints.slack.clone()));
        registry.register(pagerduty::Event::trigger(http.clone(), endpoints.pagerduty.clone()));
        registry.register(pagerduty::Event::resolve(http.clone(), endpoints.pagerduty.clone()));
        registry.register(jira::CreateIssue::new(http.clone(), endpoints.jira.clone()));
        registry.register(jira::AddComment::new(http.clone(), endpoints.jira.clone()));
        registry.register(jira::AddAttachment::new(http.clone(), endpoints.jira.clone()));
        registry.register(github::CreateIssue::new(http.clone(), endpoints.github.clone()));
        registry.register(github::CreateComment::new(http.clone(), endpoints.github.clone()));
        // AlertChain's templates name it so.
        registry.alias("github.add_comment", "github.create_comment");
        registry.register(opsgenie::CreateAlert::new(http.clone(), endpoints.opsgenie.clone()));
        registry.register(virustotal::Lookup::new(http.clone(), endpoints.virustotal.clone()));
        registry.register(otx::Indicator::new(http.clone(), endpoints.otx.clone()));
        registry.register(openai::Chat::new(http.clone(), endpoints.openai.clone()));
        registry.register(openai::Query::new(http.clone(), endpoints.openai.clone()));
        // Answerable once the function's answer keys are known (`with_callbacks`).
        registry.register(approval::Request::new(http, endpoints.slack.clone(), None));
        registry.register(approval::Wait);
        registry
    }

    /// `approval.request` signing its answers with `callbacks`.
    pub fn with_callbacks(
        mut self,
        http: crate::http::HttpClient,
        slack: &str,
        callbacks: Arc<dyn approval::Callbacks>,
    ) -> Registry {
        self.register(approval::Request::new(http, slack.to_string(), Some(callbacks)));
        self
    }

    /// The built-in actions on an HTTP client with `settings`, public vendor
    /// endpoints, and no SNS client.
    pub fn with_http(settings: crate::http::HttpSettings) -> Registry {
        Registry::builtin(
            crate::http::HttpClient::new(settings),
            &Endpoints::default(),
            None,
            None,
        )
    }

    pub fn register(&mut self, action: impl Action + 'static) {
        self.actions.insert(action.uses(), Arc::new(action));
    }

    /// Makes `alias` another name of the action registered as `uses`
    /// (AlertChain's names of our actions).
    pub fn alias(&mut self, alias: &'static str, uses: &str) {
        if let Some(action) = self.actions.get(uses).cloned() {
            self.actions.insert(alias, action);
        }
    }

    pub fn get(&self, uses: &str) -> Option<&Arc<dyn Action>> {
        self.actions.get(uses)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.actions.keys().copied()
    }

    /// Checks `uses` and the arguments against the declaration, as
    /// [`Registry::check`] does: the first problem is the error.
    pub fn validate(&self, id: &str, uses: &str, args: &Map<String, Value>) -> Result<&Arc<dyn Action>, ActionError> {
        let known: BTreeMap<&str, Known<'_>> = args.iter().map(|(k, v)| (k.as_str(), Known::Value(v))).collect();
        let (action, problems) = self.check(id, uses, &known)?;
        match problems.into_iter().next() {
            Some(problem) => Err(ActionError::BadRequest(problem)),
            None => Ok(action),
        }
    }

    /// Every problem of a request's arguments (some possibly computed), for
    /// `check` and for runs alike; an unknown `uses` is an error.
    pub fn check(
        &self,
        id: &str,
        uses: &str,
        args: &BTreeMap<&str, Known<'_>>,
    ) -> Result<(&Arc<dyn Action>, Vec<ArgProblem>), ActionError> {
        let action = self.get(uses).ok_or_else(|| ActionError::Unknown {
            id: id.to_string(),
            uses: uses.to_string(),
        })?;
        let mut problems = Vec::new();
        let mut declared = BTreeMap::new();
        for (name, known) in args {
            let canonical = canonical_name(action.aliases(), name);
            if canonical != *name && args.contains_key(canonical) {
                problems.push(ArgProblem {
                    arg: format!("{name}/{canonical}"),
                    problem: format!("`{name}` is AlertChain's name for `{canonical}`: give one of them"),
                    fix: String::new(),
                });
            }
            declared.insert(canonical, *known);
        }
        problems.extend(check_args(action.args(), action.rules(), &declared));
        Ok((action, problems))
    }

    /// `args` with every alias of the action renamed to its declared name.
    pub fn canonical_args(&self, uses: &str, args: &Map<String, Value>) -> Map<String, Value> {
        let Some(action) = self.get(uses) else {
            return args.clone();
        };
        args.iter()
            .map(|(name, value)| (canonical_name(action.aliases(), name).to_string(), value.clone()))
            .collect()
    }

    /// Each name with the action it stands for (aliases included).
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &Arc<dyn Action>)> + '_ {
        self.actions.iter().map(|(name, action)| (*name, action))
    }
}

fn canonical_name<'a>(aliases: &'static [(&'static str, &'static str)], name: &'a str) -> &'a str {
    aliases
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, declared)| declared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> Registry {
        Registry::with_http(crate::http::HttpSettings::default())
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn unknown_uses_names_the_run_entry() {
        let err = registry()
            .validate("page-oncall", "pager.page", &Map::new())
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "unknown action \"pager.page\" (requested by run entry \"page-oncall\")"
        );
    }

    #[test]
    fn args_are_checked_against_the_declaration() {
        let r = registry();
        let err = r.validate("a", "http.fetch", &Map::new()).err().unwrap();
        assert!(err.to_string().starts_with("argument `url` is required"), "{err}");
        let err = r.validate("a", "http.fetch", &args(json!({"url": 5}))).err().unwrap();
        assert!(err.to_string().contains("`url` must be a string"), "{err}");
        let err = r
            .validate("a", "http.fetch", &args(json!({"url": "http://x", "methd": "GET"})))
            .err()
            .unwrap();
        assert!(err.to_string().contains("`methd` is not an argument"), "{err}");
        assert!(r
            .validate(
                "a",
                "http.fetch",
                &args(json!({"url": "http://x", "headers": {"a": "b"}}))
            )
            .is_ok());
    }

    /// A run refuses what `check` refuses: the kinds hold the ranges of a
    /// wait and an approval, and their answers.
    #[test]
    fn a_wait_or_an_approval_outside_its_limits_is_refused_before_it_runs() {
        let r = registry();
        let ask = |extra: Value| {
            let mut a = args(json!({"secret_token": "x", "channel": "C1"}));
            a.extend(args(extra));
            r.validate("ask", "approval.request", &a).err().map(|e| e.to_string())
        };
        for seconds in [0, 604_801] {
            let err = r
                .validate("w", "wait", &args(json!({"seconds": seconds})))
                .err()
                .unwrap();
            assert!(
                err.to_string()
                    .contains("`seconds` must be a whole number from 1 to 604800"),
                "{err}"
            );
        }
        assert!(r.validate("w", "wait", &args(json!({"seconds": 604_800}))).is_ok());
        for choices in [
            json!(["a", "b", "c", "d", "e", "f"]),
            json!(["a", "a"]),
            json!(["x|y"]),
            json!([" "]),
            json!(["timeout"]),
        ] {
            let err = ask(json!({"choices": choices})).unwrap_or_else(|| panic!("{choices} accepted"));
            assert!(
                err.contains("`choices` must be an array of at most 5 different strings"),
                "{err}"
            );
        }
        let err = ask(json!({"timeout_seconds": 0})).expect("a zero timeout refused");
        assert!(
            err.contains("`timeout_seconds` must be a whole number from 1 to 604800"),
            "{err}"
        );
        assert_eq!(
            ask(json!({"choices": ["isolate", "ignore"], "timeout_seconds": 60})),
            None
        );
    }
}
