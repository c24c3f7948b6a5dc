//! `github.create_issue` / `github.create_comment` (also AlertChain's
//! `github.add_comment`): GitHub REST API with the documented media type and
//! API version headers, authenticated by a token (`secret_token`) or as a
//! GitHub App installation (AlertChain's `app_id`, `install_id`,
//! `secret_private_key`).

use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::{json, Value};

use super::render::{clip, headline, line, summary, Markup};
use super::vendor::base_url;
use super::vendor::{json_object, plain_name, secret, string_list, url_with, BASE_URL, TIMEOUT};

/// GitHub's limits: an issue's title, a body.
const MAX_TITLE: usize = 256;
const MAX_BODY: usize = 65_536;

/// The policy's `body` as written, else the alert's summary as literal Markdown.
fn body(call: &ActionCall<'_>) -> String {
    match call.str_arg("body") {
        Some(body) => clip(body, MAX_BODY),
        None => clip(&summary(call.alert, Markup::Markdown), MAX_BODY),
    }
}
use super::github_app::{installation_token, AppCredentials};
use super::{Action, ActionCall, ActionError, ArgKind, ArgRule, ArgSpec};
use crate::http::{HttpClient, HttpRequest};

const API_VERSION: &str = "2022-11-28";

/// A token, or the three App credentials.
const AUTH_RULES: &[ArgRule] = &[
    ArgRule::ExactlyOne(&["secret_token", "secret_private_key"]),
    ArgRule::Requires("secret_private_key", "app_id"),
    ArgRule::Requires("secret_private_key", "install_id"),
];

/// The token to send: the policy's, or the App installation's.
async fn token(client: &HttpClient, base: &str, call: &ActionCall<'_>) -> Result<String, ActionError> {
    if call.str_arg("secret_token").is_some() {
        return Ok(secret(call, "secret_token")?.to_string());
    }
    let whole = |arg: &str| {
        call.args
            .get(arg)
            .and_then(Value::as_u64)
            .ok_or_else(|| ActionError::BadArg {
                arg: arg.to_string(),
                reason: "must be a positive whole number".to_string(),
            })
    };
    let credentials = AppCredentials {
        app_id: whole("app_id")?,
        install_id: whole("install_id")?,
        private_key_pem: secret(call, "secret_private_key")?,
    };
    installation_token(
        client,
        base,
        &credentials,
        super::http::timeout_arg(call),
        call.deadline,
    )
    .await
}

fn request(call: &ActionCall<'_>, token: &str, url: String, body: Value) -> Result<HttpRequest, ActionError> {
    Ok(HttpRequest::new(Method::POST, url)
        .secret_header("authorization", &format!("Bearer {token}"))
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", API_VERSION)
        .json(body)
        .timeout(super::http::timeout_arg(call)))
}

fn repo<'a>(call: &ActionCall<'a>) -> Result<(&'a str, &'a str), ActionError> {
    let owner = call.str_arg("owner").unwrap_or_default();
    let repo = call.str_arg("repo").unwrap_or_default();
    plain_name("owner", owner)?;
    plain_name("repo", repo)?;
    Ok((owner, repo))
}

pub struct CreateIssue {
    client: HttpClient,
    base: String,
}

impl CreateIssue {
    pub fn new(client: HttpClient, base: String) -> CreateIssue {
        CreateIssue { client, base }
    }
}

/// Authentication, shared by both actions: a token, or a GitHub App
/// installation (AlertChain's arguments).
const TOKEN: ArgSpec = ArgSpec::optional("secret_token", ArgKind::Secret, "token with issues: write");
const APP_ID: ArgSpec = ArgSpec::optional(
    "app_id",
    ArgKind::Whole,
    "GitHub App id (with install_id and secret_private_key)",
);
const INSTALL_ID: ArgSpec = ArgSpec::optional("install_id", ArgKind::Whole, "the App's installation id");
const PRIVATE_KEY: ArgSpec = ArgSpec::optional(
    "secret_private_key",
    ArgKind::Secret,
    "the App's private key, PEM (PKCS#1 as GitHub gives it, or PKCS#8)",
);

