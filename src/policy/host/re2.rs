//! OPA's `regex.*` builtins as Go's RE2 reads their patterns, in place of
//! regorus's, which handed the pattern to Rust's `regex` as it was. The two
//! syntaxes look alike and differ where a policy would not notice:
//!
//! - `\d`, `\w`, `\s` and `\b` are ASCII in RE2 and Unicode in Rust, so
//!   `^\d+$` took Arabic-Indic digits and `^\w+$` took `café` (a
//!   validation a payload could pass that OPA refuses);
//! - RE2 reads `\<` as `<`, `\Q…\E` as quoted text, `{,5}` as text, and a
//!   `[` or `&&` inside a class as characters; Rust reads a word boundary,
//!   an error, an error and a nested class or intersection;
//! - RE2 refuses what Rust takes: `a{1001}`, nested counts whose product is
//!   over 1,000, `a**`, flags other than `imsU`, `\1`;
//! - Go's `FindAll`, `Split` and `ReplaceAll` skip an empty match right
//!   after a match, and `Split` drops the empty ends such matches make.
//!
//! A pattern is translated into Rust's syntax with RE2's meaning (or
//! refused with RE2's reason), compiled once and kept.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Mutex;

use regex::{Captures, Regex, RegexBuilder};
use regorus::Value;

use super::operand::{integer_operand, string_operand, text};
use crate::policy::guard::{too_large, MAX_BUILT_BYTES};

/// As regorus bounds a compiled pattern: the patterns kept are this small.
const SIZE_LIMIT: usize = 100 * 1024;

/// A pattern RE2 takes can compile larger in Rust (`.{1000}`: Unicode's
/// `.` is a small automaton of UTF-8 bytes, repeated): up to this; fewer
/// of them are kept.
const LARGE_SIZE_LIMIT: usize = 8 << 20;

/// Large compiled patterns kept (`^.{1,1000}$` is a common length check).
const CACHED_LARGE: usize = 4;

/// RE2's largest repetition count, and largest product of nested counts.
const MAX_REPEAT: u32 = 1000;

/// Compiled patterns kept; the cache is emptied when it holds this many.
const CACHED: usize = 256;

/// Patterns longer than this are compiled at every call, not kept.
const MAX_CACHED_PATTERN: usize = 4096;

/// RE2's `\d`, `\s` and `\w`, as class contents.
const DIGITS: &str = "0-9";
const SPACES: &str = r"\t\n\x0C\r ";
const WORD: &str = "0-9A-Za-z_";

/// `pattern` compiled with RE2's meaning, or why RE2 refuses it. Kept:
/// up to `CACHED` small ones and `CACHED_LARGE` large ones.
pub(super) fn compile(pattern: &str) -> Result<Regex, String> {
    static SMALL: Cache = Mutex::new(None);
    static LARGE: Cache = Mutex::new(None);
    if pattern.len() > MAX_CACHED_PATTERN {
        return build(pattern, LARGE_SIZE_LIMIT).map_err(Refused::into_reason);
    }
    if let Some(found) = cached(&SMALL, pattern).or_else(|| cached(&LARGE, pattern)) {
        return found;
    }
    match build(pattern, SIZE_LIMIT) {
        Err(Refused::TooBig(_)) => {
            let built = build(pattern, LARGE_SIZE_LIMIT).map_err(Refused::into_reason);
            keep(&LARGE, CACHED_LARGE, pattern, &built);
            built
        }
        built => {
            let built = built.map_err(Refused::into_reason);
            keep(&SMALL, CACHED, pattern, &built);
            built
        }
    }
}

type Cache = Mutex<Option<HashMap<String, Result<Regex, String>>>>;

fn cached(cache: &Cache, pattern: &str) -> Option<Result<Regex, String>> {
    let cache = cache.lock().ok()?;
    cache.as_ref()?.get(pattern).cloned()
}

/// Keeps `built`; a full cache is emptied first.
fn keep(cache: &Cache, capacity: usize, pattern: &str, built: &Result<Regex, String>) {
    if let Ok(mut cache) = cache.lock() {
        let cache = cache.get_or_insert_with(HashMap::new);
        if cache.len() >= capacity {
            cache.clear();
        }
        cache.insert(pattern.to_string(), built.clone());
    }
}

/// Why a pattern did not compile.
enum Refused {
    /// RE2's reason, or Rust's where only Rust refuses.
    Invalid(String),
    /// Compiled, it is over this many bytes.
    TooBig(usize),
}

impl Refused {
    fn into_reason(self) -> String {
        match self {
            Refused::Invalid(reason) => reason,
            Refused::TooBig(limit) => format!("the compiled pattern is over {limit} bytes"),
        }
    }
}

