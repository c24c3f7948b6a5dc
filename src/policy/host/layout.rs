//! Go's time layouts (`2006-01-02T15:04:05Z07:00`) as `Time.Format` writes
//! them: the reference time's fields, each recognised where Go's
//! `nextStdChunk` recognises it; everything else is copied.

use chrono::{Datelike, NaiveDateTime, Timelike};

/// A time to write: its local date-time, offset east of UTC in seconds,
/// and zone abbreviation (empty where the zone has none).
pub(super) struct Moment<'a> {
    pub(super) local: NaiveDateTime,
    pub(super) offset: i32,
    pub(super) zone: &'a str,
}

/// One element of a layout.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm,
    LowerPm,
    ZoneName,
    /// A numeric offset: `Z` for UTC when `iso`, with `:` when `colon`,
    /// minutes unless `short`, seconds when `seconds`.
    Offset {
        iso: bool,
        colon: bool,
        short: bool,
        seconds: bool,
    },
    /// A fraction of a second: `separator`, `digits` wide, trailing zeros
    /// dropped when `trim`.
    Fraction {
        separator: char,
        digits: usize,
        trim: bool,
    },
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's numeric offset spellings, longest first, after `-` or `Z`.
const OFFSETS: [(&str, bool, bool, bool); 5] = [
    ("070000", false, false, true),
    ("07:00:00", true, false, true),
    ("0700", false, false, false),
    ("07:00", true, false, false),
    ("07", false, true, false),
];

/// The field at the start of `layout`, with its length, as Go's
/// `nextStdChunk` finds it; None for a literal byte.
fn field_at(layout: &str) -> Option<(Field, usize)> {
    let starts = |prefix: &str| layout.starts_with(prefix);
    let lower_after = |n: usize| layout[n..].starts_with(|c: char| c.is_ascii_lowercase());
    let bytes = layout.as_bytes();
    match bytes[0] {
        b'J' if starts("January") => Some((Field::LongMonth, 7)),
        b'J' if starts("Jan") && !lower_after(3) => Some((Field::Month, 3)),
        b'M' if starts("Monday") => Some((Field::LongWeekDay, 6)),
        b'M' if starts("Mon") && !lower_after(3) => Some((Field::WeekDay, 3)),
        b'M' if starts("MST") => Some((Field::ZoneName, 3)),
        b'0' => match bytes.get(1) {
            Some(b'1') => Some((Field::ZeroMonth, 2)),
            Some(b'2') => Some((Field::ZeroDay, 2)),
            Some(b'3') => Some((Field::ZeroHour12, 2)),
            Some(b'4') => Some((Field::ZeroMinute, 2)),
            Some(b'5') => Some((Field::ZeroSecond, 2)),
            Some(b'6') => Some((Field::Year, 2)),
            Some(b'0') if bytes.get(2) == Some(&b'2') => Some((Field::ZeroYearDay, 3)),
            _ => None,
        },
        b'1' if bytes.get(1) == Some(&b'5') => Some((Field::Hour, 2)),
        b'1' => Some((Field::NumMonth, 1)),
        b'2' if starts("2006") => Some((Field::LongYear, 4)),
        b'2' => Some((Field::Day, 1)),
        // `_2006` is a literal `_` and the year.
        b'_' if starts("_2") && !starts("_2006") => Some((Field::UnderDay, 2)),
        b'_' if starts("__2") => Some((Field::UnderYearDay, 3)),
        b'3' => Some((Field::Hour12, 1)),
        b'4' => Some((Field::Minute, 1)),
        b'5' => Some((Field::Second, 1)),
        b'P' if starts("PM") => Some((Field::Pm, 2)),
        b'p' if starts("pm") => Some((Field::LowerPm, 2)),
        sign @ (b'-' | b'Z') => OFFSETS.iter().find_map(|&(spelling, colon, short, seconds)| {
            layout[1..].starts_with(spelling).then_some((
                Field::Offset {
                    iso: sign == b'Z',
                    colon,
                    short,
                    seconds,
                },
                1 + spelling.len(),
            ))
        }),
        separator @ (b'.' | b',') => {
            let repeated = *bytes.get(1).filter(|b| matches!(b, b'0' | b'9'))?;
            let digits = bytes[1..].iter().take_while(|&&b| b == repeated).count();
            // Followed by a digit, it is no fraction (Go: `.0001` is text).
            if bytes.get(1 + digits).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            Some((
                Field::Fraction {
                    separator: separator as char,
                    // Go keeps the count in twelve bits.
                    digits: digits & 0xfff,
                    trim: repeated == b'9',
                },
                1 + digits,
            ))
        }
        _ => None,
    }
}

