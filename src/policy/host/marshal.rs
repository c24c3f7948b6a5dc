//! OPA's `json.marshal` and `json.marshal_with_options`, in place of
//! regorus's, writing text as Go's `encoding/json` does:
//!
//! - `<`, `>`, `&`, U+2028 and U+2029 are escaped (`\u003c`), as are
//!   control characters (`\b`, `\f`, `\n`, `\r`, `\t`, else `\u00XX`);
//! - a set is an array in OPA's order, where an object sorts before a set
//!   (regorus puts sets first);
//! - pretty text is Go's `MarshalIndent`: `": "` after a key, empty
//!   containers kept as `[]` and `{}`, the prefix before every line.
//!
//! Numbers are written as regorus holds them: it keeps no number's written
//! form (`1.0` is `1`), a known difference.

use std::collections::BTreeMap;
use std::fmt::Write;

use regorus::Value;

use super::order::{sorted, sorted_entries};

/// How pretty text is laid out: Go's `MarshalIndent` prefix and indent.
struct Layout<'a> {
    prefix: &'a str,
    indent: &'a str,
}

/// Writes `value` as Go's encoder would; an error for an undefined value.
struct Writer<'a> {
    out: String,
    layout: Option<Layout<'a>>,
}

impl Writer<'_> {
    fn newline(&mut self, depth: usize) {
        if let Some(layout) = &self.layout {
            self.out.push('\n');
            self.out.push_str(layout.prefix);
            for _ in 0..depth {
                self.out.push_str(layout.indent);
            }
        }
    }

    fn value(&mut self, value: &Value, depth: usize) -> anyhow::Result<()> {
        match value {
            Value::Null | Value::Bool(_) | Value::Number(_) => self.out.push_str(&serde_json::to_string(value)?),
            Value::String(text) => write_string(&mut self.out, text),
            Value::Array(items) => self.sequence(items.iter().collect(), depth)?,
            Value::Set(items) => self.sequence(sorted(items.iter()), depth)?,
            Value::Object(fields) => {
                let entries = json_fields(fields)?;
                if entries.is_empty() {
                    self.out.push_str("{}");
                    return Ok(());
                }
                self.out.push('{');
                for (index, (key, value)) in entries.into_iter().enumerate() {
                    if index > 0 {
                        self.out.push(',');
                    }
                    self.newline(depth + 1);
                    write_string(&mut self.out, &key);
                    self.out.push_str(if self.layout.is_some() { ": " } else { ":" });
                    self.value(value, depth + 1)?;
                }
                self.newline(depth);
                self.out.push('}');
            }
            Value::Undefined => anyhow::bail!("json.marshal: an undefined value"),
        }
        Ok(())
    }

    fn sequence(&mut self, items: Vec<&Value>, depth: usize) -> anyhow::Result<()> {
        if items.is_empty() {
            self.out.push_str("[]");
            return Ok(());
        }
        self.out.push('[');
        for (index, item) in items.into_iter().enumerate() {
            if index > 0 {
                self.out.push(',');
            }
            self.newline(depth + 1);
            self.value(item, depth + 1)?;
        }
        self.newline(depth);
        self.out.push(']');
        Ok(())
    }
}

/// An object's fields as OPA's `ast.JSON` gives them to Go: each key as
/// text (a string as it is, another value as its JSON text), taken in OPA's
/// order so that a later key written the same replaces an earlier one (`1`
/// and `"1"`), then sorted as Go sorts a map's keys.
pub(super) fn json_fields(fields: &regorus::value::Object) -> anyhow::Result<BTreeMap<String, &Value>> {
    let mut keyed = BTreeMap::new();
    for (key, value) in sorted_entries(fields) {
        let key = match key {
            Value::String(text) => text.to_string(),
            other => compact(other)?,
        };
        keyed.insert(key, value);
    }
    Ok(keyed)
}

/// A JSON string as Go's encoder writes it (HTML-safe).
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0}'..='\u{1f}' | '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            _ => out.push(c),
        }
    }
    out.push('"');
}

pub(super) fn compact(value: &Value) -> anyhow::Result<String> {
    let mut writer = Writer {
        out: String::new(),
        layout: None,
    };
    writer.value(value, 0)?;
    Ok(writer.out)
}

pub(super) fn json_marshal(args: &[Value]) -> anyhow::Result<Value> {
    let value = args
        .first()
        .ok_or_else(|| anyhow::anyhow!("json.marshal: one operand"))?;
    Ok(Value::from(compact(value)?))
}

