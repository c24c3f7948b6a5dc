//! The bundle format: a `tar.gz` whose first entry is `manifest.json`,
//! then the production policy files, by name. Deterministic: the same
//! files give the same bytes (sorted entries, fixed times, owners and
//! modes, no gzip name or time), so a digest names one bundle.

use std::io::Read;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::PolicySource;
use crate::policy::{source_digest, PolicyFile};

pub const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "alert-responder-bundle";
const FORMAT_VERSION: u32 = 1;
/// A bundle is policies: far below this. Bounds what a bad object costs.
const MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a bundle could not be read; each names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("{origin}: not a gzip tar archive, or a truncated one: {reason}")]
    Archive { origin: String, reason: String },
    #[error("{origin}: bad manifest: {reason}")]
    Manifest { origin: String, reason: String },
    #[error("{origin}: {path}: sha256 is {actual}, the manifest says {expected}")]
    FileDigest {
        origin: String,
        path: String,
        expected: String,
        actual: String,
    },
    #[error("{origin}: the bundle digest is {actual}, the manifest says {expected}")]
    BundleDigest {
        origin: String,
        expected: String,
        actual: String,
    },
    #[error("{origin}: needs the `{feature}` engine feature, which this build lacks (build with --features policy-{feature})")]
    Feature { origin: String, feature: String },
    #[error("{origin}: {reason}")]
    Fetch { origin: String, reason: String },
}

/// One file of a bundle, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// `sha256:<hex>` over the files' names and texts (as outcomes and
    /// decision records name the policies that decided them).
    pub digest: String,
    /// The alert-responder version that built it.
    pub built_by: String,
    /// Engine features the policies need (`jsonschema`).
    pub features: Vec<String>,
    pub files: Vec<ManifestFile>,
}

/// A bundle read and verified: its manifest and policy files.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest: Manifest,
    pub files: Vec<PolicyFile>,
}

/// Engine features a policy text needs.
fn features_of(files: &[PolicyFile]) -> Vec<String> {
    let schema = files
        .iter()
        .any(|f| f.text.contains("json.match_schema") || f.text.contains("json.verify_schema"));
    schema.then(|| "jsonschema".to_string()).into_iter().collect()
}

fn compiled_features() -> &'static [&'static str] {
    if cfg!(feature = "policy-jsonschema") {
        &["jsonschema"]
    } else {
        &[]
    }
}

/// The digest of files named relative to their root.
fn digest_of(files: &[PolicyFile]) -> String {
    source_digest(&PolicySource::Dir(std::path::PathBuf::new()), files)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Builds the bundle of `files` (production files, named relative to the
/// policy directory, `/`-separated): its bytes and manifest.
pub fn build(files: &[PolicyFile]) -> (Vec<u8>, Manifest) {
    let mut files: Vec<PolicyFile> = files.iter().filter(|f| !f.is_test()).cloned().collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let manifest = Manifest {
        format: FORMAT.to_string(),
        format_version: FORMAT_VERSION,
        digest: digest_of(&files),
        built_by: format!("alert-responder {}", env!("CARGO_PKG_VERSION")),
        features: features_of(&files),
        files: files
            .iter()
            .map(|f| ManifestFile {
                path: f.name.clone(),
                sha256: sha256_hex(f.text.as_bytes()),
                bytes: f.text.len() as u64,
            })
            .collect(),
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gzip);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut append = |path: &str, data: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, data).expect("writing to memory");
    };
    append(MANIFEST, &manifest_json);
    for file in &files {
        append(&file.name, file.text.as_bytes());
    }
    let gzip = tar.into_inner().expect("writing to memory");
    (gzip.finish().expect("writing to memory"), manifest)
}

