//! OPA's `sprintf`: Go's `fmt.Sprintf` over the arguments as OPA hands
//! them over (an integer as `int64`, or `*big.Int` past it; another number
//! as `float64`; a string as itself; any other value as its Rego text).
//! regorus's made `%-6s`, `%+d`, `% d` and `%8.3f` undefined (the entry
//! holding it vanished), ignored widths on strings and formatted `%e`, `%g`
//! and `%o` its own way.

use std::borrow::Cow;

use regorus::Value;

use super::operand::text;
use crate::policy::guard::{check_sprintf, too_large, MAX_BUILT_BYTES, MAX_FORMAT_WIDTH};

/// One argument, as Go's `fmt` sees it.
enum Arg<'a> {
    Int(i64),
    Big(i128),
    Float(f64),
    /// A string argument borrowed; another value's Rego text.
    Str(Cow<'a, str>),
}

impl<'a> Arg<'a> {
    fn of(value: &'a Value) -> Arg<'a> {
        match value {
            Value::Number(number) => {
                if let Some(int) = number.as_i64() {
                    Arg::Int(int)
                } else if let Some(big) = number.as_big() {
                    // An integer past int64 (a float that large is no
                    // `BigInt` to regorus: it gives none).
                    match big.to_string().parse::<i128>() {
                        Ok(big) => Arg::Big(big),
                        Err(_) => Arg::Float(float_of(value)),
                    }
                } else {
                    Arg::Float(float_of(value))
                }
            }
            Value::String(text) => Arg::Str(Cow::Borrowed(text)),
            other => Arg::Str(Cow::Owned(rego_text(other))),
        }
    }

    /// What Go's `%T` writes.
    fn go_type(&self) -> &'static str {
        match self {
            Arg::Big(_) => "*big.Int",
            other => other.type_name(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Arg::Int(_) => "int64",
            Arg::Big(_) => "big.Int",
            Arg::Float(_) => "float64",
            Arg::Str(_) => "string",
        }
    }

    /// `%v` without flags: what an error message shows.
    fn plain(&self) -> String {
        match self {
            Arg::Int(int) => int.to_string(),
            Arg::Big(big) => big.to_string(),
            Arg::Float(float) => floating('v', &Spec::default(), *float).unwrap_or_default(),
            Arg::Str(text) => text.to_string(),
        }
    }
}

/// A number as a float (regorus gives none for a float past int64).
fn float_of(value: &Value) -> f64 {
    serde_json::to_value(value)
        .ok()
        .and_then(|json| json.as_f64())
        .unwrap_or(f64::NAN)
}

/// A verb's flags, width and precision.
#[derive(Default, Clone, Copy)]
struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Widest field or precision taken: `policy::guard` refuses a wider one
/// written in the format; one given by `*` is held to it.
const MAX_FIELD: usize = MAX_FORMAT_WIDTH as usize;

pub(super) fn sprintf(args: &[Value]) -> anyhow::Result<Value> {
    check_sprintf(args)?;
    let format = text(args, 0).ok_or_else(|| anyhow::anyhow!("sprintf: operand 1 must be a string"))?;
    let Some(Value::Array(values)) = args.get(1) else {
        anyhow::bail!("sprintf: operand 2 must be an array");
    };
    let values: Vec<Arg> = values
        .iter()
        .filter(|value| !matches!(value, Value::Undefined))
        .map(Arg::of)
        .collect();
    let formatted = format_all(format, &values);
    if formatted.len() as u64 > MAX_BUILT_BYTES {
        return Err(too_large("sprintf", formatted.len() as u64 / 32));
    }
    Ok(Value::from(formatted))
}

/// Where formatting stands in the format (a byte offset, always on a
/// character boundary: only ASCII is stepped over byte by byte) and the
/// arguments.
struct Cursor<'a> {
    format: &'a str,
    at: usize,
    args: &'a [Arg<'a>],
    next_arg: usize,
    /// An argument index (`%[2]d`) was written, well or not: no EXTRA report.
    reordered: bool,
    /// This verb's argument indexes were all usable (else `%!d(BADINDEX)`).
    good_index: bool,
}

