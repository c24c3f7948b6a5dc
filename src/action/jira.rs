//! `jira.create_issue` / `jira.add_comment` / `jira.add_attachment`: Jira
//! REST API v3. Basic auth with `email` + API token (Jira Cloud), or a
//! bearer personal access token (Data Center) when no email is given. Text
//! goes in Atlassian Document Format. AlertChain's argument names (`user`,
//! `secret_token`, `issue_id`, `account_id`) are accepted.

use data_encoding::BASE64;
use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::{json, Value};

use super::render::{clean, clip, headline, line, summary, Markup};
use super::vendor::base_url;
use super::vendor::{json_object, plain_name, secret, string_list, url_with, TIMEOUT};
use super::{Action, ActionCall, ActionError, ArgKind, ArgSpec};
use crate::http::{HttpClient, HttpRequest, RequestBody};

/// Jira's longest description or comment, in characters: a longer one is
/// refused, failing the action.
const MAX_DOCUMENT_CHARS: usize = 32_000;

/// Plain text as an ADF document: one paragraph per line, clipped to what
/// Jira takes.
fn adf(text: &str) -> Value {
    let text = clip(text, MAX_DOCUMENT_CHARS);
    let paragraphs: Vec<Value> = text
        .lines()
        .map(|line| {
            if line.is_empty() {
                json!({"type": "paragraph", "content": []})
            } else {
                json!({"type": "paragraph", "content": [{"type": "text", "text": line}]})
            }
        })
        .collect();
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

fn authorized(call: &ActionCall<'_>, request: HttpRequest) -> Result<HttpRequest, ActionError> {
    let token = secret(call, "secret_api_token")?;
    Ok(match call.str_arg("email") {
        Some(email) => request.secret_header(
            "authorization",
            &format!("Basic {}", BASE64.encode(format!("{email}:{token}").as_bytes())),
        ),
        None => request.secret_header("authorization", &format!("Bearer {token}")),
    })
}

/// AlertChain's names of the shared arguments.
const ALIASES: &[(&str, &str)] = &[
    ("user", "email"),
    ("secret_token", "secret_api_token"),
    ("issue_id", "issue"),
];

pub struct CreateIssue {
    client: HttpClient,
    base: Option<String>,
}

impl CreateIssue {
    pub fn new(client: HttpClient, base: Option<String>) -> CreateIssue {
        CreateIssue { client, base }
    }
}

const CREATE_ARGS: &[ArgSpec] = &[
    ArgSpec::required("project", ArgKind::String, "project key, e.g. SEC"),
    ArgSpec::required(
        "secret_api_token",
        ArgKind::Secret,
        "API token (with `email`) or personal access token",
    ),
    ArgSpec::optional("email", ArgKind::String, "account email for basic auth (Jira Cloud)"),
    ArgSpec::optional("summary", ArgKind::String, "issue summary (default `[severity] title`)"),
    ArgSpec::optional(
        "description",
        ArgKind::String,
        "issue description (default: a summary of the alert)",
    ),
    ArgSpec::optional("issue_type", ArgKind::String, "issue type name (default Task)"),
    ArgSpec::optional("labels", ArgKind::StringList, "labels"),
    ArgSpec::optional(
        "base_url",
        ArgKind::String,
        "site URL, e.g. https://acme.atlassian.net (or JIRA_BASE_URL)",
    ),
    ACCOUNT_ID,
    ArgSpec::optional("assignee", ArgKind::String, "assignee's account id"),
    TIMEOUT,
];

impl Action for CreateIssue {
    fn uses(&self) -> &'static str {
        "jira.create_issue"
    }

    fn args(&self) -> &'static [ArgSpec] {
        CREATE_ARGS
    }

    fn aliases(&self) -> &'static [(&'static str, &'static str)] {
        ALIASES
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let alert = call.alert;
            let base = base_url(&call, self.base.as_deref())?;
            let project = call.str_arg("project").unwrap_or_default();
            plain_name("project", project)?;
            let mut fields = json!({
                "project": {"key": project},
                "summary": clip(&line(&call.str_arg("summary").map_or_else(|| headline(alert), str::to_string)), 255),
                "issuetype": {"name": call.str_arg("issue_type").unwrap_or("Task")},
                "description": adf(&call.str_arg("description").map_or_else(|| summary(alert, Markup::Plain), clean)),
            });
            let labels = string_list(&call, "labels");
            if !labels.is_empty() {
                fields["labels"] = json!(labels);
            }
            if let Some(reporter) = call.str_arg("account_id") {
                fields["reporter"] = json!({"id": reporter});
            }
            if let Some(assignee) = call.str_arg("assignee") {
                fields["assignee"] = json!({"id": assignee});
            }
            let url = url_with(&base, &["rest", "api", "3", "issue"])?;
            let request = HttpRequest::new(Method::POST, url)
                .header("accept", "application/json")
                .json(json!({"fields": fields}))
                .timeout(super::http::timeout_arg(&call));
            let response = self.client.send(authorized(&call, request)?, call.deadline).await?;
            let created = json_object("Jira", &response)?;
            let key = created.get("key").and_then(Value::as_str).unwrap_or_default();
            Ok(
                json!({"id": created.get("id"), "key": key, "self": created.get("self"), "url": format!("{base}/browse/{key}")}),
            )
        })
    }
}

pub struct AddComment {
    client: HttpClient,
    base: Option<String>,
}

