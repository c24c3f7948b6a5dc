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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// Tokio's: a test pauses and advances it to see the refresh.
use tokio::time::Instant;

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
    /// The last reading, a failed one too; held across a read, so that the
    /// actions waiting on one share it rather than each reading the table
    /// (each read, failing, would take the SDK's retries again).
    switch_seen: tokio::sync::Mutex<Option<(Instant, Result<bool, StateError>)>>,
}

/// How long a failed reading of the switch answers for it.
const FAILED_READING_TRUSTED: Duration = Duration::from_secs(1);

impl Guards {
    pub fn new(budgets: Vec<ActionBudget>, state: Option<Arc<dyn StateStore>>, refresh: Duration) -> Guards {
        Guards {
            budgets,
            state,
            local: Mutex::default(),
            refresh,
            switch_seen: tokio::sync::Mutex::default(),
        }
    }

    /// Whether actions are paused: read from the state table at most once
    /// per `refresh` per instance.
    pub async fn paused(&self) -> Result<bool, StateError> {
        let Some(state) = &self.state else {
            return Ok(false);
        };
        let mut seen = self.switch_seen.lock().await;
        if let Some((at, reading)) = &*seen {
            // A failed reading is trusted briefly: long enough for the
            // actions that waited on it, not for the next records.
            let trusted = match reading {
                Ok(_) => self.refresh,
                Err(_) => self.refresh.min(FAILED_READING_TRUSTED),
            };
            if at.elapsed() < trusted {
                return reading.clone();
            }
        }
        let reading = state.actions_switch().await.map(|switch| switch.paused);
        *seen = Some((Instant::now(), reading.clone()));
        reading
    }

    /// Counts a run of the action against every budget that matches it;
    /// `Some(budget)` names the first one that is spent (the action must
    /// not run). A run that does not happen (spent, or a count that
    /// failed) is taken back from the budgets that had counted it: a
    /// per-minute budget refusing must not use up a daily one.
    pub async fn admit(&self, uses: &str, action_id: &str) -> Result<Option<String>, StateError> {
        let mut counted = Vec::new();
        let mut verdict = Ok(None);
        for budget in self.budgets.iter().filter(|b| b.applies(uses, action_id)) {
            let taken = match &self.state {
                Some(state) => state.take_budget(&budget.name(), budget.limit, budget.per).await,
                None => Ok(self.take_local(budget, epoch_seconds())),
            };
            match taken {
                Ok(Some(window_start)) => counted.push((budget, window_start)),
                Ok(None) => {
                    verdict = Ok(Some(budget.describe()));
                    break;
                }
                Err(err) => {
                    verdict = Err(err);
                    break;
                }
            }
        }
        if !matches!(verdict, Ok(None)) {
            self.take_back(&counted).await;
        }
        verdict
    }

    /// Takes back runs counted by [`Guards::admit`]. One that cannot be
    /// taken back stays counted: budgets err on the side of running less.
    async fn take_back(&self, counted: &[(&ActionBudget, u64)]) {
        for (budget, window_start) in counted {
            match &self.state {
                Some(state) => {
                    if let Err(err) = state.return_budget(&budget.name(), budget.per, *window_start).await {
                        tracing::warn!(budget = %budget.describe(), error = %err, "could not take back a run from a budget; it stays counted");
                    }
                }
                None => self.return_local(budget, *window_start),
            }
        }
    }

    /// Counts a run in this instance: the window's start, or `None` when spent.
    fn take_local(&self, budget: &ActionBudget, now: u64) -> Option<u64> {
        let window = budget.per.as_secs().max(1);
        let start = now - now % window;
        let mut local = self.local.lock().expect("not poisoned");
        local.retain(|(_, from, length), _| from + length > now);
        let used = local.entry((budget.name(), start, window)).or_insert(0);
        if *used >= budget.limit {
            return None;
        }
        *used += 1;
        Some(start)
    }

    fn return_local(&self, budget: &ActionBudget, window_start: u64) {
        let window = budget.per.as_secs().max(1);
        let mut local = self.local.lock().expect("not poisoned");
        if let Some(used) = local.get_mut(&(budget.name(), window_start, window)) {
            *used = used.saturating_sub(1);
        }
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
        assert_eq!(guards.take_local(hourly, t), Some(t));
        assert_eq!(guards.take_local(second, t), Some(t));
        assert_eq!(guards.take_local(second, t), None, "one per second");
        // A second later the short window is new; the hourly one is not.
        assert_eq!(guards.take_local(second, t + 1), Some(t + 1));
        assert_eq!(guards.take_local(hourly, t + 1), None);
        assert_eq!(guards.take_local(hourly, t + 3600), Some(t + 3600));
    }

