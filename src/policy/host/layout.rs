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
                    digits,
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
}
