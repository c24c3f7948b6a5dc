//! Builtins whose single call could build a value without bound, or panic
//! (`numbers.range(1, 1e18)` allocates it all at once; a zero step divides
//! by zero), are guarded on both engines: their arguments are checked before
//! the builtin runs. A call over a limit fails the evaluation with a limit
//! error (a `policy_error` naming the rule, never a crash or an out-of-memory
//! kill); an argument the builtin cannot take is its ordinary error.
//!
//! On the VM the guard replaces the builtin in the compiled program; on the
//! interpreter it is an extension of the same name, which the interpreter
//! calls before its builtins. `sprintf`'s check is run by the host's
//! `sprintf` (`policy::host`), which replaces regorus's.

use std::sync::OnceLock;

use regorus::rvm::program::Program;
use regorus::unstable::{Expr, Ref, Span, BUILTINS};
use regorus::{LimitError, Source, Value};

/// Most elements a range, or hosts a CIDR expansion, may produce.
pub(crate) const MAX_ELEMENTS: u64 = 1_000_000;
/// Widest `sprintf` field.
pub(super) const MAX_FORMAT_WIDTH: u64 = 100_000;
/// Widest shift of `bits.lsh`, in bits.
const MAX_SHIFT_BITS: u64 = 4096;
/// What one element of a built collection is counted as, for the error.
const ELEMENT_BYTES: u64 = 32;

/// Why a guarded call does not run.
enum Refusal {
    /// It would build more than the limit: `(elements, limit)`.
    TooLarge(u64, u64),
    /// An argument the builtin would fail on (or panic on).
    Invalid(String),
}

impl Refusal {
    fn into_error(self, name: &str) -> anyhow::Error {
        match self {
            Refusal::TooLarge(elements, limit) => {
                tracing::warn!(
                    builtin = name,
                    elements,
                    limit,
                    "builtin call refused: its result would be over the limit"
                );
                anyhow::Error::new(LimitError::MemoryLimitExceeded {
                    usage: elements.saturating_mul(ELEMENT_BYTES),
                    limit: limit.saturating_mul(ELEMENT_BYTES),
                })
            }
            Refusal::Invalid(reason) => anyhow::anyhow!("{name}: {reason}"),
        }
    }
}

type Check = fn(&[Value]) -> Result<(), Refusal>;

fn integer(value: &Value) -> Option<i128> {
    value.as_i64().ok().map(i128::from).or_else(|| {
        value
            .as_f64()
            .ok()
            .filter(|f| f.fract() == 0.0 && f.abs() < 1e30)
            .map(|f| f as i128)
    })
}

fn limit(elements: i128, limit: u64) -> Result<(), Refusal> {
    let elements = u64::try_from(elements.max(0)).unwrap_or(u64::MAX);
    if elements > limit {
        Err(Refusal::TooLarge(elements, limit))
    } else {
        Ok(())
    }
}

fn range(args: &[Value]) -> Result<(), Refusal> {
    match (args.first().and_then(integer), args.get(1).and_then(integer)) {
        (Some(a), Some(b)) => limit((b - a).abs() + 1, MAX_ELEMENTS),
        _ => Ok(()), // not integers: the builtin's own error
    }
}

fn range_step(args: &[Value]) -> Result<(), Refusal> {
    let (Some(a), Some(b)) = (args.first().and_then(integer), args.get(1).and_then(integer)) else {
        return Ok(());
    };
    match args.get(2).and_then(integer) {
        Some(step) if step > 0 => limit((b - a).abs() / step + 1, MAX_ELEMENTS),
        Some(_) => Err(Refusal::Invalid("step must be a positive integer".to_string())),
        None => Ok(()),
    }
}

fn lsh(args: &[Value]) -> Result<(), Refusal> {
    match args.get(1).and_then(integer) {
        Some(shift) if shift > i128::from(MAX_SHIFT_BITS) => Err(Refusal::TooLarge(
            u64::try_from(shift).unwrap_or(u64::MAX),
            MAX_SHIFT_BITS,
        )),
        _ => Ok(()),
    }
}