/// `value` in decimal, zero-padded to `width` (Go's `appendInt`).
fn padded(out: &mut String, value: i64, width: usize) {
    if value < 0 {
        out.push('-');
    }
    let digits = value.unsigned_abs().to_string();
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(&digits);
}

/// `layout` with the moment's fields, as Go's `Time.Format`.
pub(super) fn format(moment: &Moment, layout: &str) -> String {
    let mut out = String::with_capacity(layout.len() + 10);
    let mut rest = layout;
    while let Some(first) = rest.chars().next() {
        match field_at(rest) {
            Some((field, length)) => {
                write_field(&mut out, moment, field);
                rest = &rest[length..];
            }
            None => {
                out.push(first);
                rest = &rest[first.len_utf8()..];
            }
        }
    }
    out
}

fn write_field(out: &mut String, moment: &Moment, field: Field) {
    let at = &moment.local;
    let hour12 = match at.hour() % 12 {
        0 => 12,
        hour => hour,
    };
    match field {
        Field::LongMonth => out.push_str(LONG_MONTHS[at.month0() as usize]),
        Field::Month => out.push_str(&LONG_MONTHS[at.month0() as usize][..3]),
        Field::NumMonth => padded(out, i64::from(at.month()), 0),
        Field::ZeroMonth => padded(out, i64::from(at.month()), 2),
        Field::LongWeekDay => out.push_str(LONG_DAYS[at.weekday().num_days_from_sunday() as usize]),
        Field::WeekDay => out.push_str(&LONG_DAYS[at.weekday().num_days_from_sunday() as usize][..3]),
        Field::Day => padded(out, i64::from(at.day()), 0),
        Field::UnderDay => {
            if at.day() < 10 {
                out.push(' ');
            }
            padded(out, i64::from(at.day()), 0);
        }
        Field::ZeroDay => padded(out, i64::from(at.day()), 2),
        Field::UnderYearDay => {
            let day = at.ordinal();
            out.push_str(match day {
                0..=9 => "  ",
                10..=99 => " ",
                _ => "",
            });
            padded(out, i64::from(day), 0);
        }
        Field::ZeroYearDay => padded(out, i64::from(at.ordinal()), 3),
        Field::Hour => padded(out, i64::from(at.hour()), 2),
        Field::Hour12 => padded(out, i64::from(hour12), 0),
        Field::ZeroHour12 => padded(out, i64::from(hour12), 2),
        Field::Minute => padded(out, i64::from(at.minute()), 0),
        Field::ZeroMinute => padded(out, i64::from(at.minute()), 2),
        Field::Second => padded(out, i64::from(at.second()), 0),
        Field::ZeroSecond => padded(out, i64::from(at.second()), 2),
        Field::LongYear => padded(out, i64::from(at.year()), 4),
        Field::Year => padded(out, i64::from(at.year()).rem_euclid(100), 2),
        Field::Pm => out.push_str(if at.hour() >= 12 { "PM" } else { "AM" }),
        Field::LowerPm => out.push_str(if at.hour() >= 12 { "pm" } else { "am" }),
        Field::ZoneName if !moment.zone.is_empty() => out.push_str(moment.zone),
        Field::ZoneName => {
            let minutes = moment.offset / 60;
            out.push(if minutes < 0 { '-' } else { '+' });
            padded(out, i64::from(minutes.abs() / 60), 2);
            padded(out, i64::from(minutes.abs() % 60), 2);
        }
        Field::Offset { iso: true, .. } if moment.offset == 0 => out.push('Z'),
        Field::Offset {
            colon, short, seconds, ..
        } => {
            let minutes = moment.offset / 60;
            out.push(if minutes < 0 { '-' } else { '+' });
            padded(out, i64::from(minutes.abs() / 60), 2);
            if colon {
                out.push(':');
            }
            if !short {
                padded(out, i64::from(minutes.abs() % 60), 2);
            }
            if seconds {
                if colon {
                    out.push(':');
                }
                padded(out, i64::from(moment.offset.abs() % 60), 2);
            }
        }
        Field::Fraction {
            separator,
            digits,
            trim,
        } => {
            let nanos = at.nanosecond() % 1_000_000_000;
            if trim && (digits == 0 || nanos == 0) {
                return;
            }
            let all = format!("{nanos:09}");
            let mut kept = &all[..digits.min(9)];
            if trim {
                kept = kept.trim_end_matches('0');
                if kept.is_empty() {
                    return;
                }
            }
            out.push(separator);
            out.push_str(kept);
        }
    }
}

