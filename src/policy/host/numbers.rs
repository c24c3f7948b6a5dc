//! `to_number`, `units.parse` and `units.parse_bytes` as OPA reads their
//! strings: Go's `strconv.ParseFloat` syntax (without Inf or NaN); an
//! amount read exactly (`big.Rat`) times the unit; an amount rounded to a
//! 64-bit mantissa (`big.Float`) times the unit, truncated toward zero.

use num_bigint::BigUint;
use num_traits::{One, ToPrimitive, Zero};
use regorus::Value;

use super::operand::string_operand;

/// `to_number`: null is 0, a boolean 0 or 1, a number itself, a string
/// what `strconv.ParseFloat` reads (`0080`, `+5`, `.5`, `5.`, `1_000`,
/// `0x1p-2`), but not Inf or NaN; the rest is an error.
pub(super) fn to_number(args: &[Value]) -> anyhow::Result<Value> {
    match args.first() {
        Some(Value::Null) => Ok(Value::from(0u64)),
        Some(Value::Bool(b)) => Ok(Value::from(u64::from(*b))),
        Some(number @ Value::Number(_)) => Ok(number.clone()),
        Some(Value::String(text)) => go_float(text)
            .ok_or_else(|| anyhow::anyhow!("to_number: parsing {text:?}: not a number strconv.ParseFloat reads")),
        _ => anyhow::bail!("to_number: operand 1 must be null, a boolean, a number or a string"),
    }
}

/// What `strconv.ParseFloat(text, 64)` reads, as a policy number; `None`
/// for bad syntax, a value out of range, Inf and NaN.
fn go_float(text: &str) -> Option<Value> {
    let (negative, rest) = sign(text);
    if ["inf", "infinity", "nan"]
        .iter()
        .any(|word| rest.eq_ignore_ascii_case(word))
    {
        return None;
    }
    if !underscores_between_digits(rest) {
        return None;
    }
    let plain = rest.replace('_', "");
    let value = match plain.get(..2) {
        Some("0x" | "0X") => hex_float(&plain[2..])?,
        _ => {
            let decimal = Decimal::parse(&plain)?;
            // Beyond float64's range Go reports an error, as OPA does.
            if !decimal.to_f64().is_finite() {
                return None;
            }
            return decimal.to_value(negative);
        }
    };
    let value = if negative { -value } else { value };
    value.is_finite().then(|| Value::from(value))
}

/// The sign, and what follows it.
fn sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

/// Go's rule for `_` in a number: each one follows a digit (or a base
/// prefix) and is followed by a digit.
fn underscores_between_digits(literal: &str) -> bool {
    let bytes = literal.as_bytes();
    let hex = bytes.len() >= 2 && bytes[0] == b'0' && matches!(bytes[1], b'x' | b'X');
    let start = if hex { 2 } else { 0 };
    let is_digit = |b: u8| b.is_ascii_digit() || (hex && b.is_ascii_hexdigit());
    let mut after_digit = hex;
    let mut after_underscore = false;
    for &b in &bytes[start..] {
        if is_digit(b) {
            after_digit = true;
            after_underscore = false;
        } else if b == b'_' {
            if !after_digit {
                return false;
            }
            after_digit = false;
            after_underscore = true;
        } else if after_underscore {
            return false;
        } else {
            after_digit = false;
        }
    }
    !after_underscore
}

/// A hexadecimal float after its `0x`: hex digits with at most one `.`,
/// then a binary exponent `p`, which Go requires.
fn hex_float(text: &str) -> Option<f64> {
    let (mantissa, exponent) = text.split_once(['p', 'P'])?;
    let exponent: i32 = decimal_exponent(exponent)?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let value = BigUint::parse_bytes(digits.as_bytes(), 16)?.to_f64()?;
    let shift = i64::from(exponent) - 4 * fraction.len() as i64;
    // Powers of two applied in steps: exact, and no overflow on the way.
    let mut value = value;
    let mut left = shift.clamp(-2200, 2200);
    while left != 0 {
        let step = left.clamp(-1000, 1000);
        value *= 2f64.powi(step as i32);
        left -= step;
    }
    Some(value)
}