/// Field widths and precisions of a format string: bounded, and in ASCII
/// digits (others made regorus panic).
fn sprintf(args: &[Value]) -> Result<(), Refusal> {
    let Some(format) = args.first().and_then(|v| v.as_string().ok()) else {
        return Ok(());
    };
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        while chars.peek().is_some_and(|c| "+-# 0".contains(*c)) {
            chars.next();
        }
        let mut number: u64 = 0;
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() {
                number = number.saturating_mul(10).saturating_add(u64::from(c as u8 - b'0'));
            } else if c.is_numeric() {
                return Err(Refusal::Invalid(format!("{c:?} is not a digit of a field width")));
            } else if c == '.' {
                number = 0;
            } else {
                break;
            }
            if number > MAX_FORMAT_WIDTH {
                return Err(Refusal::TooLarge(number, MAX_FORMAT_WIDTH));
            }
            chars.next();
        }
        chars.next();
    }
    Ok(())
}

/// JSON or YAML text for regorus's parser: its values read an object with
/// this key as a number's text, exactly (`1e2000000000` is 10^2,000,000,000:
/// minutes and gigabytes that no timer or budget stops).
fn document_text(args: &[Value]) -> Result<(), Refusal> {
    match args.first().and_then(|v| v.as_string().ok()) {
        Some(text) if text.contains(PRIVATE_NUMBER) => Err(Refusal::Invalid(format!(
            "a `{PRIVATE_NUMBER}` key is not read (it asks for a number computed exactly)"
        ))),
        _ => Ok(()),
    }
}

/// Longest path `json.filter` / `json.remove` take, in segments (the
/// host's, `policy::host::paths`): each one nests a level built and
/// dropped recursively (in regorus's, a path of 200,000 slashes overflowed
/// the stack).
pub(super) const MAX_PATH_SEGMENTS: u64 = 1_000;

/// Most nodes `graph.reachable_paths` walks: it recurses once per node of
/// a path (a chain of 50,000 overflowed the stack).
pub(super) const MAX_GRAPH_NODES: u64 = 2_000;

/// Largest string `replace` may build, in bytes (the host's
/// `strings.replace_n` stops at it too):
/// `replace(s, "", t)` builds |s|·|t| at once.
pub(super) const MAX_BUILT_BYTES: u64 = 64 << 20;

/// The most a replacement of `old` by `new` in `text` can build.
fn replaced_size(text: &str, old: &str, new: &str) -> u64 {
    let matches = match old.len() {
        0 => text.chars().count() as u64 + 1,
        length => (text.len() / length) as u64,
    };
    (text.len() as u64).saturating_add(matches.saturating_mul(new.len() as u64))
}

fn replace(args: &[Value]) -> Result<(), Refusal> {
    let string = |index: usize| args.get(index).and_then(|v| v.as_string().ok());
    match (string(0), string(1), string(2)) {
        (Some(text), Some(old), Some(new)) => built(replaced_size(text, old, new)),
        _ => Ok(()),
    }
}

fn built(bytes: u64) -> Result<(), Refusal> {
    match bytes > MAX_BUILT_BYTES {
        true => Err(Refusal::TooLarge(
            bytes / ELEMENT_BYTES,
            MAX_BUILT_BYTES / ELEMENT_BYTES,
        )),
        false => Ok(()),
    }
}

/// The key serde's values use for a number kept as text.
pub(super) const PRIVATE_NUMBER: &str = "$serde_json::private::Number";

/// The guarded builtins, with their checks.
const GUARDS: &[(&str, Check)] = &[
    ("numbers.range", range),
    ("numbers.range_step", range_step),
    ("bits.lsh", lsh),
    ("json.unmarshal", document_text),
    ("json.is_valid", document_text),
    ("yaml.unmarshal", document_text),
    ("yaml.is_valid", document_text),
    ("replace", replace),
];

/// The names of the guarded builtins.
#[cfg(test)]
pub(super) fn guarded() -> impl Iterator<Item = &'static str> {
    GUARDS.iter().map(|(name, _)| *name)
}

type BuiltinFn = fn(&Span, &[Ref<Expr>], &[Value], bool) -> anyhow::Result<Value>;

