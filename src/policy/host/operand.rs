//! What the host's functions read their arguments with (a leaf).

use regorus::Value;

/// Argument `index` as a string, if it is one.
pub(super) fn text(args: &[Value], index: usize) -> Option<&str> {
    args.get(index)
        .and_then(|value| value.as_string().ok())
        .map(|s| s.as_ref())
}

/// Argument `index` as a string, or an error naming `name` and the operand.
pub(super) fn string_operand<'a>(name: &str, args: &'a [Value], index: usize) -> anyhow::Result<&'a str> {
    text(args, index).ok_or_else(|| anyhow::anyhow!("{name}: operand {} must be a string", index + 1))
}

/// Argument `index` as an integer that fits 64 bits, or an error naming
/// `name` and the operand.
pub(super) fn integer_operand(name: &str, args: &[Value], index: usize) -> anyhow::Result<i64> {
    let number = args
        .get(index)
        .and_then(|value| value.as_number().ok())
        .ok_or_else(|| anyhow::anyhow!("{name}: operand {} must be a number", index + 1))?;
    match (number.is_integer(), number.as_i64()) {
        (true, Some(n)) => Ok(n),
        (true, None) => anyhow::bail!("{name}: operand {} is out of range (64-bit integers)", index + 1),
        (false, _) => anyhow::bail!("{name}: operand {} must be an integer", index + 1),
    }
}

/// Compares without stopping at the first difference, as OPA compares
/// MACs; only the lengths show.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}
