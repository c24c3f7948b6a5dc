//! `test`: Rego unit tests (`test_*` rules), the way `opa test` runs them.

use regex::Regex;

use super::args::{policy_source_line, PolicyArgs};
use crate::config::{Config, PolicySource};
use crate::policy::unit_test::{TestSuite, Verdict};
use crate::policy::{load_test_data, read_source};

#[derive(Debug, Clone, clap::Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub policies: PolicyArgs,
    /// Run only tests whose `<package>.<rule>` (or `data.<package>.<rule>`,
    /// as `opa test` names them) matches this regular expression.
    #[arg(long, value_name = "REGEX")]
    pub run: Option<String>,
    /// Print every test, and print() output of passing tests too.
    #[arg(long, short)]
    pub verbose: bool,
    /// Report covered and not covered lines per policy file.
    #[arg(long)]
    pub coverage: bool,
}

/// Exit codes: 0 all passed; 1 a test failed or errored, or none ran.
pub async fn run(args: TestArgs) -> anyhow::Result<i32> {
    let mut config = Config::from_env()?;
    args.policies.apply(&mut config);
    println!("{}", policy_source_line(&config)?);
    let filter = args.run.as_deref().map(Regex::new).transpose()?;
    let mut suite = TestSuite::compile(read_source(&config.policies)?, config.policy_timeout)?;
    // Data files beside the policies, as `opa test` loads them.
    if let PolicySource::Dir(dir) = &config.policies {
        suite = suite.with_data(load_test_data(dir)?)?;
    }
    let (results, coverage) = suite.run(
        |case| {
            filter
                .as_ref()
                .is_none_or(|re| re.is_match(case.name()) || re.is_match(&case.path))
        },
        args.coverage,
    );

    let mut passed = 0;
    let mut failed = 0;
    let mut skipped = 0;
    for result in &results {
        let location = format!("{}:{}", result.case.file, result.case.line);
        match result.verdict {
            Verdict::Pass => {
                passed += 1;
                if args.verbose {
                    println!("PASS  {} ({location}, {:.1?})", result.case.name(), result.duration);
                }
            }
            Verdict::Fail => {
                failed += 1;
                println!(
                    "FAIL  {} ({location}): evaluated to {}",
                    result.case.name(),
                    result.detail
                );
            }
            Verdict::Error => {
                failed += 1;
                println!("ERROR {} ({location}): {}", result.case.name(), result.detail);
            }
            Verdict::Skip => {
                skipped += 1;
                println!("SKIPPED {} ({location})", result.case.name());
            }
        }
        if !matches!(result.verdict, Verdict::Pass | Verdict::Skip) || args.verbose {
            for line in &result.prints {
                println!("      print: {line}");
            }
        }
    }
    print_coverage(&coverage);
    match skipped {
        0 => println!("{passed} passed, {failed} failed"),
        _ => println!("{passed} passed, {failed} failed, {skipped} skipped"),
    }
    if results.is_empty() {
        match (&args.run, suite.cases().len()) {
            (Some(run), found) if found > 0 => {
                eprintln!("error: no test matches --run {run:?} ({found} test(s) found)")
            }
            _ => eprintln!("error: no tests found (rules named test_* in the loaded policies)"),
        }
        return Ok(1);
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

fn print_coverage(coverage: &[crate::policy::unit_test::FileCoverage]) {
    for file in coverage {
        let total = file.covered.len() + file.not_covered.len();
        let percent = if total == 0 {
            100.0
        } else {
            100.0 * file.covered.len() as f64 / total as f64
        };
        println!(
            "coverage {}: {percent:.1}% ({} of {total} lines)",
            file.file,
            file.covered.len()
        );
        if !file.not_covered.is_empty() {
            let lines: Vec<String> = file.not_covered.iter().map(u32::to_string).collect();
            println!("  not covered: {}", lines.join(", "));
        }
    }
}
