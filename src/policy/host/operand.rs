//! What the host's functions read their arguments with (a leaf).

use regorus::Value;

/// Argument `index` as a string, if it is one.
pub(super) fn text(args: &[Value], index: usize) -> Option<&str> {
    args.get(index)
        .and_then(|value| value.as_string().ok())
        .map(|s| s.as_ref())
}

/// Compares without stopping at the first difference, as OPA compares
/// MACs; only the lengths show.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}
