//! Rego unit tests, the way `opa test` runs them: every rule named `test_*`
//! in the loaded packages, evaluated on its own, passes when it is `true`
//! (undefined, `false` or any other value fails); a rule named `todo_test_*`
//! is reported as skipped, never evaluated.

use std::time::Duration;

use serde::Serialize;

use super::{PolicyError, PolicyFile};

/// One discovered test rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// `data.<package>.<rule>`; a rule's second definition and later ones
    /// are tests of their own, `<rule>#01`, `<rule>#02`, as `opa test`
    /// names them.
    pub path: String,
    pub file: String,
    pub line: u32,
    /// The rule evaluated: `path`, or the name a later definition was
    /// given to run alone.
    rule: String,
}

impl TestCase {
    /// `<package>.<rule>`, the name `--run` filters on.
    pub fn name(&self) -> &str {
        self.path.trim_start_matches("data.")
    }

    /// A `todo_test_*` rule, which `opa test` skips.
    pub fn is_todo(&self) -> bool {
        self.path
            .rsplit('.')
            .next()
            .is_some_and(|rule| rule.starts_with("todo_test_"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Error,
    /// A `todo_test_*` rule: not run.
    Skip,
}

#[derive(Debug, Clone)]
pub struct TestResult {
    pub case: TestCase,
    pub verdict: Verdict,
    /// For failures: what the rule evaluated to; for errors: the error.
    pub detail: String,
    /// Output of `print()` during the test.
    pub prints: Vec<String>,
    pub duration: Duration,
}

/// Lines of one policy file a run evaluated, and those it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCoverage {
    pub file: String,
    pub covered: Vec<u32>,
    pub not_covered: Vec<u32>,
}

/// Compiled policies and tests, ready to run.
pub struct TestSuite {
    /// The modules as written.
    engine: regorus::Engine,
    /// The modules with their partial rules rewritten (`rewrite`), when
    /// some are: the tests run there, and again on `engine` for the
    /// coverage of the lines the rewrite moved.
    rewritten: Option<super::rewrite::Rewritten>,
    cases: Vec<TestCase>,
    /// The files loaded, in order, with the lines of their expressions:
    /// coverage names each, those no test reached too.
    files: Vec<(String, Vec<u32>)>,
}

impl TestSuite {
    /// Compiles every file (policies and tests together) and finds the tests.
    pub fn compile(files: Vec<PolicyFile>, timeout: Duration) -> Result<TestSuite, PolicyError> {
        // Written in regorus's syntax first (template strings, metadata
        // calls): the edits below are spans of the text regorus parses.
        let files = super::engine::in_regorus_syntax(files)?;
        let names: Vec<String> = files.iter().map(|file| file.name.clone()).collect();
        let mut engine = super::engine::compiled(files.clone(), timeout)?;
        // Each definition of a test rule is a test, as in `opa test`: the
        // later ones are renamed to run alone (on their own line). A
        // function of a package is called and mocked by its path, which
        // `with` reaches both ways. Edits of the text as written (the
        // compiled modules' text has the engine's own rewrites).
        let modules = super::engine::parsed(&files);
        let renamed = later_definitions(&modules);
        let functions = super::analysis::function_names(&modules);
        let mut edits: Vec<(String, usize, usize, String)> = renamed
            .iter()
            .map(|r| (r.file.clone(), r.start, r.end, r.name.clone()))
            .collect();
        for module in &modules {
            let Some(functions) = functions.get(&super::analysis::package_path(module)) else {
                continue;
            };
            let file = module.package.span.source.file();
            for (start, end, path) in super::analysis::short_function_refs(module, functions) {
                edits.push((file.clone(), start, end, path));
            }
        }
        if !edits.is_empty() {
            let files = files
                .into_iter()
                .map(|file| {
                    let edits = edits
                        .iter()
                        .filter(|(name, ..)| *name == file.name)
                        .map(|(_, start, end, with)| (*start, *end, with.as_str()));
                    PolicyFile {
                        text: super::hoist::replaced(&file.text, edits),
                        name: file.name,
                    }
                })
                .collect();
            engine = super::engine::compiled(files, timeout)?;
        }
        let modules = engine.get_modules();
        let files = names
            .into_iter()
            .map(|name| {
                let module = modules.iter().find(|m| *m.package.span.source.file() == name);
                let lines = module.map(|m| super::analysis::expression_lines(m).into_iter().collect());
                (name, lines.unwrap_or_default())
            })
            .collect();
        let mut cases = Vec::new();
        for module in engine.get_modules() {
            let package = module.package.refr.span().text().to_string();
            for rule in &module.policy {
                let regorus::unstable::Rule::Spec { head, .. } = rule.as_ref() else {
                    continue;
                };
                let refr = match head {
                    regorus::unstable::RuleHead::Compr { refr, .. } | regorus::unstable::RuleHead::Set { refr, .. } => {
                        refr
                    }
                    // Functions take arguments: they are helpers, not tests.
                    regorus::unstable::RuleHead::Func { .. } => continue,
                };
                let name = refr.span().text();
                if !(name.starts_with("test_") || name.starts_with("todo_test_")) || name.contains(['.', '[']) {
                    continue;
                }
                let span = rule.span();
                let shown = match renamed.iter().find(|r| r.name == name) {
                    Some(r) => r.shown.clone(),
                    None => name.to_string(),
                };
                let case = TestCase {
                    path: format!("data.{package}.{shown}"),
                    file: span.source.file().to_string(),
                    line: span.line,
                    rule: format!("data.{package}.{name}"),
                };
                if !cases.iter().any(|c: &TestCase| c.rule == case.rule) {
                    cases.push(case);
                }
            }
        }
        cases.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        // Tests run on the interpreter: its partial rules rewritten.
        let rewritten = super::rewrite::interpreter_engine(&mut engine, timeout);
        Ok(TestSuite {
            engine,
            rewritten,
            cases,
            files,
        })
    }

    /// Adds `data` (the data files beside the policies) to every test. A
    /// document at a rule's path is refused, as OPA refuses it: it would
    /// stand in for the rule.
    pub fn with_data(mut self, data: serde_json::Value) -> Result<TestSuite, PolicyError> {
        if let Some(conflict) = rule_under_data(&mut self.engine, &data) {
            return Err(PolicyError::Compile(format!("data files: {conflict}")));
        }
        if data.as_object().is_some_and(|o| !o.is_empty()) {
            let data = regorus::Value::from(data);
            for engine in std::iter::once(&mut self.engine).chain(self.rewritten.as_mut().map(|r| &mut r.engine)) {
                engine
                    .add_data(data.clone())
                    .map_err(|err| PolicyError::Compile(format!("data files: {err}")))?;
            }
        }
        Ok(self)
    }

    pub fn cases(&self) -> &[TestCase] {
        &self.cases
    }

    /// Runs the tests `filter` accepts; with `coverage`, also reports which
    /// policy lines the run evaluated.
    pub fn run(&self, filter: impl Fn(&TestCase) -> bool, coverage: bool) -> (Vec<TestResult>, Vec<FileCoverage>) {
        let mut engine = match &self.rewritten {
            Some(rewritten) => rewritten.engine.clone(),
            None => self.engine.clone(),
        };
        // Where the modules are rewritten, each test runs again on them as
        // written, for the coverage of the lines the rewrite moved.
        let mut as_written = self
            .rewritten
            .as_ref()
            .filter(|_| coverage)
            .map(|rewritten| (self.engine.clone(), rewritten));
        if coverage {
            engine.set_enable_coverage(true);
        }
        if let Some((as_written, _)) = as_written.as_mut() {
            as_written.set_enable_coverage(true);
        }
        let mut results = Vec::new();
        for case in self.cases.iter().filter(|c| filter(c)) {
            if case.is_todo() {
                results.push(TestResult {
                    case: case.clone(),
                    verdict: Verdict::Skip,
                    detail: String::new(),
                    prints: Vec::new(),
                    duration: Duration::ZERO,
                });
                continue;
            }
            let started = std::time::Instant::now();
            let outcome = engine.eval_rule(case.rule.clone());
            let duration = started.elapsed();
            if let Some((as_written, _)) = as_written.as_mut() {
                let _ = as_written.eval_rule(case.rule.clone());
                let _ = as_written.take_prints();
            }
            let prints = engine.take_prints().unwrap_or_default();
            let (verdict, detail) = match outcome {
                Ok(regorus::Value::Bool(true)) => (Verdict::Pass, String::new()),
                Ok(regorus::Value::Undefined) => (Verdict::Fail, "undefined".to_string()),
                Ok(regorus::Value::Bool(false)) => (Verdict::Fail, "false".to_string()),
                // As `opa test`: a test is a boolean rule.
                Ok(other) => (
                    Verdict::Fail,
                    format!(
                        "{} (a test passes only when it is true)",
                        serde_json::to_string(&other).unwrap_or_default()
                    ),
                ),
                Err(err) => (Verdict::Error, err.to_string()),
            };
            results.push(TestResult {
                case: case.clone(),
                verdict,
                detail,
                prints,
                duration,
            });
        }
        let report = if coverage {
            engine
                .get_coverage_report()
                .map(|report| match &as_written {
                    Some((written, rewritten)) => {
                        rewritten.coverage(report, written.get_coverage_report().ok().as_ref())
                    }
                    None => report,
                })
                .map(|report| {
                    report
                        .files
                        .into_iter()
                        .map(|f| FileCoverage {
                            file: f.path,
                            covered: f.covered.into_iter().collect(),
                            not_covered: f.not_covered.into_iter().collect(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let report = if coverage {
            self.with_untouched_files(report)
        } else {
            report
        };
        (results, report)
    }

    /// `report` for the loaded files, those no test reached too, all their
    /// lines not covered (regorus reports only the files evaluated; `opa
    /// test` each).
    fn with_untouched_files(&self, mut report: Vec<FileCoverage>) -> Vec<FileCoverage> {
        for (file, lines) in &self.files {
            if !report.iter().any(|f| f.file == *file) {
                report.push(FileCoverage {
                    file: file.clone(),
                    covered: Vec::new(),
                    not_covered: lines.clone(),
                });
            }
        }
        // The built-in `escape` module is not the author's to cover.
        report.retain(|f| self.files.iter().any(|(name, _)| *name == f.file));
        report.sort_by_key(|f| self.files.iter().position(|(name, _)| *name == f.file));
        report
    }
}

/// A later definition of a test rule, renamed to run alone.
struct Renamed {
    file: String,
    /// Where its name is written.
    start: usize,
    end: usize,
    /// The name it runs under (`test_x__ar_def1`).
    name: String,
    /// The name `opa test` gives it (`test_x#01`).
    shown: String,
}

/// The second and later definitions of each test rule of a package.
fn later_definitions(modules: &[regorus::unstable::Ref<regorus::unstable::Module>]) -> Vec<Renamed> {
    let mut seen: std::collections::BTreeMap<(String, String), usize> = std::collections::BTreeMap::new();
    let mut renamed = Vec::new();
    for module in modules {
        let package = module.package.refr.span().text().to_string();
        for rule in &module.policy {
            let regorus::unstable::Rule::Spec {
                head: regorus::unstable::RuleHead::Compr { refr, .. } | regorus::unstable::RuleHead::Set { refr, .. },
                ..
            } = rule.as_ref()
            else {
                continue;
            };
            let span = refr.span();
            let name = span.text();
            if !name.starts_with("test_") || name.contains(['.', '[']) {
                continue;
            }
            let count = seen.entry((package.clone(), name.to_string())).or_insert(0);
            if *count > 0 {
                renamed.push(Renamed {
                    file: span.source.file().to_string(),
                    start: span.start as usize,
                    end: span.end as usize,
                    name: format!("{name}__ar_def{count}"),
                    shown: format!("{name}#{count:02}"),
                });
            }
            *count += 1;
        }
    }
    renamed
}

/// The first rule whose path a data document also defines, in words.
fn rule_under_data(engine: &mut regorus::Engine, data: &serde_json::Value) -> Option<String> {
    for module in engine.get_modules() {
        let package = module.package.refr.span().text().to_string();
        for rule in &module.policy {
            let refr = match rule.as_ref() {
                regorus::unstable::Rule::Spec { head, .. } => match head {
                    regorus::unstable::RuleHead::Compr { refr, .. }
                    | regorus::unstable::RuleHead::Set { refr, .. }
                    | regorus::unstable::RuleHead::Func { refr, .. } => refr,
                },
                regorus::unstable::Rule::Default { refr, .. } => refr,
            };
            // The rule's name up to its first bracket (`p[x]` is `p`).
            let name = refr.span().text().split('[').next().unwrap_or_default();
            let path: Vec<&str> = package.split('.').chain(name.split('.')).collect();
            if path.iter().try_fold(data, |at, key| at.get(key)).is_some() {
                let span = rule.span();
                return Some(format!(
                    "a data file defines data.{}, which the rule at {}:{} defines too (OPA refuses the conflict)",
                    path.join("."),
                    span.source.file(),
                    span.line
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(files: &[(&str, &str)]) -> TestSuite {
        TestSuite::compile(
            files
                .iter()
                .map(|(name, text)| PolicyFile {
                    name: name.to_string(),
                    text: text.to_string(),
                })
                .collect(),
            Duration::from_secs(1),
        )
        .unwrap()
    }

    const POLICY: &str = "package alert.x\nalert contains {\"title\": \"t\"} if input.severity == \"high\"\n";

    #[test]
    fn a_data_document_at_a_rules_path_is_refused() {
        let conflicting = serde_json::json!({"alert": {"t": {"alert": 5}}});
        let err = suite(&[("t.rego", "package alert.t\nalert contains {\"title\": \"x\"} if true\n")])
            .with_data(conflicting)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("a data file defines data.alert.t.alert, which the rule at t.rego:2"),
            "{err}"
        );
        let beside = serde_json::json!({"alert": {"t": {"cfg": 5}}, "vip": {"users": ["a"]}});
        assert!(
            suite(&[("t.rego", "package alert.t\nalert contains {\"title\": \"x\"} if true\n")])
                .with_data(beside)
                .is_ok()
        );
    }

    /// As `opa test`: only `true` passes (a set, an object or a number
    /// fails), and a `todo_test_*` rule is skipped, not evaluated.
    #[test]
    fn only_true_passes_and_todo_tests_are_skipped() {
        let suite = suite(&[(
            "t_test.rego",
            "package t_test\ntest_true if true\ntest_set := {x | some x in [1]}\ntest_empty := set()\ntest_number := 1\ntodo_test_later if 1 / 0\n",
        )]);
        let (results, _) = suite.run(|_| true, false);
        let verdicts: Vec<(&str, Verdict)> = results.iter().map(|r| (r.case.name(), r.verdict)).collect();
        assert_eq!(
            verdicts,
            vec![
                ("t_test.test_true", Verdict::Pass),
                ("t_test.test_set", Verdict::Fail),
                ("t_test.test_empty", Verdict::Fail),
                ("t_test.test_number", Verdict::Fail),
                ("t_test.todo_test_later", Verdict::Skip),
            ]
        );
        assert_eq!(results[1].detail, "[1] (a test passes only when it is true)");
    }

    /// The suite's own edits (a function called by its short name, a test
    /// defined twice) are spans of the text with its template strings
    /// written as calls: taken from the text as written they fell past its
    /// end (a panic) or on other text.
    #[test]
    fn template_strings_before_the_suites_edits() {
        let suite = suite(&[(
            "p_test.rego",
            "package p\nmsg := $\"hi {input.x} and more text than the call below\"\nf(x) := x\n\
             test_f if f(1) == 1\ntest_f if f(2) == 2\n\
             test_msg if msg == \"hi 1 and more text than the call below\" with input.x as 1\n",
        )]);
        let (results, _) = suite.run(|_| true, false);
        let verdicts: Vec<(&str, Verdict)> = results.iter().map(|r| (r.case.name(), r.verdict)).collect();
        assert_eq!(
            verdicts,
            vec![
                ("p.test_f", Verdict::Pass),
                ("p.test_f#01", Verdict::Pass),
                ("p.test_msg", Verdict::Pass)
            ]
        );
    }

    /// A rule with a variable in its path that derives nothing is OPA's
    /// empty object in tests too, mocked or not, through the interpreter's
    /// own rewrite of it (its head term may be undefined).
    #[test]
    fn rules_with_a_variable_in_their_path_read_as_empty_objects() {
        let suite = suite(&[
            (
                "p.rego",
                "package p\nby_sev[s] contains a.id if {\n\tsome a in input.alerts\n\ts := a.sev\n}\nn := count(by_sev)\nnone := by_sev == {}\n",
            ),
            (
                "p_test.rego",
                "package p_test\nimport data.p\n\
                 test_empty if p.n == 0 with input as {}\n\
                 test_counted if p.n == 2 with input as {\"alerts\": [{\"id\": \"a\", \"sev\": \"h\"}, {\"id\": \"b\", \"sev\": \"l\"}]}\n\
                 test_mocked if p.n == 3 with data.p.by_sev as {\"a\": 1, \"b\": 2, \"c\": 3}\n\
                 test_none if p.none with input as {}\n\
                 test_by_path if count(data.p.by_sev) == 0 with input as {}\n\
                 test_by_alias if p.by_sev == {} with input as {}\n",
            ),
        ]);
        let (results, _) = suite.run(|_| true, false);
        let verdicts: Vec<(&str, Verdict)> = results.iter().map(|r| (r.case.name(), r.verdict)).collect();
        assert_eq!(
            verdicts,
            vec![
                ("p_test.test_empty", Verdict::Pass),
                ("p_test.test_counted", Verdict::Pass),
                ("p_test.test_mocked", Verdict::Pass),
                ("p_test.test_none", Verdict::Pass),
                ("p_test.test_by_path", Verdict::Pass),
                ("p_test.test_by_alias", Verdict::Pass)
            ]
        );
    }

    /// A test reads its own METADATA and the rule's it tests; the suite's
    /// renames (a test defined twice) apply to the text with the calls
    /// written as values.
    #[test]
    fn metadata_calls_in_policies_and_tests() {
        let suite = suite(&[(
            "p_test.rego",
            "package p\n# METADATA\n# title: Suspicious login\n# custom:\n#   severity: high\n\
             sev := rego.metadata.rule().custom.severity\n\
             # METADATA\n# title: own title\ntest_own if rego.metadata.rule().title == \"own title\"\n\
             test_sev if sev == \"high\"\ntest_sev if rego.metadata.rule() == {}\n",
        )]);
        let (results, _) = suite.run(|_| true, false);
        let verdicts: Vec<(&str, Verdict)> = results.iter().map(|r| (r.case.name(), r.verdict)).collect();
        assert_eq!(
            verdicts,
            vec![
                ("p.test_own", Verdict::Pass),
                ("p.test_sev", Verdict::Pass),
                ("p.test_sev#01", Verdict::Pass)
            ]
        );
    }

    /// As in OPA, a `with` target may name a rule of the package without
    /// `data.`, in a test body, under `every` and in a comprehension; the
    /// tests' own lines keep their numbers.
    #[test]
    fn with_targets_named_without_data_resolve_in_the_package() {
        let suite = suite(&[(
            "p_test.rego",
            "package alert.p\nthreshold := 5\nlimits.max := 5\nover if input.n > threshold\nover_limit if input.n > limits.max\n\
             test_name if over with threshold as 1 with input as {\"n\": 3}\n\
             test_path if over_limit with limits.max as 1 with input.n as 3\n\
             test_every if every t in [1, 2] { over with threshold as t with input as {\"n\": 3} }\n\
             test_compr if [t | some t in [1, 9]; over with threshold as t with input as {\"n\": 3}] == [1]\n\
             test_not_over if not over with threshold as 3 with input as {\"n\": 3}\n",
        )]);
        let (results, _) = suite.run(|_| true, false);
        let verdicts: Vec<(&str, u32, Verdict)> = results
            .iter()
            .map(|r| (r.case.name(), r.case.line, r.verdict))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                ("alert.p.test_name", 6, Verdict::Pass),
                ("alert.p.test_path", 7, Verdict::Pass),
                ("alert.p.test_every", 8, Verdict::Pass),
                ("alert.p.test_compr", 9, Verdict::Pass),
                ("alert.p.test_not_over", 10, Verdict::Pass),
            ]
        );
    }

    #[test]
    fn passes_failures_and_errors_are_told_apart() {
        let suite = suite(&[
            ("p.rego", POLICY),
            (
                "p_test.rego",
                r#"package alert.x_test

test_high_alerts if {
    count(data.alert.x.alert) == 1 with input as {"severity": "high"}
}

test_low_alerts if {
    print("checking low")
    count(data.alert.x.alert) == 1 with input as {"severity": "low"}
}

test_divides if {
    x := 1 / 0
    x > 0
}

helper(x) := x

not_a_test := true
"#,
            ),
        ]);
        let names: Vec<&str> = suite.cases().iter().map(TestCase::name).collect();
        assert_eq!(
            names,
            vec![
                "alert.x_test.test_high_alerts",
                "alert.x_test.test_low_alerts",
                "alert.x_test.test_divides"
            ]
        );
        let (results, _) = suite.run(|_| true, false);
        let verdicts: Vec<Verdict> = results.iter().map(|r| r.verdict).collect();
        assert_eq!(verdicts, vec![Verdict::Pass, Verdict::Fail, Verdict::Error]);
        assert_eq!(results[1].detail, "undefined");
        assert!(results[2].detail.contains("p_test.rego"), "{}", results[2].detail);
        assert_eq!(results[1].prints.len(), 1);
        assert!(results[1].prints[0].contains("checking low"));
        assert_eq!(
            (results[1].case.file.as_str(), results[1].case.line),
            ("p_test.rego", 7)
        );
    }

    #[test]
    fn coverage_reports_evaluated_lines() {
        let suite = suite(&[
            ("p.rego", POLICY),
            ("p_test.rego", "package alert.x_test\ntest_a if { count(data.alert.x.alert) == 1 with input as {\"severity\": \"high\"} }\n"),
        ]);
        let (_, coverage) = suite.run(|_| true, true);
        let policy = coverage
            .iter()
            .find(|f| f.file == "p.rego")
            .expect("coverage of p.rego");
        assert!(policy.covered.contains(&2), "{policy:?}");
    }

    /// As `opa test`: each definition of a test rule is a test, the later
    /// ones named `#01`, `#02` — a copied test that fails is not hidden by
    /// its original passing.
    #[test]
    fn each_definition_of_a_test_is_a_test() {
        let suite = suite(&[
            (
                "a_test.rego",
                "package t\ntest_x if 1 == 1\ntest_x if 1 == 2\ntest_y if true\n",
            ),
            ("b_test.rego", "package t\ntest_x if 2 == 2\n"),
        ]);
        let (results, _) = suite.run(|_| true, false);
        let verdicts: Vec<(&str, &str, u32, Verdict)> = results
            .iter()
            .map(|r| (r.case.name(), r.case.file.as_str(), r.case.line, r.verdict))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                ("t.test_x", "a_test.rego", 2, Verdict::Pass),
                ("t.test_x#01", "a_test.rego", 3, Verdict::Fail),
                ("t.test_y", "a_test.rego", 4, Verdict::Pass),
                ("t.test_x#02", "b_test.rego", 2, Verdict::Pass),
            ]
        );
    }

    /// As `opa test`: a function mocked by its path or by its short name
    /// reaches its calls written either way, from its package's tests and
    /// from another package's.
    #[test]
    fn function_mocks_reach_calls_written_either_way() {
        let suite = suite(&[
            (
                "p.rego",
                "package pkg\nf(x) := x + 1\nshort := f(1)\nfull := data.pkg.f(1)\nmock(x) := x + 100\n\
                 test_short_by_name if short == 101 with f as mock\n\
                 test_short_by_path if short == 101 with data.pkg.f as mock\n\
                 test_full_by_name if full == 101 with f as mock\n\
                 test_unmocked if short == 2\n\
                 test_negated_call if { x := 4; not f(x) == 1 }\n",
            ),
            (
                "p_test.rego",
                "package pkg_test\nmock(x) := x + 100\ntest_other_package if data.pkg.short == 101 with data.pkg.f as mock\n",
            ),
        ]);
        let (results, _) = suite.run(|_| true, false);
        let failed: Vec<(&str, &str)> = results
            .iter()
            .filter(|r| r.verdict != Verdict::Pass)
            .map(|r| (r.case.name(), r.detail.as_str()))
            .collect();
        assert_eq!(results.len(), 6);
        assert!(failed.is_empty(), "{failed:?}");
    }

    /// As `opa test --coverage`: a file no test reached is reported, every
    /// line of its expressions not covered.
    #[test]
    fn coverage_names_files_no_test_reached() {
        let suite = suite(&[
            ("p.rego", POLICY),
            ("q.rego", "package alert.q\nalert contains {\"title\": t} if {\n\tt := input.title\n\tcount(t) > 2\n}\n"),
            ("p_test.rego", "package alert.x_test\ntest_a if { count(data.alert.x.alert) == 1 with input as {\"severity\": \"high\"} }\n"),
        ]);
        let (_, coverage) = suite.run(|_| true, true);
        let files: Vec<&str> = coverage.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(files, vec!["p.rego", "q.rego", "p_test.rego"]);
        assert_eq!(coverage[1].covered, Vec::<u32>::new());
        assert_eq!(coverage[1].not_covered, vec![2, 3, 4]);
        // Without coverage asked for, nothing is reported.
        assert!(suite.run(|_| true, false).1.is_empty());
    }

    /// regorus's interpreter, which runs the tests, resets a partial rule
    /// when one iteration's head term is undefined; OPA skips that
    /// iteration. The tests see OPA's reading, and coverage the lines as
    /// written.
    #[test]
    fn partial_rules_with_undefined_head_terms_decide_as_in_opa() {
        let policy = "package alert.x\n\
            alert contains {\"title\": input.titles[k]} if {\n\
            \tsome k in input.keys\n\
            }\n\
            never contains input.titles[k] if {\n\
            \tsome k in input.nothing\n\
            }\n";
        let tests = "package alert.x_test\n\
            test_missing_title_skipped if {\n\
            \tdata.alert.x.alert == {{\"title\": \"a\"}} with input as {\"titles\": {\"k1\": \"a\"}, \"keys\": [\"k1\", \"k2\"]}\n\
            }\n\
            test_never if {\n\
            \tcount(data.alert.x.never) == 0 with input as {\"nothing\": []}\n\
            }\n";
        let suite = suite(&[("p.rego", policy), ("p_test.rego", tests)]);
        for coverage in [false, true] {
            let (results, _) = suite.run(|_| true, coverage);
            let verdicts: Vec<Verdict> = results.iter().map(|r| r.verdict).collect();
            assert_eq!(verdicts, [Verdict::Pass, Verdict::Pass], "{results:?}");
        }
        // Lines as written: `never`'s body ran, its head never did.
        let (_, coverage) = suite.run(|_| true, true);
        let policy = coverage
            .iter()
            .find(|f| f.file == "p.rego")
            .expect("coverage of p.rego");
        assert!(policy.covered.contains(&2) && policy.covered.contains(&3), "{policy:?}");
        assert!(
            policy.covered.contains(&6) && !policy.covered.contains(&5),
            "{policy:?}"
        );
    }
}
