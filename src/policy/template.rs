//! OPA's template strings (v1.12): `$"user {input.user.name}"` and raw
//! `` $`…` ``, which regorus does not parse. Each is written as the call it
//! means, on the same lines, in the text both engines compile:
//! `concat("", ["user ", <the value>])`, where a value is written as
//! `sprintf("%v", …)` writes it (a string as itself, a number, set or
//! object as OPA prints it) and an undefined one as `<undefined>`.

use super::error::PolicyError;
use super::source::PolicyFile;

/// `files`, each with its template strings written as calls (a file
/// without one is as it was); a template that does not end fails, naming
/// where it starts.
pub(super) fn written_as_calls(files: Vec<PolicyFile>) -> Result<Vec<PolicyFile>, PolicyError> {
    files
        .into_iter()
        .map(|file| match file.text.contains("$\"") || file.text.contains("$`") {
            true => match rewritten(&file.text, &mut 0) {
                Ok(text) => Ok(PolicyFile { text, name: file.name }),
                Err(start) => {
                    let before = &file.text[..start];
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    Err(PolicyError::Compile(format!(
                        "{}:{line}:{column}: template string does not end: a quoted one closes with `\"` on its \
                         line, a raw one with `` ` ``, and each `{{` of an expression with `}}` (`\\{{` is a brace)",
                        file.name
                    )))
                }
            },
            false => Ok(file),
        })
        .collect()
}