impl AddComment {
    pub fn new(client: HttpClient, base: Option<String>) -> AddComment {
        AddComment { client, base }
    }
}

const COMMENT_ARGS: &[ArgSpec] = &[
    ArgSpec::required("issue", ArgKind::String, "issue key or id, e.g. SEC-42"),
    ArgSpec::required(
        "secret_api_token",
        ArgKind::Secret,
        "API token (with `email`) or personal access token",
    ),
    ArgSpec::optional("email", ArgKind::String, "account email for basic auth (Jira Cloud)"),
    ArgSpec::optional(
        "body",
        ArgKind::String,
        "comment text (default: a summary of the alert)",
    ),
    ArgSpec::optional("base_url", ArgKind::String, "site URL (or JIRA_BASE_URL)"),
    ACCOUNT_ID,
    TIMEOUT,
];

/// AlertChain's `account_id`: the reporter of a new issue; elsewhere Jira
/// takes the author from the credentials.
const ACCOUNT_ID: ArgSpec = ArgSpec::optional(
    "account_id",
    ArgKind::String,
    "account id: the reporter of a new issue (elsewhere the author is the token's)",
);

impl Action for AddComment {
    fn uses(&self) -> &'static str {
        "jira.add_comment"
    }

    fn args(&self) -> &'static [ArgSpec] {
        COMMENT_ARGS
    }

    fn aliases(&self) -> &'static [(&'static str, &'static str)] {
        ALIASES
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let issue = call.str_arg("issue").unwrap_or_default();
            plain_name("issue", issue)?;
            let text = call
                .str_arg("body")
                .map_or_else(|| summary(call.alert, Markup::Plain), clean);
            let url = url_with(
                &base_url(&call, self.base.as_deref())?,
                &["rest", "api", "3", "issue", issue, "comment"],
            )?;
            let request = HttpRequest::new(Method::POST, url)
                .header("accept", "application/json")
                .json(json!({"body": adf(&text)}))
                .timeout(super::http::timeout_arg(&call));
            let response = self.client.send(authorized(&call, request)?, call.deadline).await?;
            let created = json_object("Jira", &response)?;
            Ok(json!({"id": created.get("id"), "issue": issue}))
        })
    }
}

pub struct AddAttachment {
    client: HttpClient,
    base: Option<String>,
}

impl AddAttachment {
    pub fn new(client: HttpClient, base: Option<String>) -> AddAttachment {
        AddAttachment { client, base }
    }
}

const ATTACHMENT_ARGS: &[ArgSpec] = &[
    ArgSpec::required("issue", ArgKind::String, "issue key or id, e.g. SEC-42"),
    ArgSpec::required("file_name", ArgKind::String, "the attachment's file name"),
    ArgSpec::required(
        "data",
        ArgKind::String,
        "the file's content (text, e.g. input.alert.raw)",
    ),
    ArgSpec::required(
        "secret_api_token",
        ArgKind::Secret,
        "API token (with `email`) or personal access token",
    ),
    ArgSpec::optional("email", ArgKind::String, "account email for basic auth (Jira Cloud)"),
    ArgSpec::optional("base_url", ArgKind::String, "site URL (or JIRA_BASE_URL)"),
    ACCOUNT_ID,
    TIMEOUT,
];

/// The multipart boundary's stem: a counter is added until the boundary
/// is absent from the content (the content may quote the stem).
const BOUNDARY: &str = "alert-responder-attachment-7f3a9c";

/// A boundary `data` does not contain.
fn boundary_for(data: &str) -> String {
    (0u64..)
        .map(|n| format!("{BOUNDARY}-{n}"))
        .find(|boundary| !data.contains(boundary.as_str()))
        .expect("some counter is absent from finite data")
}

impl Action for AddAttachment {
    fn uses(&self) -> &'static str {
        "jira.add_attachment"
    }

    fn args(&self) -> &'static [ArgSpec] {
        ATTACHMENT_ARGS
    }

    fn aliases(&self) -> &'static [(&'static str, &'static str)] {
        ALIASES
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let issue = call.str_arg("issue").unwrap_or_default();
            plain_name("issue", issue)?;
            let file_name = call.str_arg("file_name").unwrap_or_default();
            if file_name.is_empty() || file_name.contains(['"', '\r', '\n', '/', '\\']) {
                return Err(ActionError::BadArg {
                    arg: "file_name".to_string(),
                    reason: "must be a plain file name (no quotes, slashes or line breaks)".to_string(),
                });
            }
            let data = call.str_arg("data").unwrap_or_default();
            let boundary = boundary_for(data);
            let body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n{data}\r\n--{boundary}--\r\n"
            );
            let url = url_with(
                &base_url(&call, self.base.as_deref())?,
                &["rest", "api", "3", "issue", issue, "attachments"],
            )?;
            let mut request = HttpRequest::new(Method::POST, url)
                .header("accept", "application/json")
                .header("x-atlassian-token", "no-check")
                .header("content-type", &format!("multipart/form-data; boundary={boundary}"))
                .timeout(super::http::timeout_arg(&call));
            request.body = Some(RequestBody::Bytes(body.into_bytes()));
            let response = self.client.send(authorized(&call, request)?, call.deadline).await?;
            // Jira answers with the list of attachments created.
            match &response.body {
                Value::Array(_) => Ok(response.body.clone()),
                _ => Err(ActionError::Failed {
                    transient: false,
                    message: "Jira's answer is not a list of attachments".to_string(),
                    result: Some(response.to_result()),
                }),
            }
        })
    }
}
