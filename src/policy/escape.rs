//! `escape.slack(value)` and `escape.markdown(value)`, for policies: text
//! a policy writes may use markup on purpose, and what it interpolates from
//! the alert must not (see `action::render`). They are Rego functions in
//! `package escape`, which the loader adds when a module imports
//! `data.escape` (and none declares that package): both engines run them at
//! full speed, `check` knows them, and OPA reads the same policies the same
//! way once it has the module (`alert-responder check` never needs it).

use super::source::PolicyFile;

/// The module body, after its `package escape` line.
const FUNCTIONS: &str = r##"
# Alert content made literal text in Slack mrkdwn: no <!channel>, <@U…>,
# <#C…> or <url|label> from data.
slack(value) := replace(replace(replace(clean(value), "&", "&amp;"), "<", "&lt;"), ">", "&gt;")

# Alert content made literal text in Markdown (GitHub): no link, image,
# HTML, code fence, table, heading or math from data, and no @mention,
# issue reference (`#1`, `GH-1`, a repository's autolink prefix) or emoji (a
# word joiner after `@`, `#`, `:` and `-`).
markdown(value) := replace(replace(replace(replace(regex.replace(clean(value), "([\\\\`*_{}\\[\\]()+\\-.!|<>~=&\"'$])", "\\$1"), "#", "\\#\u2060"), "@", "@\u2060"), ":", ":\u2060"), "-", "-\u2060")

# Control characters (but tab and newline), line and paragraph separators,
# bidirectional controls, zero-width and invisible formatting characters,
# and tag characters removed.
clean(value) := regex.replace(text(value), "[\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F\\x{00AD}\\x{061C}\\x{180E}\\x{200B}-\\x{200F}\\x{2028}-\\x{202E}\\x{2060}-\\x{2064}\\x{2066}-\\x{206F}\\x{FEFF}\\x{E0000}-\\x{E007F}]", "")

text(value) := value if {
	is_string(value)
} else := sprintf("%v", [value])
"##;

/// The package the functions live in.
const PACKAGE: &str = "escape";

/// `files`, and the `escape` module when one of them imports it.
pub fn with_escape_functions(mut files: Vec<PolicyFile>) -> Vec<PolicyFile> {
    let declared = files
        .iter()
        .any(|file| package_of(&file.text).as_deref() == Some(PACKAGE));
    let imported = files.iter().any(|file| imports_escape(&file.text));
    if imported && !declared {
        files.push(PolicyFile {
            name: "<escape functions>".to_string(),
            text: format!("package {PACKAGE}\n{FUNCTIONS}"),
        });
    }
    files
}

fn imports_escape(text: &str) -> bool {
    text.lines().map(str::trim).any(|line| {
        line.strip_prefix("import ")
            .map(|rest| rest.split_whitespace().next() == Some("data.escape"))
            .unwrap_or(false)
    })
}

fn package_of(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("package "))
        .map(|package| package.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> PolicyFile {
        PolicyFile {
            name: name.to_string(),
            text: text.to_string(),
        }
    }

    #[test]
    fn the_module_comes_with_an_import_and_only_once() {
        let files = with_escape_functions(vec![
            file("a.rego", "package a\nimport data.escape\n"),
            file("b.rego", "package b\nimport data.escape as e\n"),
        ]);
        assert_eq!(files.len(), 3);
        assert_eq!(package_of(&files[2].text).as_deref(), Some("escape"));
    }

    #[test]
    fn no_import_or_an_own_escape_package_adds_nothing() {
        let plain = vec![file("a.rego", "package a\nx := \"data.escape\"\n")];
        assert_eq!(with_escape_functions(plain.clone()), plain);
        let own = vec![
            file("a.rego", "package a\nimport data.escape\n"),
            file("e.rego", "package escape\nslack(x) := x\n"),
        ];
        assert_eq!(with_escape_functions(own.clone()), own);
    }
}
