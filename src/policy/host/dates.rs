//! OPA's `time.parse_rfc3339_ns`, `time.parse_ns`, `time.add_date` and
//! `time.format`, in place of regorus's, as Go's `time` package computes
//! them:
//!
//! - `time.Parse(time.RFC3339, s)` takes `T` and `Z` in upper case only, no
//!   space for `T`, no leap second (`:60`), and a fraction after `.` or `,`
//!   (regorus's RFC 3339 reader took `t`, `z`, a space and `:60`, and
//!   refused `,`).
//! - `AddDate` normalises the date it computes: January 31 plus a month is
//!   March 2 (or 3), February 29 plus a year March 1. regorus clamped to the
//!   month's last day, and made the leap-day case undefined. A `[ns,
//!   zone]` adds to the zone's local date, resolved as Go's `Date` does.
//! - `time.Parse(layout, s)` reads Go's layouts (`policy::host::layout`);
//!   regorus's reader panicked on a layout beyond ASCII.
//! - `Time.Format` writes Go's layouts (`policy::host::layout`): RFC 3339
//!   with its fraction's trailing zeros dropped by default, `.999` and
//!   `,000` fractions, `MST` as the zone's abbreviation, `Z` in `05Z` as
//!   text. regorus wrote `.500Z`, dropped that `Z` and named no zone.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone};
use chrono_tz::{OffsetName, Tz};
use regorus::Value;

use super::layout::Moment;
use super::operand::{integer_operand, string_operand};

/// Nanoseconds since the epoch of a UTC date-time; None outside 64 bits
/// (OPA: "time outside of valid range").
fn unix_nanos(at: NaiveDateTime) -> Option<i64> {
    at.and_utc().timestamp_nanos_opt()
}

/// Go's `time.RFC3339`.
const RFC3339: &str = "2006-01-02T15:04:05Z07:00";

/// Go's `time.Parse(time.RFC3339, text)` in UTC, as nanoseconds: Go's
/// general layout reader, of which its RFC 3339 fast path reads a part.
fn parse_rfc3339(text: &str) -> Option<i64> {
    super::layout::parse(RFC3339, text)
}

pub(super) fn parse_rfc3339_ns(args: &[Value]) -> anyhow::Result<Value> {
    let text = string_operand("time.parse_rfc3339_ns", args, 0)?;
    parse_rfc3339(text)
        .map(Value::from)
        .ok_or_else(|| anyhow::anyhow!("time.parse_rfc3339_ns: {text:?} is not an RFC 3339 time Go reads"))
}

/// Go's `Time.AddDate` in UTC: the fields added, then the date normalised
/// (month 13 is January of the next year, February 30 is March 1 or 2).
fn go_add_date(nanos: i64, zone: Option<Tz>, years: i64, months: i64, days: i64) -> Option<i64> {
    let utc = DateTime::from_timestamp_nanos(nanos);
    let at = match zone {
        Some(zone) => utc.with_timezone(&zone).naive_local(),
        None => utc.naive_utc(),
    };
    let month_index = i64::from(at.year())
        .checked_add(years)?
        .checked_mul(12)?
        .checked_add(i64::from(at.month0()))?
        .checked_add(months)?;
    let first = NaiveDate::from_ymd_opt(
        i32::try_from(month_index.div_euclid(12)).ok()?,
        month_index.rem_euclid(12) as u32 + 1,
        1,
    )?;
    let offset = i64::from(at.day()).checked_sub(1)?.checked_add(days)?;
    let date = match offset >= 0 {
        true => first.checked_add_days(Days::new(offset as u64))?,
        false => first.checked_sub_days(Days::new(offset.unsigned_abs()))?,
    };
    let local = date.and_time(at.time());
    match zone {
        Some(zone) => unix_nanos(local.checked_sub_signed(TimeDelta::seconds(go_offset(zone, local).into()))?),
        None => unix_nanos(local),
    }
}

