//! What may stop an action that the policy asked for and that is this
//! invocation's to run: the budgets (`ACTION_BUDGETS`) and the actions
//! switch (`alert-responder actions pause|resume`).
//!
//! Budgets count in fixed windows (one atomic conditional update per run:
//! cheap, and exact within a window; a burst straddling two windows can see
//! up to twice the limit in one window's length — a sliding window would
//! need a read of several windows per run). With a state table they count
//! across every instance; without one, per instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::ActionBudget;
use crate::state::{StateError, StateStore};

pub struct Guards {
    budgets: Vec<ActionBudget>,
    /// The state table: shared counters and the switch. `None`: counters
    /// of this instance, and no switch.
    state: Option<Arc<dyn StateStore>>,
    /// (budget, window start, window length) → runs counted
    local: Mutex<HashMap<(String, u64, u64), u32>>,
    /// How long a reading of the switch is trusted.
    refresh: Duration,
    switch_seen: Mutex<Option<(Instant, bool)>>,
}

impl Guards {
    pub fn new(budgets: Vec<ActionBudget>, state: Option<Arc<dyn StateStore>>, refresh: Duration) -> Guards {
        Guards {
            budgets,
            state,
            local: Mutex::default(),
            refresh,
            switch_seen: Mutex::default(),
        }
    }

    /// Whether actions are paused: read from the state table at most once
    /// per `refresh` per instance.
    pub async fn paused(&self) -> Result<bool, StateError> {
        let Some(state) = &self.state else {
            return Ok(false);
        };
        if let Some((at, paused)) = *self.switch_seen.lock().expect("not poisoned") {
            if at.elapsed() < self.refresh {
                return Ok(paused);
            }
        }
        let paused = state.actions_switch().await?.paused;
        *self.switch_seen.lock().expect("not poisoned") = Some((Instant::now(), paused));
        Ok(paused)
    }

    /// Counts a run of the action against every budget that matches it;
    /// `Some(budget)` names the first one that is spent (the action must
    /// not run).
    pub async fn admit(&self, uses: &str, action_id: &str) -> Result<Option<String>, StateError> {
        for budget in self.budgets.iter().filter(|b| b.applies(uses, action_id)) {
            let taken = match &self.state {
                Some(state) => state.take_budget(&budget.name(), budget.limit, budget.per).await?,
                None => self.take_local(budget, epoch_seconds()),
            };
            if !taken {
                return Ok(Some(budget.describe()));
            }
        }
        Ok(None)
    }

    fn take_local(&self, budget: &ActionBudget, now: u64) -> bool {
        let window = budget.per.as_secs().max(1);
        let start = now - now % window;
        let mut local = self.local.lock().expect("not poisoned");
        local.retain(|(_, from, length), _| from + length > now);
        let used = local.entry((budget.name(), start, window)).or_insert(0);
        if *used >= budget.limit {
            return false;
        }
        *used += 1;
        true
    }
}

fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_action_budgets;

    #[tokio::test]
    async fn without_a_table_each_budget_counts_in_this_instance() {
        let budgets = parse_action_budgets(
            r#"[{"uses": "vt.*", "limit": 2, "per_seconds": 3600}, {"id": "page", "limit": 1, "per_seconds": 1}]"#,
        )
        .unwrap();
        let guards = Guards::new(budgets, None, Duration::ZERO);
        assert!(!guards.paused().await.unwrap(), "no table, no switch");
        assert_eq!(guards.admit("vt.lookup", "a").await.unwrap(), None);
        assert_eq!(guards.admit("other", "b").await.unwrap(), None, "matches no budget");
        assert_eq!(guards.admit("vt.lookup", "c").await.unwrap(), None);
        assert_eq!(
            guards.admit("vt.lookup", "d").await.unwrap().as_deref(),
            Some("uses=vt.* (2 per 3600 s)")
        );
    }

    #[test]
    fn windows_of_different_budgets_expire_apart() {
        let budgets = parse_action_budgets(
            r#"[{"uses": "vt.*", "limit": 1, "per_seconds": 3600}, {"id": "page", "limit": 1, "per_seconds": 1}]"#,
        )
        .unwrap();
        let (hourly, second) = (&budgets[0], &budgets[1]);
        let guards = Guards::new(budgets.clone(), None, Duration::ZERO);
        let t = 7_200_000;
        assert!(guards.take_local(hourly, t));
        assert!(guards.take_local(second, t));
        assert!(!guards.take_local(second, t), "one per second");
        // A second later the short window is new; the hourly one is not.
        assert!(guards.take_local(second, t + 1));
        assert!(!guards.take_local(hourly, t + 1));
        assert!(guards.take_local(hourly, t + 3600));
    }
}
