//! OPA's hashes and HMACs: lowercase hex digests of a string's bytes.

use hmac::{EagerHash, Hmac, KeyInit, Mac};
use md5::Md5;
use regorus::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::operand::{constant_time_eq, text};

fn hex(bytes: &[u8]) -> Option<Value> {
    Some(Value::from(hex::encode(bytes)))
}

pub(super) fn md5(args: &[Value]) -> Option<Value> {
    hex(&Md5::digest(text(args, 0)?))
}

pub(super) fn sha1(args: &[Value]) -> Option<Value> {
    hex(&Sha1::digest(text(args, 0)?))
}

pub(super) fn sha256(args: &[Value]) -> Option<Value> {
    hex(&Sha256::digest(text(args, 0)?))
}

pub(super) fn hmac_md5(args: &[Value]) -> Option<Value> {
    hex(&mac::<Md5>(text(args, 0)?.as_bytes(), text(args, 1)?.as_bytes()))
}

pub(super) fn hmac_sha1(args: &[Value]) -> Option<Value> {
    hex(&mac::<Sha1>(text(args, 0)?.as_bytes(), text(args, 1)?.as_bytes()))
}

pub(super) fn hmac_sha256(args: &[Value]) -> Option<Value> {
    hex(&mac::<Sha256>(text(args, 0)?.as_bytes(), text(args, 1)?.as_bytes()))
}

pub(super) fn hmac_sha512(args: &[Value]) -> Option<Value> {
    hex(&mac::<Sha512>(text(args, 0)?.as_bytes(), text(args, 1)?.as_bytes()))
}

pub(super) fn hmac_equal(args: &[Value]) -> Option<Value> {
    Some(Value::from(constant_time_eq(
        text(args, 0)?.as_bytes(),
        text(args, 1)?.as_bytes(),
    )))
}

/// The HMAC of `message` under `key` with hash `D`.
pub(super) fn mac<D: EagerHash>(message: &[u8], key: &[u8]) -> Vec<u8>
where
    Hmac<D>: KeyInit + Mac,
{
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(function: fn(&[Value]) -> Option<Value>, args: &[&str]) -> String {
        let args: Vec<Value> = args.iter().map(|a| Value::from(*a)).collect();
        match function(&args).unwrap() {
            Value::Bool(b) => b.to_string(),
            other => other.as_string().unwrap().to_string(),
        }
    }

    /// Published test vectors: RFC 1321 (MD5), FIPS 180 (SHA), RFC 2202 and
    /// RFC 4231 (HMAC).
    #[test]
    fn digests_and_macs_match_the_published_vectors() {
        assert_eq!(of(md5, &["abc"]), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(of(sha1, &["abc"]), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            of(sha256, &["abc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let jefe = "what do ya want for nothing?";
        assert_eq!(of(hmac_md5, &[jefe, "Jefe"]), "750c783e6ab0b503eaa86e310a5db738");
        assert_eq!(
            of(hmac_sha1, &[jefe, "Jefe"]),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            of(hmac_sha256, &[jefe, "Jefe"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            of(hmac_sha512, &[jefe, "Jefe"]),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn equal_compares_whole_strings_and_bad_arguments_are_undefined() {
        assert_eq!(of(hmac_equal, &["abc", "abc"]), "true");
        assert_eq!(of(hmac_equal, &["abc", "abd"]), "false");
        assert_eq!(of(hmac_equal, &["abc", "ab"]), "false");
        assert_eq!(sha256(&[Value::from(1)]), None);
        assert_eq!(hmac_sha256(&[Value::from("m")]), None);
    }
}
