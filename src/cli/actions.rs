//! `actions pause|resume|status`: the kill switch. It sets a control item
//! in the state table; every instance reads it at most every 10 s and,
//! while paused, skips every action (decisions, records and outcomes still
//! flow, as `skipped` with `skip_reason: paused`).

use anyhow::Context;

use crate::app;
use crate::aws::sdk_config;
use crate::config::Config;
use crate::state::ActionsSwitch;

#[derive(Debug, Clone, clap::Args)]
pub struct ActionsArgs {
    #[command(subcommand)]
    pub change: SwitchCommand,
    /// The deployment's state table (default: STATE_TABLE).
    #[arg(long, global = true, value_name = "TABLE")]
    pub table: Option<String>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum SwitchCommand {
    /// Stop running actions (every instance, within 10 s).
    Pause {
        /// Why: shown by `status` and kept with the switch.
        #[arg(long)]
        reason: Option<String>,
        /// Who: default $USER.
        #[arg(long)]
        by: Option<String>,
    },
    /// Run actions again.
    Resume {
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// Print whether actions run, and who changed that, when and why.
    Status,
}

/// Exit codes: 0 done (`status`: running); 3 `status`: paused.
pub async fn run(args: ActionsArgs) -> anyhow::Result<i32> {
    // Only the table: nothing else configured may stand in the way of the switch.
    let table = args
        .table
        .or_else(Config::state_table_from_env)
        .context("no state table: give --table TABLE (the StateTableName output of the stack) or set STATE_TABLE")?;
    let config = Config {
        state_table: Some(table.clone()),
        ..Config::default()
    };
    let state = app::state(&config, &sdk_config()).context("the state table")?;
    let change = |paused: bool, reason: Option<String>, by: Option<String>| ActionsSwitch {
        paused,
        reason,
        changed_by: by.or_else(|| std::env::var("USER").ok()),
        changed_at: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    };
    let asked_status = matches!(args.change, SwitchCommand::Status);
    let switch = match args.change {
        SwitchCommand::Pause { reason, by } => {
            let switch = change(true, reason, by);
            state.set_actions_switch(&switch).await?;
            switch
        }
        SwitchCommand::Resume { reason, by } => {
            let switch = change(false, reason, by);
            state.set_actions_switch(&switch).await?;
            switch
        }
        SwitchCommand::Status => state.actions_switch().await?,
    };
    println!("{}", describe(&table, &switch));
    if !asked_status {
        let refresh = Config::default().actions_switch_refresh.as_secs();
        println!("every instance reads the switch at most every {refresh} s: actions that start later follow it (one already running finishes)");
    }
    Ok(if asked_status && switch.paused { 3 } else { 0 })
}

fn describe(table: &str, switch: &ActionsSwitch) -> String {
    let state = if switch.paused { "paused" } else { "running" };
    let mut line = format!("actions {state} (state table {table})");
    if let Some(at) = &switch.changed_at {
        line.push_str(&format!(" since {at}"));
    }
    if let Some(by) = &switch.changed_by {
        line.push_str(&format!(" by {by}"));
    }
    if let Some(reason) = &switch.reason {
        line.push_str(&format!(": {reason}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_says_who_when_and_why() {
        let switch = ActionsSwitch {
            paused: true,
            reason: Some("VirusTotal quota".into()),
            changed_by: Some("alice".into()),
            changed_at: Some("2026-11-29T17:00:00Z".into()),
        };
        assert_eq!(
            describe("t", &switch),
            "actions paused (state table t) since 2026-11-29T17:00:00Z by alice: VirusTotal quota"
        );
        assert_eq!(
            describe("t", &ActionsSwitch::default()),
            "actions running (state table t)"
        );
    }
}