/// The offset Go's `Date` gives a local date-time in `zone`: the offset in
/// effect at the instant the local time would be with the offset in effect
/// when it is read as UTC (in a gap, the time before it; in an overlap,
/// the later offset's reading).
fn go_offset(zone: Tz, local: NaiveDateTime) -> i32 {
    let at = |instant: NaiveDateTime| zone.offset_from_utc_datetime(&instant).fix().local_minus_utc();
    let guess = at(local);
    local
        .checked_sub_signed(TimeDelta::seconds(guess.into()))
        .map_or(guess, at)
}

/// OPA's `time.add_date(time, years, months, days)`: `time` is `ns` (UTC),
/// or — from data, which OPA's type check cannot see — `[ns, zone]`, whose
/// local date the fields are added to.
pub(super) fn add_date(args: &[Value]) -> anyhow::Result<Value> {
    const NAME: &str = "time.add_date";
    let (nanos, zone, _) = time_operand(NAME, args)?;
    let (years, months, days) = (
        integer_operand(NAME, args, 1)?,
        integer_operand(NAME, args, 2)?,
        integer_operand(NAME, args, 3)?,
    );
    go_add_date(nanos, zone, years, months, days)
        .map(Value::from)
        .ok_or_else(|| anyhow::anyhow!("{NAME}: time outside of valid range"))
}

/// Go's `time.RFC3339Nano`, `time.format`'s layout when none is given.
const RFC3339_NANO: &str = "2006-01-02T15:04:05.999999999Z07:00";

/// The zone OPA reads `name` as: `""` and `"UTC"` are UTC (None),
/// `"Local"` the zone `TZ` names (UTC where it names none this build
/// knows, as Go falls back), any other an IANA name or an error.
fn zone(name: &str) -> anyhow::Result<Option<Tz>> {
    match name {
        "" | "UTC" => Ok(None),
        "Local" => Ok(std::env::var("TZ")
            .ok()
            .and_then(|tz| tz.trim_start_matches(':').parse().ok())),
        other => other
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("unknown time zone {other}")),
    }
}

/// OPA's time operand (`tzTime`): `ns`, or `[ns]`, `[ns, zone]`, `[ns,
/// zone, layout]`; `ns` an integer. The zone and the layout (`""` where
/// none is given).
fn time_operand<'a>(name: &str, args: &'a [Value]) -> anyhow::Result<(i64, Option<Tz>, &'a str)> {
    let operand = args.first().ok_or_else(|| anyhow::anyhow!("{name}: one operand"))?;
    let parts: &[Value] = match operand {
        Value::Array(items) if !items.is_empty() => items.as_slice(),
        Value::Number(_) => std::slice::from_ref(operand),
        _ => anyhow::bail!("{name}: operand 1 must be a number (ns) or [number (ns), string (tz), string (layout)]"),
    };
    let nanos = integer_operand(name, parts, 0)?;
    let zone = match parts.get(1) {
        Some(_) => zone(string_operand(name, parts, 1)?).map_err(|err| anyhow::anyhow!("{name}: {err}"))?,
        None => None,
    };
    let layout = match parts.get(2) {
        Some(_) => string_operand(name, parts, 2)?,
        None => "",
    };
    Ok((nanos, zone, layout))
}

/// The local date-time, offset and zone abbreviation of `nanos` in `zone`
/// (UTC where None).
fn in_zone(nanos: i64, zone: Option<Tz>) -> (NaiveDateTime, i32, String) {
    let utc = DateTime::from_timestamp_nanos(nanos);
    let Some(zone) = zone else {
        return (utc.naive_utc(), 0, "UTC".to_string());
    };
    let local = utc.with_timezone(&zone);
    let seconds = local.offset().fix().local_minus_utc();
    // The zone database writes some abbreviations as offsets (`-03`,
    // `+0545`); chrono-tz gives those as none.
    let abbreviation = local.offset().abbreviation().map_or_else(
        || {
            let minutes = seconds.abs() / 60;
            let sign = if seconds < 0 { '-' } else { '+' };
            match minutes % 60 {
                0 => format!("{sign}{:02}", minutes / 60),
                rest => format!("{sign}{:02}{rest:02}", minutes / 60),
            }
        },
        str::to_string,
    );
    (local.naive_local(), seconds, abbreviation)
}

