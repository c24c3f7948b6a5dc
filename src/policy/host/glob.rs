//! OPA's `glob.match` and `glob.quote_meta` (gobwas/glob's syntax), in
//! place of regorus's, which let `*` cross a delimiter other than `.`
//! (`arn:aws:iam::*:root` matched `arn:aws:iam::1:x:root`), read `**` as
//! `*`, `[^a]` as a negation and lost an empty `{,www.}` alternative.
//!
//! `*` is any run of characters but the delimiters, `**` any run at all, `?`
//! one character but a delimiter, `[abc]`, `[a-z]` one of them and `[!…]`
//! one that is not, `{a,b}` either sub-pattern, `\` makes the next
//! character literal. An empty delimiter list means `.`; `null`, none.

use regorus::Value;

use super::operand::text;
use crate::policy::guard::too_large;

/// Most steps one match may take: a pattern of many stars over a long
/// value backtracks without end otherwise.
const MAX_STEPS: u64 = 1_000_000;

#[derive(Debug, Clone)]
enum Node {
    Literal(char),
    /// `?`
    Single,
    /// `*`
    Any,
    /// `**`
    Super,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Alternatives(Vec<Vec<Node>>),
}

/// Why a pattern does not compile (OPA's error too).
#[derive(Debug, PartialEq)]
enum PatternError {
    UnexpectedEnd,
    BadRange,
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl Parser<'_> {
    /// Nodes up to the end, or (inside braces) up to `,` or `}` (not
    /// consumed); `Ok(None)` for braces never closed.
    fn sequence(&mut self, in_braces: bool) -> Result<Option<Vec<Node>>, PatternError> {
        let mut nodes = Vec::new();
        while let Some(&c) = self.chars.peek() {
            if in_braces && (c == ',' || c == '}') {
                return Ok(Some(nodes));
            }
            self.chars.next();
            nodes.push(match c {
                '\\' => Node::Literal(self.chars.next().ok_or(PatternError::UnexpectedEnd)?),
                '?' => Node::Single,
                '*' => match self.chars.peek() {
                    Some('*') => {
                        self.chars.next();
                        Node::Super
                    }
                    _ => Node::Any,
                },
                '[' => self.class()?,
                '{' => match self.alternatives()? {
                    Some(node) => node,
                    None => return Ok(None),
                },
                c => Node::Literal(c),
            });
        }
        Ok(if in_braces { None } else { Some(nodes) })
    }

    /// `[abc]` a list, `[a-z]` one range (gobwas takes no more than one,
    /// and reads `-` elsewhere in a list as itself); `!` first negates.
    fn class(&mut self) -> Result<Node, PatternError> {
        let negated = self.chars.next_if_eq(&'!').is_some();
        let mut members = Vec::new();
        loop {
            match self.chars.next().ok_or(PatternError::UnexpectedEnd)? {
                ']' => break,
                '\\' => members.push(self.chars.next().ok_or(PatternError::UnexpectedEnd)?),
                c => members.push(c),
            }
        }
        let ranges = match members.as_slice() {
            [] => return Err(PatternError::BadRange),
            [low, '-', high] if low <= high => vec![(*low, *high)],
            [_, '-', ..] => return Err(PatternError::BadRange),
            list => list.iter().map(|c| (*c, *c)).collect(),
        };
        Ok(Node::Class { negated, ranges })
    }

    fn alternatives(&mut self) -> Result<Option<Node>, PatternError> {
        let mut options = Vec::new();
        loop {
            let Some(option) = self.sequence(true)? else {
                return Ok(None);
            };
            options.push(option);
            match self.chars.next() {
                Some(',') => continue,
                Some('}') => return Ok(Some(Node::Alternatives(options))),
                _ => return Ok(None),
            }
        }
    }
}

/// Longest pattern and deepest braces compiled: the parser recurses per
/// brace and the matcher per node, and a stack has an end.
const MAX_PATTERN_CHARS: usize = 4_096;
const MAX_BRACE_DEPTH: usize = 64;

/// Whether a pattern is beyond the limits above.
fn too_deep(pattern: &str) -> Option<u64> {
    let length = pattern.chars().count();
    if length > MAX_PATTERN_CHARS {
        return Some(length as u64);
    }
    let mut depth: usize = 0;
    for c in pattern.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_BRACE_DEPTH {
            return Some(depth as u64);
        }
    }
    None
}

/// A compiled pattern; None for braces never closed (which match nothing,
/// as in OPA).
fn compile(pattern: &str) -> Result<Option<Vec<Node>>, PatternError> {
    Parser {
        chars: pattern.chars().peekable(),
    }
    .sequence(false)
}

struct Matcher<'a> {
    delimiters: &'a [char],
    steps: u64,
}

