//! OPA's `net.cidr_intersects`, `net.cidr_contains_matches` and
//! `net.cidr_merge`, and `net.cidr_contains` in place of regorus's (which
//! reads IPv4-mapped addresses as IPv6).
//!
//! Addresses are read as Go's `net` package reads them: an IPv4-mapped
//! IPv6 address (`::ffff:1.2.3.4`) is the IPv4 address, and so is a mapped
//! network of prefix 96 or more; a network holds only addresses of its own
//! family.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use regorus::Value;

use super::operand::{string_operand, text};
use crate::policy::guard::{too_large, MAX_ELEMENTS};

/// A network: its family's width in bits, its masked address, its prefix.
#[derive(Debug, PartialEq)]
struct Network {
    bits: u8,
    address: u128,
    prefix: u8,
}

impl Network {
    /// `address/prefix` as Go's `net.ParseCIDR` takes it.
    fn parse(cidr: &str) -> Option<Network> {
        let (address, prefix) = cidr.split_once('/')?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let prefix: u8 = prefix.parse().ok()?;
        if let Ok(v4) = address.parse::<Ipv4Addr>() {
            return (prefix <= 32).then(|| Network::of(32, u128::from(u32::from(v4)), prefix));
        }
        let v6 = address.parse::<Ipv6Addr>().ok()?;
        if prefix > 128 {
            return None;
        }
        let network = Network::of(128, u128::from(v6), prefix);
        match Ipv6Addr::from(network.address).to_ipv4_mapped() {
            Some(v4) if prefix >= 96 => Some(Network::of(32, u128::from(u32::from(v4)), prefix - 96)),
            _ => Some(network),
        }
    }

    fn of(bits: u8, address: u128, prefix: u8) -> Network {
        Network {
            bits,
            address: address & mask(bits, prefix),
            prefix,
        }
    }

    /// An address as Go's `net.ParseIP` reads it: a network of one.
    fn address(text: &str) -> Option<Network> {
        if let Ok(v4) = text.parse::<Ipv4Addr>() {
            return Some(Network::of(32, u128::from(u32::from(v4)), 32));
        }
        let v6 = text.parse::<Ipv6Addr>().ok()?;
        Some(match v6.to_ipv4_mapped() {
            Some(v4) => Network::of(32, u128::from(u32::from(v4)), 32),
            None => Network::of(128, u128::from(v6), 128),
        })
    }

    /// Whether the network holds `other`'s first address.
    fn holds_start_of(&self, other: &Network) -> bool {
        self.bits == other.bits && other.address & mask(self.bits, self.prefix) == self.address
    }

    /// Whether the network holds every address of `other`.
    fn holds(&self, other: &Network) -> bool {
        self.holds_start_of(other) && other.prefix >= self.prefix
    }
}

/// The mask of `prefix` bits in a `bits`-wide address.
fn mask(bits: u8, prefix: u8) -> u128 {
    let host_bits = u32::from(bits - prefix);
    let all = every_bit(bits);
    all.checked_shr(host_bits).map_or(0, |m| m << host_bits) & all
}

/// Every bit of a `bits`-wide address.
fn every_bit(bits: u8) -> u128 {
    1u128.checked_shl(u32::from(bits)).map_or(u128::MAX, |size| size - 1)
}

/// An address range of `net.cidr_merge`, in the IPv6 space (an IPv4
/// address as its mapped IPv6 one, as Go compares them), and how it is
/// written while nothing is merged into it.
struct Range {
    first: u128,
    last: u128,
    written: Option<String>,
}

/// The IPv4-mapped IPv6 address of an IPv4 one.
fn mapped(v4: u128) -> u128 {
    0xffff_u128 << 32 | v4
}

impl Range {
    /// A CIDR, or an IPv4 address with its class's mask, as Go's `net`
    /// gives OPA: the address is written unmasked (`10.1.2.3/8`).
    fn of(text: &str) -> Option<Range> {
        if let Some(address) = Network::address(text) {
            if address.bits != 32 {
                return None; // an IPv6 address needs a prefix length
            }
            let prefix = match address.address >> 24 {
                0..=127 => 8,
                128..=191 => 16,
                _ => 24,
            };
            let network = Network::of(32, address.address, prefix);
            let (first, last) = network.bounds();
            let written = format!("{}/{prefix}", Ipv4Addr::from(address.address as u32));
            return Some(Range {
                first,
                last,
                written: Some(written),
            });
        }
        let network = Network::parse(text)?;
        let (first, last) = network.bounds();
        Some(Range {
            first,
            last,
            written: Some(network.to_string()),
        })
    }
}