fn build(pattern: &str, size_limit: usize) -> Result<Regex, Refused> {
    let translated = translate(pattern).map_err(Refused::Invalid)?;
    RegexBuilder::new(&translated)
        .size_limit(size_limit)
        .build()
        .map_err(|err| match err {
            regex::Error::CompiledTooBig(limit) => Refused::TooBig(limit),
            other => Refused::Invalid(other.to_string()),
        })
}

/// `regex.match(pattern, value)`
pub(super) fn regex_match(args: &[Value]) -> anyhow::Result<Value> {
    let (regex, value) = (
        pattern_operand("regex.match", args, 0)?,
        string_operand("regex.match", args, 1)?,
    );
    Ok(Value::from(regex.is_match(value)))
}

/// `regex.is_valid(pattern)`: false for anything but a pattern RE2 takes.
pub(super) fn is_valid(args: &[Value]) -> anyhow::Result<Value> {
    Ok(Value::from(
        text(args, 0).is_some_and(|pattern| compile(pattern).is_ok()),
    ))
}

/// `regex.find_n(pattern, value, n)`: the first `n` matches (all when
/// `n` is negative).
pub(super) fn find_n(args: &[Value]) -> anyhow::Result<Value> {
    let name = "regex.find_n";
    let (regex, value, limit) = (
        pattern_operand(name, args, 0)?,
        string_operand(name, args, 1)?,
        count_operand(name, args, 2)?,
    );
    let found = go_matches(value, limit, |at| {
        regex.find_at(value, at).map(|m| (m.range(), m.as_str()))
    })
    .into_iter()
    .map(Value::from)
    .collect::<Vec<_>>();
    Ok(Value::from(found))
}

/// `regex.find_all_string_submatch_n(pattern, value, n)`: each match with
/// its groups (an unmatched group is "").
pub(super) fn find_all_string_submatch_n(args: &[Value]) -> anyhow::Result<Value> {
    let name = "regex.find_all_string_submatch_n";
    let (regex, value, limit) = (
        pattern_operand(name, args, 0)?,
        string_operand(name, args, 1)?,
        count_operand(name, args, 2)?,
    );
    let found = go_matches(value, limit, |at| {
        let captures = regex.captures_at(value, at)?;
        Some((captures.get(0)?.range(), captures))
    })
    .into_iter()
    .map(|captures| {
        Value::from(
            captures
                .iter()
                .map(|group| Value::from(group.map_or("", |m| m.as_str())))
                .collect::<Vec<_>>(),
        )
    })
    .collect::<Vec<_>>();
    Ok(Value::from(found))
}

/// `regex.split(pattern, value)`, as Go's `Regexp.Split(value, -1)`.
pub(super) fn split(args: &[Value]) -> anyhow::Result<Value> {
    let (pattern, value) = (text(args, 0), string_operand("regex.split", args, 1)?);
    let regex = pattern_operand("regex.split", args, 0)?;
    if pattern.is_some_and(|p| !p.is_empty()) && value.is_empty() {
        return Ok(Value::from(vec![Value::from("")]));
    }
    let (mut pieces, mut begin, mut end) = (Vec::new(), 0, 0);
    for found in go_matches(value, usize::MAX, |at| {
        regex.find_at(value, at).map(|m| (m.range(), m.range()))
    }) {
        end = found.start;
        if found.end != 0 {
            pieces.push(Value::from(&value[begin..end]));
        }
        begin = found.end;
    }
    if end != value.len() {
        pieces.push(Value::from(&value[begin..]));
    }
    Ok(Value::from(pieces))
}

/// `regex.replace(value, pattern, replacement)`, as Go's
/// `ReplaceAllString`: `$1`, `$name`, `${name}` and `$$` in the
/// replacement; no replacement for an empty match right after a match.
pub(super) fn replace(args: &[Value]) -> anyhow::Result<Value> {
    let name = "regex.replace";
    let value = string_operand(name, args, 0)?;
    let regex = pattern_operand(name, args, 1)?;
    let replacement = string_operand(name, args, 2)?;
    let mut out = String::new();
    let (mut last_end, mut search) = (0, 0);
    while search <= value.len() {
        let Some(captures) = regex.captures_at(value, search) else {
            break;
        };
        let Some(found) = captures.get(0) else { break };
        out.push_str(&value[last_end..found.start()]);
        if found.end() > last_end || found.start() == 0 {
            // Measured first: a call past the limit stops before building it.
            let mut size = out.len() as u64;
            expand(&regex, &captures, replacement, &mut |piece| size += piece.len() as u64);
            if size > MAX_BUILT_BYTES {
                return Err(too_large(name, size / 32));
            }
            expand(&regex, &captures, replacement, &mut |piece| out.push_str(piece));
        }
        last_end = found.end();
        let width = value[search..].chars().next().map_or(1, char::len_utf8);
        search = if search + width > found.end() {
            search + width
        } else {
            found.end()
        };
    }
    out.push_str(&value[last_end..]);
    Ok(Value::from(out))
}

