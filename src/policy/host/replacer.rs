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
    let mut out = String::with_capacity(subject.len());
    let mut at = 0;
    loop {
        if out.len() as u64 > MAX_BUILT_BYTES {
            return Err(too_large("strings.replace_n", out.len() as u64 / 32));
        }
        let rest = &subject[at..];
        match pairs.iter().find(|(old, _)| rest.starts_with(old)) {
            // An empty pattern inserts and lets the next character through.
            Some((old, new)) if !old.is_empty() => {
                out.push_str(new);
                at += old.len();
            }
            Some((_, new)) => {
                out.push_str(new);
                match rest.chars().next() {
                    Some(c) => {
                        out.push(c);
                        at += c.len_utf8();
                    }
                    None => break,
                }
            }
            None => match rest.chars().next() {
                Some(c) => {
                    out.push(c);
                    at += c.len_utf8();
                }
                None => break,
            },
        }
    }
    Ok(Value::from(out))
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
