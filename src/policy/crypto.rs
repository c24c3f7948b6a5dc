//! OPA's hash and HMAC builtins, which regorus does not implement:
//! `crypto.md5`, `crypto.sha1`, `crypto.sha256` and `crypto.hmac.md5`,
//! `.sha1`, `.sha256`, `.sha512`, `.equal`. They are extensions of the
//! interpreter; the VM compiler takes no host function, so an entry rule
//! that reaches one runs on the interpreter.
//!
//! An argument that is not a string makes the call undefined: OPA's
//! default for a builtin error, which `opa eval` and AlertChain use.

use hmac::{EagerHash, Hmac, KeyInit, Mac};
use md5::Md5;
use regorus::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// Every function this module adds, with its number of arguments.
pub(super) const FUNCTIONS: &[(&str, u8)] = &[
    ("crypto.md5", 1),
    ("crypto.sha1", 1),
    ("crypto.sha256", 1),
    ("crypto.hmac.md5", 2),
    ("crypto.hmac.sha1", 2),
    ("crypto.hmac.sha256", 2),
    ("crypto.hmac.sha512", 2),
    ("crypto.hmac.equal", 2),
];

/// Adds the functions to an interpreter.
pub(super) fn add_to(engine: &mut regorus::Engine) {
    for &(name, arity) in FUNCTIONS {
        let added = engine.add_extension(
            name.to_string(),
            arity,
            Box::new(move |args: Vec<Value>| Ok(call(name, &args).unwrap_or(Value::Undefined))),
        );
        if let Err(err) = added {
            tracing::warn!(builtin = name, error = %err, "could not add the function to the interpreter");
        }
    }
}

/// The call's value; None when an argument is not a string.
fn call(name: &str, args: &[Value]) -> Option<Value> {
    let text = |index: usize| args.get(index).and_then(|v| v.as_string().ok()).map(|s| s.as_bytes());
    let hex = |bytes: &[u8]| Some(Value::from(hex::encode(bytes)));
    match name {
        "crypto.md5" => hex(&Md5::digest(text(0)?)),
        "crypto.sha1" => hex(&Sha1::digest(text(0)?)),
        "crypto.sha256" => hex(&Sha256::digest(text(0)?)),
        "crypto.hmac.md5" => hex(&hmac::<Md5>(text(0)?, text(1)?)),
        "crypto.hmac.sha1" => hex(&hmac::<Sha1>(text(0)?, text(1)?)),
        "crypto.hmac.sha256" => hex(&hmac::<Sha256>(text(0)?, text(1)?)),
        "crypto.hmac.sha512" => hex(&hmac::<Sha512>(text(0)?, text(1)?)),
        "crypto.hmac.equal" => Some(Value::from(constant_time_eq(text(0)?, text(1)?))),
        _ => None,
    }
}

fn hmac<D: EagerHash>(message: &[u8], key: &[u8]) -> Vec<u8>
where
    Hmac<D>: KeyInit + Mac,
{
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Compares without stopping at the first difference (OPA compares MACs
/// in constant time too); only the lengths show.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(name: &str, args: &[&str]) -> Option<String> {
        let args: Vec<Value> = args.iter().map(|a| Value::from(*a)).collect();
        call(name, &args).map(|v| match v {
            Value::Bool(b) => b.to_string(),
            other => other.as_string().unwrap().to_string(),
        })
    }

    /// Published test vectors: RFC 1321 (MD5), FIPS 180 (SHA), RFC 2202 and
    /// RFC 4231 (HMAC).
    #[test]
    fn digests_and_macs_match_the_published_vectors() {
        assert_eq!(of("crypto.md5", &["abc"]).unwrap(), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            of("crypto.sha1", &["abc"]).unwrap(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            of("crypto.sha256", &["abc"]).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let jefe = "what do ya want for nothing?";
        assert_eq!(
            of("crypto.hmac.md5", &[jefe, "Jefe"]).unwrap(),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            of("crypto.hmac.sha1", &[jefe, "Jefe"]).unwrap(),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            of("crypto.hmac.sha256", &[jefe, "Jefe"]).unwrap(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            of("crypto.hmac.sha512", &[jefe, "Jefe"]).unwrap(),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn equal_compares_whole_strings_and_bad_arguments_are_undefined() {
        assert_eq!(of("crypto.hmac.equal", &["abc", "abc"]).unwrap(), "true");
        assert_eq!(of("crypto.hmac.equal", &["abc", "abd"]).unwrap(), "false");
        assert_eq!(of("crypto.hmac.equal", &["abc", "ab"]).unwrap(), "false");
        assert_eq!(call("crypto.sha256", &[Value::from(1)]), None);
        assert_eq!(call("crypto.hmac.sha256", &[Value::from("m")]), None);
    }
}
