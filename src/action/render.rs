//! Alert content is data, not markup. Titles, descriptions, attributes,
//! refs, severities and sources come from logs an attacker can write to (a
//! user agent, a user name, a URL path), so everything the host builds from
//! them goes through the rule of its destination:
//!
//! - Slack `mrkdwn` (and a message's `text`): `&`, `<`, `>` escaped, so no
//!   `<!channel>`, `<@U…>`, `<#C…>` or `<url|label>` link comes from data; a
//!   ref is a link only when its URL is plain `http(s)`.
//! - Markdown (GitHub): every punctuation Markdown reads escaped (no link,
//!   image, HTML, code fence, table or heading from data), and `@` kept from
//!   mentioning.
//! - Everywhere people read: control characters, bidirectional overrides and
//!   zero-width characters removed; long values clipped with a marker.
//!
//! Text a policy writes itself (`text`, `body`, `summary`, ...) is sent as
//! written: it may use markup on purpose, and escapes what it interpolates
//! with `escape.slack` / `escape.markdown` (see `policy::escape`).

use serde_json::Value;

use crate::model::Alert;

/// Longest attribute line of a summary, in characters.
const MAX_SUMMARY_LINE: usize = 1_000;

/// Shown where a value was cut.
const CLIPPED: &str = "… [clipped]";

/// Characters people must not be shown from data: C0 and C1 controls (but
/// tab and newline), the line and paragraph separators, bidirectional
/// controls, zero-width and invisible formatting characters (the soft
/// hyphen, the Mongolian vowel separator, the deprecated format controls),
/// and tag characters (invisible text some models still read).
fn is_hidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// `text` without hidden characters.
pub fn clean(text: &str) -> String {
    text.chars().filter(|c| !is_hidden(*c)).collect()
}

/// [`clean`] on one line: line breaks and tabs become spaces.
pub fn line(text: &str) -> String {
    clean(text)
        .chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .collect()
}

/// At most `max` characters, the last of them the clip marker when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(CLIPPED.chars().count());
    let mut clipped: String = text.chars().take(keep).collect();
    clipped.push_str(CLIPPED);
    clipped
}

/// SNS's longest subject, in characters.
const MAX_SNS_SUBJECT: usize = 99;

/// `text` as an SNS subject, which SNS refuses (failing the publish) unless
/// it is ASCII without line breaks or control characters, starts with a
/// letter, digit or punctuation, and is under 100 characters: on one line,
/// other characters as `?`, clipped with `...`; `None` when nothing is left.
pub fn sns_subject(text: &str) -> Option<String> {
    let ascii: String = line(text)
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .collect();
    let subject = ascii.trim();
    if subject.is_empty() {
        return None;
    }
    if subject.chars().count() <= MAX_SNS_SUBJECT {
        return Some(subject.to_string());
    }
    let mut clipped: String = subject.chars().take(MAX_SNS_SUBJECT - 3).collect();
    clipped.push_str("...");
    Some(clipped)
}

