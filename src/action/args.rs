//! Declared action arguments and their checks. A request is validated
//! against its action's declaration before anything runs, and `check` runs
//! the same code offline on what it can see of a policy's entries (every
//! argument's presence, and the values written literally): what a run would
//! reject, `check` rejects.

use std::collections::BTreeMap;

use serde_json::Value;

/// The type an argument must have.
/// Answers the host records itself (a timeout, a cancel): an approval
/// cannot offer them, or a person's answer would read as the host's.
pub const RESERVED_ANSWERS: &[&str] = &["timeout", "cancelled"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    String,
    Number,
    /// A whole number, zero or more (an issue number, milliseconds).
    Whole,
    Bool,
    /// An object whose values are strings (headers, message attributes).
    StringMap,
    /// An array of strings (labels, tags).
    StringList,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// A whole number from the first to the second.
    WholeIn(u64, u64),
    /// Answers offered as buttons: at most `max` distinct strings of 1 to
    /// `chars` characters without `|` (none: the default ones).
    Choices {
        max: usize,
        chars: usize,
    },
    /// Any JSON value.
    Any,
    /// A literal string, or a Secrets Manager reference
    /// `{"secret": "<name or ARN>", "key": "<JSON field>"}` resolved at run time.
    Secret,
}

impl ArgKind {
    fn accepts(self, value: &Value) -> bool {
        match self {
            ArgKind::String => value.is_string(),
            ArgKind::Number => value.is_number(),
            ArgKind::Whole => value.as_u64().is_some() || value.as_f64().is_some_and(|f| f >= 0.0 && f.fract() == 0.0),
            ArgKind::Bool => value.is_boolean(),
            ArgKind::StringMap => value.as_object().is_some_and(|m| m.values().all(Value::is_string)),
            ArgKind::StringList => value.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            ArgKind::OneOf(choices) => value.as_str().is_some_and(|s| choices.contains(&s)),
            ArgKind::WholeIn(low, high) => {
                ArgKind::Whole.accepts(value) && value.as_f64().is_some_and(|n| n >= low as f64 && n <= high as f64)
            }
            ArgKind::Choices { max, chars } => value.as_array().is_some_and(|list| {
                let mut seen = std::collections::HashSet::new();
                list.len() <= max
                    && list.iter().all(|choice| {
                        choice.as_str().is_some_and(|c| {
                            !c.trim().is_empty()
                                && c.chars().count() <= chars
                                && !c.contains('|')
                                && !RESERVED_ANSWERS.contains(&c)
                                && seen.insert(c)
                        })
                    })
            }),
            ArgKind::Any => true,
            ArgKind::Secret => value.is_string() || crate::secrets::SecretRef::parse(value).is_ok(),
        }
    }

    /// What a value must be, in words.
    pub fn describe(self) -> String {
        match self {
            ArgKind::String => "a string".to_string(),
            ArgKind::Number => "a number".to_string(),
            ArgKind::Whole => "a whole number (0 or more)".to_string(),
            ArgKind::Bool => "a boolean".to_string(),
            ArgKind::StringMap => "an object of strings".to_string(),
            ArgKind::StringList => "an array of strings".to_string(),
            ArgKind::OneOf(choices) => format!("one of {}", choices.join(", ")),
            ArgKind::WholeIn(low, high) => format!("a whole number from {low} to {high}"),
            ArgKind::Choices { max, chars } => {
                format!(
                    "an array of at most {max} different strings, each 1 to {chars} characters without '|', none of {}",
                    RESERVED_ANSWERS.join(", ")
                )
            }
            ArgKind::Any => "any JSON value".to_string(),
            ArgKind::Secret => "a string or {\"secret\": \"<name or ARN>\", \"key\": \"<field>\"}".to_string(),
        }
    }

    /// How to write a value of this kind, for a message that says how to fix one.
    fn example(self) -> String {
        match self {
            ArgKind::String => "write it in quotes, e.g. \"value\"".to_string(),
            ArgKind::Number => "write a number without quotes, e.g. 3000".to_string(),
            ArgKind::Whole => "write a whole number without quotes, e.g. 42".to_string(),
            ArgKind::Bool => "write true or false without quotes".to_string(),
            ArgKind::StringMap => "write an object of strings, e.g. {\"name\": \"value\"}".to_string(),
            ArgKind::StringList => "write an array of strings, e.g. [\"a\", \"b\"]".to_string(),
            ArgKind::OneOf(choices) => format!("use one of {}", choices.join(", ")),
            ArgKind::WholeIn(low, high) => format!("write a whole number from {low} to {high} without quotes"),
            ArgKind::Choices { max, .. } => {
                format!("offer at most {max} different answers, e.g. [\"approve\", \"deny\"]")
            }
            ArgKind::Any => String::new(),
            ArgKind::Secret => {
                "write a Secrets Manager reference, e.g. {\"secret\": \"alert-responder/x\", \"key\": \"token\"}"
                    .to_string()
            }
        }
    }
}

