//! GitHub App authentication (AlertChain's `app_id`, `install_id`,
//! `secret_private_key`): a JWT signed with the App's RSA key (RS256) buys
//! an installation token for the request.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use data_encoding::{BASE64, BASE64URL_NOPAD};
use reqwest::Method;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::{json, Value};

use super::vendor::{json_object, url_with};
use super::ActionError;
use crate::http::{HttpClient, HttpRequest};

/// The App's credentials from a request's arguments.
pub struct AppCredentials<'a> {
    pub app_id: u64,
    pub install_id: u64,
    pub private_key_pem: &'a str,
}

/// An installation access token for `credentials`, from `{base}/app/installations/{id}/access_tokens`.
pub async fn installation_token(
    client: &HttpClient,
    base: &str,
    credentials: &AppCredentials<'_>,
    timeout: Option<std::time::Duration>,
    deadline: Option<Instant>,
) -> Result<String, ActionError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let jwt = app_jwt(credentials.app_id, credentials.private_key_pem, now)?;
    let install = credentials.install_id.to_string();
    let url = url_with(base, &["app", "installations", &install, "access_tokens"])?;
    let request = HttpRequest::new(Method::POST, url)
        .secret_header("authorization", &format!("Bearer {jwt}"))
        .header("accept", "application/vnd.github+json")
        .json(json!({}))
        .timeout(timeout);
    let response = client.send(request, deadline).await?;
    let answer = json_object("GitHub", &response)?;
    answer
        .get("token")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ActionError::failed("GitHub gave no installation token"))
}

/// The App's JWT: issued a minute ago (clock drift), valid nine minutes
/// (GitHub allows ten).
pub fn app_jwt(app_id: u64, private_key_pem: &str, now: u64) -> Result<String, ActionError> {
    let key = rsa_key(private_key_pem)?;
    let header = BASE64URL_NOPAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = json!({"iat": now.saturating_sub(60), "exp": now + 540, "iss": app_id.to_string()});
    let claims = BASE64URL_NOPAD.encode(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{claims}");
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| bad_key("could not sign with it"))?;
    Ok(format!("{signing_input}.{}", BASE64URL_NOPAD.encode(&signature)))
}

/// An RSA key from PEM: PKCS#1 (`BEGIN RSA PRIVATE KEY`, what GitHub
/// hands out) or PKCS#8 (`BEGIN PRIVATE KEY`).
fn rsa_key(pem: &str) -> Result<RsaKeyPair, ActionError> {
    let pkcs1 = pem.contains("BEGIN RSA PRIVATE KEY");
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("-----") && !line.is_empty())
        .collect();
    let der = BASE64
        .decode(body.as_bytes())
        .map_err(|_| bad_key("is not PEM (base64 between BEGIN and END lines)"))?;
    let key = if pkcs1 {
        RsaKeyPair::from_der(&der)
    } else {
        RsaKeyPair::from_pkcs8(&der)
    };
    key.map_err(|err| bad_key(&format!("is not an RSA private key ({err})")))
}

fn bad_key(reason: &str) -> ActionError {
    ActionError::BadArg {
        arg: "secret_private_key".to_string(),
        reason: reason.to_string(),
    }
}
