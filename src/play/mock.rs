//! Mocked actions: the real declarations (so bad arguments fail as they
//! would for real), results from the scenario, consumed in order, by action
//! id first, then by `uses`. A run with no mocked result left fails, and is
//! noted as a miss: every result a scenario depends on is written down.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde_json::Value;

use super::scenario::MockResult;
use crate::action::{Action, ActionCall, ActionError, ArgRule, ArgSpec, Registry};

#[derive(Default)]
struct MockTable {
    remaining: HashMap<String, VecDeque<MockResult>>,
    /// Runs that found no result, in words, until taken.
    misses: Vec<String>,
    /// Answer `null` where no result is given (exploring, for `check`;
    /// AlertChain's scenarios).
    lenient: bool,
    /// Say so when answering `null` for want of a result (AlertChain's
    /// scenarios: a warning, not a failure).
    warn: bool,
    /// Runs answered `null` for want of a result, in words, until taken.
    warnings: Vec<String>,
}

/// What a mock takes from the real action it stands in for.
struct Declaration {
    uses: &'static str,
    args: &'static [ArgSpec],
    rules: &'static [ArgRule],
    aliases: &'static [(&'static str, &'static str)],
}

/// The mocked registry of one scenario (or of `run --mocks`) and what its
/// runs missed.
pub struct MockedActions {
    table: Arc<Mutex<MockTable>>,
    declarations: Vec<Declaration>,
}

impl MockedActions {
    pub fn new(real: &Registry, mocks: &BTreeMap<String, Vec<MockResult>>) -> MockedActions {
        let table = MockTable {
            remaining: mocks
                .iter()
                .map(|(key, results)| (key.clone(), results.iter().cloned().collect()))
                .collect(),
            misses: Vec::new(),
            lenient: false,
            warn: false,
            warnings: Vec::new(),
        };
        MockedActions {
            table: Arc::new(Mutex::new(table)),
            declarations: real
                .entries()
                .map(|(uses, action)| Declaration {
                    uses,
                    args: action.args(),
                    rules: action.rules(),
                    aliases: action.aliases(),
                })
                .collect(),
        }
    }

    /// Runs without a mocked result succeed with `null` instead of failing.
    pub(super) fn lenient(self) -> MockedActions {
        self.table.lock().expect("not poisoned").lenient = true;
        self
    }

    /// As [`MockedActions::lenient`], noting each such run as a warning.
    pub(super) fn lenient_with_warnings(self) -> MockedActions {
        {
            let mut table = self.table.lock().expect("not poisoned");
            table.lenient = true;
            table.warn = true;
        }
        self
    }

    /// Replaces the results still to give (AlertChain's per-event mocks).
    pub(super) fn reset(&self, mocks: &BTreeMap<String, Vec<MockResult>>) {
        self.table.lock().expect("not poisoned").remaining = mocks
            .iter()
            .map(|(key, results)| (key.clone(), results.iter().cloned().collect()))
            .collect();
    }

    /// Runs answered `null` for want of a result since the last call.
    pub(super) fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.table.lock().expect("not poisoned").warnings)
    }

    /// The same action names and declarations as the real registry, all mocked.
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::default();
        for declaration in &self.declarations {
            registry.register(MockAction {
                uses: declaration.uses,
                args: declaration.args,
                rules: declaration.rules,
                aliases: declaration.aliases,
                table: self.table.clone(),
            });
        }
        registry
    }

    /// The mocked results no run took, by action id or `uses`, in words: a
    /// key that names no action the policies ran (a misspelt id) or more
    /// results than runs.
    pub(super) fn unused(&self) -> Vec<String> {
        let table = self.table.lock().expect("not poisoned");
        let mut unused: Vec<String> = table
            .remaining
            .iter()
            .filter(|(_, left)| !left.is_empty())
            .map(|(key, left)| format!("{} mocked result(s) of {key:?} never used", left.len()))
            .collect();
        unused.sort();
        unused
    }

    /// Runs that found no mocked result since the last call.
    pub fn take_misses(&self) -> Vec<String> {
        std::mem::take(&mut self.table.lock().expect("not poisoned").misses)
    }
}

/// Stands in for a real action: same name, declared arguments and rules
/// between them, mocked result.
struct MockAction {
    uses: &'static str,
    args: &'static [ArgSpec],
    rules: &'static [ArgRule],
    aliases: &'static [(&'static str, &'static str)],
    table: Arc<Mutex<MockTable>>,
}

impl MockAction {
    fn take(&self, action_id: &str) -> Result<MockResult, ActionError> {
        let mut table = self.table.lock().expect("not poisoned");
        let found = [action_id, self.uses].into_iter().find_map(|key| {
            table
                .remaining
                .get_mut(key)
                .map(|queue| (key.to_string(), queue.pop_front()))
        });
        let miss = match found {
            Some((_, Some(mock))) => {
                if table.warn {
                    if let Some(note) = shape_warning(self.uses, action_id, &mock) {
                        table.warnings.push(note);
                    }
                }
                return Ok(mock);
            }
            _ if table.lenient => {
                if table.warn {
                    let note = format!(
                        "no mocked result for action {action_id:?} ({}): it returned null",
                        self.uses
                    );
                    table.warnings.push(note);
                }
                return Ok(MockResult {
                    result: None,
                    error: None,
                });
            }
            Some((key, None)) => format!("the mocked results of {key:?} are used up (action {action_id:?})"),
            None => format!(
                "no mocked result for action {action_id:?} ({}): add it under `actions:` by id or uses",
                self.uses
            ),
        };
        table.misses.push(miss.clone());
        Err(ActionError::NotConfigured(miss))
    }
}

/// A mocked result shaped as AlertChain's action returned it where ours
/// returns another shape: the mock is given as written, so a policy reading
/// it that way passes `play` and reads nothing once deployed. Said for
/// AlertChain's scenarios, whose mocks were written for its actions.
fn shape_warning(uses: &str, action_id: &str, mock: &MockResult) -> Option<String> {
    let result = mock.result.as_ref()?;
    let shaped = result.get("status").is_some_and(Value::is_number) && result.get("body").is_some();
    (uses == "http.fetch" && !shaped).then(|| {
        format!(
            "the mocked result of action {action_id:?} (http.fetch) has no `status` and `body`: http.fetch here returns {{status, headers, body}} where AlertChain's returned the body alone, so a policy reading this mock passes here and reads nothing deployed; mock {{\"status\": 200, \"body\": ...}} and read `body.<field>` (README, Coming from AlertChain)"
        )
    })
}

impl Action for MockAction {
    fn uses(&self) -> &'static str {
        self.uses
    }
    fn args(&self) -> &'static [ArgSpec] {
        self.args
    }
    fn rules(&self) -> &'static [ArgRule] {
        self.rules
    }
    fn aliases(&self) -> &'static [(&'static str, &'static str)] {
        self.aliases
    }
    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        let mock = self.take(call.action_id);
        Box::pin(async move {
            let mock = mock?;
            match mock.error {
                Some(message) => Err(ActionError::Failed {
                    transient: false,
                    message,
                    result: mock.result,
                }),
                None => Ok(mock.result.unwrap_or(Value::Null)),
            }
        })
    }
}