/// Go's `FindAll…`: successive matches from the left, an empty match
/// right after the previous match skipped; at most `limit`. `search_at`
/// finds the next match from a position: its range and what to keep of it
/// (only the text where groups are not wanted).
fn go_matches<T>(value: &str, limit: usize, search_at: impl Fn(usize) -> Option<(Range<usize>, T)>) -> Vec<T> {
    let (mut found, mut position, mut previous_end) = (Vec::new(), 0, None);
    while found.len() < limit && position <= value.len() {
        let Some((whole, kept)) = search_at(position) else {
            break;
        };
        let mut accept = true;
        if whole.end == position {
            if Some(whole.start) == previous_end {
                accept = false;
            }
            position += value[position..].chars().next().map_or(1, char::len_utf8);
        } else {
            position = whole.end;
        }
        previous_end = Some(whole.end);
        if accept {
            found.push(kept);
        }
    }
    found
}

/// Go's `Regexp.Expand` of `template` for one match, in pieces to `emit`.
fn expand(regex: &Regex, captures: &Captures, template: &str, emit: &mut dyn FnMut(&str)) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        emit(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            emit("$");
            rest = after;
            continue;
        }
        let Some((name, after)) = reference(rest) else {
            emit("$");
            continue;
        };
        rest = after;
        let group = match group_number(name) {
            Some(number) => captures.get(number),
            None => regex
                .capture_names()
                .enumerate()
                .filter(|(_, group)| group.is_some_and(|group| go_name(group) == name))
                .find_map(|(index, _)| captures.get(index)),
        };
        if let Some(group) = group {
            emit(group.as_str());
        }
    }
    emit(rest);
}

/// The name after a `$` (`name` or `{name}`: letters, digits and `_`) and
/// the text after it; None where Go keeps the `$` as text.
fn reference(text: &str) -> Option<(&str, &str)> {
    let (braced, body) = match text.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let length = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphabetic() || c.is_numeric() || c == '_'))
        .map_or(body.len(), |(at, _)| at);
    if length == 0 {
        return None;
    }
    let (name, after) = body.split_at(length);
    match braced {
        true => after.strip_prefix('}').map(|after| (name, after)),
        false => Some((name, after)),
    }
}

/// The name a group has in the pattern as written: `n[2]` is the second
/// group named `n`.
fn go_name(group: &str) -> &str {
    match group.strip_suffix(']').and_then(|rest| rest.rsplit_once('[')) {
        Some((name, _)) => name,
        None => group,
    }
}

/// A group number as Go reads one: ASCII digits, no leading zero, under
/// 10^8; anything else is a name.
fn group_number(name: &str) -> Option<usize> {
    let digits = name.bytes().all(|b| b.is_ascii_digit()) && (name == "0" || !name.starts_with('0'));
    match digits && name.len() <= 8 {
        true => name.parse().ok(),
        false => None,
    }
}

fn pattern_operand(name: &str, args: &[Value], index: usize) -> anyhow::Result<Regex> {
    let pattern = string_operand(name, args, index)?;
    compile(pattern).map_err(|reason| anyhow::anyhow!("{name}: invalid pattern: {reason}"))
}

/// A count operand: an integer; negative means no limit.
fn count_operand(name: &str, args: &[Value], index: usize) -> anyhow::Result<usize> {
    let count = integer_operand(name, args, index)?;
    Ok(usize::try_from(count).unwrap_or(usize::MAX))
}

/// What came last in the current group or alternative, for RE2's rules on
/// repetition: an operator needs an operand, and may not follow another.
#[derive(Clone, Copy, PartialEq)]
enum Last {
    Nothing,
    /// An operand, with the product of the counts nested inside it.
    Operand(u32),
    /// A repeated operand.
    Repeated(u32),
}

struct Group {
    last: Last,
    /// The largest product of nested counts in the group so far.
    weight: u32,
}

