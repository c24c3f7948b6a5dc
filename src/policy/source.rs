//! Where policy files come from: the `policies/` compiled into the binary,
//! or a directory.

use std::path::{Path, PathBuf};

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