/// Fields read by [`parse`], Go's defaults where the layout has none.
struct Parsed {
    year: i64,
    month: Option<u32>,
    day: Option<u32>,
    year_day: Option<u32>,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// `PM` and `AM` as read (Go keeps both: `1PM AM` is 13:00).
    pm: bool,
    am: bool,
    /// Seconds east of UTC of a numeric offset.
    offset: Option<i64>,
    /// `Z` or `UTC` was read: UTC, whatever offset was also read.
    utc: bool,
}

/// One or two digits (`fixed`: exactly two), as Go's `getnum`.
fn number(value: &mut &str, width: usize, fixed: bool) -> Option<u32> {
    let digits = value.bytes().take(width).take_while(u8::is_ascii_digit).count();
    if digits == 0 || (fixed && digits < width) {
        return None;
    }
    let parsed = value[..digits].parse().ok()?;
    *value = &value[digits..];
    Some(parsed)
}

/// A name of `names` at the start of `value`, in any ASCII case (Go's
/// `lookup`): its index.
fn name(value: &mut &str, names: impl Iterator<Item = &'static str>) -> Option<usize> {
    for (index, candidate) in names.enumerate() {
        if value.len() >= candidate.len()
            && value.as_bytes()[..candidate.len()].eq_ignore_ascii_case(candidate.as_bytes())
        {
            *value = &value[candidate.len()..];
            return Some(index);
        }
    }
    None
}

/// The fraction after `.` or `,` in `value[..width]`, in nanoseconds, as
/// Go's `parseNanoseconds` reads it: at most nine digits count, through
/// `atoi` (a sign is taken; a negative fraction is an error).
fn fraction(value: &str, width: usize) -> Option<u32> {
    let width = width.min(10);
    let text = value.get(1..width)?;
    let nanos = go_atoi(text)?;
    if nanos < 0 {
        return None;
    }
    u32::try_from(nanos).ok()?.checked_mul(10u32.pow(10 - width as u32))
}

/// Go's `time.atoi`: an optional sign, then digits only (none is 0).
fn go_atoi(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude: i64 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    Some(if negative { -magnitude } else { magnitude })
}

/// The length of a zone abbreviation at the start of `value`, as Go's
/// `parseTimeZone` accepts one.
fn zone_name_length(value: &str) -> Option<usize> {
    let bytes = value.as_bytes();
    if bytes.len() < 3 {
        return None;
    }
    if value.starts_with("ChST") || value.starts_with("MeST") {
        return Some(4);
    }
    // A sign and hours up to 23 (Go's `parseSignedOffset`): its length.
    let signed_offset = |rest: &str| -> usize {
        if !rest.starts_with(['+', '-']) {
            return 0;
        }
        let digits = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
        match rest[1..1 + digits].parse::<u64>() {
            Ok(hours) if digits > 0 && hours <= 23 => 1 + digits,
            _ => 0,
        }
    };
    if let Some(after) = value.strip_prefix("GMT") {
        return Some(3 + signed_offset(after));
    }
    if matches!(bytes[0], b'+' | b'-') {
        return Some(signed_offset(value)).filter(|&n| n > 0);
    }
    let upper = bytes.iter().take(6).take_while(|b| b.is_ascii_uppercase()).count();
    match upper {
        3 => Some(3),
        4 if bytes[3] == b'T' || value.starts_with("WITA") => Some(4),
        5 if bytes[4] == b'T' => Some(5),
        _ => None,
    }
}

