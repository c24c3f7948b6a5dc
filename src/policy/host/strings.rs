//! OPA's `upper`, `lower`, `indexof`, `indexof_n` and `substring`, in
//! place of regorus's:
//!
//! - Go maps case rune by rune with Unicode's simple mappings
//!   (`unicode.ToUpper`): `ß` and `ﬁ` stay, `İ` lowers to `i`, `Σ` is
//!   always `σ`. regorus used Rust's full mappings (`ß` → `SS`, a final
//!   `ς`), so `upper(x) == "STRASSE"` held where OPA's does not.
//! - `count` of a string counts its characters (Go's runes): regorus
//!   counted UTF-16 units, 2 for an emoji.
//! - An empty needle is an error to `indexof` and `indexof_n` (regorus
//!   answered 0 and every index), and `substring` takes only integer
//!   offsets and lengths (regorus answered "" for `5.5`).

use regorus::Value;

use super::operand::{integer_operand, string_operand};

pub(super) fn count(args: &[Value]) -> anyhow::Result<Value> {
    let count = match args.first() {
        Some(Value::String(text)) => text.chars().count(),
        Some(Value::Array(items)) => items.len(),
        Some(Value::Set(items)) => items.len(),
        Some(Value::Object(fields)) => fields.len(),
        _ => anyhow::bail!("count: operand 1 must be one of {{array, object, set, string}}"),
    };
    Ok(Value::from(count))
}

pub(super) fn upper(args: &[Value]) -> anyhow::Result<Value> {
    let value = string_operand("upper", args, 0)?;
    Ok(Value::from(match value.is_ascii() {
        true => value.to_ascii_uppercase(),
        false => value.chars().map(simple_upper).collect::<String>(),
    }))
}

pub(super) fn lower(args: &[Value]) -> anyhow::Result<Value> {
    let value = string_operand("lower", args, 0)?;
    Ok(Value::from(match value.is_ascii() {
        true => value.to_ascii_lowercase(),
        false => value.chars().map(simple_lower).collect::<String>(),
    }))
}

/// Unicode's simple uppercase mapping of `c`, as Go's `unicode.ToUpper`.
/// Rust gives the full mapping: where that is one character it is the
/// simple one; where it is several, the simple mapping is `c` itself but
/// for the Greek letters with iota subscript below.
fn simple_upper(c: char) -> char {
    let mut full = c.to_uppercase();
    match (full.next(), full.next()) {
        (Some(single), None) => single,
        _ => match c as u32 {
            // ᾀ…ᾇ, ᾐ…ᾗ, ᾠ…ᾧ → ᾈ…ᾏ, ᾘ…ᾟ, ᾨ…ᾯ
            code @ (0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7) => char::from_u32(code + 8).unwrap_or(c),
            // ᾳ ῃ ῳ → ᾼ ῌ ῼ
            0x1FB3 | 0x1FC3 | 0x1FF3 => char::from_u32(c as u32 + 9).unwrap_or(c),
            _ => c,
        },
    }
}

/// Unicode's simple lowercase mapping of `c`, as Go's `unicode.ToLower`:
/// the one full mapping of several characters is `İ` → `i̇`, whose simple
/// mapping is `i`.
fn simple_lower(c: char) -> char {
    let mut full = c.to_lowercase();
    match (full.next(), full.next()) {
        (Some(single), None) => single,
        _ if c == '\u{130}' => 'i',
        _ => c,
    }
}

/// `indexof(value, needle)`: the index, in characters, of the first
/// occurrence; -1 where there is none.
pub(super) fn indexof(args: &[Value]) -> anyhow::Result<Value> {
    let (value, needle) = needle_operands("indexof", args)?;
    let first = occurrences(value, needle).next();
    Ok(Value::from(first.map_or(-1, |index| index as i64)))
}

/// `indexof_n(value, needle)`: the index, in characters, of every
/// occurrence, overlapping ones included.
pub(super) fn indexof_n(args: &[Value]) -> anyhow::Result<Value> {
    let (value, needle) = needle_operands("indexof_n", args)?;
    let all = occurrences(value, needle)
        .map(|index| Value::from(index as u64))
        .collect::<Vec<_>>();
    Ok(Value::from(all))
}

/// The character index of each position where `needle` starts.
fn occurrences<'a>(value: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    value
        .char_indices()
        .enumerate()
        .filter(move |(_, (at, _))| value[*at..].starts_with(needle))
        .map(|(index, _)| index)
}

fn needle_operands<'a>(name: &str, args: &'a [Value]) -> anyhow::Result<(&'a str, &'a str)> {
    let value = string_operand(name, args, 0)?;
    let needle = string_operand(name, args, 1)?;
    if needle.is_empty() {
        anyhow::bail!("{name}: empty search character");
    }
    Ok((value, needle))
}