/// Go's bound on a number in a format (an index, a width): past it, none.
const TOO_LARGE: u64 = 1_000_000;

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.format.as_bytes().get(self.at).copied()
    }

    /// An explicit argument index, `[n]` (from 1), if one stands here, as
    /// Go reads it: one that is not all digits, unclosed, empty, zero or
    /// past the arguments makes the verb `BADINDEX`. Whether one was
    /// written well (in range or not).
    fn index(&mut self) -> bool {
        if self.peek() != Some(b'[') {
            return false;
        }
        self.reordered = true;
        let rest = &self.format.as_bytes()[self.at..];
        let close = match rest.iter().skip(1).position(|b| *b == b']') {
            Some(position) if rest.len() >= 3 => position + 1,
            // No `[n]` here: only the bracket is taken.
            _ => {
                self.good_index = false;
                self.at += 1;
                return false;
            }
        };
        self.at += close + 1;
        match index_number(&rest[1..close]) {
            Some(n) if n >= 1 && n <= self.args.len() as u64 => {
                self.next_arg = (n - 1) as usize;
                true
            }
            written => {
                self.good_index = false;
                written.is_some()
            }
        }
    }

    /// The flags, width and precision after a `%`, with their indexes; a
    /// width or precision argument that is no integer is reported in `out`
    /// as Go reports it.
    fn spec(&mut self, out: &mut String) -> Spec {
        let mut spec = Spec::default();
        while let Some(flag) = self.peek().filter(|c| b"+-# 0".contains(c)) {
            match flag {
                b'+' => spec.plus = true,
                b'-' => spec.minus = true,
                b'#' => spec.sharp = true,
                b' ' => spec.space = true,
                _ => spec.zero = true,
            }
            self.at += 1;
        }
        let mut after_index = self.index();
        if self.peek() == Some(b'*') {
            self.at += 1;
            match self.star() {
                Some(width) => {
                    spec.minus |= width < 0;
                    spec.width = Some((width.unsigned_abs() as usize).min(MAX_FIELD));
                }
                None => out.push_str("%!(BADWIDTH)"),
            }
            after_index = false;
        } else {
            spec.width = self.digits();
            // `%[1]2d`: an index stands before the width it would skip.
            if after_index && spec.width.is_some() {
                self.good_index = false;
            }
        }
        // A `.` with nothing after it is the verb.
        if self.peek() == Some(b'.') && self.at + 1 < self.format.len() {
            self.at += 1;
            if after_index {
                self.good_index = false;
            }
            after_index = self.index();
            if self.peek() == Some(b'*') {
                self.at += 1;
                match self.star() {
                    Some(precision) if precision >= 0 => spec.precision = Some((precision as usize).min(MAX_FIELD)),
                    _ => out.push_str("%!(BADPREC)"),
                }
                after_index = false;
            } else {
                spec.precision = Some(self.digits().unwrap_or(0));
            }
        }
        if !after_index {
            self.index();
        }
        spec
    }

    /// A width or precision written as digits.
    fn digits(&mut self) -> Option<usize> {
        let digits = self.format.as_bytes()[self.at..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let number = &self.format[self.at..self.at + digits];
        self.at += digits;
        number.parse::<usize>().ok().map(|n| n.min(MAX_FIELD))
    }

    /// A width or precision given by `*`: the next argument, taken if there
    /// is one; none unless it is an integer within Go's bound.
    fn star(&mut self) -> Option<i64> {
        let arg = self.args.get(self.next_arg)?;
        self.next_arg += 1;
        match arg {
            Arg::Int(n) if n.unsigned_abs() <= TOO_LARGE => Some(*n),
            _ => None,
        }
    }
}

/// The number `digits` write, as Go reads an index: none unless all are
/// digits (at least one), nor past Go's bound.
fn index_number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |number, digit| {
        (digit.is_ascii_digit() && number <= TOO_LARGE).then(|| number * 10 + u64::from(digit - b'0'))
    })
}