/// `pattern` (RE2's syntax) in Rust's syntax with the same meaning, or
/// RE2's reason for refusing it.
pub(super) fn translate(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut groups = vec![Group {
        last: Last::Nothing,
        weight: 1,
    }];
    let mut names: Vec<String> = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        at += 1;
        let group = groups.last_mut().expect("the outermost group stays");
        match c {
            '(' => {
                let (opened, next) = group_open(&chars, at, &mut names)?;
                at = next;
                match opened {
                    Opened::Group(text) => {
                        out.push_str(&text);
                        groups.push(Group {
                            last: Last::Nothing,
                            weight: 1,
                        });
                    }
                    Opened::Flags(text) => out.push_str(&text),
                }
            }
            ')' => {
                if groups.len() == 1 {
                    return Err("unexpected )".to_string());
                }
                let closed = groups.pop().expect("checked above");
                out.push(')');
                let outer = groups.last_mut().expect("the outermost group stays");
                operand(outer, closed.weight);
            }
            '|' => {
                group.last = Last::Nothing;
                out.push('|');
            }
            '*' | '+' | '?' => {
                let (text, next) = repeat_suffix(&chars, at, c.to_string());
                at = next;
                repeated(group, 1)?;
                out.push_str(&text);
            }
            '{' => match counts(&chars, at) {
                Some((min, max, next)) => {
                    if min > MAX_REPEAT || max.is_some_and(|max| max > MAX_REPEAT || max < min) {
                        return Err(format!("invalid repeat count: {}", collect(&chars[at - 1..next])));
                    }
                    let text = match max {
                        Some(max) if max == min => format!("{{{min}}}"),
                        Some(max) => format!("{{{min},{max}}}"),
                        None => format!("{{{min},}}"),
                    };
                    let (text, next) = repeat_suffix(&chars, next, text);
                    at = next;
                    let count = match max {
                        Some(max) => max,
                        None => min,
                    };
                    repeated(group, count)?;
                    out.push_str(&text);
                }
                None => {
                    literal(&mut out, '{');
                    operand(group, 1);
                }
            },
            '[' => {
                at = class(&chars, at, &mut out)?;
                operand(group, 1);
            }
            '\\' => {
                let before = out.len();
                at = escape(&chars, at, &mut out)?;
                // An empty `\Q\E` writes nothing: no operand.
                if out.len() > before {
                    operand(group, 1);
                }
            }
            '.' | '^' | '$' => {
                out.push(c);
                operand(group, 1);
            }
            other => {
                literal(&mut out, other);
                operand(group, 1);
            }
        }
    }
    if groups.len() > 1 {
        return Err("missing closing )".to_string());
    }
    Ok(out)
}

/// An operand of `weight` ends the group's sequence so far.
fn operand(group: &mut Group, weight: u32) {
    group.weight = group.weight.max(weight);
    group.last = Last::Operand(weight);
}

/// Applies a repetition of `count` (1 for `*`, `+` and `?`) to the last
/// operand of `group`.
fn repeated(group: &mut Group, count: u32) -> Result<(), String> {
    let inner = match group.last {
        Last::Operand(weight) => weight,
        Last::Repeated(_) => return Err("invalid nested repetition operator".to_string()),
        Last::Nothing => return Err("missing argument to repetition operator".to_string()),
    };
    let weight = match count {
        0 => 1,
        count => inner.saturating_mul(count),
    };
    if weight > MAX_REPEAT {
        return Err("invalid repeat count: nested repetition over 1000".to_string());
    }
    group.weight = group.weight.max(weight);
    group.last = Last::Repeated(weight);
    Ok(())
}

/// The repetition `text` with the non-greedy `?` that may follow at `at`.
fn repeat_suffix(chars: &[char], at: usize, mut text: String) -> (String, usize) {
    match chars.get(at) {
        Some('?') => {
            text.push('?');
            (text, at + 1)
        }
        _ => (text, at),
    }
}

/// `{min}`, `{min,}` or `{min,max}` from `at` (just after the `{`), as Go
/// parses a count: decimal without leading zeros. None where Go reads the
/// `{` as text. A count of 10^8 or more is over any limit.
fn counts(chars: &[char], at: usize) -> Option<(u32, Option<u32>, usize)> {
    let (min, mut at) = number(chars, at)?;
    let max = match chars.get(at) {
        Some(',') => match chars.get(at + 1) {
            Some('}') => {
                at += 1;
                None
            }
            _ => {
                let (max, next) = number(chars, at + 1)?;
                at = next;
                Some(max)
            }
        },
        _ => Some(min),
    };
    match chars.get(at) {
        Some('}') => Some((min, max, at + 1)),
        _ => None,
    }
}

