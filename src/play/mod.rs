//! `play`: scenarios run the real policies and decision with mocked action
//! results, and check what happened against expectations. No action executes
//! and no AWS call is made; results are deterministic.
//!
//! A scenario (YAML or JSON):
//!
//! ```yaml
//! id: escalate-high
//! title: a high alert with a new IP is looked up, then notified
//! env: {WEBHOOK_URL: "https://hooks.example.org/x"}
//! state: {matano: {pages: 1}}    # persisted attributes before the first event
//! events:
//!   - input_file: ../../examples/matano_alert_change.json   # or `input:` inline
//!     input_patch: {updated_alert: {severity: critical}}    # RFC 7396 merge patch
//!     schema: matano                                        # optional
//!     advance: 2h                # the virtual clock moves first (TTLs expire)
//!     expect: {rounds: [[lookup_ip_185.220.101.4], [notify_webhook]]}  # this event only
//! actions:                       # by action id, else by `uses`; used in order
//!   lookup_ip_185.220.101.4: [{result: {status: 200, body: {country: RO}}}]
//!   webhook.post: [{result: {status: 200}}]
//!   http.fetch: [{error: "HTTP 500", result: {status: 500}}]
//! expect:
//!   alerts: {count: 1, titles: ["AWS Root Credentials Change"], attrs: {escalate: true}}
//!   rounds: [["lookup_ip_185.220.101.4"], ["notify_webhook"]]
//!   not_run: [page_oncall]
//!   attrs: {country_185.220.101.4: RO}
//!   stop: completed
//! ```
//!
//! The events of a scenario share one in-memory state store, as the events
//! of one deployment share the state table: persisted attributes, counters,
//! change order (a stale change is not acted on: `expect: {stale: true}`)
//! and claims (a repeated change replays what ran).
//!
//! `scenario` is the file format, `load` finds and reads the files
//! (AlertChain's through `alertchain`), `mock` the mocked actions, `run` one
//! scenario through `decide`, `expect` the checks.

mod alertchain;
mod expect;
mod load;
mod mock;
mod report;
mod run;
mod scenario;

pub use alertchain::alertchain_log;
pub use load::{load_mocks, load_scenarios};
pub use mock::MockedActions;
pub use run::{explore, play};
pub use scenario::{Scenario, ScenarioError};