/// `json.marshal_with_options`: `prefix` and `indent` (strings) make the
/// text pretty unless `pretty` (a boolean) says otherwise; any other key is
/// an error. Pretty text starts with the prefix too (OPA adds it).
pub(super) fn json_marshal_with_options(args: &[Value]) -> anyhow::Result<Value> {
    const NAME: &str = "json.marshal_with_options";
    let value = args.first().ok_or_else(|| anyhow::anyhow!("{NAME}: two operands"))?;
    let options = args
        .get(1)
        .and_then(|options| options.as_object().ok())
        .ok_or_else(|| anyhow::anyhow!("{NAME}: operand 2 must be an object"))?;
    let (mut prefix, mut indent, mut implied, mut pretty) = ("", "\t", false, None);
    for (key, option) in options.iter() {
        let text = || {
            option
                .as_string()
                .map(|s| s.as_ref())
                .map_err(|_| anyhow::anyhow!("{NAME}: operand 2: {key} must be a string"))
        };
        match key.as_string().map(|s| s.as_ref()) {
            Ok("prefix") => (prefix, implied) = (text()?, true),
            Ok("indent") => (indent, implied) = (text()?, true),
            Ok("pretty") => match option {
                Value::Bool(explicit) => pretty = Some(*explicit),
                _ => anyhow::bail!("{NAME}: operand 2: pretty must be a boolean"),
            },
            _ => anyhow::bail!("{NAME}: operand 2: unknown option {key}"),
        }
    }
    if !pretty.unwrap_or(implied) {
        return Ok(Value::from(compact(value)?));
    }
    let mut writer = Writer {
        out: prefix.to_string(),
        layout: Some(Layout { prefix, indent }),
    };
    writer.value(value, 0)?;
    Ok(Value::from(writer.out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    fn marshal(value: Value) -> String {
        json_marshal(&[value]).unwrap().as_string().unwrap().to_string()
    }

    #[test]
    fn strings_escaped_as_go() {
        let text = Value::from("<a href=\"x\">&amp;</a>\u{2028}\u{2029}\u{7f}\u{0}\u{8}\u{c}\u{1f}\t\\é");
        // DEL and other printable characters stay as they are.
        let expected = r#""\u003ca href=\"x\"\u003e\u0026amp;\u003c/a\u003e\u2028\u2029DEL\u0000\b\f\u001f\t\\é""#;
        assert_eq!(marshal(text), expected.replace("DEL", "\u{7f}"));
    }

    #[test]
    fn sets_in_opa_order_objects_by_key() {
        let mut set = std::collections::BTreeSet::new();
        for element in [
            value("[1]"),
            value(r#"{"k": 1}"#),
            value("\"s\""),
            Value::Null,
            value("[]"),
        ] {
            set.insert(element);
        }
        set.insert(Value::from(std::collections::BTreeSet::<Value>::new()));
        set.insert(Value::from(std::collections::BTreeSet::from([Value::from(1)])));
        assert_eq!(marshal(Value::from(set)), r#"[null,"s",[],[1],{"k":1},[],[1]]"#);
        assert_eq!(
            marshal(value(r#"{"b": 1, "a": {"d": [], "c": {}}}"#)),
            r#"{"a":{"c":{},"d":[]},"b":1}"#
        );
        assert!(json_marshal(&[Value::Undefined]).is_err());
        // A number key is written as text; "1" after 1 in OPA's order wins.
        let keys = Value::from(std::collections::BTreeMap::from([
            (Value::from(1), Value::from("n")),
            (Value::from("1"), Value::from("s")),
            (value("[1]"), Value::from("a")),
        ]));
        assert_eq!(marshal(keys), r#"{"1":"s","[1]":"a"}"#);
    }

    #[test]
    fn pretty_as_marshal_indent() {
        let doc = value(r#"{"b": [1, {}], "a": "<x>", "c": [], "d": {"e": null}}"#);
        let options = |json: &str| value(json);
        let pretty = |opts: &str| {
            json_marshal_with_options(&[doc.clone(), options(opts)]).map(|v| v.as_string().unwrap().to_string())
        };
        assert_eq!(
            pretty(r#"{"indent": "  ", "prefix": ">"}"#).unwrap(),
            ">{\n>  \"a\": \"\\u003cx\\u003e\",\n>  \"b\": [\n>    1,\n>    {}\n>  ],\n>  \"c\": [],\n>  \"d\": {\n>    \"e\": null\n>  }\n>}"
        );
        assert_eq!(
            pretty(r#"{"pretty": true}"#).unwrap(),
            "{\n\t\"a\": \"\\u003cx\\u003e\",\n\t\"b\": [\n\t\t1,\n\t\t{}\n\t],\n\t\"c\": [],\n\t\"d\": {\n\t\t\"e\": null\n\t}\n}"
        );
        assert_eq!(
            pretty(r#"{"indent": "  ", "pretty": false}"#).unwrap(),
            r#"{"a":"\u003cx\u003e","b":[1,{}],"c":[],"d":{"e":null}}"#
        );
        assert!(pretty(r#"{"colour": true}"#).is_err());
        assert!(pretty(r#"{"pretty": "yes"}"#).is_err());
        assert!(pretty(r#"{"indent": 2}"#).is_err());
    }
}