/// The layouts OPA takes by their Go names.
fn named_layout(layout: &str) -> &str {
    match layout {
        "RFC3339Nano" => RFC3339_NANO,
        "ANSIC" => "Mon Jan _2 15:04:05 2006",
        "UnixDate" => "Mon Jan _2 15:04:05 MST 2006",
        "RubyDate" => "Mon Jan 02 15:04:05 -0700 2006",
        "RFC822" => "02 Jan 06 15:04 MST",
        "RFC822Z" => "02 Jan 06 15:04 -0700",
        "RFC850" => "Monday, 02-Jan-06 15:04:05 MST",
        "RFC1123" => "Mon, 02 Jan 2006 15:04:05 MST",
        "RFC1123Z" => "Mon, 02 Jan 2006 15:04:05 -0700",
        "RFC3339" => RFC3339,
        other => other,
    }
}

/// OPA's `time.format`: `ns`, or `[ns]`, `[ns, zone]`, `[ns, zone,
/// layout]`, written with Go's layout or one OPA names (`RFC3339`,
/// `ANSIC`, ...; RFC 3339 with nanoseconds, trailing zeros dropped, when
/// there is none). `ns` must be an integer.
pub(super) fn format(args: &[Value]) -> anyhow::Result<Value> {
    let (nanos, zone, layout) = time_operand("time.format", args)?;
    let (local, offset, zone) = in_zone(nanos, zone);
    let moment = Moment {
        local,
        offset,
        zone: &zone,
    };
    let layout = if layout.is_empty() {
        RFC3339_NANO
    } else {
        named_layout(layout)
    };
    Ok(Value::from(super::layout::format(&moment, layout)))
}