fn number(chars: &[char], at: usize) -> Option<(u32, usize)> {
    let digits = chars[at.min(chars.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 || (digits > 1 && chars[at] == '0') {
        return None;
    }
    let text = collect(&chars[at..at + digits]);
    Some((text.parse().unwrap_or(u32::MAX), at + digits))
}

enum Opened {
    /// A group (capturing or not), to be closed.
    Group(String),
    /// `(?flags)`: changes the flags and opens nothing.
    Flags(String),
}

/// What follows `(` at `at`, in Rust's syntax, and where it ends.
fn group_open(chars: &[char], at: usize, names: &mut Vec<String>) -> Result<(Opened, usize), String> {
    if chars.get(at) != Some(&'?') {
        return Ok((Opened::Group("(".to_string()), at));
    }
    let rest = &chars[at + 1..];
    let name_start = match rest {
        ['P', '<', ..] => Some(at + 3),
        ['<', ..] => Some(at + 2),
        _ => None,
    };
    if let Some(start) = name_start {
        let length = chars[start..]
            .iter()
            .position(|&c| c == '>')
            .ok_or("invalid named capture")?;
        let name = collect(&chars[start..start + length]);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid named capture: {name:?}"));
        }
        // Go takes a name twice (`$name` is the first group of that name
        // that matched); Rust does not, so a later group carries it as
        // `name[n]`, a name Go cannot write.
        let text = match names.iter().filter(|taken| **taken == name).count() {
            0 => format!("(?P<{name}>"),
            n => format!("(?P<{name}[{n}]>"),
        };
        names.push(name);
        return Ok((Opened::Group(text), start + length + 1));
    }
    // Flags: `(?flags)` or `(?flags:`, flags of `imsU`, one `-` before
    // at least one flag. Go takes a flag twice (`(?ii)`, `(?i-i)`: the
    // last wins); Rust does not, so each is written once.
    let (mut set, mut cleared, mut negated, mut flag_after_minus) = (String::new(), String::new(), false, false);
    let mut position = at + 1;
    loop {
        let Some(&c) = chars.get(position) else {
            return Err("missing closing )".to_string());
        };
        position += 1;
        match c {
            'i' | 'm' | 's' | 'U' if negated => {
                flag_after_minus = true;
                set.retain(|flag| flag != c);
                if !cleared.contains(c) {
                    cleared.push(c);
                }
            }
            'i' | 'm' | 's' | 'U' => {
                if !set.contains(c) {
                    set.push(c);
                }
            }
            '-' if !negated => negated = true,
            ':' | ')' if negated && !flag_after_minus => break,
            ':' | ')' => {
                let flags = match cleared.is_empty() {
                    true => set,
                    false => format!("{set}-{cleared}"),
                };
                return Ok(match (c, flags.is_empty()) {
                    (':', _) => (Opened::Group(format!("(?{flags}:")), position),
                    (_, true) => (Opened::Flags(String::new()), position),
                    (_, false) => (Opened::Flags(format!("(?{flags})")), position),
                });
            }
            _ => break,
        }
    }
    Err(format!(
        "invalid or unsupported Perl syntax: {}",
        collect(&chars[at - 1..position.min(chars.len())])
    ))
}

/// An escape outside a class, from `at` (just after the `\`), in Rust's
/// syntax; returns where it ends.
fn escape(chars: &[char], at: usize, out: &mut String) -> Result<usize, String> {
    let Some(&c) = chars.get(at) else {
        return Err("trailing backslash at end of expression".to_string());
    };
    match c {
        'A' | 'z' => {
            out.push('\\');
            out.push(c);
            Ok(at + 1)
        }
        // ASCII word boundaries, as RE2's.
        'b' | 'B' => {
            let _ = write!(out, r"(?-u:\{c})");
            Ok(at + 1)
        }
        'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
            out.push('[');
            perl_class(c, out);
            out.push(']');
            Ok(at + 1)
        }
        'p' | 'P' => unicode_class(chars, at, out),
        'Q' => {
            let mut position = at + 1;
            while position < chars.len() {
                if chars[position] == '\\' && chars.get(position + 1) == Some(&'E') {
                    return Ok(position + 2);
                }
                literal(out, chars[position]);
                position += 1;
            }
            Ok(position)
        }
        _ => {
            let (character, next) = escaped_char(chars, at)?;
            literal(out, character);
            Ok(next)
        }
    }
}

/// A Perl class (`\d`, `\D`, …) as the contents of a Rust class, RE2's
/// ASCII sets: a negated one as a nested class.
fn perl_class(c: char, out: &mut String) {
    let (set, negated) = match c {
        'd' => (DIGITS, false),
        'D' => (DIGITS, true),
        's' => (SPACES, false),
        'S' => (SPACES, true),
        'w' => (WORD, false),
        _ => (WORD, true),
    };
    match negated {
        true => {
            let _ = write!(out, "[^{set}]");
        }
        false => out.push_str(set),
    }
}

/// `\pL`, `\p{Greek}`, `\p{^Greek}` and their `\P` negations, from `at`
/// (the `p` or `P`).
fn unicode_class(chars: &[char], at: usize, out: &mut String) -> Result<usize, String> {
    let mut negated = chars[at] == 'P';
    let (mut name, next) = match chars.get(at + 1) {
        Some('{') => {
            let length = chars[at + 2..]
                .iter()
                .position(|&c| c == '}')
                .ok_or("invalid character class range: missing }")?;
            (collect(&chars[at + 2..at + 2 + length]), at + 3 + length)
        }
        Some(&letter) => (letter.to_string(), at + 2),
        None => return Err("invalid character class range".to_string()),
    };
    if let Some(rest) = name.strip_prefix('^') {
        negated = !negated;
        name = rest.to_string();
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("invalid character class range: \\p{{{name}}}"));
    }
    let _ = write!(out, "\\{}{{{name}}}", if negated { 'P' } else { 'p' });
    Ok(next)
}