fn format_all(format: &str, args: &[Arg]) -> String {
    let mut cursor = Cursor {
        format,
        at: 0,
        args,
        next_arg: 0,
        reordered: false,
        good_index: true,
    };
    let mut out = String::with_capacity(format.len() + 16);
    while cursor.at < format.len() {
        // Past the limit the caller refuses it: stop building.
        if out.len() as u64 > MAX_BUILT_BYTES {
            return out;
        }
        // The text up to the next verb, as it is.
        let literal = format[cursor.at..].find('%').unwrap_or(format.len() - cursor.at);
        out.push_str(&format[cursor.at..cursor.at + literal]);
        cursor.at += literal;
        if cursor.at == format.len() {
            break;
        }
        cursor.at += 1;
        cursor.good_index = true;
        let spec = cursor.spec(&mut out);
        let Some(verb) = format[cursor.at..].chars().next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        cursor.at += verb.len_utf8();
        if verb == '%' {
            // Takes no argument, whatever its index.
            out.push('%');
            continue;
        }
        if !cursor.good_index {
            out.push_str(&format!("%!{verb}(BADINDEX)"));
            continue;
        }
        match args.get(cursor.next_arg) {
            Some(arg) => out.push_str(&format_one(verb, &spec, arg)),
            None => out.push_str(&format!("%!{verb}(MISSING)")),
        }
        cursor.next_arg += 1;
    }
    if !cursor.reordered && cursor.next_arg < args.len() {
        let extra: Vec<String> = args[cursor.next_arg..]
            .iter()
            .map(|arg| format!("{}={}", arg.type_name(), arg.plain()))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn format_one(verb: char, spec: &Spec, arg: &Arg) -> String {
    if verb == 'T' {
        // The argument's Go type, written as a string.
        return string('s', spec, arg.go_type()).unwrap_or_default();
    }
    if verb == 'v' && (spec.sharp || spec.plus) {
        // With `%v`, Go reads `#` as Go syntax (a string quoted) and `+` as
        // struct field names: neither is a flag of the value's own, but a
        // big integer's formatter still sees `+`.
        let plain = Spec {
            sharp: false,
            plus: spec.plus && matches!(arg, Arg::Big(_)),
            ..*spec
        };
        return match arg {
            Arg::Str(text) if spec.sharp => string('q', &plain, text).unwrap_or_default(),
            _ => format_value('v', &plain, arg),
        };
    }
    format_value(verb, spec, arg)
}

/// `arg` under `verb` with the flags as given.
fn format_value(verb: char, spec: &Spec, arg: &Arg) -> String {
    let formatted = match arg {
        Arg::Int(int) => integer(verb, spec, i128::from(*int), false),
        Arg::Big(big) => integer(verb, spec, *big, true),
        Arg::Float(float) => floating(verb, spec, *float),
        Arg::Str(text) => string(verb, spec, text),
    };
    formatted.unwrap_or_else(|| {
        // Go writes the value with `%v` and the verb's flags, width and
        // precision (every type has a `%v`).
        let value = match verb {
            'v' => None,
            _ => Some(format_value('v', spec, arg)),
        };
        format!("%!{verb}({}={})", arg.type_name(), value.unwrap_or_else(|| arg.plain()))
    })
}

/// Pads `body` to the width: spaces on the left, or the right with `-`.
fn pad(body: String, spec: &Spec) -> String {
    let length = body.chars().count();
    match spec.width {
        Some(width) if width > length => {
            let fill = " ".repeat(width - length);
            if spec.minus {
                body + &fill
            } else {
                fill + &body
            }
        }
        _ => body,
    }
}

/// A float's sign and digits, zero-padded to the width with `0` between
/// the two (as Go pads a float: `%010x` of 3.5 is `00x1.cp+01`).
fn float_text(negative: bool, mut digits: String, spec: &Spec) -> String {
    let sign = if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    if spec.zero && !spec.minus {
        if let Some(width) = spec.width {
            let used = sign.len() + digits.chars().count();
            if width > used {
                digits = "0".repeat(width - used) + &digits;
            }
        }
    }
    pad(format!("{sign}{digits}"), spec)
}

fn integer(verb: char, spec: &Spec, value: i128, big: bool) -> Option<String> {
    let magnitude = value.unsigned_abs();
    let digits = match verb {
        'd' | 'v' => magnitude.to_string(),
        's' if big => magnitude.to_string(),
        'b' => format!("{magnitude:b}"),
        'o' | 'O' => format!("{magnitude:o}"),
        'x' => format!("{magnitude:x}"),
        'X' => format!("{magnitude:X}"),
        'c' if !big => return Some(pad(rune(value).to_string(), spec)),
        'q' if !big => return Some(pad(quote_rune(rune(value), spec.plus), spec)),
        'U' if !big => {
            let code = if value < 0 {
                u128::from(value as i64 as u64)
            } else {
                value as u128
            };
            let mut text = format!("U+{code:04X}");
            // `%#U` adds the character when Go would print it.
            if let Some(c) = spec
                .sharp
                .then(|| char::from_u32(code as u32))
                .flatten()
                .filter(|c| printable(*c))
            {
                text.push_str(&format!(" '{c}'"));
            }
            return Some(pad(text, spec));
        }
        _ => return None,
    };
    Some(integer_text(verb, spec, value < 0, magnitude == 0, digits))
}

/// An integer's digits written as Go's `fmtInteger` writes them: zeros to
/// the precision (or, with `0` and a width, to the width less a sign),
/// then the `#` prefix (which may overflow the width: `%#08x` of 255 is
/// `0x000000ff`), `0o` for `%O`, the sign, and spaces to the width.
fn integer_text(verb: char, spec: &Spec, negative: bool, zero: bool, mut digits: String) -> String {
    let signed = negative || spec.plus || spec.space;
    let zeros = match (spec.precision, spec.width) {
        // No digit at all: only the width's spaces.
        (Some(0), _) if zero => return pad(String::new(), spec),
        (Some(precision), _) => precision,
        (None, Some(width)) if spec.zero && !spec.minus => width.saturating_sub(usize::from(signed)),
        _ => 0,
    };
    if zeros > digits.len() {
        digits = "0".repeat(zeros - digits.len()) + &digits;
    }
    // Octal's `#` is a leading zero of the digits (inside `%O`'s `0o`).
    if spec.sharp && matches!(verb, 'o' | 'O') && !digits.starts_with('0') {
        digits.insert(0, '0');
    }
    let mut text = String::with_capacity(digits.len() + 4);
    text.push_str(match (negative, spec.plus, spec.space) {
        (true, _, _) => "-",
        (false, true, _) => "+",
        (false, false, true) => " ",
        _ => "",
    });
    if spec.sharp {
        match verb {
            'b' => text.push_str("0b"),
            'x' => text.push_str("0x"),
            'X' => text.push_str("0X"),
            _ => {}
        }
    }
    if verb == 'O' {
        text.push_str("0o");
    }
    text.push_str(&digits);
    pad(text, spec)
}

/// The character of a code point; U+FFFD where there is none.
fn rune(value: i128) -> char {
    u32::try_from(value).ok().and_then(char::from_u32).unwrap_or('\u{fffd}')
}

fn floating(verb: char, spec: &Spec, value: f64) -> Option<String> {
    if !value.is_finite() {
        let text = match (value.is_nan(), value < 0.0) {
            (true, _) => "NaN",
            (false, true) => "-Inf",
            (false, false) => "+Inf",
        };
        return Some(pad(text.to_string(), spec));
    }
    let magnitude = value.abs();
    let body = match verb {
        'v' | 'g' => general(magnitude, spec.precision, false),
        'G' => general(magnitude, spec.precision, true),
        'e' => exponent(magnitude, spec.precision.unwrap_or(6), false),
        'E' => exponent(magnitude, spec.precision.unwrap_or(6), true),
        'f' | 'F' => format!("{magnitude:.*}", spec.precision.unwrap_or(6)),
        'x' => hex_float(magnitude, spec.precision, false),
        'X' => hex_float(magnitude, spec.precision, true),
        'b' => binary_float(magnitude),
        _ => return None,
    };
    let body = match spec.sharp && verb != 'b' {
        true => with_point(body, verb, spec.precision),
        false => body,
    };
    Some(float_text(value.is_sign_negative() && value != 0.0, body, spec))
}

/// What Go's `#` flag does to a float's digits: a decimal point always,
/// and for `%v`, `%g`, `%G` and `%x` trailing zeros up to the precision (6
/// when none is given) counted from the first non-zero digit (the `x` of
/// `0x` counts, as in Go).
fn with_point(body: String, verb: char, precision: Option<usize>) -> String {
    let mut digits = match verb {
        'v' | 'g' | 'G' | 'x' => precision.map_or(6, |p| p as i64),
        _ => 0,
    };
    let hex = matches!(verb, 'x' | 'X');
    let tail_at = body
        .find(|c| matches!(c, 'p' | 'P') || (!hex && matches!(c, 'e' | 'E')))
        .unwrap_or(body.len());
    let (number, tail) = body.split_at(tail_at);
    let mut number = number.to_string();
    let (mut point, mut nonzero) = (false, false);
    for c in number.chars() {
        if c == '.' {
            point = true;
            continue;
        }
        nonzero |= c != '0';
        if nonzero {
            digits -= 1;
        }
    }
    if !point {
        if number == "0" {
            digits -= 1;
        }
        number.push('.');
    }
    for _ in 0..digits.max(0) {
        number.push('0');
    }
    number + tail
}

/// `%b` of a float: its integer mantissa and binary exponent, as Go's
/// `strconv.FormatFloat(_, 'b', -1, 64)` writes them (`5629499534213120p-51`
/// for 2.5, `1p-1074` for the smallest subnormal).
fn binary_float(value: f64) -> String {
    let bits = value.to_bits();
    let (mantissa, biased) = (bits & ((1 << 52) - 1), ((bits >> 52) & 0x7ff) as i64);
    let (mantissa, exponent) = match biased {
        0 => (mantissa, -1074),
        _ => (mantissa | (1 << 52), biased - 1075),
    };
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}p{sign}{}", exponent.unsigned_abs())
}

/// `%x` of a float: `0x1.cp+01` for 3.5, shortest, or with `precision`
/// hex digits after the point, rounded half to even (`%X` in capitals).
fn hex_float(value: f64, precision: Option<usize>, upper: bool) -> String {
    let bits = value.to_bits();
    let (mut mantissa, mut exponent) = (bits & ((1 << 52) - 1), ((bits >> 52) & 0x7ff) as i64 - 1023);
    if value == 0.0 {
        exponent = 0;
    } else if exponent == -1023 {
        // Subnormal: normalise, as Go writes it.
        let shift = mantissa.leading_zeros() - 11;
        mantissa = (mantissa << shift) & ((1 << 52) - 1);
        exponent = -1022 - i64::from(shift);
    }
    // The leading digit and 13 hex digits of fraction.
    let mut whole = u64::from(value != 0.0);
    if let Some(kept) = precision.filter(|p| *p < 13) {
        let shift = 4 * (13 - kept as u32);
        let (quotient, rest) = (mantissa >> shift, mantissa & ((1 << shift) - 1));
        let half = 1 << (shift - 1);
        let mut rounded = (whole << (52 - shift)) | quotient;
        if rest > half || (rest == half && rounded & 1 == 1) {
            rounded += 1;
        }
        if rounded >> (52 - shift) == 2 {
            // 0x1.ff… rounded up to 0x2.00…: Go writes 0x1.00…p+1 more.
            rounded >>= 1;
            exponent += 1;
        }
        whole = rounded >> (52 - shift);
        mantissa = (rounded & ((1 << (52 - shift)) - 1)) << shift;
    }
    let fraction = format!("{mantissa:013x}");
    let fraction = match precision {
        None => fraction.trim_end_matches('0').to_string(),
        Some(p) if p <= 13 => fraction[..p].to_string(),
        Some(p) => fraction + &"0".repeat(p - 13),
    };
    let sign = if exponent < 0 { '-' } else { '+' };
    let text = match fraction.is_empty() {
        true => format!("0x{whole}p{sign}{:02}", exponent.unsigned_abs()),
        false => format!("0x{whole}.{fraction}p{sign}{:02}", exponent.unsigned_abs()),
    };
    match upper {
        true => text.to_uppercase(),
        false => text,
    }
}

/// `%e`: one digit, the fraction to `precision`, `e±dd`.
fn exponent(value: f64, precision: usize, upper: bool) -> String {
    let rust = format!("{value:.precision$e}");
    go_exponent(&rust, upper)
}

/// Rust's `1.5e3` written as Go writes it: `1.5e+03`.
fn go_exponent(rust: &str, upper: bool) -> String {
    let (mantissa, exp) = rust.split_once('e').unwrap_or((rust, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    let e = if upper { 'E' } else { 'e' };
    format!("{mantissa}{e}{sign}{:02}", exp.unsigned_abs())
}

/// `%g` (and `%v` of a float): the shortest digits, or `precision`
/// significant ones, in `%e` form when the exponent is below -4 or at
/// least the precision (6 for the shortest).
fn general(value: f64, precision: Option<usize>, upper: bool) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let (scientific, limit) = match precision {
        None => (format!("{value:e}"), 6),
        Some(precision) => {
            let digits = precision.max(1);
            (format!("{value:.*e}", digits - 1), digits as i32)
        }
    };
    let (mantissa, exp) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    // Trailing zeros go, as Go drops them without `#`.
    let mantissa = match mantissa.contains('.') {
        true => mantissa.trim_end_matches('0').trim_end_matches('.'),
        false => mantissa,
    };
    if exp < -4 || exp >= limit {
        return go_exponent(&format!("{mantissa}e{exp}"), upper);
    }
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let point = exp + 1;
    if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        digits.clone() + &"0".repeat(point as usize - digits.len())
    } else {
        format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
    }
}

fn string(verb: char, spec: &Spec, text: &str) -> Option<String> {
    let truncated: String = match spec.precision {
        Some(precision) => text.chars().take(precision).collect(),
        None => text.to_string(),
    };
    match verb {
        's' | 'v' => Some(pad_string(truncated, spec)),
        // `%#q` backquotes when it can; `%+q` escapes all but ASCII.
        'q' if spec.sharp && can_backquote(&truncated) => Some(pad_string(format!("`{truncated}`"), spec)),
        'q' => Some(pad_string(quote_as(&truncated, spec.plus), spec)),
        'x' | 'X' if text.is_empty() || spec.precision == Some(0) => Some(pad(String::new(), spec)),
        'x' | 'X' => {
            // The precision counts bytes here, not characters.
            let bytes = &text.as_bytes()[..spec.precision.map_or(text.len(), |p| p.min(text.len()))];
            let separator = if spec.space { " " } else { "" };
            let prefix = match (spec.sharp, verb) {
                (false, _) => "",
                (true, 'x') => "0x",
                (true, _) => "0X",
            };
            let bytes: Vec<String> = bytes
                .iter()
                .map(|b| match verb {
                    'x' => format!("{b:02x}"),
                    _ => format!("{b:02X}"),
                })
                .collect();
            let body = match (spec.space, spec.sharp) {
                (true, true) => bytes
                    .iter()
                    .map(|b| format!("{prefix}{b}"))
                    .collect::<Vec<_>>()
                    .join(separator),
                _ => format!("{prefix}{}", bytes.join(separator)),
            };
            Some(pad(body, spec))
        }
        _ => None,
    }
}

/// A string padded to the width, with zeros when `0` is given.
fn pad_string(body: String, spec: &Spec) -> String {
    match (spec.zero && !spec.minus, spec.width) {
        (true, Some(width)) if width > body.chars().count() => "0".repeat(width - body.chars().count()) + &body,
        _ => pad(body, spec),
    }
}

/// Go's `strconv.Quote` (printable characters as they are).
fn quote(text: &str) -> String {
    quote_as(text, false)
}

/// Go's `strconv.Quote`, or `QuoteToASCII` when `ascii`.
fn quote_as(text: &str, ascii: bool) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        escape_into(&mut out, c, '"', ascii);
    }
    out.push('"');
    out
}

