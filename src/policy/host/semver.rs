//! OPA's `semver.is_valid` and `semver.compare`, in place of regorus's: OPA
//! parses versions with its own reader, looser than SemVer 2.0's grammar
//! regorus applies. A leading `v` is dropped, numbers may have leading
//! zeros, and an empty pre-release or build (`1.0.0-`, `1.0.0+`) is none.

use std::cmp::Ordering;

use regorus::Value;

use super::operand::{string_operand, text};

/// A version as OPA's parser reads it; the build metadata is checked, then
/// dropped (it has no precedence).
#[derive(Debug)]
struct Version<'a> {
    major: i64,
    minor: i64,
    patch: i64,
    pre_release: &'a str,
}

/// Dot-separated identifiers of ASCII letters, digits and `-`, each
/// non-empty (OPA's `^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$`).
fn identifiers_valid(text: &str) -> bool {
    text.split('.')
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// A decimal number of at most 64 bits, as Go's `strconv.ParseInt`
/// reads one that holds neither `-` nor `+` (those were cut before).
fn number(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl<'a> Version<'a> {
    fn parse(text: &'a str) -> Option<Version<'a>> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let (text, metadata) = text.split_once('+').unwrap_or((text, ""));
        if !metadata.is_empty() && !identifiers_valid(metadata) {
            return None;
        }
        let (core, pre_release) = text.split_once('-').unwrap_or((text, ""));
        if !pre_release.is_empty() && !identifiers_valid(pre_release) {
            return None;
        }
        let mut parts = core.split('.');
        let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        Some(Version {
            major: number(major)?,
            minor: number(minor)?,
            patch: number(patch)?,
            pre_release,
        })
    }

    /// SemVer precedence as OPA computes it: an empty pre-release ranks
    /// highest; numeric identifiers below others and by value (past 64
    /// bits, the largest), others as bytes; more identifiers rank higher.
    fn compare(&self, other: &Version) -> Ordering {
        let core = (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch));
        if core != Ordering::Equal || self.pre_release == other.pre_release {
            return core;
        }
        match (self.pre_release.is_empty(), other.pre_release.is_empty()) {
            (true, _) => return Ordering::Greater,
            (_, true) => return Ordering::Less,
            _ => {}
        }
        let numeric = |part: &str| {
            (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())).then(|| part.parse().unwrap_or(i64::MAX))
        };
        let (mut ours, mut theirs) = (self.pre_release.split('.'), other.pre_release.split('.'));
        loop {
            let (a, b) = match (ours.next(), theirs.next()) {
                (Some(a), Some(b)) => (a, b),
                (Some(_), None) => return Ordering::Greater,
                (None, Some(_)) => return Ordering::Less,
                (None, None) => return Ordering::Equal,
            };
            let order = match (numeric(a), numeric(b)) {
                (Some(a), Some(b)) => a.cmp(&b),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => a.cmp(b),
            };
            if order != Ordering::Equal {
                return order;
            }
        }
    }
}

/// Whether the operand is a version; false for a non-string (OPA's).
pub(super) fn is_valid(args: &[Value]) -> anyhow::Result<Value> {
    Ok(Value::from(text(args, 0).and_then(Version::parse).is_some()))
}

pub(super) fn compare(args: &[Value]) -> anyhow::Result<Value> {
    let version = |index: usize| {
        let text = string_operand("semver.compare", args, index)?;
        Version::parse(text).ok_or_else(|| {
            anyhow::anyhow!(
                "semver.compare: operand {}: string {text} is not a valid SemVer",
                index + 1
            )
        })
    };
    let (a, b) = (version(0)?, version(1)?);
    Ok(Value::from(match a.compare(&b) {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_opa() {
        for valid in [
            "1.2.3",
            "v1.0.0",
            "1.0.0-01",
            "01.0.0",
            "1.0.0-",
            "1.2.3+",
            "1.2.3-+",
            "1.0.0-0.3.7",
            "1.2.3-rc.1+build.5",
        ] {
            assert!(Version::parse(valid).is_some(), "{valid}");
        }
        for invalid in [
            "1.0",
            "1.2.3.4",
            "V1.2.3",
            " 1.0.0",
            "+1.0.0",
            "1.0.0-a..b",
            "1.0.0-alpha_beta",
            "9223372036854775808.0.0",
            "vv1.2.3",
            "1.-2.3",
        ] {
            assert!(Version::parse(invalid).is_none(), "{invalid}");
        }
    }

    #[test]
    fn orders_as_opa() {
        let compare = |a: &str, b: &str| compare(&[Value::from(a), Value::from(b)]).unwrap();
        let ordered = [
            "1.0.0-2",
            "1.0.0-10",
            "1.0.0-a10",
            "1.0.0-a9",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0",
            "2.0.0",
            "10.0.0",
        ];
        for pair in ordered.windows(2) {
            assert_eq!(compare(pair[0], pair[1]), Value::from(-1), "{pair:?}");
            assert_eq!(compare(pair[1], pair[0]), Value::from(1), "{pair:?}");
        }
        assert_eq!(compare("1.0.0+build.1", "1.0.0+build.2"), Value::from(0));
        assert_eq!(compare("v1.2.3", "1.2.3"), Value::from(0));
        // OPA v1.20's loop never ends on these (equal identifiers, unequal
        // text); the one answer that keeps the order total is 0.
        assert_eq!(compare("1.2.3-1", "1.2.3-01"), Value::from(0));
        assert_eq!(compare("1.2.3-rc.01", "1.2.3-rc.1"), Value::from(0));
        assert!(super::compare(&[Value::from("1.0"), Value::from("1.0.0")]).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        /// Versions built from numbers and identifiers are valid, equal to
        /// themselves with or without `v`, and ordered both ways alike;
        /// any text is answered.
        #[test]
        fn versions_order_consistently(
            a in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(-[0-9A-Za-z-]{1,4}(\\.[0-9A-Za-z-]{1,4}){0,2})?(\\+[0-9A-Za-z-]{1,4})?",
            b in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(-[0-9A-Za-z-]{1,4}(\\.[0-9A-Za-z-]{1,4}){0,2})?",
            text in ".{0,20}",
        ) {
            let order = |x: &str, y: &str| compare(&[Value::from(x), Value::from(y)]).unwrap();
            proptest::prop_assert_eq!(order(&a, &a), Value::from(0));
            proptest::prop_assert_eq!(order(&format!("v{a}"), &a), Value::from(0));
            let forward = order(&a, &b).as_number().unwrap().as_i64().unwrap();
            let backward = order(&b, &a).as_number().unwrap().as_i64().unwrap();
            proptest::prop_assert_eq!(forward, -backward);
            let _ = is_valid(&[Value::from(text.as_str())]);
            let _ = compare(&[Value::from(text.as_str()), Value::from(a.as_str())]);
        }
    }
}