/// `substring(value, offset, length)` in characters: a negative length
/// runs to the end; a negative offset is an error.
pub(super) fn substring(args: &[Value]) -> anyhow::Result<Value> {
    let value = string_operand("substring", args, 0)?;
    let offset = integer_operand("substring", args, 1)?;
    let length = integer_operand("substring", args, 2)?;
    let Ok(offset) = usize::try_from(offset) else {
        anyhow::bail!("substring: negative offset");
    };
    let mut rest = value.chars().skip(offset);
    let taken: String = match usize::try_from(length) {
        Ok(length) => rest.by_ref().take(length).collect(),
        Err(_) => rest.collect(),
    };
    Ok(Value::from(taken))
}

/// OPA's `format_int`: the number truncated toward zero (`big.Float.Int`),
/// written in base 2, 8, 10 or 16; regorus floored the magnitude and kept
/// the sign, so `format_int(-0.5, 10)` was `-0` where OPA writes `0`.
pub(super) fn format_int(args: &[Value]) -> anyhow::Result<Value> {
    let number = args
        .first()
        .and_then(|value| value.as_number().ok())
        .ok_or_else(|| anyhow::anyhow!("format_int: operand 1 must be a number"))?;
    let magnitude = number.abs().floor();
    let digits = match integer_operand("format_int", args, 1)? {
        2 => magnitude.format_bin(),
        8 => magnitude.format_octal(),
        10 => magnitude.format_decimal(),
        16 => magnitude.format_hex(),
        _ => anyhow::bail!("format_int: operand 2 must be one of 2, 8, 10, 16"),
    };
    let zero = Value::from(0u64);
    let negative = zero.as_number().is_ok_and(|zero| number < zero) && digits != "0";
    Ok(Value::from(if negative { format!("-{digits}") } else { digits }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(function: fn(&[Value]) -> anyhow::Result<Value>, args: &[Value]) -> String {
        function(args).unwrap().as_string().unwrap().to_string()
    }

    #[test]
    fn case_maps_rune_by_rune_as_go() {
        let up = |s: &str| string(upper, &[Value::from(s)]);
        let down = |s: &str| string(lower, &[Value::from(s)]);
        assert_eq!(up("Straße"), "STRAßE");
        assert_eq!(up("ﬁle ŉ ǰ"), "ﬁLE ŉ ǰ");
        assert_eq!(up("ǆ"), "Ǆ");
        assert_eq!(up("ᾳ ᾀ ῳ"), "ᾼ ᾈ ῼ");
        assert_eq!(up("admin"), "ADMIN");
        assert_eq!(down("İstanbul"), "istanbul");
        assert_eq!(down("ΟΔΟΣ ΣΑΣ"), "οδοσ σασ", "no final sigma");
        assert_eq!(down("ROOT"), "root");
    }

    #[test]
    fn indexes_count_characters_and_refuse_an_empty_needle() {
        let args = |value: &str, needle: &str| [Value::from(value), Value::from(needle)];
        assert_eq!(indexof(&args("héllo wörld", "wör")).unwrap(), Value::from(6i64));
        assert_eq!(indexof(&args("abc", "z")).unwrap(), Value::from(-1i64));
        assert!(indexof(&args("abc", "")).is_err());
        assert!(indexof_n(&args("abc", "")).is_err());
        let all = indexof_n(&args("aaaé", "aa")).unwrap();
        assert_eq!(serde_json::to_value(all).unwrap(), serde_json::json!([0, 1]));
    }

    #[test]
    fn substring_takes_integer_offsets_only() {
        let call = |offset: Value, length: Value| substring(&[Value::from("héllo"), offset, length]);
        assert_eq!(call(Value::from(1u64), Value::from(3u64)).unwrap(), Value::from("éll"));
        assert_eq!(call(Value::from(2u64), Value::from(-1i64)).unwrap(), Value::from("llo"));
        assert_eq!(call(Value::from(9u64), Value::from(2u64)).unwrap(), Value::from(""));
        assert!(call(Value::from(2.5), Value::from(1u64)).is_err());
        assert!(call(Value::from(-1i64), Value::from(1u64)).is_err());
        let fractional = call(Value::from(2.5), Value::from(1u64)).unwrap_err().to_string();
        assert_eq!(fractional, "substring: operand 2 must be an integer");
        let huge = call(Value::from(1u64), Value::from(1e19)).unwrap_err().to_string();
        assert_eq!(huge, "substring: operand 3 is out of range (64-bit integers)");
    }

    #[test]
    fn format_int_truncates_toward_zero() {
        let format = |n: f64, base: u64| {
            format_int(&[Value::from(n), Value::from(base)])
                .map(|v| v.as_string().unwrap().to_string())
                .ok()
        };
        assert_eq!(format(-0.5, 10).as_deref(), Some("0"));
        assert_eq!(format(-1.5, 10).as_deref(), Some("-1"));
        assert_eq!(format(-255.9, 16).as_deref(), Some("-ff"));
        assert_eq!(format(5.0, 2).as_deref(), Some("101"));
        assert_eq!(format(8.9, 8).as_deref(), Some("10"));
        assert_eq!(format(1.0, 3), None);
    }
}