/// `value` read with Go's `time.Parse(layout, value)` in UTC, as
/// nanoseconds since the epoch. A zone abbreviation is taken but, as in a
/// process whose local zone is UTC, it moves nothing (Go records an
/// unknown abbreviation with offset zero); numeric offsets apply.
pub(super) fn parse(layout: &str, value: &str) -> Option<i64> {
    let mut parsed = Parsed {
        year: 0,
        month: None,
        day: None,
        year_day: None,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        pm: false,
        am: false,
        offset: None,
        utc: false,
    };
    let (mut layout, mut value) = (layout, value);
    while !layout.is_empty() {
        let Some((field, length)) = field_at(layout) else {
            let literal = layout.chars().next()?;
            if literal == ' ' {
                // A space in the layout takes a run of spaces in the value.
                if !value.is_empty() && !value.starts_with(' ') {
                    return None;
                }
                layout = layout.trim_start_matches(' ');
                value = value.trim_start_matches(' ');
                continue;
            }
            value = value.strip_prefix(literal)?;
            layout = &layout[literal.len_utf8()..];
            continue;
        };
        layout = &layout[length..];
        read_field(&mut parsed, field, &mut value, layout)?;
    }
    if !value.is_empty() {
        return None;
    }
    if parsed.pm && parsed.hour < 12 {
        parsed.hour += 12;
    } else if parsed.am && parsed.hour == 12 {
        parsed.hour = 0;
    }
    let year = i32::try_from(parsed.year).ok()?;
    let date = match parsed.year_day {
        Some(year_day) => {
            let date = chrono::NaiveDate::from_yo_opt(year, year_day)?;
            if parsed.month.is_some_and(|m| m != date.month()) || parsed.day.is_some_and(|d| d != date.day()) {
                return None;
            }
            date
        }
        None => chrono::NaiveDate::from_ymd_opt(year, parsed.month.unwrap_or(1), parsed.day.unwrap_or(1))?,
    };
    let time = chrono::NaiveTime::from_hms_nano_opt(parsed.hour, parsed.minute, parsed.second, parsed.nanos)?;
    let at = date
        .and_time(time)
        .checked_sub_signed(chrono::TimeDelta::seconds(match parsed.utc {
            true => 0,
            false => parsed.offset.unwrap_or(0),
        }))?;
    at.and_utc().timestamp_nanos_opt()
}

