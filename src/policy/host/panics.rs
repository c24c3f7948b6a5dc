//! regorus builtins that panic on some arguments, in the host's versions:
//! a release build aborts on a panic, so alert content reaching one of
//! these would crash the function (and, in a batch, retry every record).
//!
//! - `strings.count(s, "")`: Go's answer, the number of runes plus one.
//! - `time.parse_duration_ns`: Go's `time.ParseDuration` (regorus sliced
//!   past a trailing `.` or into a multi-byte unit).
//! - `regex.template_match`: OPA's, one anchored regex of the template
//!   (regorus sliced past the end of a short value).

use regorus::Value;

use super::operand::text;
use super::re2;

pub(super) fn strings_count(args: &[Value]) -> Option<Value> {
    let (haystack, needle) = (text(args, 0)?, text(args, 1)?);
    let count = match needle {
        "" => haystack.chars().count() + 1,
        needle => haystack.matches(needle).count(),
    };
    Some(Value::from(count as u64))
}

pub(super) fn parse_duration_ns(args: &[Value]) -> Option<Value> {
    parse_duration(text(args, 0)?).map(Value::from)
}

/// Go's `time.ParseDuration`, in nanoseconds; None where Go errs.
fn parse_duration(text: &str) -> Option<i64> {
    const LIMIT: u64 = 1 << 63;
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let first = rest.as_bytes()[0];
        if first != b'.' && !first.is_ascii_digit() {
            return None;
        }
        let (whole, after_whole) = leading_int(rest)?;
        let had_whole = after_whole.len() != rest.len();
        rest = after_whole;
        let (mut fraction, mut scale, mut had_fraction) = (0u64, 1f64, false);
        if let Some(after_dot) = rest.strip_prefix('.') {
            let (digits, digits_scale, after) = leading_fraction(after_dot);
            had_fraction = after.len() != after_dot.len();
            (fraction, scale, rest) = (digits, digits_scale, after);
        }
        if !had_whole && !had_fraction {
            return None;
        }
        let unit_len = rest
            .bytes()
            .position(|b| b == b'.' || b.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, after_unit) = rest.split_at(unit_len);
        rest = after_unit;
        let unit: u64 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        if whole > LIMIT / unit {
            return None;
        }
        let mut value = whole * unit;
        if fraction > 0 {
            value += (fraction as f64 * (unit as f64 / scale)) as u64;
            if value > LIMIT {
                return None;
            }
        }
        total = total.checked_add(value).filter(|total| *total <= LIMIT)?;
    }
    match negative {
        true => Some((total as i64).wrapping_neg()),
        false => i64::try_from(total).ok(),
    }
}

/// The leading decimal integer and what follows it; None on overflow.
fn leading_int(text: &str) -> Option<(u64, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: u64 = 0;
    for digit in text[..digits].bytes() {
        if value > (1 << 63) / 10 {
            return None;
        }
        value = value * 10 + u64::from(digit - b'0');
        if value > 1 << 63 {
            return None;
        }
    }
    Some((value, &text[digits..]))
}

/// The leading fraction digits as an integer and the power of ten they
/// were scaled by (digits past 2^63 are read and dropped), then the rest.
fn leading_fraction(text: &str) -> (u64, f64, &str) {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (mut value, mut scale, mut overflow) = (0u64, 1f64, false);
    for digit in text[..digits].bytes() {
        if overflow {
            continue;
        }
        if value > ((1u64 << 63) - 1) / 10 {
            overflow = true;
            continue;
        }
        let next = value * 10 + u64::from(digit - b'0');
        if next > 1 << 63 {
            overflow = true;
            continue;
        }
        (value, scale) = (next, scale * 10.0);
    }
    (value, scale, &text[digits..])
}

