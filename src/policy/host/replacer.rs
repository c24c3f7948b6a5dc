//! OPA's `strings.replace_n`: Go's `strings.Replacer` over the patterns in
//! key order, in one pass. At each position the first pattern (in key
//! order) that starts there is replaced and passed over; regorus applied
//! the patterns one after another, so a replacement was replaced again
//! (`{"*": "\\*", "\\": "\\\\"}` escaped its own backslashes).

use regorus::Value;

use super::operand::text;
use crate::policy::guard::{too_large, MAX_BUILT_BYTES};

pub(super) fn replace_n(args: &[Value]) -> anyhow::Result<Value> {
    let Some(Value::Object(patterns)) = args.first() else {
        anyhow::bail!("strings.replace_n: operand 1 must be an object");
    };
    let subject = text(args, 1).ok_or_else(|| anyhow::anyhow!("strings.replace_n: operand 2 must be a string"))?;
    // An object's keys iterate in order, as OPA sorts them.
    let pairs: Vec<(&str, &str)> = patterns
        .iter()
        .map(|(old, new)| match (old.as_string(), new.as_string()) {
            (Ok(old), Ok(new)) => Ok((old.as_ref(), new.as_ref())),
            _ => Err(anyhow::anyhow!(
                "strings.replace_n: patterns must map strings to strings"
            )),
        })
        .collect::<anyhow::Result<_>>()?;
    // Measured first, so a call past the limit allocates nothing.
    let mut size: u64 = 0;
    scan(&pairs, subject, &mut |piece| size += piece.len() as u64);
    if size > MAX_BUILT_BYTES {
        return Err(too_large("strings.replace_n", size / 32));
    }
    let mut out = String::with_capacity(size as usize);
    scan(&pairs, subject, &mut |piece| out.push_str(piece));
    Ok(Value::from(out))
}

/// The pieces of the result, in order, to `emit`.
fn scan(pairs: &[(&str, &str)], subject: &str, emit: &mut dyn FnMut(&str)) {
    let mut at = 0;
    while at <= subject.len() {
        let rest = &subject[at..];
        let next = rest.chars().next().map_or(0, char::len_utf8);
        match pairs.iter().find(|(old, _)| rest.starts_with(old)) {
            Some((old, new)) if !old.is_empty() => {
                emit(new);
                at += old.len();
                continue;
            }
            // An empty pattern inserts and lets the next character through.
            Some((_, new)) => emit(new),
            None => {}
        }
        if next == 0 {
            break;
        }
        emit(&rest[..next]);
        at += next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn replaced(patterns: serde_json::Value, subject: &str) -> String {
        let value = replace_n(&[Value::from(patterns), Value::from(subject)]).unwrap();
        value.as_string().unwrap().to_string()
    }

    #[test]
    fn one_pass_in_key_order() {
        assert_eq!(replaced(json!({"a": "b", "b": "c"}), "ab"), "bc");
        assert_eq!(
            replaced(json!({"*": "\\*", "\\": "\\\\", "_": "\\_"}), "a*b\\c_d"),
            "a\\*b\\\\c\\_d"
        );
        assert_eq!(
            replaced(json!({"a": "1", "ab": "2"}), "ab"),
            "1b",
            "the first key in order wins"
        );
        assert_eq!(replaced(json!({}), "héllo"), "héllo");
    }
}