const SHORT_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn read_field(parsed: &mut Parsed, field: Field, value: &mut &str, layout_after: &str) -> Option<()> {
    match field {
        Field::Year => {
            let year = go_atoi(value.get(..2)?)?;
            parsed.year = if year >= 69 { 1900 + year } else { 2000 + year };
            *value = &value[2..];
        }
        Field::LongYear => {
            let four = value.get(..4).filter(|p| p.bytes().all(|b| b.is_ascii_digit()))?;
            parsed.year = four.parse().ok()?;
            *value = &value[4..];
        }
        Field::Month => parsed.month = Some(name(value, SHORT_MONTHS.into_iter())? as u32 + 1),
        Field::LongMonth => parsed.month = Some(name(value, LONG_MONTHS.into_iter())? as u32 + 1),
        Field::NumMonth | Field::ZeroMonth => {
            let month = number(value, 2, field == Field::ZeroMonth)?;
            if !(1..=12).contains(&month) {
                return None;
            }
            parsed.month = Some(month);
        }
        Field::WeekDay => {
            name(value, LONG_DAYS.iter().map(|day| &day[..3]))?;
        }
        Field::LongWeekDay => {
            name(value, LONG_DAYS.into_iter())?;
        }
        Field::Day | Field::UnderDay | Field::ZeroDay => {
            if field == Field::UnderDay {
                *value = value.strip_prefix(' ').unwrap_or(value);
            }
            parsed.day = Some(number(value, 2, field == Field::ZeroDay)?);
        }
        Field::UnderYearDay | Field::ZeroYearDay => {
            if field == Field::UnderYearDay {
                for _ in 0..2 {
                    *value = value.strip_prefix(' ').unwrap_or(value);
                }
            }
            parsed.year_day = Some(number(value, 3, field == Field::ZeroYearDay)?);
        }
        Field::Hour => {
            parsed.hour = number(value, 2, false).filter(|hour| *hour <= 23)?;
        }
        Field::Hour12 | Field::ZeroHour12 => {
            parsed.hour = number(value, 2, field == Field::ZeroHour12).filter(|hour| *hour <= 12)?;
        }
        Field::Minute | Field::ZeroMinute => {
            parsed.minute = number(value, 2, field == Field::ZeroMinute).filter(|minute| *minute <= 59)?;
        }
        Field::Second | Field::ZeroSecond => {
            parsed.second = number(value, 2, field == Field::ZeroSecond).filter(|second| *second <= 59)?;
            // A fraction the layout does not name is read all the same.
            let bytes = value.as_bytes();
            let layout_has_fraction = matches!(next_field(layout_after), Some(Field::Fraction { .. }));
            if bytes.len() >= 2 && matches!(bytes[0], b'.' | b',') && bytes[1].is_ascii_digit() && !layout_has_fraction
            {
                let width = 1 + bytes[1..].iter().take_while(|b| b.is_ascii_digit()).count();
                parsed.nanos = fraction(value, width)?;
                *value = &value[width..];
            }
        }
        Field::Pm | Field::LowerPm => {
            let (pm, am) = if field == Field::Pm { ("PM", "AM") } else { ("pm", "am") };
            match value.get(..2)? {
                text if text == pm => parsed.pm = true,
                text if text == am => parsed.am = true,
                _ => return None,
            }
            *value = &value[2..];
        }
        Field::Offset { iso: true, .. } if value.starts_with('Z') => {
            *value = &value[1..];
            parsed.utc = true;
        }
        Field::Offset {
            colon, short, seconds, ..
        } => {
            let bytes = value.as_bytes();
            let (width, spans): (usize, [(usize, usize); 3]) = match (colon, short, seconds) {
                (true, _, false) => (6, [(1, 3), (4, 6), (0, 0)]),
                (_, true, _) => (3, [(1, 3), (0, 0), (0, 0)]),
                (true, _, true) => (9, [(1, 3), (4, 6), (7, 9)]),
                (false, false, true) => (7, [(1, 3), (3, 5), (5, 7)]),
                (false, false, false) => (5, [(1, 3), (3, 5), (0, 0)]),
            };
            if bytes.len() < width || (colon && (bytes[3] != b':' || (seconds && bytes[6] != b':'))) {
                return None;
            }
            let two = |(from, to): (usize, usize)| -> Option<i64> {
                match from == to {
                    true => Some(0),
                    false => {
                        let part = value.get(from..to)?;
                        part.bytes().all(|b| b.is_ascii_digit()).then(|| part.parse().ok())?
                    }
                }
            };
            let (hours, minutes, secs) = (two(spans[0])?, two(spans[1])?, two(spans[2])?);
            if hours > 24 || minutes > 60 || secs > 60 {
                return None;
            }
            let offset = (hours * 60 + minutes) * 60 + secs;
            parsed.offset = Some(match bytes[0] {
                b'+' => offset,
                b'-' => -offset,
                _ => return None,
            });
            *value = &value[width..];
        }
        Field::ZoneName => {
            if let Some(after) = value.strip_prefix("UTC") {
                *value = after;
                parsed.utc = true;
            } else {
                let length = zone_name_length(value)?;
                *value = &value[length..];
            }
        }
        Field::Fraction {
            digits, trim: false, ..
        } => {
            let width = 1 + digits;
            if value.len() < width || !matches!(value.as_bytes()[0], b'.' | b',') {
                return None;
            }
            parsed.nanos = fraction(value, width)?;
            *value = value.get(width..)?;
        }
        Field::Fraction { trim: true, .. } => {
            let bytes = value.as_bytes();
            if bytes.len() >= 2 && matches!(bytes[0], b'.' | b',') && bytes[1].is_ascii_digit() {
                let width = 1 + bytes[1..].iter().take_while(|b| b.is_ascii_digit()).count();
                parsed.nanos = fraction(value, width)?;
                *value = &value[width..];
            }
        }
    }
    Some(())
}

