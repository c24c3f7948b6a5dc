//! OPA's `base64.*`, `base64url.decode` and `urlquery.*`, in place of
//! regorus's, as Go's `encoding/base64` and `net/url` read and write:
//!
//! - Go's decoders skip `\r` and `\n` anywhere and ignore the unused bits
//!   of the last character (`YR==` is `a`); regorus refused both.
//! - `url.QueryEscape` keeps only letters, digits and `-_.~`; regorus kept
//!   `*` and escaped `~`. `url.QueryUnescape` decodes the whole string and
//!   fails on a bad escape; regorus read it as a query (`a=1&b=2` lost its
//!   `&`) and kept bad escapes. `url.ParseQuery` refuses `;` and more than
//!   10,000 parameters; `url.Values.Encode` takes keys as OPA's `ast.JSON`
//!   writes them (`1` is `"1"`).
//!
//! Decoded bytes that are not UTF-8 become U+FFFD: a Go string holds any
//! bytes, a policy value only text (OPA writes such a string so in JSON).

use std::collections::BTreeMap;

use regorus::Value;

use super::marshal::json_fields;
use super::operand::{string_operand, text};
use super::order::sorted;

/// Go's `StdEncoding` and `URLEncoding` alphabets.
const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `text` decoded as Go's padded `Encoding.DecodeString` (not strict):
/// line breaks skipped, the padding required, nothing after it, the
/// last character's unused bits ignored.
fn go_base64(text: &str, alphabet: &[u8; 64]) -> Option<Vec<u8>> {
    let mut sextets = Vec::with_capacity(text.len());
    let mut padding = 0;
    for byte in text.bytes().filter(|b| !matches!(b, b'\r' | b'\n')) {
        match byte {
            b'=' => padding += 1,
            _ if padding > 0 => return None,
            _ => sextets.push(alphabet.iter().position(|&symbol| symbol == byte)? as u8),
        }
    }
    // The padding completes the last quantum: `xx==` or `xxx=`.
    let partial = sextets.len() % 4;
    let complete = matches!((partial, padding), (0, 0) | (2, 2) | (3, 1));
    if !complete {
        return None;
    }
    let mut bytes = Vec::with_capacity(sextets.len() / 4 * 3 + 2);
    for quantum in sextets.chunks(4) {
        let bits = quantum
            .iter()
            .chain(std::iter::repeat_n(&0, 4 - quantum.len()))
            .fold(0u32, |bits, &sextet| bits << 6 | u32::from(sextet));
        let [_, first, second, third] = bits.to_be_bytes();
        bytes.extend_from_slice(&[first, second, third][..quantum.len() - 1]);
    }
    Some(bytes)
}

/// base64url as OPA's `base64url.decode` reads it: unpadded text is padded
/// first (RFC 7515, appendix C) by its length, line breaks included.
pub(super) fn go_base64url(text: &str) -> Option<Vec<u8>> {
    let padding = match (text.ends_with('='), text.len() % 4) {
        (true, _) | (false, 0) => "",
        (false, 2) => "==",
        (false, 3) => "=",
        (false, _) => return None,
    };
    go_base64(&format!("{text}{padding}"), URL_SAFE)
}

/// Decoded bytes as text: a sequence that is not UTF-8 becomes U+FFFD.
fn text_of(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    }
}

/// Decoded bytes as a policy string.
fn decoded(bytes: Vec<u8>) -> Value {
    Value::from(text_of(bytes))
}

pub(super) fn base64_decode(args: &[Value]) -> anyhow::Result<Value> {
    let encoded = string_operand("base64.decode", args, 0)?;
    let bytes = go_base64(encoded, STANDARD).ok_or_else(|| anyhow::anyhow!("base64.decode: illegal base64 data"))?;
    Ok(decoded(bytes))
}

/// Whether the operand decodes; false for a non-string (OPA's).
pub(super) fn base64_is_valid(args: &[Value]) -> anyhow::Result<Value> {
    Ok(Value::from(
        text(args, 0).is_some_and(|encoded| go_base64(encoded, STANDARD).is_some()),
    ))
}

pub(super) fn base64url_decode(args: &[Value]) -> anyhow::Result<Value> {
    let encoded = string_operand("base64url.decode", args, 0)?;
    let bytes = go_base64url(encoded).ok_or_else(|| anyhow::anyhow!("base64url.decode: illegal base64url data"))?;
    Ok(decoded(bytes))
}