/// A character written with an escape (`\n`, `\x41`, `\101`, `\.`), from
/// `at` (just after the `\`): RE2's escapes of one character.
fn escaped_char(chars: &[char], at: usize) -> Result<(char, usize), String> {
    let invalid = || format!("invalid escape sequence: \\{}", chars.get(at).copied().unwrap_or(' '));
    let Some(&c) = chars.get(at) else {
        return Err("trailing backslash at end of expression".to_string());
    };
    let octal = |c: Option<&char>| c.filter(|c| ('0'..='7').contains(*c)).copied();
    match c {
        // A lone `\1`…`\7` is a back-reference, which RE2 does not have.
        '1'..='7' if octal(chars.get(at + 1)).is_none() => Err(invalid()),
        '0'..='7' => {
            let mut value = c as u32 - '0' as u32;
            let mut next = at + 1;
            while next < at + 3 {
                match octal(chars.get(next)) {
                    Some(digit) => value = value * 8 + (digit as u32 - '0' as u32),
                    None => break,
                }
                next += 1;
            }
            Ok((char::from_u32(value).ok_or_else(invalid)?, next))
        }
        'x' => hex(chars, at + 1).ok_or_else(invalid),
        'a' => Ok(('\u{7}', at + 1)),
        'f' => Ok(('\u{c}', at + 1)),
        'n' => Ok(('\n', at + 1)),
        'r' => Ok(('\r', at + 1)),
        't' => Ok(('\t', at + 1)),
        'v' => Ok(('\u{b}', at + 1)),
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((c, at + 1)),
        _ => Err(invalid()),
    }
}

/// `\x41` or `\x{10FFFF}` from `at` (just after the `x`).
fn hex(chars: &[char], at: usize) -> Option<(char, usize)> {
    let digit = |c: Option<&char>| c.and_then(|c| c.to_digit(16));
    if chars.get(at) == Some(&'{') {
        let length = chars[at + 1..].iter().position(|&c| c == '}')?;
        let digits = &chars[at + 1..at + 1 + length];
        if digits.is_empty() || digits.len() > 8 || digits.iter().any(|c| !c.is_ascii_hexdigit()) {
            return None;
        }
        let value = u32::from_str_radix(&collect(digits), 16).ok()?;
        return Some((char::from_u32(value)?, at + 2 + length));
    }
    let (high, low) = (digit(chars.get(at))?, digit(chars.get(at + 1))?);
    Some((char::from_u32(high * 16 + low)?, at + 2))
}

/// A class from `at` (just after the `[`), in Rust's syntax; returns
/// where it ends. In RE2 `[`, `&` and `~` in a class are characters, `]`
/// first is one, and `-` first, last or after a range is one.
fn class(chars: &[char], at: usize, out: &mut String) -> Result<usize, String> {
    let missing = || "missing closing ]".to_string();
    let mut position = at;
    out.push('[');
    if chars.get(position) == Some(&'^') {
        out.push('^');
        position += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = chars.get(position) else {
            return Err(missing());
        };
        if c == ']' && !first {
            out.push(']');
            return Ok(position + 1);
        }
        first = false;
        // `[:alpha:]` and `[:^alpha:]`: the same names in both.
        if c == '[' && chars.get(position + 1) == Some(&':') {
            if let Some(length) = posix_class(&chars[position..]) {
                let text = collect(&chars[position..position + length]);
                let name = &text[2..text.len() - 2];
                if !POSIX_CLASSES.contains(&name.strip_prefix('^').unwrap_or(name)) {
                    return Err(format!("invalid character class range: {text}"));
                }
                out.push_str(&text);
                position += length;
                continue;
            }
        }
        if c == '\\' {
            match chars.get(position + 1) {
                Some(&perl @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                    perl_class(perl, out);
                    position += 2;
                    continue;
                }
                Some('p' | 'P') => {
                    position = unicode_class(chars, position + 1, out)?;
                    continue;
                }
                _ => {}
            }
        }
        let (low, next) = class_char(chars, position)?;
        position = next;
        literal(out, low);
        if chars.get(position) == Some(&'-') && chars.get(position + 1).is_some_and(|&c| c != ']') {
            let (high, next) = class_char(chars, position + 1)?;
            if high < low {
                return Err(format!(
                    "invalid character class range: {}",
                    collect(&chars[position - 1..next])
                ));
            }
            out.push('-');
            literal(out, high);
            position = next;
        }
    }
}