/// The next field of a layout, past any literal text (Go's
/// `nextStdChunk`).
fn next_field(layout: &str) -> Option<Field> {
    let mut rest = layout;
    while let Some(first) = rest.chars().next() {
        if let Some((field, _)) = field_at(rest) {
            return Some(field);
        }
        rest = &rest[first.len_utf8()..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn moment(offset: i32, zone: &str) -> Moment<'_> {
        let local = NaiveDate::from_ymd_opt(2024, 3, 9)
            .unwrap()
            .and_hms_nano_opt(18, 5, 7, 500_000_000)
            .unwrap();
        Moment { local, offset, zone }
    }

    #[test]
    fn writes_as_go() {
        let utc = moment(0, "UTC");
        let cases = [
            ("2006-01-02T15:04:05.999999999Z07:00", "2024-03-09T18:05:07.5Z"),
            ("2006-01-02T15:04:05Z", "2024-03-09T18:05:07Z"),
            ("15:04:05.000", "18:05:07.500"),
            ("15:04:05,99", "18:05:07,5"),
            ("Jan _2 3:04PM Monday", "Mar  9 6:05PM Saturday"),
            ("January 2, 06 MST", "March 9, 24 UTC"),
            ("002 __2 pm", "069  69 pm"),
            ("Janet Monty", "Janet Monty"),
            (".0001 .09", ".0003 .09"),
            ("2006年01月02日", "2024年03月09日"),
            ("_2006", "_2024"),
        ];
        for (layout, expected) in cases {
            assert_eq!(format(&utc, layout), expected, "{layout}");
        }
        let india = moment(19_800, "IST");
        assert_eq!(format(&india, "Z07:00 -0700 -07 Z07 MST"), "+05:30 +0530 +05 +05 IST");
        let unnamed = moment(-(3 * 3600 + 30 * 60 + 15), "");
        assert_eq!(format(&unnamed, "MST -07:00:00 Z070000"), "-0330 -03:30:15 -033015");
    }

    #[test]
    fn reads_as_go() {
        const MARCH_10: i64 = 1_710_052_200_000_000_000;
        let cases = [
            ("2006-01-02T15:04:05Z07:00", "2024-03-10T06:30:00Z", Some(MARCH_10)),
            ("2006-01-02T15:04:05Z07:00", "2024-03-10T08:30:00+02:00", Some(MARCH_10)),
            ("2006-01-02 15:04 MST", "2024-03-10 06:30 PST", Some(MARCH_10)),
            ("2006-01-02 15:04 MST", "2024-03-10 06:30 GMT+3", Some(MARCH_10)),
            ("Jan 2 2006", "mar 9 2024", Some(1_709_942_400_000_000_000)),
            ("Jan 2 2006", "MARCH 9 2024", None),
            ("002 2006", "060 2024", Some(1_709_164_800_000_000_000)),
            ("2006 01", "2024    03", Some(1_709_251_200_000_000_000)),
            ("2006 01", "202403", None),
            ("15:04:05.000", "06:30:00.12", None),
            ("2006 15:04:05", "2024 06:30:00.5", Some(1_704_090_600_500_000_000)),
            ("15:04:05.999", "06:30:00", None),
            ("06", "69", Some(-31_536_000_000_000_000)),
            ("2006-01-02", "2024-02-30", None),
            ("2006-01-02 MST", "2024-01-02 ABCDEF", None),
            ("2006 .000", "2024 .1é", None),
            ("2006-01-02", "2024-01-02 ", None),
            // Go's atoi: a sign in a two-digit year or a fraction.
            ("06", "-5", Some(788_918_400_000_000_000)),
            ("2006 05.000", "2024 00.+50", Some(1_704_067_200_050_000_000)),
            ("2006 05.000", "2024 00.+5", None),
            ("2006 05.000", "2024 00.-50", None),
            ("2006 .0", "2024 .+", Some(1_704_067_200_000_000_000)),
            // PM and AM both read: Go adds twelve hours for PM first.
            ("2006 3PM PM", "2024 1PM AM", Some(1_704_114_000_000_000_000)),
            // UTC read beside an offset: UTC wins.
            (
                "2006-01-02 15:04 -0700 MST",
                "2024-03-10 06:30 +0100 UTC",
                Some(MARCH_10),
            ),
            // A fixed fraction cut inside a character: refused, no panic.
            (".0000000000", ".000000000é", None),
            // Text beyond ASCII is text (regorus's reader panicked on it).
            ("2006年01月", "2024年03月", Some(1_709_251_200_000_000_000)),
        ];
        for (layout, value, expected) in cases {
            assert_eq!(parse(layout, value), expected, "{layout} / {value}");
        }
    }

    /// Layout and value pieces: Go's fields, their neighbours, text beyond
    /// ASCII.
    const PIECES: &[&str] = &[
        "2006",
        "06",
        "01",
        "1",
        "Jan",
        "January",
        "02",
        "2",
        "_2",
        "__2",
        "002",
        "15",
        "03",
        "3",
        "04",
        "4",
        "05",
        "5",
        ".000",
        ".999",
        ",9",
        ".0",
        "PM",
        "pm",
        "AM",
        "MST",
        "GMT",
        "GMT+",
        "Z07:00",
        "Z0700",
        "-07:00:00",
        "-0700",
        "-07",
        "Z",
        "Mon",
        "Monday",
        " ",
        "  ",
        "年",
        "é",
        "x",
        ":",
        "-",
        "+",
        "0",
        "9",
        "99",
        "T",
        "ChST",
        "CEST",
        "WITA",
    ];

    fn text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(proptest::sample::select(PIECES), 0..12).prop_map(|pieces| pieces.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Whatever a policy writes as a layout or a value, reading and
        /// writing answer (a panic would abort the function); and a time
        /// written with a layout that holds all of it reads back the same.
        #[test]
        fn layouts_answer_and_round_trip(
            layout in text(),
            value in text(),
            seconds in -2_000_000_000i64..4_000_000_000,
            nanos in 0u32..1_000_000_000,
            minutes in -1_439i32..1_440,
            extra_seconds in 0i32..60,
        ) {
            // Offsets of whole minutes, and seconds past them (a zone's
            // local mean time), as zones have them.
            let offset = minutes * 60 + minutes.signum() * extra_seconds;
            let _ = parse(&layout, &value);
            let _ = parse(&layout, &layout);
            let _ = format(&moment(offset, ""), &layout);

            let utc = chrono::DateTime::from_timestamp(seconds, nanos).unwrap().naive_utc();
            // Offsets in whole seconds east of UTC, as a zone has them.
            let local = utc + chrono::TimeDelta::seconds(i64::from(offset));
            let written = Moment { local, offset, zone: "" };
            let expected = utc.and_utc().timestamp_nanos_opt();
            for full in [
                "2006-01-02T15:04:05.999999999Z07:00:00",
                "Jan _2 2006 3:04:05.000000000PM -070000",
                "002 2006 15:04:05,999999999 -07:00:00",
            ] {
                let text = format(&written, full);
                proptest::prop_assert_eq!(parse(full, &text), expected, "{} / {}", full, text);
            }
        }
    }
}