/// `text` with every template string outside comments and strings
/// rewritten; `next` numbers the variables the calls use. A template that
/// does not end is an error: where it starts.
fn rewritten(text: &str, next: &mut usize) -> Result<String, usize> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 64);
    let (mut at, mut copied) = (0, 0);
    while at < bytes.len() {
        at = match bytes[at] {
            b'#' => line_end(bytes, at),
            b'"' | b'`' => quoted_end(bytes, at),
            b'$' if matches!(bytes.get(at + 1), Some(b'"' | b'`')) => match template(text, at, Some(next)) {
                Some((end, call)) => {
                    out.push_str(&text[copied..at]);
                    out.push_str(&call);
                    copied = end;
                    end
                }
                None => return Err(at),
            },
            _ => at + 1,
        };
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// The template string starting at `start` (its `$`): where it ends, and
/// the call it means when `next` numbers its variables (`None`: only
/// where it ends, for an enclosing template's scan — each nested one is
/// then written once, not once per level).
fn template(text: &str, start: usize, mut next: Option<&mut usize>) -> Option<(usize, String)> {
    let bytes = text.as_bytes();
    let raw = bytes[start + 1] == b'`';
    let close = bytes[start + 1];
    let mut parts: Vec<String> = Vec::new();
    let mut literal = String::new();
    let mut at = start + 2;
    loop {
        let byte = *bytes.get(at)?;
        match byte {
            _ if byte == close => break,
            b'\n' if !raw => return None,
            // `\{` is the brace itself; in a raw template any other
            // backslash is one, in a quoted one the escape is kept as
            // written (a string's).
            b'\\' if bytes.get(at + 1) == Some(&b'{') => {
                literal.push('{');
                at += 2;
            }
            b'\\' if raw => {
                literal.push('\\');
                at += 1;
            }
            b'\\' => {
                let escaped = text.get(at + 1..)?.chars().next()?;
                literal.push('\\');
                literal.push(escaped);
                at += 1 + escaped.len_utf8();
            }
            b'{' => {
                let end = expression_end(text, at + 1)?;
                let inner = &text[at + 1..end];
                at = end + 1;
                let Some(next) = next.as_deref_mut() else {
                    continue;
                };
                if !literal.is_empty() {
                    parts.push(quoted(&std::mem::take(&mut literal), raw));
                }
                let expression = rewritten(inner, next).ok()?;
                let var = format!("ar__t{next}");
                *next += 1;
                // `some … in [e]`, not `:=`: regorus's VM kept an undefined
                // `e` assigned in a comprehension as an element.
                parts.push(format!(
                    "array.concat([sprintf(\"%v\", [{var}]) | some {var} in [({expression})]], [\"<undefined>\"])[0]"
                ));
            }
            _ => {
                let char = text.get(at..)?.chars().next()?;
                literal.push(char);
                at += char.len_utf8();
            }
        }
    }
    if !literal.is_empty() || parts.is_empty() {
        parts.push(quoted(&literal, raw));
    }
    Some((at + 1, format!("concat(\"\", [{}])", parts.join(", "))))
}

/// A literal part as a string term: raw in backticks (it holds none),
/// quoted as written (its escapes are a string's).
fn quoted(literal: &str, raw: bool) -> String {
    match raw {
        true => format!("`{literal}`"),
        false => format!("\"{literal}\""),
    }
}

/// The `}` closing an interpolated expression that starts at `from`:
/// nested braces, strings and templates skipped.
fn expression_end(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut at = from;
    while let Some(&byte) = bytes.get(at) {
        at = match byte {
            b'$' if matches!(bytes.get(at + 1), Some(b'"' | b'`')) => template(text, at, None)?.0,
            b'"' | b'`' => quoted_end(bytes, at),
            b'{' => {
                depth += 1;
                at + 1
            }
            b'}' if depth == 0 => return Some(at),
            b'}' => {
                depth -= 1;
                at + 1
            }
            _ => at + 1,
        };
    }
    None
}

/// Just past the string (or template's text) opened by the quote at `at`.
pub(super) fn quoted_end(bytes: &[u8], at: usize) -> usize {
    let close = bytes[at];
    let mut end = at + 1;
    while let Some(&byte) = bytes.get(end) {
        match byte {
            b'\\' if close == b'"' => end += 2,
            _ if byte == close => return end + 1,
            b'\n' if close == b'"' => return end,
            _ => end += 1,
        }
    }
    bytes.len()
}

pub(super) fn line_end(bytes: &[u8], at: usize) -> usize {
    bytes[at..]
        .iter()
        .position(|&byte| byte == b'\n')
        .map_or(bytes.len(), |offset| at + offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(text: &str) -> String {
        rewritten(text, &mut 0).unwrap()
    }

    #[test]
    fn a_template_is_the_concatenation_of_its_parts() {
        assert_eq!(
            call(r#"r := $"a {input.s} b""#),
            r#"r := concat("", ["a ", array.concat([sprintf("%v", [ar__t0]) | some ar__t0 in [(input.s)]], ["<undefined>"])[0], " b"])"#
        );
        assert_eq!(call(r#"r := $"""#), r#"r := concat("", [""])"#);
    }

    #[test]
    fn braces_and_quotes_inside_an_expression_stay_in_it() {
        let text = r#"r := $"{ {"k": "}"}["k"] }{"{"}""#;
        let written = call(text);
        assert!(written.contains(r#"ar__t0 in [( {"k": "}"}["k"] )]"#), "{written}");
        assert!(written.contains(r#"ar__t1 in [("{")]"#), "{written}");
    }

    #[test]
    fn raw_templates_keep_backslashes_but_before_an_opening_brace_and_keep_their_lines() {
        let text = "r := $`a \\{ \\} \\n {input.s}\nnext`\nq := 1\n";
        let written = call(text);
        assert!(written.starts_with("r := concat(\"\", [`a { \\} \\n `, "), "{written}");
        assert!(written.ends_with("`\nnext`])\nq := 1\n"), "{written}");
        assert_eq!(written.lines().count(), text.lines().count());
    }

    #[test]
    fn templates_in_comments_strings_and_nested_templates() {
        let text = "# $\"{x}\"\ns := \"$\\\"{x}\"\nr := $\"{$\"{input.s}\"}\"\n";
        let written = call(text);
        assert!(written.starts_with("# $\"{x}\"\ns := \"$\\\"{x}\"\n"), "{written}");
        // The inner template is rewritten inside the outer one's expression.
        assert!(written.contains("ar__t1 in [(concat("), "{written}");
        assert!(written.contains("ar__t0 in [(input.s)]"), "{written}");
    }

    #[test]
    fn an_escaped_opening_brace_is_literal_and_a_nested_template_is_skipped_whole() {
        assert_eq!(call(r#"r := $"set \{a}""#), r#"r := concat("", ["set {a}"])"#);
        // The inner template's `"}"` does not end the outer expression.
        let written = call(r#"r := $"a {$"b {concat("}", l)}"} c""#);
        assert!(written.ends_with(r#", " c"])"#), "{written}");
        assert!(written.contains(r#"some ar__t0 in [(concat("}", l))]"#), "{written}");
    }

    /// Each nested template is scanned once per enclosing level, not
    /// written again per level (that doubled the work at each level).
    #[test]
    fn deeply_nested_templates_are_written_in_time() {
        let depth = 40;
        let text = format!("r := {}input.x{}", "$\"{".repeat(depth), "}\"".repeat(depth));
        let written = call(&text);
        assert_eq!(written.matches("array.concat(").count(), depth, "{written}");
    }

    #[test]
    fn an_unterminated_template_fails_naming_where_it_starts() {
        for text in [
            "r := $\"a {input.s\n",
            "r := $\"abc\n",
            "r := $`{x`",
            "r := $\"{$\"b\"\n",
        ] {
            let files = vec![PolicyFile {
                name: "p.rego".into(),
                text: format!("package p\n\n{text}"),
            }];
            let err = written_as_calls(files).unwrap_err().to_string();
            assert!(
                err.contains("p.rego:3:6: template string does not end"),
                "{text:?}: {err}"
            );
        }
    }
}
