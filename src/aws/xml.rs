//! Reading the AWS query and REST-XML answers these calls get: flat
//! documents whose values are text (no CDATA, no attributes on the elements
//! read), so a search for tags does what a parser would.

/// The texts of every `<name>…</name>` element, unescaped. An empty
/// element (`<name/>`) has no text and is not listed.
pub(super) fn values(xml: &str, name: &str) -> Vec<String> {
    elements(xml, name).into_iter().map(unescape).collect()
}

/// The first `<name>…</name>` element's content, raw (for a caller that
/// reads the elements inside it).
pub(super) fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)?;
    Some(&xml[start..start + end])
}

/// Every `<name>…</name>` element's content, raw, in order.
pub(super) fn elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    found
}

/// An AWS error answer in a line, `HTTP 404 NotFound: Topic does not
/// exist`, and its code.
pub(super) fn error_line(status: u16, text: &str) -> (String, Option<String>) {
    let code = values(text, "Code").pop();
    let message = values(text, "Message").pop();
    let line = match (&code, message) {
        (Some(code), Some(message)) => format!("HTTP {status} {code}: {message}"),
        (Some(code), None) => format!("HTTP {status} {code}"),
        _ => format!("HTTP {status}"),
    };
    (line, code)
}

fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&#13;", "\r")
        .replace("&#10;", "\n")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_elements_are_found_in_order_and_unescaped() {
        let doc = "<R><Failed><member><Id>1</Id><Message>a &lt;b&gt; &amp;amp;</Message></member>\
                   <member><Id>2</Id></member></Failed><Successful/></R>";
        let failed = element(doc, "Failed").unwrap();
        let members = elements(failed, "member");
        assert_eq!(members.len(), 2);
        assert_eq!(values(members[0], "Message"), ["a <b> &amp;"]);
        assert_eq!(values(members[1], "Id"), ["2"]);
        assert_eq!(element(doc, "Successful"), None, "an empty element has no content");
        assert!(values(doc, "Code").is_empty());
    }
}