/// Go's POSIX class names.
const POSIX_CLASSES: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space", "upper", "word",
    "xdigit",
];

/// The length of a `[:name:]` at the start of `chars`, if it is one.
fn posix_class(chars: &[char]) -> Option<usize> {
    let end = chars.windows(2).skip(2).position(|pair| pair == [':', ']'])?;
    Some(end + 4)
}

/// One character of a class at `at`, escaped or not.
fn class_char(chars: &[char], at: usize) -> Result<(char, usize), String> {
    match chars.get(at) {
        None => Err("missing closing ]".to_string()),
        Some('\\') => escaped_char(chars, at + 1),
        Some(&c) => Ok((c, at + 1)),
    }
}

/// `c` as a literal in Rust's syntax, in a class or out of one.
fn literal(out: &mut String, c: char) {
    if c.is_alphanumeric() || (!c.is_ascii() && !c.is_control()) || c == '_' {
        out.push(c);
    } else {
        let _ = write!(out, "\\x{{{:X}}}", c as u32);
    }
}

fn collect(chars: &[char]) -> String {
    chars.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(function: fn(&[Value]) -> anyhow::Result<Value>, args: serde_json::Value) -> serde_json::Value {
        let args: Vec<Value> = args
            .as_array()
            .unwrap()
            .iter()
            .map(crate::policy::to_policy_value)
            .collect();
        serde_json::to_value(function(&args).unwrap()).unwrap()
    }

    fn matches(pattern: &str, value: &str) -> bool {
        compile(pattern).unwrap().is_match(value)
    }

    #[test]
    fn perl_classes_and_boundaries_are_ascii() {
        assert!(matches(r"^\d+$", "0123"));
        assert!(!matches(r"^\d+$", "١٢٣"), "Arabic-Indic digits are not \\d in RE2");
        assert!(!matches(r"^\w+$", "café"));
        assert!(matches(r"^\W$", "é"), "\\W takes what \\w does not");
        assert!(!matches(r"^a\sb$", "a\u{a0}b"));
        assert!(!matches(r"^a\sb$", "a\u{b}b"), "RE2's \\s has no vertical tab");
        assert!(matches(r"^[\d\s]+$", "1 2\t3"));
        assert!(matches(r"^[^\d]$", "x"));
        assert!(matches(r"^[\Da]$", "b"));
        assert!(!matches(r"^[\D]$", "5"));
        assert!(matches(r"\bol\b", "caf olé"), "é is not a word character to RE2's \\b");
        assert!(matches(r"(?i)^\w$", "\u{212a}"), "the Kelvin sign folds to k, as in Go");
    }

    #[test]
    fn re2_only_syntax_means_what_re2_says() {
        assert!(matches(r"^a\<b\>$", "a<b>"));
        assert!(matches(r"^\Q1.2+\E$", "1.2+"));
        assert!(!matches(r"^\Q1.2+\E$", "112"));
        assert!(matches(r"^\Q(unclosed$", "(unclosed$"), "\\Q to the end");
        assert!(matches(r"^a{,5}$", "a{,5}"));
        assert!(matches(r"^a{01}$", "a{01}"), "a count with a leading zero is text");
        assert!(matches(r"^[[a]+$", "[a["));
        assert!(matches(r"^[a&&b]+$", "&ab"));
        assert!(matches(r"^[a~~b-]+$", "~-"));
        assert!(matches(r"^[]a]+$", "]a"));
        assert!(matches(r"^[a-c-e]+$", "-eb"));
        assert!(matches(r"^\101\0\x41\x{42}$", "A\0AB"));
        assert!(matches(r"^\p{^Greek}$", "a"));
        assert!(!matches(r"^\P{^Greek}$", "a"));
        assert!(matches(r"^[[:^digit:][:alpha:]]+$", "a_"));
        assert!(matches(r"(?U)^a+", "aaa"));
        assert!(matches(r"(?)^a$", "a"));
        assert!(matches(r"(?ii)^A$", "a"), "a flag given twice");
        assert!(!matches(r"(?i-i)^A$", "a"), "set, then cleared");
        assert!(!matches(r"(?s-is:A.)", "A\n"), "s set, then cleared");
        assert!(!matches(r"(?i)(?s-is:A.)", "ax"), "i cleared in the group");
        assert!(matches(r"^(?P<x>a)(?<y>b)$", "ab"));
        assert!(matches("^a{2}?$", "aa"));
    }

    #[test]
    fn what_re2_refuses_is_refused() {
        for pattern in [
            "a{1001}",
            "a{2,1}",
            "(a{100}){20}",
            "((a{10}){10}){11}",
            "a**",
            "a{2}{3}",
            "a*+",
            "*a",
            "(|*)",
            r"\C",
            r"\1",
            r"\8",
            r"\e",
            r"\Z",
            "(?x)a",
            "(?-)a",
            "(?i-)a",
            "(?=x)",
            "(?P=n)",
            "(?<a-b>x)",
            "(a",
            "a)",
            "[a",
            "[z-a]",
            "a{0}{2}",
            "[[:foo:]]",
            "[[:^^alpha:]]",
            "[[:[:alpha:]]",
            r"a{1000}\Q\E{2}",
            r"[\b]",
            r"a\",
            r"\x{110000}",
            r"\xZZ",
        ] {
            assert!(compile(pattern).is_err(), "{pattern} is refused by RE2");
        }
        for pattern in [
            "a{1000}",
            ".{1000}",
            "(a{10}){100}",
            "(a{0}){1000}",
            "[[:word]",
            r"\pL",
            "[[:word:]]",
            "a*?",
            "x{2,}?",
        ] {
            assert!(
                compile(pattern).is_ok(),
                "{pattern} is taken by RE2: {:?}",
                compile(pattern).err()
            );
        }
    }

    #[test]
    fn empty_matches_follow_go() {
        assert_eq!(call(find_n, json!(["a*", "baaac", -1])), json!(["", "aaa", ""]));
        assert_eq!(call(find_n, json!(["a*", "baaac", 2])), json!(["", "aaa"]));
        assert_eq!(call(find_n, json!(["a*", "baaac", 0])), json!([]));
        assert_eq!(call(split, json!(["x*", "axbc"])), json!(["a", "b", "c"]));
        assert_eq!(call(split, json!(["", "axbc"])), json!(["a", "x", "b", "c"]));
        assert_eq!(call(split, json!([",", "a,,b,"])), json!(["a", "", "b", ""]));
        assert_eq!(call(split, json!(["x*", ""])), json!([""]));
        assert_eq!(call(split, json!(["", ""])), json!([]));
        assert_eq!(call(replace, json!(["baaac", "a*", "-"])), json!("-b-c-"));
        assert_eq!(call(replace, json!(["héllo", "", "."])), json!(".h.é.l.l.o."));
    }

    #[test]
    fn replacements_expand_as_go_expands() {
        let kv = |template: &str| call(replace, json!(["user=42", r"(\w+)=(?P<v>\d+)", template]));
        assert_eq!(kv("${v}<-$1|$$"), json!("42<-user|$"));
        assert_eq!(kv("$1x"), json!(""), "`1x` is a name, of no group");
        assert_eq!(kv("${1}x"), json!("userx"));
        assert_eq!(kv("$01"), json!(""), "a leading zero makes a name");
        assert_eq!(kv("$-"), json!("$-"), "a `$` without a name is text");
        assert_eq!(kv("${v"), json!("${v"), "an unclosed brace keeps the `$`");
        assert_eq!(kv("$9"), json!(""));
        assert_eq!(kv("$vé"), json!(""), "Unicode letters continue a name in Go");
        let twice = call(replace, json!(["ab", "(?P<n>a)(?P<n>b)", "$n|$2"]));
        assert_eq!(twice, json!("a|b"), "a name given twice is its first group");
        let matched = call(replace, json!(["b", "(?P<n>a)|(?P<n>b)", "<$n>"]));
        assert_eq!(matched, json!("<b>"), "…that matched");
    }

    #[test]
    fn submatches_give_empty_text_for_unmatched_groups() {
        assert_eq!(
            call(find_all_string_submatch_n, json!(["(a)|(b)", "ab", -1])),
            json!([["a", "a", ""], ["b", "", "b"]])
        );
    }

    #[test]
    fn a_replacement_past_the_limit_is_refused() {
        // One match of 64 KiB, copied 1,025 times: over 64 MiB.
        let value = "a".repeat(1 << 16);
        let template = "$0".repeat(1025);
        let args = [
            Value::from(value.as_str()),
            Value::from("a+"),
            Value::from(template.as_str()),
        ];
        assert!(replace(&args).is_err());
    }

    #[test]
    fn invalid_patterns_and_operands_are_errors_and_not_valid() {
        assert!(regex_match(&[Value::from("("), Value::from("x")]).is_err());
        assert_eq!(call(is_valid, json!(["("])), json!(false));
        assert_eq!(call(is_valid, json!([1])), json!(false));
        assert_eq!(call(is_valid, json!(["a{1000}"])), json!(true));
        assert!(find_n(&[Value::from("a"), Value::from("a"), Value::from(1.5)]).is_err());
        assert!(find_n(&[Value::from("a"), Value::from("a"), Value::from(1e19)]).is_err());
    }
}