/// `regex.template_match(template, value, start, end)` as OPA compiles it:
/// the template one anchored regex, each `start…end` part (delimiters may
/// nest: `{[0-9]{12}}`) a group, the rest literal text.
pub(super) fn template_match(args: &[Value]) -> anyhow::Result<Value> {
    let operand = |index: usize| {
        text(args, index).ok_or_else(|| anyhow::anyhow!("regex.template_match: operand {} must be a string", index + 1))
    };
    let (template, value) = (operand(0)?, operand(1)?);
    let (open, close) = match (operand(2)?.as_bytes(), operand(3)?.as_bytes()) {
        ([open], [close]) => (*open, *close),
        _ => anyhow::bail!("regex.template_match: start and end delimiters are expected to be single characters"),
    };
    let mut pattern = String::from("^");
    let mut literal_from = 0;
    for (start, end) in delimited(template, open, close)? {
        pattern.push_str(&regex::escape(&template[literal_from..start]));
        pattern.push('(');
        pattern.push_str(&template[start + 1..end - 1]);
        pattern.push(')');
        literal_from = end;
    }
    pattern.push_str(&regex::escape(&template[literal_from..]));
    pattern.push('$');
    // The parts between delimiters are RE2, as the literals escaped here.
    let regex =
        re2::compile(&pattern).map_err(|err| anyhow::anyhow!("regex.template_match: invalid template: {err}"))?;
    Ok(Value::from(regex.is_match(value)))
}

/// The outermost `open…close` spans of `template` (byte offsets, the
/// close included); unbalanced delimiters are an error. Both delimiters
/// are ASCII bytes, so the offsets fall between characters.
fn delimited(template: &str, open: u8, close: u8) -> anyhow::Result<Vec<(usize, usize)>> {
    let (mut level, mut start, mut spans) = (0usize, 0, Vec::new());
    for (at, byte) in template.bytes().enumerate() {
        if byte == open {
            level += 1;
            if level == 1 {
                start = at;
            }
        } else if byte == close {
            level = level
                .checked_sub(1)
                .ok_or_else(|| anyhow::anyhow!("regex.template_match: unbalanced braces in {template:?}"))?;
            if level == 0 {
                spans.push((start, at + 1));
            }
        }
    }
    match level {
        0 => Ok(spans),
        _ => anyhow::bail!("regex.template_match: unbalanced braces in {template:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_parses_them() {
        let cases: &[(&str, Option<i64>)] = &[
            ("0", Some(0)),
            ("1h2m", Some(3_720_000_000_000)),
            ("1.5h", Some(5_400_000_000_000)),
            ("-3s", Some(-3_000_000_000)),
            ("+3s", Some(3_000_000_000)),
            ("1us", Some(1_000)),
            ("1\u{b5}s", Some(1_000)),
            ("1\u{3bc}s", Some(1_000)),
            (".5s", Some(500_000_000)),
            ("1.s", Some(1_000_000_000)),
            ("2562047h47m16.854775807s", Some(i64::MAX)),
            ("-2562047h47m16.854775808s", Some(i64::MIN)),
            ("2562047h47m16.854775808s", None),
            ("1.", None),
            ("1\u{b5}", None),
            ("1", None),
            ("", None),
            ("-", None),
            (".s", None),
            ("1d", None),
            ("3000000h", None),
        ];
        for (text, nanos) in cases {
            assert_eq!(parse_duration(text), *nanos, "{text:?}");
        }
    }

    #[test]
    fn counts_and_template_matches_do_not_panic() {
        let count = |s: &str, sub: &str| strings_count(&[Value::from(s), Value::from(sub)]).unwrap();
        assert_eq!(count("abc", ""), Value::from(4u64));
        assert_eq!(count("héllo", ""), Value::from(6u64));
        assert_eq!(count("aaaa", "aa"), Value::from(2u64));
        let matched = |template: &str, value: &str| {
            template_match(&[
                Value::from(template),
                Value::from(value),
                Value::from("{"),
                Value::from("}"),
            ])
            .unwrap()
        };
        assert_eq!(matched("urn:foo:{.*}", "urn"), Value::from(false));
        assert_eq!(matched("é{.*}", "aé"), Value::from(false));
        assert_eq!(matched("urn:foo:{[a-z]+}:x", "urn:foo:bar:x"), Value::from(true));
        assert!(template_match(&[
            Value::from("a{(}"),
            Value::from("a"),
            Value::from("{"),
            Value::from("}")
        ])
        .is_err());
        let delimiters = |open: &str, close: &str| {
            template_match(&[
                Value::from("xab.b"),
                Value::from("xa"),
                Value::from(open),
                Value::from(close),
            ])
        };
        assert!(
            delimiters("ab", "b").is_err(),
            "delimiters are single characters, as in OPA"
        );
    }
}