/// Reads and verifies a bundle: every file's sha256 and the bundle digest
/// against the manifest, and the features it needs against this build.
/// `origin` (a path or `s3://` URI) is named in every error.
pub fn open(bytes: &[u8], origin: &str) -> Result<Bundle, BundleError> {
    let archive_error = |reason: String| BundleError::Archive {
        origin: origin.to_string(),
        reason,
    };
    let manifest_error = |reason: String| BundleError::Manifest {
        origin: origin.to_string(),
        reason,
    };
    let gzip = flate2::read::GzDecoder::new(bytes).take(MAX_BUNDLE_BYTES);
    let mut archive = tar::Archive::new(gzip);
    let mut manifest: Option<Manifest> = None;
    let mut files = Vec::new();
    let entries = archive.entries().map_err(|err| archive_error(err.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|err| archive_error(err.to_string()))?;
        let path = entry
            .path()
            .map_err(|err| archive_error(err.to_string()))?
            .to_string_lossy()
            .to_string();
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(|err| archive_error(format!("{path}: {err}")))?;
        if path == MANIFEST {
            manifest = Some(serde_json::from_str(&text).map_err(|err| manifest_error(err.to_string()))?);
        } else if path.ends_with(".rego") {
            files.push(PolicyFile { name: path, text });
        }
    }
    let manifest = manifest.ok_or_else(|| manifest_error(format!("no {MANIFEST} in the archive")))?;
    if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
        return Err(manifest_error(format!(
            "format {:?} version {}, expected {FORMAT:?} version {FORMAT_VERSION}",
            manifest.format, manifest.format_version
        )));
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let listed: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let found: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    if listed != found {
        return Err(manifest_error(format!(
            "it lists {listed:?}, the archive holds {found:?}"
        )));
    }
    for (listed, file) in manifest.files.iter().zip(&files) {
        let actual = sha256_hex(file.text.as_bytes());
        if actual != listed.sha256 {
            return Err(BundleError::FileDigest {
                origin: origin.to_string(),
                path: file.name.clone(),
                expected: listed.sha256.clone(),
                actual,
            });
        }
    }
    let actual = digest_of(&files);
    if actual != manifest.digest {
        return Err(BundleError::BundleDigest {
            origin: origin.to_string(),
            expected: manifest.digest.clone(),
            actual,
        });
    }
    if let Some(missing) = manifest
        .features
        .iter()
        .find(|f| !compiled_features().contains(&f.as_str()))
    {
        return Err(BundleError::Feature {
            origin: origin.to_string(),
            feature: missing.clone(),
        });
    }
    Ok(Bundle { manifest, files })
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

    fn sample() -> Vec<PolicyFile> {
        vec![
            file(
                "matano/alert.rego",
                "package alert.matano\nalert contains {\"title\": \"t\"} if true\n",
            ),
            file("action.rego", "package action\n"),
            file("action_test.rego", "package action_test\n"),
            // Sorts before `matano/alert.rego` as text, after it as a path.
            file("matano.rego", "package helpers\n"),
        ]
    }

    /// Rewrites a bundle's archive with `edit` applied to its entries.
    fn rebuilt(bytes: &[u8], edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) -> Vec<u8> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        let mut out = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            if let Some(data) = edit(&path, data) {
                let mut header = tar::Header::new_ustar();
                header.set_size(data.len() as u64);
                header.set_mode(0o644);
                out.append_data(&mut header, &path, &data[..]).unwrap();
            }
        }
        out.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn the_same_files_make_the_same_bytes_and_the_digest_of_a_directory() {
        let (one, manifest) = build(&sample());
        let mut reordered = sample();
        reordered.reverse();
        let (two, _) = build(&reordered);
        assert_eq!(one, two, "deterministic");
        assert!(manifest.digest.starts_with("sha256:"));
        assert_eq!(manifest.files.len(), 3, "tests are not shipped");
        let bundle = open(&one, "b.tar.gz").unwrap();
        assert_eq!(bundle.manifest, manifest);
        assert_eq!(bundle.files.len(), 3);
        // The digest is the one a run of the directory names.
        let dir = tempfile::tempdir().unwrap();
        for f in sample() {
            let path = dir.path().join(&f.name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, &f.text).unwrap();
        }
        let source = PolicySource::Dir(dir.path().to_path_buf());
        let read = crate::policy::read_source(&source).unwrap();
        assert_eq!(source_digest(&source, &read), manifest.digest);
    }

    #[test]
    fn a_bad_bundle_says_what_is_wrong_and_where() {
        let (bytes, _) = build(&sample());
        let truncated = open(&bytes[..bytes.len() / 2], "s3://b/k.tar.gz").unwrap_err();
        assert!(matches!(truncated, BundleError::Archive { .. }), "{truncated}");
        assert!(truncated.to_string().starts_with("s3://b/k.tar.gz: "), "{truncated}");

        let tampered = rebuilt(&bytes, |path, data| {
            Some(match path {
                "action.rego" => b"package action\nrun contains {\"id\": \"x\"} if true\n".to_vec(),
                _ => data,
            })
        });
        let err = open(&tampered, "t.tar.gz").unwrap_err();
        assert!(
            matches!(&err, BundleError::FileDigest { path, .. } if path == "action.rego"),
            "{err}"
        );

        let relabelled = rebuilt(&bytes, |path, data| {
            Some(match path {
                MANIFEST => {
                    let mut manifest: Manifest = serde_json::from_slice(&data).unwrap();
                    manifest.digest = format!("sha256:{}", "0".repeat(64));
                    serde_json::to_vec(&manifest).unwrap()
                }
                _ => data,
            })
        });
        assert!(matches!(
            open(&relabelled, "r").unwrap_err(),
            BundleError::BundleDigest { .. }
        ));

        let no_manifest = rebuilt(&bytes, |path, data| (path != MANIFEST).then_some(data));
        let err = open(&no_manifest, "n").unwrap_err();
        assert!(err.to_string().contains("no manifest.json"), "{err}");

        let garbled = rebuilt(&bytes, |path, data| {
            Some(if path == MANIFEST { b"{".to_vec() } else { data })
        });
        assert!(matches!(open(&garbled, "g").unwrap_err(), BundleError::Manifest { .. }));

        let unlisted = rebuilt(&bytes, |path, data| (path != "action.rego").then_some(data));
        let err = open(&unlisted, "u").unwrap_err();
        assert!(err.to_string().contains("the archive holds"), "{err}");
    }

    #[test]
    fn a_bundle_needing_json_schema_says_so_on_a_build_without_it() {
        let files = vec![file(
            "a.rego",
            "package alert.x\nalert contains {\"title\": \"t\"} if json.match_schema({}, {})[0]\n",
        )];
        let (bytes, manifest) = build(&files);
        assert_eq!(manifest.features, ["jsonschema"]);
        let opened = open(&bytes, "j");
        if cfg!(feature = "policy-jsonschema") {
            assert!(opened.is_ok());
        } else {
            assert!(matches!(opened.unwrap_err(), BundleError::Feature { feature, .. } if feature == "jsonschema"));
        }
    }
}