const ISSUE_ARGS: &[ArgSpec] = &[
    ArgSpec::required("owner", ArgKind::String, "repository owner"),
    ArgSpec::required("repo", ArgKind::String, "repository name"),
    TOKEN,
    APP_ID,
    INSTALL_ID,
    PRIVATE_KEY,
    ArgSpec::optional("title", ArgKind::String, "issue title (default `[severity] title`)"),
    ArgSpec::optional(
        "body",
        ArgKind::String,
        "issue body, Markdown (default: a summary of the alert)",
    ),
    ArgSpec::optional("labels", ArgKind::StringList, "labels"),
    ArgSpec::optional("assignee", ArgKind::String, "login of the assignee"),
    BASE_URL,
    TIMEOUT,
];

impl Action for CreateIssue {
    fn uses(&self) -> &'static str {
        "github.create_issue"
    }

    fn args(&self) -> &'static [ArgSpec] {
        ISSUE_ARGS
    }

    fn rules(&self) -> &'static [ArgRule] {
        AUTH_RULES
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let (owner, repo) = repo(&call)?;
            let mut body = json!({
                "title": clip(&line(call.str_arg("title").map_or_else(|| headline(call.alert), str::to_string).as_str()), MAX_TITLE),
                "body": body(&call),
            });
            let labels = string_list(&call, "labels");
            if !labels.is_empty() {
                body["labels"] = json!(labels);
            }
            if let Some(assignee) = call.str_arg("assignee") {
                plain_name("assignee", assignee)?;
                body["assignees"] = json!([assignee]);
            }
            let base = base_url(&call, Some(&self.base))?;
            let token = token(&self.client, &base, &call).await?;
            let url = url_with(&base, &["repos", owner, repo, "issues"])?;
            let response = self
                .client
                .send(request(&call, &token, url, body)?, call.deadline)
                .await?;
            let issue = json_object("GitHub", &response)?;
            Ok(json!({
                "number": issue.get("number"),
                "id": issue.get("id"),
                "url": issue.get("html_url"),
                "html_url": issue.get("html_url"),
                "state": issue.get("state"),
                "title": issue.get("title"),
            }))
        })
    }
}

pub struct CreateComment {
    client: HttpClient,
    base: String,
}

impl CreateComment {
    pub fn new(client: HttpClient, base: String) -> CreateComment {
        CreateComment { client, base }
    }
}

const COMMENT_ARGS: &[ArgSpec] = &[
    ArgSpec::required("owner", ArgKind::String, "repository owner"),
    ArgSpec::required("repo", ArgKind::String, "repository name"),
    ArgSpec::required("issue_number", ArgKind::Whole, "issue or pull request number"),
    TOKEN,
    APP_ID,
    INSTALL_ID,
    PRIVATE_KEY,
    ArgSpec::optional(
        "body",
        ArgKind::String,
        "comment, Markdown (default: a summary of the alert)",
    ),
    BASE_URL,
    TIMEOUT,
];

impl Action for CreateComment {
    fn uses(&self) -> &'static str {
        "github.create_comment"
    }

    fn args(&self) -> &'static [ArgSpec] {
        COMMENT_ARGS
    }

    fn rules(&self) -> &'static [ArgRule] {
        AUTH_RULES
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let (owner, repo) = repo(&call)?;
            let number = call
                .args
                .get("issue_number")
                .and_then(Value::as_u64)
                .ok_or_else(|| ActionError::BadArg {
                    arg: "issue_number".to_string(),
                    reason: "must be a positive whole number".to_string(),
                })?;
            let body = json!({"body": body(&call)});
            let number = number.to_string();
            let base = base_url(&call, Some(&self.base))?;
            let token = token(&self.client, &base, &call).await?;
            let url = url_with(&base, &["repos", owner, repo, "issues", &number, "comments"])?;
            let response = self
                .client
                .send(request(&call, &token, url, body)?, call.deadline)
                .await?;
            let comment = json_object("GitHub", &response)?;
            Ok(json!({"id": comment.get("id"), "url": comment.get("html_url"), "html_url": comment.get("html_url")}))
        })
    }
}