fn quote_rune(c: char, ascii: bool) -> String {
    let mut out = String::from('\'');
    escape_into(&mut out, c, '\'', ascii);
    out.push('\'');
    out
}

/// Go's `strconv.CanBackquote`: one line of printable text without a
/// backquote (a tab allowed).
fn can_backquote(text: &str) -> bool {
    text.chars()
        .all(|c| c != '`' && c != '\u{7f}' && c != '\u{feff}' && (c >= ' ' || c == '\t'))
}

fn escape_into(out: &mut String, c: char, quote: char, ascii: bool) {
    match c {
        c if c == quote || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if !printable(c) || (ascii && !c.is_ascii()) => match c as u32 {
            code if code <= 0xffff => out.push_str(&format!("\\u{code:04x}")),
            code => out.push_str(&format!("\\U{code:08x}")),
        },
        c => out.push(c),
    }
}

/// Whether Go prints the character as it is: not a control, format or
/// separator character other than the space (the common ones).
fn printable(c: char) -> bool {
    !(c.is_control()
        || matches!(
            c as u32,
            0xad | 0x61c
                | 0x180e
                | 0x200b..=0x200f
                | 0x2028..=0x202e
                | 0x2060..=0x2069
                | 0xfeff
                | 0xfff9..=0xfffb
                | 0xe000..=0xf8ff
                | 0xe0000..=0xe007f
                | 0xf0000..
        )
        || (c.is_whitespace() && c != ' '))
}