impl Network {
    /// First and last address, in the IPv6 space.
    fn bounds(&self) -> (u128, u128) {
        let last = self.address | (!mask(self.bits, self.prefix) & every_bit(self.bits));
        match self.bits {
            32 => (mapped(self.address), mapped(last)),
            _ => (self.address, last),
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.bits {
            32 => write!(f, "{}/{}", Ipv4Addr::from(self.address as u32), self.prefix),
            _ => write!(f, "{}/{}", Ipv6Addr::from(self.address), self.prefix),
        }
    }
}

/// The fewest aligned networks covering `first..=last`, written as Go
/// writes them (one inside the IPv4-mapped space as IPv4).
fn cover(mut first: u128, last: u128, out: &mut BTreeSet<Value>) {
    loop {
        let mut host_bits = first.trailing_zeros().min(128);
        let end = |host_bits: u32| first | 1u128.checked_shl(host_bits).map_or(u128::MAX, |size| size - 1);
        while end(host_bits) > last {
            host_bits -= 1;
        }
        let prefix = (128 - host_bits) as u8;
        let network = match Ipv6Addr::from(first).to_ipv4_mapped() {
            Some(v4) if prefix >= 96 => Network::of(32, u128::from(u32::from(v4)), prefix - 96),
            _ => Network::of(128, first, prefix),
        };
        out.insert(Value::from(network.to_string()));
        if end(host_bits) >= last {
            return;
        }
        first = end(host_bits) + 1;
    }
}

/// OPA's `net.cidr_merge`: the CIDRs and IPv4 addresses of an array or a
/// set merged where they overlap or touch, as Go's `net` and OPA's merge
/// compute it (an IPv4 address stands for its class's network).
pub(super) fn cidr_merge(args: &[Value]) -> Option<Value> {
    let elements: Vec<&Value> = match args.first()? {
        Value::Array(items) => items.iter().collect(),
        Value::Set(items) => items.iter().collect(),
        _ => return None,
    };
    let mut ranges: Vec<Range> = elements
        .into_iter()
        .map(|element| Range::of(element.as_string().ok()?))
        .collect::<Option<_>>()?;
    ranges.sort_by_key(|range| (range.last, range.first));
    // From the end, each range into the one before it when it starts at
    // most one address after that one's end.
    let mut index = ranges.len();
    while index > 1 {
        index -= 1;
        let first = ranges[index].first;
        let previous = if first == 0 || first == mapped(0) {
            first
        } else {
            first - 1
        };
        if previous <= ranges[index - 1].last {
            let merged = ranges.remove(index);
            let into = &mut ranges[index - 1];
            into.first = into.first.min(merged.first);
            into.last = merged.last;
            into.written = None;
        }
    }
    let mut out = BTreeSet::new();
    for range in ranges {
        match range.written {
            Some(written) => {
                out.insert(Value::from(written));
            }
            None => cover(range.first, range.last, &mut out),
        }
    }
    Some(Value::from(out))
}

/// Whether the operand is a CIDR as Go's `net.ParseCIDR` reads one; false
/// for a non-string (OPA's).
pub(super) fn cidr_is_valid(args: &[Value]) -> anyhow::Result<Value> {
    Ok(Value::from(text(args, 0).and_then(Network::parse).is_some()))
}

/// How many addresses the network holds (`u64::MAX` from 2^64 on, over
/// any limit anyway).
fn addresses(network: &Network) -> u64 {
    1u64.checked_shl(u32::from(network.bits - network.prefix))
        .unwrap_or(u64::MAX)
}

/// OPA's `net.cidr_expand`: the set of the network's addresses, written as
/// Go writes each (an IPv4-mapped one in dotted IPv4 form). Over
/// `guard::MAX_ELEMENTS` addresses it is a limit error.
pub(super) fn cidr_expand(args: &[Value]) -> anyhow::Result<Value> {
    const NAME: &str = "net.cidr_expand";
    let cidr = string_operand(NAME, args, 0)?;
    let network = Network::parse(cidr).ok_or_else(|| anyhow::anyhow!("{NAME}: invalid CIDR address: {cidr}"))?;
    let count = addresses(&network);
    if count > MAX_ELEMENTS {
        return Err(too_large(NAME, count));
    }
    let written = (0..u128::from(count)).map(|offset| {
        let address = network.address | offset;
        Value::from(match network.bits {
            32 => Ipv4Addr::from(address as u32).to_string(),
            _ => match Ipv6Addr::from(address).to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => Ipv6Addr::from(address).to_string(),
            },
        })
    });
    Ok(Value::from(written.collect::<BTreeSet<Value>>()))
}

