//! Where policy files come from: the `policies/` compiled into the binary,
//! or a directory.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::PolicyError;
use crate::config::PolicySource;

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled_policies.rs"));
}

/// One policy source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    /// Shown in errors: a path relative to where policies were loaded from.
    pub name: String,
    pub text: String,
}

impl PolicyFile {
    /// Rego unit tests live in `*_test.rego` and are loaded only by `test`.
    pub fn is_test(&self) -> bool {
        self.name.ends_with("_test.rego")
    }
}

/// Every policy file of a source, tests included, in a stable order.
pub fn read_source(source: &PolicySource) -> Result<Vec<PolicyFile>, PolicyError> {
    match source {
        PolicySource::Bundled => Ok(bundled::BUNDLED_POLICIES
            .iter()
            .map(|(name, text)| PolicyFile {
                name: name.to_string(),
                text: text.to_string(),
            })
            .collect()),
        PolicySource::Dir(dir) => {
            let mut paths = Vec::new();
            collect_rego(dir, &mut paths)?;
            paths.sort();
            if paths.is_empty() {
                return Err(PolicyError::Empty(dir.display().to_string()));
            }
            paths
                .into_iter()
                .map(|path| {
                    let text = std::fs::read_to_string(&path).map_err(|err| PolicyError::Read {
                        path: path.clone(),
                        reason: err.to_string(),
                    })?;
                    Ok(PolicyFile {
                        name: path.display().to_string(),
                        text,
                    })
                })
                .collect()
        }
    }
}

/// The production files' digest: SHA-256 over each file's name relative to
/// the source's root and its text, in order. The same policies give the
/// same digest bundled or from a directory, wherever it is.
pub fn source_digest(source: &PolicySource, files: &[PolicyFile]) -> String {
    // In the order of the names as text, as a bundle lists them (a path's
    // order differs: `a/x.rego` sorts before `a.rego` as a path, after it as text).
    let mut named: Vec<(&str, &PolicyFile)> = files
        .iter()
        .filter(|f| !f.is_test())
        .map(|file| (relative_name(source, &file.name), file))
        .collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    for (name, file) in named {
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        hasher.update((file.text.len() as u64).to_be_bytes());
        hasher.update(file.text.as_bytes());
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// Which policies a command runs, in one line: where they come from, how
/// many files, and the digest's first 12 hex digits.
pub fn describe_source(source: &PolicySource, files: &[PolicyFile]) -> String {
    let tests = files.iter().filter(|f| f.is_test()).count();
    let digest = source_digest(source, files);
    let short = &digest[..digest.len().min("sha256:".len() + 12)];
    let origin = match source {
        PolicySource::Bundled => "the starter kit bundled in this binary".to_string(),
        PolicySource::Dir(dir) => format!("directory {}", dir.display()),
    };
    format!(
        "policies: {origin} ({} file(s), {tests} test file(s), {short})",
        files.len() - tests
    )
}

fn relative_name<'a>(source: &PolicySource, name: &'a str) -> &'a str {
    let root = match source {
        PolicySource::Bundled => "policies".to_string(),
        PolicySource::Dir(dir) => dir.display().to_string(),
    };
    name.strip_prefix(root.as_str())
        .map(|rest| rest.trim_start_matches(['/', '\\']))
        .unwrap_or(name)
}

fn collect_rego(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), PolicyError> {
    let entries = std::fs::read_dir(dir).map_err(|err| PolicyError::Read {
        path: dir.to_path_buf(),
        reason: err.to_string(),
    })?;
    for entry in entries {
        let path = entry
            .map_err(|err| PolicyError::Read {
                path: dir.to_path_buf(),
                reason: err.to_string(),
            })?
            .path();
        if path.is_dir() {
            collect_rego(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rego") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_does_not_depend_on_where_the_policies_are() {
        let bundled = read_source(&PolicySource::Bundled).unwrap();
        let dir = PolicySource::Dir(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/policies")));
        let copied = read_source(&dir).unwrap();
        assert_eq!(
            source_digest(&PolicySource::Bundled, &bundled),
            source_digest(&dir, &copied)
        );
        // A changed policy, or a renamed one, is another digest; tests are not part of it.
        let mut changed = copied.clone();
        let index = changed.iter().position(|f| !f.is_test()).unwrap();
        changed[index].text.push('\n');
        assert_ne!(source_digest(&dir, &changed), source_digest(&dir, &copied));
        let mut renamed = copied.clone();
        renamed[index].name.push('x');
        assert_ne!(source_digest(&dir, &renamed), source_digest(&dir, &copied));
        let without_tests: Vec<_> = copied.iter().filter(|f| !f.is_test()).cloned().collect();
        assert_eq!(source_digest(&dir, &without_tests), source_digest(&dir, &copied));
    }

    #[test]
    fn the_description_says_where_and_how_many() {
        let bundled = read_source(&PolicySource::Bundled).unwrap();
        let line = describe_source(&PolicySource::Bundled, &bundled);
        assert!(
            line.starts_with("policies: the starter kit bundled in this binary (2 file(s), 2 test file(s), sha256:"),
            "{line}"
        );
        let line = describe_source(&PolicySource::Dir(PathBuf::from("my/policies")), &[]);
        assert!(
            line.starts_with("policies: directory my/policies (0 file(s), 0 test file(s), sha256:"),
            "{line}"
        );
    }
}