/// Go's `url.QueryEscape`.
fn query_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => escaped.push(byte as char),
            b' ' => escaped.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                escaped.extend([
                    '%',
                    HEX[usize::from(byte >> 4)] as char,
                    HEX[usize::from(byte & 15)] as char,
                ]);
            }
        }
    }
    escaped
}

/// Go's `url.QueryUnescape`: `+` is a space, every `%` starts two hex
/// digits; None at the first that does not.
fn query_unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
                let (high, low) = (hex(index + 1)?, hex(index + 2)?);
                out.push((high << 4 | low) as u8);
                index += 3;
            }
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    Some(text_of(out))
}

pub(super) fn urlquery_encode(args: &[Value]) -> anyhow::Result<Value> {
    Ok(Value::from(query_escape(string_operand("urlquery.encode", args, 0)?)))
}

pub(super) fn urlquery_decode(args: &[Value]) -> anyhow::Result<Value> {
    let encoded = string_operand("urlquery.decode", args, 0)?;
    query_unescape(encoded)
        .map(Value::from)
        .ok_or_else(|| anyhow::anyhow!("urlquery.decode: invalid URL escape"))
}

/// How many parameters Go's `url.ParseQuery` takes (`urlmaxqueryparams`).
const MAX_QUERY_PARAMS: usize = 10_000;

/// Go's `url.ParseQuery`: `&`-separated pairs, each key's values in
/// order; an error for a `;` or a bad escape anywhere.
pub(super) fn urlquery_decode_object(args: &[Value]) -> anyhow::Result<Value> {
    let query = string_operand("urlquery.decode_object", args, 0)?;
    // Go's `url.ParseQuery` refuses more than 10,000 parameters.
    if query.bytes().filter(|&b| b == b'&').count() >= MAX_QUERY_PARAMS {
        anyhow::bail!("urlquery.decode_object: number of URL query parameters exceeded limit");
    }
    let mut params: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for pair in query.split('&') {
        if pair.contains(';') {
            anyhow::bail!("urlquery.decode_object: invalid semicolon separator in query");
        }
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let unescape = |part: &str| {
            query_unescape(part).ok_or_else(|| anyhow::anyhow!("urlquery.decode_object: invalid URL escape"))
        };
        let (key, value) = (unescape(key)?, unescape(value)?);
        params.entry(key).or_default().push(Value::from(value));
    }
    Ok(Value::from(
        params
            .into_iter()
            .map(|(key, values)| (Value::from(key), Value::from(values)))
            .collect::<BTreeMap<_, _>>(),
    ))
}