/// OPA's `time.parse_ns(layout, value)`: Go's `time.Parse` in UTC, the
/// layout Go's or one OPA names (an empty one reads no date: an error).
pub(super) fn parse_ns(args: &[Value]) -> anyhow::Result<Value> {
    const NAME: &str = "time.parse_ns";
    let (layout, value) = (string_operand(NAME, args, 0)?, string_operand(NAME, args, 1)?);
    super::layout::parse(named_layout(layout), value)
        .map(Value::from)
        .ok_or_else(|| anyhow::anyhow!("{NAME}: {value:?} does not read as {layout:?}, or is outside the valid range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NANOS: i64 = 1_000_000_000;

    #[test]
    fn parses_as_go() {
        let at = |text: &str| parse_rfc3339(text);
        assert_eq!(at("2024-03-10T06:30:00Z"), Some(1_710_052_200 * NANOS));
        assert_eq!(at("2024-03-10T06:30:00,5Z"), Some(1_710_052_200 * NANOS + 500_000_000));
        assert_eq!(
            at("2024-03-10T06:30:00.123456789012Z"),
            Some(1_710_052_200 * NANOS + 123_456_789)
        );
        assert_eq!(at("2024-03-10T6:30:00Z"), Some(1_710_052_200 * NANOS));
        assert_eq!(at("2024-03-10T08:30:00+02:00"), Some(1_710_052_200 * NANOS));
        // Near the ends of the range: the UTC instant decides.
        assert_eq!(at("2262-04-12T00:30:00+01:00"), Some(9_223_371_000_000_000_000));
        assert_eq!(at("1677-09-21T00:12:43.5Z"), Some(-9_223_372_036_500_000_000));
        for refused in [
            "2024-03-10t06:30:00z",
            "2024-03-10 06:30:00Z",
            "2016-12-31T23:59:60Z",
            "2024-02-30T00:00:00Z",
            "2024-3-09T00:00:00Z",
            "2024-03-10T06:30Z",
            "2024-03-10T06:30:00",
            "2024-03-10T06:30:00Zx",
            "2024-03-10T06:30:00+0200",
            "9999-12-31T23:59:59Z",
        ] {
            assert_eq!(at(refused), None, "{refused}");
        }
    }

    fn go_add_date_utc(nanos: i64, years: i64, months: i64, days: i64) -> Option<i64> {
        go_add_date(nanos, None, years, months, days)
    }

    #[test]
    fn adds_dates_in_a_zone_as_go() {
        let new_york: Tz = "America/New_York".parse().unwrap();
        // 2024-03-09 12:00 EST plus a day: 2024-03-10 12:00 EDT, 23 hours later.
        let start = 1_710_003_600 * NANOS;
        assert_eq!(
            go_add_date(start, Some(new_york), 0, 0, 1),
            Some(start + 23 * 3600 * NANOS)
        );
        // 02:30 on the day the clocks skip it: Go reads it with the offset
        // after the gap (EDT), which is 01:30 EST.
        let before_gap = 1_709_969_400 * NANOS; // 2024-03-09 02:30 EST
        assert_eq!(
            go_add_date(before_gap, Some(new_york), 0, 0, 1),
            Some(before_gap + 23 * 3600 * NANOS)
        );
        let zoned = |zone: &str| Value::from(vec![Value::from(start), Value::from(zone)]);
        // A month on: 2024-04-09 12:00 EDT (OPA: 1712678400000000000), or
        // 17:00 UTC in UTC.
        assert_eq!(
            add_date_call(zoned("America/New_York")).unwrap(),
            Value::from(1_712_678_400 * NANOS)
        );
        assert_eq!(add_date_call(zoned("UTC")).unwrap(), Value::from(1_712_682_000 * NANOS));
        assert!(add_date_call(zoned("Mars/Olympus")).is_err());
    }

    #[test]
    fn adds_dates_as_go() {
        let day =
            |y, m, d| unix_nanos(NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(0, 0, 0).unwrap()).unwrap();
        assert_eq!(go_add_date_utc(day(2024, 1, 31), 0, 1, 0), Some(day(2024, 3, 2)));
        assert_eq!(go_add_date_utc(day(2023, 3, 31), 0, -1, 0), Some(day(2023, 3, 3)));
        assert_eq!(go_add_date_utc(day(2024, 2, 29), 1, 0, 0), Some(day(2025, 3, 1)));
        assert_eq!(go_add_date_utc(day(2024, 12, 31), 0, 1, 1), Some(day(2025, 2, 1)));
        assert_eq!(go_add_date_utc(day(2024, 1, 1), 0, -13, -1), Some(day(2022, 11, 30)));
        assert_eq!(go_add_date_utc(-1, 0, 0, 1), Some(86_400 * NANOS - 1));
        assert_eq!(go_add_date_utc(i64::MIN, 0, 0, 0), Some(i64::MIN));
        assert_eq!(go_add_date_utc(i64::MAX, 0, 0, 0), Some(i64::MAX));
        assert_eq!(go_add_date_utc(day(2024, 1, 1), 300, 0, 0), None);
        assert_eq!(
            add_date_call(Value::from(day(2024, 1, 31))).unwrap(),
            Value::from(day(2024, 3, 2))
        );
        assert!(add_date_call(Value::from("x")).is_err());
        assert_eq!(
            add_date_call(Value::from(vec![Value::from(0)])).unwrap(),
            Value::from(31 * 86_400 * NANOS)
        );
    }

    fn add_date_call(time: Value) -> anyhow::Result<Value> {
        super::add_date(&[time, Value::from(0), Value::from(1), Value::from(0)])
    }
}
