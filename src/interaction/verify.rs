//! What proves an answer: Slack's request signature (`v0`, HMAC-SHA256 of
//! `v0:<timestamp>:<body>` with the app's signing secret, within five
//! minutes) and the callback token (the pending action it names, MACed with
//! the function's callback key).

use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How old a Slack request may be (Slack's own advice: replay protection).
pub const MAX_SLACK_AGE_SECONDS: i64 = 300;

/// Why a request is not Slack's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Slack-Signature or X-Slack-Request-Timestamp")]
    Unsigned,
    #[error("the request timestamp is not a number")]
    BadTimestamp,
    #[error("the request is {age_seconds} s from now (at most {MAX_SLACK_AGE_SECONDS})")]
    Stale { age_seconds: i64 },
    #[error("the signature does not match")]
    BadSignature,
}

/// Checks a Slack request's signature against `secret`, at `now` (epoch seconds).
pub fn verify_slack(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Unsigned);
    };
    let sent: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    // Saturating: a timestamp near i64's ends is stale, not an overflow.
    let age = now.saturating_sub(sent);
    if age.saturating_abs() > MAX_SLACK_AGE_SECONDS {
        return Err(SignatureError::Stale { age_seconds: age });
    }
    let given = signature
        .strip_prefix("v0=")
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .ok_or(SignatureError::BadSignature)?;
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"v0:");
    mac.update(timestamp.trim().as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| SignatureError::BadSignature)
}

/// The `X-Slack-Signature` of `body` sent at `timestamp` (what Slack sends;
/// the tests sign their requests with it).
pub fn slack_signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// The pending action a callback token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub workflow: String,
    pub action_id: String,
}

/// The key callback tokens are MACed with, derived from a secret so that
/// one secret can serve two purposes without one MAC standing for another.
#[derive(Clone)]
pub struct CallbackKey(Vec<u8>);

impl std::fmt::Debug for CallbackKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackKey(..)")
    }
}

/// Where a token is accepted: a Slack button's token only with Slack's
/// signature (and `approvers`), a callback URL's only at `/callbacks/`.
/// One cannot stand for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Slack,
    Callback,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::Slack => b"slack",
            Purpose::Callback => b"callback",
        }
    }
}

impl CallbackKey {
    pub fn derive(secret: &[u8]) -> CallbackKey {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"alert-responder callback token v1");
        CallbackKey(mac.finalize().into_bytes().to_vec())
    }

    /// Over the purpose and both ids, each length-prefixed (no separator
    /// an id could contain).
    fn mac(&self, purpose: Purpose, workflow: &str, action_id: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in [purpose.tag(), workflow.as_bytes(), action_id.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// `<workflow>.<action id, base64url>.<MAC, base64url>`: URL- and
    /// Slack-button-safe, no `|`.
    pub fn token(&self, purpose: Purpose, workflow: &str, action_id: &str) -> String {
        let tag = self.mac(purpose, workflow, action_id).finalize().into_bytes();
        format!(
            "{}.{}.{}",
            BASE64URL_NOPAD.encode(workflow.as_bytes()),
            BASE64URL_NOPAD.encode(action_id.as_bytes()),
            BASE64URL_NOPAD.encode(&tag[..20])
        )
    }

    /// What `token` names, if this key made it for `purpose`.
    pub fn verify(&self, purpose: Purpose, token: &str) -> Option<TokenClaims> {
        let mut parts = token.split('.');
        let (workflow, action, tag) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let workflow = String::from_utf8(BASE64URL_NOPAD.decode(workflow.as_bytes()).ok()?).ok()?;
        let action_id = String::from_utf8(BASE64URL_NOPAD.decode(action.as_bytes()).ok()?).ok()?;
        let tag = BASE64URL_NOPAD.decode(tag.as_bytes()).ok()?;
        self.mac(purpose, &workflow, &action_id)
            .verify_truncated_left(&tag)
            .ok()?;
        (tag.len() == 20).then_some(TokenClaims { workflow, action_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_signatures_verify_and_fail_as_slack_says() {
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"payload=%7B%22type%22%3A%22block_actions%22%7D";
        let signature = slack_signature(secret, "1531420618", body);
        assert_eq!(
            verify_slack(secret, Some("1531420618"), Some(&signature), body, 1531420618 + 10),
            Ok(())
        );
        assert_eq!(
            verify_slack(b"another", Some("1531420618"), Some(&signature), body, 1531420618),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify_slack(secret, Some("1531420618"), Some(&signature), b"payload=x", 1531420618),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify_slack(secret, Some("1531420618"), Some(&signature), body, 1531420618 + 301),
            Err(SignatureError::Stale { age_seconds: 301 })
        );
        assert_eq!(
            verify_slack(secret, None, Some(&signature), body, 0),
            Err(SignatureError::Unsigned)
        );
        // A timestamp at i64's ends: stale, not an overflow (a debug build panicked).
        for extreme in [i64::MIN, i64::MAX] {
            assert!(matches!(
                verify_slack(secret, Some(&extreme.to_string()), Some(&signature), body, 1531420618),
                Err(SignatureError::Stale { .. })
            ));
        }
        assert_eq!(
            verify_slack(secret, Some("1531420618"), Some("v0=zz"), body, 1531420618),
            Err(SignatureError::BadSignature)
        );
    }

    /// Slack's documented example: the signing secret, timestamp and body of
    /// its "Verifying requests from Slack" page, and the signature it gives.
    #[test]
    fn slack_documented_example_verifies() {
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(slack_signature(secret, "1531420618", body), expected);
        assert_eq!(
            verify_slack(secret, Some("1531420618"), Some(expected), body, 1531420618),
            Ok(())
        );
    }

    #[test]
    fn callback_tokens_name_their_action_and_resist_tampering() {
        let key = CallbackKey::derive(b"s3cret");
        let token = key.token(Purpose::Callback, "0123abcd", "isolate host");
        assert!(!token.contains('|') && !token.contains('/'), "{token}");
        assert_eq!(
            key.verify(Purpose::Callback, &token),
            Some(TokenClaims {
                workflow: "0123abcd".to_string(),
                action_id: "isolate host".to_string()
            })
        );
        assert_eq!(CallbackKey::derive(b"other").verify(Purpose::Callback, &token), None);
        // A Slack button's token is no callback token, and the reverse.
        assert_eq!(key.verify(Purpose::Slack, &token), None);
        let button = key.token(Purpose::Slack, "0123abcd", "isolate host");
        assert_eq!(key.verify(Purpose::Callback, &button), None);
        assert!(key.verify(Purpose::Slack, &button).is_some());
        let other_action = key.token(Purpose::Callback, "0123abcd", "page");
        let forged = format!(
            "{}.{}",
            token.rsplit_once('.').unwrap().0,
            other_action.rsplit_once('.').unwrap().1
        );
        assert_eq!(key.verify(Purpose::Callback, &forged), None);
        assert_eq!(key.verify(Purpose::Callback, "not-a-token"), None);
        assert_eq!(key.verify(Purpose::Callback, &format!("{token}.x")), None);
    }
}