/// Whether the two networks share an address.
pub(super) fn cidr_intersects(args: &[Value]) -> Option<Value> {
    let a = Network::parse(text(args, 0)?)?;
    let b = Network::parse(text(args, 1)?)?;
    Some(Value::from(a.holds_start_of(&b) || b.holds_start_of(&a)))
}

/// Whether CIDR `a` contains `b`, an address or a CIDR; None when either
/// is neither.
fn contains(a: &str, b: &str) -> Option<bool> {
    Some(Network::parse(a)?.holds(&address_or_network(b)?))
}

fn address_or_network(text: &str) -> Option<Network> {
    Network::address(text).or_else(|| Network::parse(text))
}

pub(super) fn cidr_contains(args: &[Value]) -> Option<Value> {
    contains(text(args, 0)?, text(args, 1)?).map(Value::from)
}

/// The CIDRs or addresses of an operand, each with what names it in the
/// result: a string names itself; an array's elements (a string, or an
/// array whose first element is one) their index; a set's its element; an
/// object's values their key. Any other value has none.
fn candidates(operand: &Value) -> Option<Vec<(Value, Value)>> {
    let first = |element: &Value| match element {
        Value::String(_) => Some(element.clone()),
        Value::Array(items) => items.iter().next().cloned(),
        _ => None,
    };
    Some(match operand {
        Value::String(_) => vec![(operand.clone(), operand.clone())],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| Some((first(item)?, Value::from(index as u64))))
            .collect::<Option<_>>()?,
        Value::Set(items) => items
            .iter()
            .map(|item| Some((first(item)?, item.clone())))
            .collect::<Option<_>>()?,
        Value::Object(fields) => fields
            .iter()
            .map(|(key, value)| Some((first(value)?, key.clone())))
            .collect::<Option<_>>()?,
        _ => Vec::new(),
    })
}

/// How many pairs `net.cidr_contains_matches` would compare: what bounds
/// its time (the interpreter's timer cannot stop one call).
pub(super) fn pairs(args: &[Value]) -> u64 {
    let size = |value: Option<&Value>| -> u64 {
        match value {
            Some(Value::Array(items)) => items.len() as u64,
            Some(Value::Set(items)) => items.len() as u64,
            Some(Value::Object(fields)) => fields.len() as u64,
            _ => 1,
        }
    };
    size(args.first()).saturating_mul(size(args.get(1)))
}