/// A signed decimal exponent (`+3`, `-10`, `7`), bounded.
fn decimal_exponent(text: &str) -> Option<i32> {
    let (negative, digits) = sign(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Past 10^±100,000 a number is out of float64's range, or zero, either
    // way: the exponent is held there.
    let significant = digits.trim_start_matches('0');
    let magnitude = match significant.len() {
        0..=6 => significant.parse::<i32>().unwrap_or(0).min(100_000),
        _ => 100_000,
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// The longest number text read: past it a number is refused (an error,
/// undefined by default), where regorus would compute it at any cost.
const MAX_DIGITS: usize = 10_000;

/// An unsigned decimal `digits × 10^exponent`, read exactly.
#[derive(Debug, Clone, PartialEq)]
struct Decimal {
    digits: BigUint,
    exponent: i64,
}

impl Decimal {
    /// Digits with at most one `.` (at least one digit), then an optional
    /// `e`/`E` exponent: what `ParseFloat`, `big.Rat` and `big.Float` read
    /// in base 10.
    fn parse(text: &str) -> Option<Decimal> {
        // Big-number arithmetic grows with the digits: bounded, as the
        // exponent is (`decimal_exponent`).
        if text.len() > MAX_DIGITS {
            return None;
        }
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(at) => (&text[..at], i64::from(decimal_exponent(&text[at + 1..])?)),
            None => (text, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = format!("{whole}{fraction}");
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Decimal {
            digits: BigUint::parse_bytes(digits.as_bytes(), 10)?,
            exponent: exponent - fraction.len() as i64,
        })
    }

    /// The nearest float64 (Rust's reading of decimal text is exact-rounded).
    fn to_f64(&self) -> f64 {
        format!("{}e{}", self.digits, self.exponent)
            .parse()
            .unwrap_or(f64::INFINITY)
    }

    /// The exact integer, when it is one (a bounded exponent: past it the
    /// value is no integer a policy holds).
    fn to_integer(&self) -> Option<BigUint> {
        if self.exponent >= 0 {
            let exponent = u32::try_from(self.exponent).ok().filter(|e| *e <= 400)?;
            return Some(&self.digits * BigUint::from(10u32).pow(exponent));
        }
        let divisor = BigUint::from(10u32).pow(u32::try_from(-self.exponent).ok().filter(|e| *e <= 400)?);
        (&self.digits % &divisor).is_zero().then(|| &self.digits / &divisor)
    }

    /// A policy number: an integer exactly (of any size), else the nearest
    /// float64.
    fn to_value(&self, negative: bool) -> Option<Value> {
        match self.to_integer() {
            Some(integer) => integer_value(negative, &integer),
            None => {
                let value = self.to_f64();
                value
                    .is_finite()
                    .then(|| Value::from(if negative { -value } else { value }))
            }
        }
    }
}

/// An integer of any size as a policy number: exactly, as regorus reads a
/// big number's text.
fn integer_value(negative: bool, magnitude: &BigUint) -> Option<Value> {
    if let Some(small) = magnitude.to_i128() {
        return Some(Value::from(if negative { -small } else { small }));
    }
    let sign = if negative { "-" } else { "" };
    let private = super::super::guard::PRIVATE_NUMBER;
    Value::from_json_str(&format!(r#"{{"{private}": "{sign}{magnitude}"}}"#)).ok()
}

/// The amount and the unit of a units string: an optional sign, digits and
/// dots, and an exponent where `e` is followed by digits (`1e3` is a
/// thousand, `1.5E` one and a half exa).
fn split_amount(text: &str) -> (&str, &str) {
    let bytes = text.as_bytes();
    let mut end = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
        end += 1;
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let mut digits = end + 1 + usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        let first = digits;
        while digits < bytes.len() && bytes[digits].is_ascii_digit() {
            digits += 1;
        }
        if digits > first {
            end = digits;
        }
    }
    let amount = &text[..end];
    match amount.bytes().any(|b| b.is_ascii_digit() || b == b'.') {
        true => (amount, &text[end..]),
        false => ("", text),
    }
}

/// A signed decimal amount.
fn amount(text: &str) -> Option<(bool, Decimal)> {
    let (negative, rest) = sign(text);
    Some((negative, Decimal::parse(rest)?))
}

/// `units.parse`: an amount and a decimal or binary unit (`m` is milli,
/// `M` mega; after its first letter a unit is read in any case), exactly.
pub(super) fn units_parse(args: &[Value]) -> anyhow::Result<Value> {
    let text = string_operand("units.parse", args, 0)?.replace('"', "");
    if text.contains(' ') {
        anyhow::bail!("units.parse: spaces not allowed in resource strings");
    }
    let (number, unit) = split_amount(&text);
    if number.is_empty() {
        anyhow::bail!("units.parse: no amount provided");
    }
    let mut chars = unit.chars();
    let unit: String = chars
        .next()
        .into_iter()
        .chain(chars.flat_map(char::to_lowercase))
        .collect();
    let not_recognized = || anyhow::anyhow!("units.parse: unit {unit} not recognized");
    let (multiplier, milli) = match unit.as_str() {
        "" => (BigUint::one(), false),
        "m" => (BigUint::one(), true),
        "M" => (BigUint::from(10u32).pow(6), false),
        // Bytes are `units.parse_bytes`'s.
        other if other.ends_with('b') => return Err(not_recognized()),
        other => (multiplier(&other.to_lowercase()).ok_or_else(not_recognized)?, false),
    };
    let (negative, mut value) =
        amount(number).ok_or_else(|| anyhow::anyhow!("units.parse: could not parse amount to a number"))?;
    value.digits *= multiplier;
    if milli {
        value.exponent -= 3;
    }
    value
        .to_value(negative)
        .ok_or_else(|| anyhow::anyhow!("units.parse: {number}{unit} is out of range"))
}

/// A unit's multiplier, in lower case (`k` and `kb`, `ki` and `kib`, ...):
/// powers of 1,000 or of 1,024.
fn multiplier(unit: &str) -> Option<BigUint> {
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let (prefix, binary) = match unit.strip_suffix('i') {
        Some(prefix) => (prefix, true),
        None => (unit, false),
    };
    let power = ["k", "m", "g", "t", "p", "e"].iter().position(|p| *p == prefix)? as u32 + 1;
    Some(match binary {
        true => BigUint::from(1024u32).pow(power),
        false => BigUint::from(1000u32).pow(power),
    })
}

/// `units.parse_bytes`: an amount (any case) and a byte unit (`kb`, `kib`,
/// `k`, `ki`, ...), the amount rounded to a 64-bit mantissa and the product
/// too, as Go's `big.Float`, then truncated toward zero.
pub(super) fn units_parse_bytes(args: &[Value]) -> anyhow::Result<Value> {
    let text = string_operand("units.parse_bytes", args, 0)?
        .to_lowercase()
        .replace('"', "");
    if text.contains(' ') {
        anyhow::bail!("units.parse_bytes: spaces not allowed in resource strings");
    }
    let (number, unit) = split_amount(&text);
    if number.is_empty() {
        anyhow::bail!("units.parse_bytes: no byte amount provided");
    }
    let multiplier = match unit {
        "" => Some(BigUint::one()),
        "b" => None,
        unit => multiplier(unit),
    }
    .ok_or_else(|| anyhow::anyhow!("units.parse_bytes: byte unit {unit} not recognized"))?;
    let (negative, value) =
        amount(number).ok_or_else(|| anyhow::anyhow!("units.parse_bytes: could not parse byte amount to a number"))?;
    let bytes = Binary64::from_decimal(&value)
        .ok_or_else(|| anyhow::anyhow!("units.parse_bytes: {number} is out of range"))?
        .times(&multiplier)
        .truncated();
    integer_value(negative, &bytes).ok_or_else(|| anyhow::anyhow!("units.parse_bytes: {number} is out of range"))
}

/// A `big.Float` of 64-bit precision: `mantissa × 2^exponent`, the
/// mantissa below 2^64, rounded to nearest, ties to even.
struct Binary64 {
    mantissa: BigUint,
    exponent: i64,
}

const PRECISION: u64 = 64;

impl Binary64 {
    /// The decimal rounded to 64 bits (bounded: past 10^±400 an amount of
    /// bytes is no number anyone writes).
    fn from_decimal(decimal: &Decimal) -> Option<Binary64> {
        if decimal.digits.is_zero() {
            return Some(Binary64 {
                mantissa: BigUint::zero(),
                exponent: 0,
            });
        }
        let power = BigUint::from(10u32).pow(
            u32::try_from(decimal.exponent.unsigned_abs())
                .ok()
                .filter(|e| *e <= 400)?,
        );
        let (numerator, denominator) = match decimal.exponent >= 0 {
            true => (&decimal.digits * power, BigUint::one()),
            false => (decimal.digits.clone(), power),
        };
        // Scale so that the quotient has 64 bits, plus the remainder for rounding.
        let shift = PRECISION as i64 + denominator.bits() as i64 - numerator.bits() as i64;
        let (numerator, denominator) = match shift >= 0 {
            true => (numerator << shift as u64, denominator),
            false => (numerator, denominator << (-shift) as u64),
        };
        let (mut quotient, mut remainder) = (&numerator / &denominator, &numerator % &denominator);
        let mut exponent = -shift;
        let mut divisor = denominator;
        // The quotient has 64 or 65 bits: one more halving when 65.
        if quotient.bits() > PRECISION {
            remainder += (&quotient & BigUint::one()) * &divisor;
            quotient >>= 1u32;
            divisor <<= 1u32;
            exponent += 1;
        }
        Some(
            Binary64 {
                mantissa: round_half_even(quotient, &remainder, &divisor),
                exponent,
            }
            .normalized(),
        )
    }

    /// The product rounded to 64 bits.
    fn times(self, factor: &BigUint) -> Binary64 {
        let product = self.mantissa * factor;
        let extra = product.bits().saturating_sub(PRECISION);
        if extra == 0 {
            return Binary64 {
                mantissa: product,
                exponent: self.exponent,
            };
        }
        let divisor = BigUint::one() << extra;
        let remainder = &product & (&divisor - BigUint::one());
        Binary64 {
            mantissa: round_half_even(product >> extra, &remainder, &divisor),
            exponent: self.exponent + extra as i64,
        }
        .normalized()
    }

    /// Toward zero, as `big.Float.Int`.
    fn truncated(self) -> BigUint {
        match self.exponent >= 0 {
            true => self.mantissa << self.exponent as u64,
            false => self.mantissa >> self.exponent.unsigned_abs(),
        }
    }

    /// Rounding up to 2^64 carries into a 65th bit: halve it.
    fn normalized(mut self) -> Binary64 {
        if self.mantissa.bits() > PRECISION {
            self.mantissa >>= 1u32;
            self.exponent += 1;
        }
        self
    }
}

/// `quotient` rounded by `remainder / divisor`: up past a half, to even at
/// a half.
fn round_half_even(quotient: BigUint, remainder: &BigUint, divisor: &BigUint) -> BigUint {
    let twice = remainder << 1u32;
    let odd = quotient.bit(0);
    match twice.cmp(divisor) {
        std::cmp::Ordering::Greater => quotient + 1u32,
        std::cmp::Ordering::Equal if odd => quotient + 1u32,
        _ => quotient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> Option<String> {
        go_float(text).map(|v| v.to_json_str().unwrap())
    }

    #[test]
    fn strings_read_as_go_parse_float_reads_them() {
        for (text, want) in [
            ("0080", "80"),
            ("+5", "5"),
            (".5", "0.5"),
            ("5.", "5"),
            ("1e3", "1000"),
            ("1_000", "1000"),
            ("0x1p-2", "0.25"),
            ("0X1.8p1", "3"),
            ("00.5e1", "5"),
            ("-12.5e-1", "-1.25"),
        ] {
            assert_eq!(number(text).as_deref(), Some(want), "{text}");
        }
        // Integers past 64 bits are kept exactly (regorus writes them as floats).
        let big = go_float("123456789012345678901234567890").unwrap();
        assert_eq!(big.as_u128().unwrap(), 123456789012345678901234567890u128);
        for bad in [
            "0x10",
            "inf",
            "-Infinity",
            "NaN",
            " 7",
            "7 ",
            "",
            "1e400",
            "-",
            "1e",
            "0b101",
            "0o17",
            "1__0",
            "_1",
            "1_",
            "0x_10",
            "1._5",
            "١٢",
            "1e99999999999",
        ] {
            assert_eq!(number(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 1000, ..Default::default() })]
        /// A float's shortest text, in either notation, reads back to the
        /// same float; an integer's to the same integer, with `_` between
        /// its digits too; bytes of a whole number of kilobytes are exact.
        #[test]
        fn numbers_read_back(x in -1e15f64..1e15, tiny in -1e-300f64..1e-300, n: i64, k in 0u64..1_000_000) {
            // (Past 2^53 an integral text is read as the exact integer it
            // writes, as OPA keeps it, not as the float it came from.)
            for (text, read) in [(format!("{x:e}"), x), (format!("{x}"), x), (format!("{tiny:e}"), tiny)] {
                proptest::prop_assert_eq!(go_float(&text).unwrap(), Value::from(read), "{}", text);
            }
            proptest::prop_assert_eq!(go_float(&n.to_string()).unwrap(), Value::from(n));
            let grouped: String = n.to_string().chars().flat_map(|c| [c, '_']).collect::<String>().replace("-_", "-");
            proptest::prop_assert_eq!(go_float(grouped.trim_end_matches('_')).unwrap(), Value::from(n));
            proptest::prop_assert_eq!(units_parse_bytes(&[Value::from(format!("{k}KiB"))]).unwrap(), Value::from(k * 1024));
        }
    }

    fn parsed(function: fn(&[Value]) -> anyhow::Result<Value>, text: &str) -> Result<String, String> {
        function(&[Value::from(text)])
            .map(|v| v.to_json_str().unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn units_are_read_exactly_with_their_case_rules() {
        for (text, want) in [
            ("1.5Mi", "1572864"),
            ("0.5m", "0.0005"),
            ("1M", "1000000"),
            ("1mi", "1048576"),
            ("1kI", "1024"),
            ("\"5\"k", "5000"),
            ("5.k", "5000"),
            ("1e3", "1000"),
            ("1.5E", "1500000000000000000"),
            ("-1K", "-1000"),
        ] {
            assert_eq!(parsed(units_parse, text).as_deref(), Ok(want), "{text}");
        }
        let big = units_parse(&[Value::from("1000Ei")]).unwrap();
        assert_eq!(big.as_u128().unwrap(), 1000u128 << 60);
        for (bad, says) in [
            ("1h", "unit h not recognized"),
            ("1kb", "unit kb not recognized"),
            ("1 k", "spaces not allowed"),
            ("k", "no amount provided"),
            ("", "no amount provided"),
            ("1.2.3k", "could not parse amount"),
        ] {
            let err = parsed(units_parse, bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn bytes_are_truncated_after_go_s_64_bit_rounding() {
        for (text, want) in [
            ("1.9", "1"),
            ("0.5", "0"),
            ("1.0005KB", "1000"),
            ("2.7kib", "2764"),
            ("-1.5k", "-1500"),
            ("1E3kb", "1000000"),
            // 22 digits: rounded to 64 bits it is 13 exactly.
            ("12.99999999999999999999kb", "13000"),
            // 17 nines: below 1 in 64 bits (a float64 would read 1).
            ("0.99999999999999999", "0"),
            ("1.1eib", "1268213655067531673"),
        ] {
            assert_eq!(parsed(units_parse_bytes, text).as_deref(), Ok(want), "{text}");
        }
        let big = units_parse_bytes(&[Value::from("1000.5eib")]).unwrap();
        assert_eq!(big.as_u128().unwrap(), 1000u128 * (1 << 60) + (1 << 59));
        for (bad, says) in [
            ("10B", "byte unit b not recognized"),
            ("1.5xb", "byte unit xb not recognized"),
            ("0x1k", "byte unit x1k not recognized"),
            ("kb", "no byte amount provided"),
            (" 1k", "spaces not allowed"),
        ] {
            let err = parsed(units_parse_bytes, bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }
}