/// Literal text in Slack `mrkdwn`.
pub fn slack(text: &str) -> String {
    clean(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A ref as Slack `mrkdwn`: a link when its URL is plain `http(s)` (no
/// `|`, `<`, `>` or space to smuggle in a label or another link), with its
/// title escaped; otherwise the title and the URL as text.
pub fn slack_link(url: &str, title: &str) -> String {
    let plain = (url.starts_with("https://") || url.starts_with("http://"))
        && !url
            .chars()
            .any(|c| matches!(c, '|' | '<' | '>') || c.is_whitespace() || is_hidden(c));
    let label = if title.is_empty() { url } else { title };
    if plain {
        format!("<{url}|{}>", slack(&line(label)))
    } else if title.is_empty() {
        slack(&line(url))
    } else {
        format!("{} ({})", slack(&line(title)), slack(&line(url)))
    }
}

/// Literal text in Markdown (GitHub): every punctuation character Markdown
/// may read is backslash-escaped (`$` too: math), and `@`, `#`, `:` and `-`
/// are followed by a word joiner, so they mention no one, reference no issue
/// (GitHub links `org/repo\#1` even escaped, and `GH-1` or a repository's
/// own autolink prefix such as `JIRA-1`) and make no emoji.
pub fn markdown(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in clean(text).chars() {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '+' | '.' | '!' | '|' | '<' | '>' | '~'
            | '=' | '&' | '"' | '\'' | '$' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '#' => escaped.push_str("\\#\u{2060}"),
            '-' => escaped.push_str("\\-\u{2060}"),
            '@' | ':' => {
                escaped.push(c);
                escaped.push('\u{2060}');
            }
            c => escaped.push(c),
        }
    }
    escaped
}

/// The text of an attribute's value.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Where the summary of an alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    Slack,
    /// Slack `plain_text`: escaped as for `mrkdwn`, the ref as text.
    SlackPlain,
    Markdown,
    /// Plain text: Jira's document text nodes, Opsgenie, anything not rendered.
    Plain,
}

impl Markup {
    fn literal(self, text: &str) -> String {
        match self {
            Markup::Slack | Markup::SlackPlain => slack(text),
            Markup::Markdown => markdown(text),
            Markup::Plain => clean(text),
        }
    }
}

/// `[severity] title`, on one line, for titles and notification texts.
pub fn headline(alert: &Alert) -> String {
    if alert.severity.is_empty() {
        line(&alert.title)
    } else {
        line(&format!("[{}] {}", alert.severity, alert.title))
    }
}

/// A summary of an alert, every part from data made literal for `markup`:
/// the headline, the description, the attributes, the first ref.
pub fn summary(alert: &Alert, markup: Markup) -> String {
    let mut text = markup.literal(&headline(alert));
    if !alert.description.is_empty() {
        text.push('\n');
        text.push_str(&markup.literal(&alert.description));
    }
    for attr in &alert.attrs {
        text.push('\n');
        let attr_line = format!("{}: {}", attr.key, value_text(&attr.value));
        text.push_str(&markup.literal(&clip(&line(&attr_line), MAX_SUMMARY_LINE)));
    }
    if let Some(link) = alert.refs.first() {
        text.push('\n');
        text.push_str(&match markup {
            Markup::Slack => slack_link(&link.url, &link.title),
            other => other.literal(&line(&link.url)),
        });
    }
    text
}

/// An attribute's key and value as a Slack field's plain text.
pub fn slack_field(key: &str, value: &Value) -> String {
    format!("{}\n{}", slack(&line(key)), slack(&value_text(value)))
}

/// Data as a Slack text object: `plain_text`, which Slack reads no
/// emphasis, code, quote, link, mention or emoji from (`&`, `<` and `>`
/// still escaped: Slack decodes them in every text).
pub fn slack_plain(text: &str) -> Value {
    serde_json::json!({"type": "plain_text", "text": text, "emoji": false})
}

/// `mrkdwn` a policy (or the host, around data it escaped) wrote, read
/// `verbatim`: no bare URL, channel name or `@here` in it becomes a link or
/// a mention; its explicit `<url|label>` links and `<!here>` still work.
pub fn slack_mrkdwn(text: &str) -> Value {
    serde_json::json!({"type": "mrkdwn", "text": text, "verbatim": true})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_control_sequences_from_data_are_text() {
        let hostile = "<!channel> <https://evil.example/mfa|Reset your MFA now> & <@U012AB3CD> <#C123>";
        assert_eq!(
            slack(hostile),
            "&lt;!channel&gt; &lt;https://evil.example/mfa|Reset your MFA now&gt; &amp; &lt;@U012AB3CD&gt; &lt;#C123&gt;"
        );
        assert_eq!(
            slack_link("https://ok.example/x", "a <!here>"),
            "<https://ok.example/x|a &lt;!here&gt;>"
        );
        assert_eq!(
            slack_link("https://evil.example|Click me", "t"),
            "t (https://evil.example|Click me)"
        );
        assert_eq!(slack_link("javascript:alert(1)", ""), "javascript:alert(1)");
    }

    #[test]
    fn markdown_from_data_cannot_link_embed_mention_or_break_out() {
        let escaped =
            markdown("@security-team ![x](https://t.example/p.png) [ok](https://evil) ```\n# h\n<img src=x> | a |");
        assert!(!escaped.contains("@s"), "{escaped}");
        assert!(escaped.contains("\\!\\[x\\]\\(https:\u{2060}"), "{escaped}");
        assert!(
            escaped.contains("\\`\\`\\`") && escaped.contains("\\#\u{2060} h") && escaped.contains("\\<img"),
            "{escaped}"
        );
        assert!(escaped.contains("\\| a \\|"), "{escaped}");
        // No issue reference (GitHub links `org/repo\#1` even escaped), no
        // emoji shortcode, no math.
        assert_eq!(
            markdown("org/repo#123 :warning: $x$"),
            "org/repo\\#\u{2060}123 :\u{2060}warning:\u{2060} \\$x\\$"
        );
        // Nor GH-123, nor a repository's own autolink prefix (JIRA-42).
        assert_eq!(markdown("GH-123 JIRA-42"), "GH\\-\u{2060}123 JIRA\\-\u{2060}42");
    }

    #[test]
    fn an_sns_subject_is_what_sns_takes() {
        let hostile = format!("[critical] Root login\n\u{202E}évil\u{0085}{}", "x".repeat(200));
        let subject = sns_subject(&hostile).unwrap();
        assert!(subject.starts_with("[critical] Root login ?vil"), "{subject}");
        assert_eq!(subject.chars().count(), 99);
        assert!(subject.ends_with("..."));
        assert!(subject.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{subject}");
        assert_eq!(sns_subject("  short "), Some("short".to_string()));
        assert_eq!(sns_subject("\u{202E}\n"), None);
    }

    #[test]
    fn hidden_characters_are_removed_and_long_values_clipped() {
        assert_eq!(clean("a\u{202E}b\u{200B}c\u{0007}d\u{FEFF}\ne"), "abcd\ne");
        assert_eq!(
            clean("s\u{2028}e\u{2029}p\u{00AD}s\u{180E}h\u{206A}y\u{E0041}!"),
            "sepshy!"
        );
        assert_eq!(line("a\nb\tc"), "a b c");
        let clipped = clip(&"x".repeat(100), 20);
        assert_eq!(clipped.chars().count(), 20);
        assert!(clipped.ends_with(CLIPPED));
        assert_eq!(clip("short", 20), "short");
    }
}