/// The pairs `[a's name, b's name]` where a CIDR of `a` contains an
/// address or CIDR of `b` (as `net.cidr_contains`).
pub(super) fn cidr_contains_matches(args: &[Value]) -> Option<Value> {
    let parsed = |operand: &Value, parse: fn(&str) -> Option<Network>| -> Option<Vec<(Network, Value)>> {
        candidates(operand)?
            .into_iter()
            .map(|(cidr, name)| Some((parse(cidr.as_string().ok()?)?, name)))
            .collect()
    };
    let outer = parsed(args.first()?, Network::parse)?;
    let inner = parsed(args.get(1)?, address_or_network)?;
    let mut matches = BTreeSet::new();
    for (network, name) in &outer {
        for (other, other_name) in &inner {
            if network.holds(other) {
                matches.insert(Value::from(vec![name.clone(), other_name.clone()]));
            }
        }
    }
    Some(Value::from(matches))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_expand_as_go_writes_them() {
        let expand = |cidr: &str| cidr_expand(&[Value::from(cidr)]).map(|v| serde_json::to_string(&v).unwrap());
        assert_eq!(
            expand("10.1.2.3/30").unwrap(),
            r#"["10.1.2.0","10.1.2.1","10.1.2.2","10.1.2.3"]"#
        );
        assert_eq!(expand("::ffff:10.0.0.5/127").unwrap(), r#"["10.0.0.4","10.0.0.5"]"#);
        assert_eq!(
            expand("2001:db8::ff/127").unwrap(),
            r#"["2001:db8::fe","2001:db8::ff"]"#
        );
        assert!(expand("10.0.0.0/33").is_err());
        // Over the element limit: a limit error, nothing built.
        let limited = |cidr: &str| {
            cidr_expand(&[Value::from(cidr)]).is_err_and(|err| err.downcast_ref::<regorus::LimitError>().is_some())
        };
        assert!(limited("::/0"));
        assert!(limited("10.0.0.0/12"));
        assert!(expand("10.0.0.0/16").is_ok());
        assert!(!limited("10.0.0.0/33"));
        let valid = |cidr: Value| cidr_is_valid(&[cidr]).unwrap();
        assert_eq!(valid(Value::from("10.0.0.0/08")), Value::from(true));
        assert_eq!(valid(Value::from("10.0.0.0/+8")), Value::from(false));
        assert_eq!(valid(Value::from(8)), Value::from(false));
    }

    fn intersects(a: &str, b: &str) -> Option<bool> {
        cidr_intersects(&[Value::from(a), Value::from(b)]).map(|v| v == Value::from(true))
    }

    #[test]
    fn networks_intersect_when_one_holds_the_others_start() {
        assert_eq!(intersects("192.168.0.0/16", "192.168.1.0/24"), Some(true));
        assert_eq!(intersects("192.168.1.0/24", "192.168.0.0/16"), Some(true));
        assert_eq!(intersects("192.168.1.0/24", "192.168.2.0/24"), Some(false));
        assert_eq!(
            intersects("10.0.0.1/8", "10.255.0.0/16"),
            Some(true),
            "host bits are masked"
        );
        assert_eq!(intersects("0.0.0.0/0", "8.8.8.8/32"), Some(true));
        assert_eq!(intersects("fd00::/8", "fd12::/16"), Some(true));
        assert_eq!(intersects("::/0", "10.0.0.0/8"), Some(false), "families differ");
        assert_eq!(intersects("::ffff:10.0.0.0/104", "10.1.0.0/16"), Some(true), "mapped");
        assert_eq!(intersects("10.0.0.0/33", "10.0.0.0/8"), None);
        assert_eq!(intersects("10.0.0.0", "10.0.0.0/8"), None);
        assert_eq!(intersects("10.0.0.0/+8", "10.0.0.0/8"), None);
    }

    #[test]
    fn containment_reads_mapped_addresses_as_ipv4() {
        assert_eq!(contains("10.0.0.0/8", "10.1.2.3"), Some(true));
        assert_eq!(contains("10.0.0.0/8", "10.1.0.0/16"), Some(true));
        assert_eq!(contains("10.1.0.0/16", "10.0.0.0/8"), Some(false), "wider");
        assert_eq!(contains("10.0.0.0/8", "::ffff:10.1.2.3"), Some(true));
        assert_eq!(contains("::/0", "::ffff:10.1.2.3"), Some(false));
        assert_eq!(contains("::ffff:10.0.0.0/104", "10.9.9.9"), Some(true));
        assert_eq!(contains("fd00::/8", "fd00::1"), Some(true));
        assert_eq!(contains("10.0.0.0/8", "not an address"), None);
        assert_eq!(contains("10.0.0.0", "10.0.0.1"), None);
    }

    fn merged(elements: &[&str]) -> Option<Vec<String>> {
        let array = Value::from(elements.iter().map(|e| Value::from(*e)).collect::<Vec<_>>());
        let merged = cidr_merge(&[array])?;
        Some(
            merged
                .as_set()
                .unwrap()
                .iter()
                .map(|v| v.as_string().unwrap().to_string())
                .collect(),
        )
    }

    #[test]
    fn merging_joins_what_touches_and_keeps_gos_quirks() {
        assert_eq!(merged(&["0.0.0.0/1", "128.0.0.0/1"]).unwrap(), ["0.0.0.0/0"]);
        assert_eq!(
            merged(&["203.0.113.0/25", "203.0.113.128/26", "203.0.113.192/26"]).unwrap(),
            ["203.0.113.0/24"]
        );
        assert_eq!(
            merged(&["198.51.100.7/32", "198.51.100.8/31"]).unwrap(),
            ["198.51.100.7/32", "198.51.100.8/31"]
        );
        assert_eq!(merged(&["::/1", "8000::/1"]).unwrap(), ["::/0"]);
        assert_eq!(
            merged(&["2001:db8::/48", "2001:db8:0:1::/64"]).unwrap(),
            ["2001:db8::/48"]
        );
        // An IPv4 address stands for its class's network, written unmasked
        // while nothing merges into it (what OPA answers).
        assert_eq!(merged(&["10.0.0.1"]).unwrap(), ["10.0.0.1/8"]);
        assert_eq!(merged(&["192.168.1.1", "192.168.1.2"]).unwrap(), ["192.168.1.0/24"]);
        assert_eq!(merged(&["fd00::1"]), None, "an IPv6 address needs a prefix");
        assert_eq!(merged(&["10.0.0.0/33"]), None);
    }

    #[test]
    fn masks_cover_every_prefix() {
        assert_eq!(mask(32, 0), 0);
        assert_eq!(mask(32, 24), 0xffff_ff00);
        assert_eq!(mask(32, 32), 0xffff_ffff);
        assert_eq!(mask(128, 0), 0);
        assert_eq!(mask(128, 128), u128::MAX);
        assert_eq!(mask(128, 1), 1u128 << 127);
    }
}