/// One declared argument of an action.
#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: ArgKind,
    pub required: bool,
    pub doc: &'static str,
}

impl ArgSpec {
    pub const fn required(name: &'static str, kind: ArgKind, doc: &'static str) -> ArgSpec {
        ArgSpec {
            name,
            kind,
            required: true,
            doc,
        }
    }
    pub const fn optional(name: &'static str, kind: ArgKind, doc: &'static str) -> ArgSpec {
        ArgSpec {
            name,
            kind,
            required: false,
            doc,
        }
    }
}

/// A rule between arguments.
#[derive(Debug, Clone, Copy)]
pub enum ArgRule {
    /// Exactly one of these is given.
    ExactlyOne(&'static [&'static str]),
    /// When the first is given, the second is required.
    Requires(&'static str, &'static str),
}

/// What `check` or a run knows of one argument.
#[derive(Debug, Clone, Copy)]
pub enum Known<'a> {
    /// Its value (a run: always; `check`: when written literally).
    Value(&'a Value),
    /// Present, computed by the policy when it runs.
    Computed,
}

/// One thing wrong with a request's arguments: which argument, what, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgProblem {
    pub arg: String,
    pub problem: String,
    pub fix: String,
}

impl std::fmt::Display for ArgProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.arg.split_once('/') {
            Some((first, second)) => write!(f, "arguments `{first}` and `{second}`: {}", self.problem)?,
            None => write!(f, "argument `{}` {}", self.arg, self.problem)?,
        }
        if !self.fix.is_empty() {
            write!(f, ": {}", self.fix)?;
        }
        Ok(())
    }
}

/// Every problem of `args` against the declarations: required ones given,
/// values of their kind, none unknown, the rules between them kept. A null
/// value counts as not given.
pub fn check_args(specs: &[ArgSpec], rules: &[ArgRule], args: &BTreeMap<&str, Known<'_>>) -> Vec<ArgProblem> {
    let given = |name: &str| match args.get(name) {
        Some(Known::Computed) => true,
        Some(Known::Value(value)) => !value.is_null(),
        None => false,
    };
    let mut problems = Vec::new();
    for spec in specs {
        match args.get(spec.name) {
            _ if spec.required && !given(spec.name) => problems.push(ArgProblem {
                arg: spec.name.to_string(),
                problem: format!("is required ({})", spec.kind.describe()),
                fix: format!("add `\"{}\": ...` to the entry's args", spec.name),
            }),
            Some(Known::Value(value)) if !value.is_null() && !spec.kind.accepts(value) => problems.push(ArgProblem {
                arg: spec.name.to_string(),
                problem: format!("must be {} (got {})", spec.kind.describe(), got(value)),
                fix: spec.kind.example(),
            }),
            _ => {}
        }
    }
    for name in args.keys().filter(|name| !specs.iter().any(|s| s.name == **name)) {
        let known: Vec<_> = specs.iter().map(|s| s.name).collect();
        problems.push(ArgProblem {
            arg: name.to_string(),
            problem: "is not an argument of this action".to_string(),
            fix: format!("remove it, or use one of {}", known.join(", ")),
        });
    }
    for rule in rules {
        match *rule {
            ArgRule::ExactlyOne(names) => {
                let count = names.iter().filter(|n| given(n)).count();
                if count != 1 {
                    problems.push(ArgProblem {
                        arg: names.join("/"),
                        problem: format!("give exactly one of them ({count} given)"),
                        fix: String::new(),
                    });
                }
            }
            ArgRule::Requires(when, then) if given(when) && !given(then) => problems.push(ArgProblem {
                arg: then.to_string(),
                problem: format!("is required with `{when}`"),
                fix: format!("add `\"{then}\": ...` to the entry's args"),
            }),
            ArgRule::Requires(..) => {}
        }
    }
    problems
}

/// What a wrong value was: its kind, and a short string itself.
fn got(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(_) => "a boolean".to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
        Value::String(_) => "a string".to_string(),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}