    /// A monthly budget and a daily one on the same actions, the longer one
    /// first: runs the short one refuses are not counted by the long one.
    /// (Windows this long: the wall clock does not cross one mid-test.)
    fn monthly_and_daily() -> Vec<ActionBudget> {
        parse_action_budgets(
            r#"[{"uses": "vt.*", "limit": 3, "per_seconds": 2678400}, {"uses": "vt.*", "limit": 1, "per_seconds": 86400}]"#,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_run_one_budget_refuses_is_taken_back_from_the_others() {
        let guards = Guards::new(monthly_and_daily(), None, Duration::ZERO);
        assert_eq!(guards.admit("vt.lookup", "a").await.unwrap(), None);
        for id in ["b", "c", "d"] {
            assert_eq!(
                guards.admit("vt.lookup", id).await.unwrap().as_deref(),
                Some("uses=vt.* (1 per 86400 s)"),
                "the daily budget refuses {id}"
            );
        }
        // The monthly budget counted one run, not four: two are left.
        let monthly = &guards.budgets[0];
        let now = epoch_seconds();
        let start = now - now % 2678400;
        assert_eq!(guards.take_local(monthly, now), Some(start));
        assert_eq!(guards.take_local(monthly, now), Some(start));
        assert_eq!(guards.take_local(monthly, now), None);
    }

    /// "At most every 10 s per instance" holds for concurrent actions too:
    /// those that find the reading stale together share one read.
    #[tokio::test]
    async fn concurrent_actions_share_one_reading_of_the_switch() {
        let state = Arc::new(crate::memory::MemoryState::new());
        state.set_slow_switch(true);
        let shared: Arc<dyn StateStore> = state.clone();
        let guards = Guards::new(Vec::new(), Some(shared), Duration::from_secs(10));
        let readings = futures::future::join_all((0..8).map(|_| guards.paused())).await;
        assert!(readings.iter().all(|r| matches!(r, Ok(false))), "{readings:?}");
        assert_eq!(state.switch_reads(), 1);
        // A reading that failed answers the actions that waited on it
        // (the table is not asked again for each), and no longer.
        state.set_unavailable(true);
        let guards = Guards::new(
            Vec::new(),
            Some(state.clone() as Arc<dyn StateStore>),
            Duration::from_secs(10),
        );
        let readings = futures::future::join_all((0..8).map(|_| guards.paused())).await;
        assert!(readings.iter().all(Result::is_err), "{readings:?}");
        assert_eq!(state.switch_reads(), 2);
        state.set_unavailable(false);
        let guards = Guards::new(Vec::new(), Some(state.clone() as Arc<dyn StateStore>), Duration::ZERO);
        assert!(!guards.paused().await.unwrap());
        assert_eq!(state.switch_reads(), 3);
    }

    #[tokio::test]
    async fn with_a_table_a_refused_run_is_taken_back_too() {
        let state = Arc::new(crate::memory::MemoryState::with_virtual_clock(1_700_000_000));
        let shared: Arc<dyn StateStore> = state.clone();
        let guards = Guards::new(monthly_and_daily(), Some(Arc::clone(&shared)), Duration::ZERO);
        assert_eq!(guards.admit("vt.lookup", "a").await.unwrap(), None);
        assert!(guards.admit("vt.lookup", "b").await.unwrap().is_some());
        assert!(guards.admit("vt.lookup", "c").await.unwrap().is_some());
        // Two monthly runs left in the table, whatever was refused.
        let monthly = guards.budgets[0].name();
        let month = Duration::from_secs(2678400);
        assert!(shared.take_budget(&monthly, 3, month).await.unwrap().is_some());
        assert!(shared.take_budget(&monthly, 3, month).await.unwrap().is_some());
        assert_eq!(shared.take_budget(&monthly, 3, month).await.unwrap(), None);
        let day = Duration::from_secs(86400);
        // Taking back never goes below zero.
        let start = shared.take_budget("other", 1, day).await.unwrap().unwrap();
        for _ in 0..3 {
            shared.return_budget("other", day, start).await.unwrap();
        }
        assert!(shared.take_budget("other", 1, day).await.unwrap().is_some());
        assert_eq!(shared.take_budget("other", 1, day).await.unwrap(), None);
    }
}