impl Matcher<'_> {
    /// Whether `nodes` then `rest` match all of `value`; None past the
    /// step limit.
    fn matches(&mut self, nodes: &[Node], rest: &[&[Node]], value: &[char]) -> Option<bool> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return None;
        }
        let Some((node, tail)) = nodes.split_first() else {
            return match rest.split_first() {
                Some((next, others)) => self.matches(next, others, value),
                None => Some(value.is_empty()),
            };
        };
        let one = |ok: bool| -> Option<bool> { Some(ok) };
        match node {
            Node::Literal(c) => match value.first() {
                Some(v) if v == c => self.matches(tail, rest, &value[1..]),
                _ => one(false),
            },
            Node::Single => match value.first() {
                Some(v) if !self.delimiters.contains(v) => self.matches(tail, rest, &value[1..]),
                _ => one(false),
            },
            Node::Class { negated, ranges } => match value.first() {
                Some(v) if ranges.iter().any(|(low, high)| (low..=high).contains(&v)) != *negated => {
                    self.matches(tail, rest, &value[1..])
                }
                _ => one(false),
            },
            Node::Any | Node::Super => {
                for taken in 0..=value.len() {
                    if self.matches(tail, rest, &value[taken..])? {
                        return one(true);
                    }
                    if matches!(node, Node::Any) && value.get(taken).is_some_and(|c| self.delimiters.contains(c)) {
                        break;
                    }
                }
                one(false)
            }
            Node::Alternatives(options) => {
                let mut after: Vec<&[Node]> = vec![tail];
                after.extend_from_slice(rest);
                for option in options {
                    if self.matches(option, &after, value)? {
                        return one(true);
                    }
                }
                one(false)
            }
        }
    }
}

/// `glob.match(pattern, delimiters, value)`.
pub(super) fn glob_match(args: &[Value]) -> anyhow::Result<Value> {
    let operand = |index: usize| {
        text(args, index).ok_or_else(|| anyhow::anyhow!("glob.match: operand {} must be a string", index + 1))
    };
    let (pattern, value) = (operand(0)?, operand(2)?);
    let delimiters: Vec<char> = match args.get(1) {
        Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.is_empty() => vec!['.'],
        Some(Value::Array(items)) => items
            .iter()
            .map(
                |item| match item.as_string().ok().map(|s| s.chars().collect::<Vec<_>>()) {
                    Some(chars) if chars.len() == 1 => Ok(chars[0]),
                    _ => Err(anyhow::anyhow!("glob.match: delimiters must be single characters")),
                },
            )
            .collect::<anyhow::Result<_>>()?,
        _ => anyhow::bail!("glob.match: operand 2 must be an array or null"),
    };
    if let Some(size) = too_deep(pattern) {
        return Err(too_large("glob.match", size));
    }
    let nodes = match compile(pattern) {
        Ok(Some(nodes)) => nodes,
        Ok(None) => return Ok(Value::from(false)),
        Err(PatternError::UnexpectedEnd) => anyhow::bail!("glob.match: unexpected end of input"),
        Err(PatternError::BadRange) => anyhow::bail!("glob.match: could not parse range"),
    };
    let value: Vec<char> = value.chars().collect();
    let mut matcher = Matcher {
        delimiters: &delimiters,
        steps: 0,
    };
    match matcher.matches(&nodes, &[], &value) {
        Some(matched) => Ok(Value::from(matched)),
        None => Err(too_large("glob.match", matcher.steps)),
    }
}

/// `glob.quote_meta(text)`: the pattern that matches `text` literally.
pub(super) fn quote_meta(args: &[Value]) -> anyhow::Result<Value> {
    let text = text(args, 0).ok_or_else(|| anyhow::anyhow!("glob.quote_meta: operand 1 must be a string"))?;
    let mut quoted = String::with_capacity(text.len());
    for c in text.chars() {
        if "*?[]{}\\".contains(c) {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    Ok(Value::from(quoted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(pattern: &str, delimiters: Value, value: &str) -> Value {
        glob_match(&[Value::from(pattern), delimiters, Value::from(value)]).unwrap()
    }

    fn colon() -> Value {
        Value::from(vec![Value::from(":")])
    }

    #[test]
    fn a_star_stops_at_every_delimiter() {
        assert_eq!(
            matched("arn:aws:iam::*:root", colon(), "arn:aws:iam::123456789012:root"),
            Value::from(true)
        );
        assert_eq!(
            matched("arn:aws:iam::*:root", colon(), "arn:aws:iam::123:x:root"),
            Value::from(false)
        );
        assert_eq!(matched("a**z", colon(), "a:b:z"), Value::from(true));
        assert_eq!(matched("a*c", Value::Null, "a.b.c"), Value::from(true));
        assert_eq!(
            matched("a*c", Value::from(Vec::<Value>::new()), "a.b.c"),
            Value::from(false)
        );
        assert_eq!(
            matched("{,www.}example.com", Value::Null, "example.com"),
            Value::from(true)
        );
        assert_eq!(
            matched("[^a]*", Value::Null, "a1"),
            Value::from(true),
            "`^` is no negation"
        );
        assert_eq!(matched("[!a]*", Value::Null, "a1"), Value::from(false));
        assert_eq!(
            matched("{ab", Value::Null, "ab"),
            Value::from(false),
            "an unclosed brace matches nothing"
        );
        assert!(glob_match(&[Value::from("[ab"), Value::Null, Value::from("a")]).is_err());
        // gobwas: one range per class, `-` elsewhere in a list is itself.
        assert!(glob_match(&[Value::from("[a-z0-9]"), Value::Null, Value::from("a")]).is_err());
        assert_eq!(matched("[ab-d]", Value::Null, "-"), Value::from(true));
        assert_eq!(matched("[ab-d]", Value::Null, "c"), Value::from(false));
        // A pattern past the limits is refused, not recursed into.
        let deep = "{".repeat(100) + "a" + &"}".repeat(100);
        assert!(glob_match(&[Value::from(deep.as_str()), Value::Null, Value::from("a")]).is_err());
    }

    #[test]
    fn a_pathological_pattern_is_bounded() {
        let pattern = "*a".repeat(30) + "b";
        let value = "a".repeat(60);
        assert!(glob_match(&[Value::from(pattern.as_str()), Value::Null, Value::from(value.as_str())]).is_err());
    }
}