/// Go's `url.Values.Encode` of an object whose values are strings, or
/// arrays or sets of strings: keys sorted, a key once per value. Keys are
/// text as OPA's `ast.JSON` makes them (`1` is `"1"`).
pub(super) fn urlquery_encode_object(args: &[Value]) -> anyhow::Result<Value> {
    let fields = args
        .first()
        .and_then(|value| value.as_object().ok())
        .ok_or_else(|| anyhow::anyhow!("urlquery.encode_object: operand 1 must be an object"))?;
    let invalid = || anyhow::anyhow!("urlquery.encode_object: values must be string, array[string], or set[string]");
    let strings = |items: &mut dyn Iterator<Item = &Value>| -> anyhow::Result<Vec<String>> {
        items
            .map(|item| item.as_string().map(|s| query_escape(s)).map_err(|_| invalid()))
            .collect()
    };
    let mut encoded = Vec::new();
    for (key, value) in json_fields(fields)? {
        let values = match value {
            Value::String(single) => vec![query_escape(single)],
            Value::Array(items) => strings(&mut items.iter())?,
            Value::Set(items) => strings(&mut sorted(items.iter()).into_iter())?,
            _ => return Err(invalid()),
        };
        let key = query_escape(&key);
        encoded.extend(values.into_iter().map(|value| format!("{key}={value}")));
    }
    Ok(Value::from(encoded.join("&")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(function: fn(&[Value]) -> anyhow::Result<Value>, arg: &str) -> Option<String> {
        function(&[Value::from(arg)])
            .ok()
            .map(|v| v.as_string().unwrap().to_string())
    }

    #[test]
    fn base64_reads_as_go() {
        let decode = |s| call(base64_decode, s);
        assert_eq!(decode("YWJj").as_deref(), Some("abc"));
        assert_eq!(decode("YWI=").as_deref(), Some("ab"));
        assert_eq!(decode("YQ==").as_deref(), Some("a"));
        assert_eq!(decode("").as_deref(), Some(""));
        // Line breaks anywhere, trailing bits ignored.
        assert_eq!(decode("YWJj\nZGVm").as_deref(), Some("abcdef"));
        assert_eq!(decode("YW\r\nI=\n").as_deref(), Some("ab"));
        assert_eq!(decode("YR==").as_deref(), Some("a"));
        // Padding required, nothing after it, no other character.
        for bad in ["YWI", "YQ", "====", "Y===", "YQ==YQ==", "YW Jj", "YWJ-", "a"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
        assert_eq!(decode("/w=="), Some("\u{FFFD}".to_string()));
        assert_eq!(base64_is_valid(&[Value::from(1)]).unwrap(), Value::from(false));
    }

    #[test]
    fn base64url_pads_by_length() {
        let decode = |s| call(base64url_decode, s);
        assert_eq!(decode("YWI").as_deref(), Some("ab"));
        assert_eq!(decode("YQ").as_deref(), Some("a"));
        assert_eq!(decode("_-8=").as_deref(), Some("\u{FFFD}\u{FFFD}"));
        assert_eq!(decode("Y"), None);
        assert_eq!(decode("+/8="), None);
    }

    #[test]
    fn query_escapes_as_go() {
        assert_eq!(call(urlquery_encode, "a b*~é").as_deref(), Some("a+b%2A~%C3%A9"));
        let decode = |s| call(urlquery_decode, s);
        assert_eq!(decode("a=1&b=2").as_deref(), Some("a=1&b=2"));
        assert_eq!(decode("a+b%2B%e2%9c%93").as_deref(), Some("a b+✓"));
        for bad in ["%zz", "100%", "%4"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn query_objects_as_go() {
        let parsed = urlquery_decode_object(&[Value::from("b=2&a=x+y&b=1&&k&e=")]).unwrap();
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            r#"{"a":["x y"],"b":["2","1"],"e":[""],"k":[""]}"#
        );
        assert!(urlquery_decode_object(&[Value::from("a=1;b=2")]).is_err());
        assert!(urlquery_decode_object(&[Value::from("a=%zz&b=1")]).is_err());

        let object: Value = serde_json::from_str(r#"{"b": ["2", "1"], "a": "x y", "~k": "v*", "e": []}"#).unwrap();
        let encoded = urlquery_encode_object(&[object]).unwrap();
        assert_eq!(encoded, Value::from("a=x+y&b=2&b=1&~k=v%2A"));
        let numbered = Value::from(std::collections::BTreeMap::from([(Value::from(1), Value::from("a"))]));
        assert_eq!(urlquery_encode_object(&[numbered]).unwrap(), Value::from("1=a"));
        let many = "&".repeat(MAX_QUERY_PARAMS - 1);
        assert!(urlquery_decode_object(&[Value::from(many.as_str())]).is_ok());
        assert!(urlquery_decode_object(&[Value::from(format!("{many}&"))]).is_err());
        let nested: Value = serde_json::from_str(r#"{"a": [1]}"#).unwrap();
        assert!(urlquery_encode_object(&[nested]).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        /// Whatever bytes Go's encoder writes, with line breaks anywhere,
        /// decode back; whatever text is escaped, unescapes back; and any
        /// text at all is answered, never a panic.
        #[test]
        fn encodings_round_trip(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), text in ".{0,40}", breaks in proptest::collection::vec(0usize..100, 0..4)) {
            let mut encoded = data_encoding::BASE64.encode(&bytes);
            for at in breaks {
                let at = at % (encoded.len() + 1);
                encoded.insert_str(at, "\r\n");
            }
            proptest::prop_assert_eq!(go_base64(&encoded, STANDARD), Some(bytes.clone()));
            let url = data_encoding::BASE64URL_NOPAD.encode(&bytes);
            proptest::prop_assert_eq!(go_base64url(&url), Some(bytes));
            let unescaped = query_unescape(&query_escape(&text));
            proptest::prop_assert_eq!(unescaped, Some(text.clone()));
            for function in [base64_decode, base64_is_valid, base64url_decode, urlquery_decode, urlquery_decode_object] {
                let _ = function(&[Value::from(text.as_str())]);
            }
        }
    }
}