/// Elements' Rego text, `, `-separated; the undefined ones the VM may leave
/// in a collection are no elements.
fn joined<'a>(items: impl Iterator<Item = &'a Value>) -> String {
    items
        .filter(|item| !matches!(item, Value::Undefined))
        .map(rego_text)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value's Rego text, as OPA writes a collection given to `sprintf`.
fn rego_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(_) => match Arg::of(value) {
            Arg::Float(float) => float.to_string(),
            integer => integer.plain(),
        },
        Value::String(text) => quote(text),
        Value::Array(items) => format!("[{}]", joined(items.iter())),
        Value::Set(items) if items.is_empty() => "set()".to_string(),
        Value::Set(items) => format!("{{{}}}", joined(items.iter())),
        Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(key, value)| format!("{}: {}", rego_text(key), rego_text(value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Undefined => "undefined".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(format: &str, args: Vec<Value>) -> String {
        match sprintf(&[Value::from(format), Value::from(args)]).unwrap() {
            Value::String(text) => text.to_string(),
            other => panic!("{other:?}"),
        }
    }

    /// What OPA (Go's fmt) answers for each, read off OPA v1.20.
    #[test]
    fn verbs_flags_and_widths_format_as_go_does() {
        let i = || Value::from(42i64);
        assert_eq!(
            formatted("[%5d][%-5d][%05d][%+d][% d]", vec![i(), i(), i(), i(), i()]),
            "[   42][42   ][00042][+42][ 42]"
        );
        assert_eq!(
            formatted("%x|%X|%o|%O|%b|%#x|%#o|%c|%q|%U|%.3d", vec![i(); 11]),
            "2a|2A|52|0o52|101010|0x2a|052|*|'*'|U+002A|042"
        );
        let f = || Value::from(3.14158);
        assert_eq!(
            formatted("%f|%.1f|%8.3f|%-8.2f|%08.3f|%+.1f", vec![f(); 6]),
            "3.141580|3.1|   3.142|3.14    |0003.142|+3.1"
        );
        assert_eq!(
            formatted(
                "%.2f|%e|%v",
                vec![Value::from(0.125), Value::from(0.000123), Value::from(0.00001)]
            ),
            "0.12|1.230000e-04|1e-05"
        );
        let s = || Value::from("hé");
        assert_eq!(
            formatted("%10s|%-10s|%.1s|%q|%x|% x", vec![s(); 6]),
            "        hé|hé        |h|\"hé\"|68c3a9|68 c3 a9"
        );
        assert_eq!(formatted("%d %d", vec![Value::from(1i64)]), "1 %!d(MISSING)");
        assert_eq!(
            formatted("%d", vec![Value::from(1i64), Value::from(2i64)]),
            "1%!(EXTRA int64=2)"
        );
        assert_eq!(
            formatted("%s|%d", vec![Value::from(42i64), Value::from("x")]),
            "%!s(int64=42)|%!d(string=x)"
        );
        assert_eq!(
            formatted("%*d|%[2]d %[1]d", vec![Value::from(5i64), Value::from(1i64)]),
            "    1|1 5"
        );
        assert_eq!(formatted("100%%|%", vec![]), "100%|%!(NOVERB)");
        assert_eq!(formatted("%d", vec![Value::from(-3.5)]), "%!d(float64=-3.5)");
        assert_eq!(formatted("%q", vec![Value::from("\u{2066}x")]), "\"\\u2066x\"");
        let collection = Value::from(vec![
            Value::from(1i64),
            Value::from("a\u{1}"),
            Value::Null,
            Value::new_set(),
        ]);
        assert_eq!(formatted("%v", vec![collection]), "[1, \"a\\x01\", null, set()]");
    }
}