/// Runs the check of `name`, then the builtin itself.
fn call_guarded(name: &str, span: &Span, params: &[Ref<Expr>], args: &[Value], strict: bool) -> anyhow::Result<Value> {
    if let Some((_, check)) = GUARDS.iter().find(|(guarded, _)| *guarded == name) {
        check(args).map_err(|refusal| refusal.into_error(name))?;
    }
    let (builtin, _) = BUILTINS
        .get(name)
        .ok_or_else(|| anyhow::anyhow!("{name} is not a builtin of this build"))?;
    builtin(span, params, args, strict)
}

macro_rules! guarded {
    ($($function:ident => $name:literal),* $(,)?) => {
        $(
            fn $function(span: &Span, params: &[Ref<Expr>], args: &[Value], strict: bool) -> anyhow::Result<Value> {
                call_guarded($name, span, params, args, strict)
            }
        )*
        /// The guarded stand-in of builtin `name`, for the VM.
        fn stand_in(name: &str) -> Option<BuiltinFn> {
            match name {
                $($name => Some($function),)*
                _ => None,
            }
        }
    };
}

guarded! {
    guarded_range => "numbers.range",
    guarded_range_step => "numbers.range_step",
    guarded_lsh => "bits.lsh",
    guarded_json_unmarshal => "json.unmarshal",
    guarded_json_is_valid => "json.is_valid",
    guarded_yaml_unmarshal => "yaml.unmarshal",
    guarded_yaml_is_valid => "yaml.is_valid",
    guarded_replace => "replace",
}

/// `program` with its guarded builtins replaced by their stand-ins.
pub(super) fn guard_program(mut program: Program) -> Program {
    for (index, info) in program.builtin_info_table.iter().enumerate() {
        if let (Some(stand_in), Some(slot)) = (stand_in(&info.name), program.resolved_builtins.get_mut(index)) {
            slot.0 = stand_in;
        }
    }
    program
}

/// What the interpreter passes a builtin for its call site: extensions get
/// only values, so the guarded builtin gets a neutral one.
fn call_site(arity: usize) -> &'static (Span, Vec<Ref<Expr>>) {
    static SITE: OnceLock<(Span, Vec<Ref<Expr>>)> = OnceLock::new();
    let site = SITE.get_or_init(|| {
        let source = Source::from_contents("<builtin>".to_string(), String::new()).expect("an empty source");
        let span = Span {
            source,
            line: 1,
            col: 1,
            start: 0,
            end: 0,
        };
        let params = (0..4)
            .map(|_| {
                Ref::new(Expr::Null {
                    span: span.clone(),
                    value: Value::Null,
                    eidx: 0,
                })
            })
            .collect();
        (span, params)
    });
    debug_assert!(arity <= site.1.len());
    site
}

/// Refuses a `sprintf` format with a field wider than the limit, or one
/// written in other digits than ASCII (the host's `sprintf` checks first).
pub(super) fn check_sprintf(args: &[Value]) -> anyhow::Result<()> {
    sprintf(args).map_err(|refusal| refusal.into_error("sprintf"))
}

/// The limit error of a call of `name` that would build `elements` (for
/// host functions bounded the same way).
pub(super) fn too_large(name: &str, elements: u64) -> anyhow::Error {
    Refusal::TooLarge(elements, MAX_ELEMENTS).into_error(name)
}

/// Adds the guards to an interpreter as extensions of the builtins' names.
pub(super) fn guard_engine(engine: &mut regorus::Engine) {
    for (name, _) in GUARDS {
        let Some((_, arity)) = BUILTINS.get(name) else {
            continue;
        };
        let arity = *arity;
        let added = engine.add_extension(
            name.to_string(),
            arity,
            Box::new(move |args: Vec<Value>| {
                let (span, params) = call_site(usize::from(arity));
                call_guarded(name, span, &params[..args.len().min(params.len())], &args, true)
            }),
        );
        if let Err(err) = added {
            tracing::warn!(builtin = name, error = %err, "could not guard the builtin on the interpreter");
        }
    }
}
