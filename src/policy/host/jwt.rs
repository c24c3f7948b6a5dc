//! OPA's `io.jwt.decode` and the HMAC verifications `io.jwt.verify_hs256`,
//! `_hs384`, `_hs512`: JWS compact serialization, nothing else (a JWE, a
//! header with `enc`, is refused as in OPA).

use regorus::Value;
use sha2::{Sha256, Sha384, Sha512};

use super::crypto::mac;
use super::encoding::go_base64url;
use super::operand::{constant_time_eq, text};
use crate::policy::guard::PRIVATE_NUMBER;

/// The token's three segments, as written.
struct Segments<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

fn segments(token: &str) -> Option<Segments<'_>> {
    let mut parts = token.split('.');
    let segments = Segments {
        header: parts.next()?,
        payload: parts.next()?,
        signature: parts.next()?,
    };
    parts.next().is_none().then_some(segments)
}

/// A JSON object from decoded bytes (the last of duplicate keys wins).
fn json_object(bytes: &[u8]) -> Option<Value> {
    let text = String::from_utf8_lossy(bytes);
    // regorus would compute such a number exactly, without bound.
    if text.contains(PRIVATE_NUMBER) {
        return None;
    }
    let value = Value::from_json_str(&text).ok()?;
    matches!(value, Value::Object(_)).then_some(value)
}

/// `[header, payload, signature as hex]`; a token whose header says
/// `"cty": "JWT"` is decoded from its payload, nested.
pub(super) fn decode(args: &[Value]) -> Option<Value> {
    let mut token = text(args, 0)?.to_string();
    loop {
        let parts = segments(&token)?;
        let header = json_object(&go_base64url(parts.header)?)?;
        if header["enc"] != Value::Undefined {
            return None;
        }
        let payload = go_base64url(parts.payload)?;
        match &header["cty"] {
            Value::Undefined => {}
            Value::String(cty) if cty.as_ref() == "JWT" => {
                let nested = String::from_utf8_lossy(&payload);
                token = nested.trim_matches(|c| c == '"' || c == '\'').to_string();
                continue;
            }
            Value::String(_) => {}
            _ => return None,
        }
        let payload = json_object(&payload)?;
        let signature = hex::encode(go_base64url(parts.signature)?);
        return Some(Value::from(vec![header, payload, Value::from(signature)]));
    }
}

/// Whether the token's signature is the HMAC of its first two segments
/// under the secret (the header's `alg` is not read, as in OPA).
fn verify(args: &[Value], sign: fn(&[u8], &[u8]) -> Vec<u8>) -> Option<Value> {
    let parts = segments(text(args, 0)?)?;
    let secret = text(args, 1)?;
    let signature = go_base64url(parts.signature)?;
    let signed = format!("{}.{}", parts.header, parts.payload);
    Some(Value::from(constant_time_eq(
        &signature,
        &sign(signed.as_bytes(), secret.as_bytes()),
    )))
}

pub(super) fn verify_hs256(args: &[Value]) -> Option<Value> {
    verify(args, mac::<Sha256>)
}

pub(super) fn verify_hs384(args: &[Value]) -> Option<Value> {
    verify(args, mac::<Sha384>)
}

pub(super) fn verify_hs512(args: &[Value]) -> Option<Value> {
    verify(args, mac::<Sha512>)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7515 appendix A.1: an HS256 JWS (its key is not text, which a
    /// Rego string is, so the MAC is checked on the same token re-signed).
    const TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    #[test]
    fn decodes_the_rfc_example_and_verifies_its_mac() {
        let decoded = decode(&[Value::from(TOKEN)]).unwrap();
        assert_eq!(decoded[0]["alg"], Value::from("HS256"));
        assert_eq!(decoded[1]["iss"], Value::from("joe"));
        assert_eq!(
            decoded[2],
            Value::from("7418dfb49799e0254ffa607dd8adbbba16d4254d69d6bff05b58055853848d79")
        );
        let secret = "secret";
        let signed = {
            let parts = segments(TOKEN).unwrap();
            format!("{}.{}", parts.header, parts.payload)
        };
        let signature = data_encoding::BASE64URL_NOPAD.encode(&mac::<Sha256>(signed.as_bytes(), secret.as_bytes()));
        let token = format!("{signed}.{signature}");
        let verified = |token: &str, secret: &str| verify_hs256(&[Value::from(token), Value::from(secret)]).unwrap();
        assert_eq!(verified(&token, secret), Value::from(true));
        assert_eq!(verified(&token, "other"), Value::from(false));
        assert_eq!(verified(TOKEN, secret), Value::from(false));
    }

    #[test]
    fn malformed_tokens_are_undefined() {
        for token in [
            "",
            "a.b",
            "a.b.c.d",
            "%%%.e30.",
            "e30.%%%.",
            "eyJlbmMiOiJBMjU2R0NNIn0.e30.",
            "e30.W10.",
            "eyI=YSI6MX0=.e30.",
        ] {
            assert_eq!(decode(&[Value::from(token)]), None, "{token}");
        }
        assert_eq!(decode(&[Value::from(1)]), None);
        // `{}` header and payload, no signature: decoded.
        let empty = decode(&[Value::from("e30.e30.")]).unwrap();
        assert_eq!(empty[2], Value::from(""));
    }
}
