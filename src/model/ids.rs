//! How long an id that keys the state table may be.

/// The longest id, namespace or attribute id a policy may give, in bytes:
/// they key the state table, whose keys hold at most 1,024 (sort) and
/// 2,048 (partition) bytes, so a longer one could never be stored and its
/// message would be retried until it reached the dead-letter queue.
pub const MAX_ID_BYTES: usize = 512;

/// Why `value` cannot be an id, when it cannot: too long to key the state
/// table. The caller names the field (`format!("`{field}` {reason}")`), so
/// nothing is formatted for the ids that fit.
pub fn id_too_long(value: &str) -> Option<String> {
    (value.len() > MAX_ID_BYTES).then(|| {
        format!(
            "is {} bytes long, over {MAX_ID_BYTES} (it keys the state table)",
            value.len()
        )
    })
}
