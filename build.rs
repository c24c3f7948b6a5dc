//! Bundles every `policies/**/*.rego` into the binary, so the Lambda and the
//! CLI's embedded default need no policy files at run time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=policies");
    // Release binaries are linked as position-dependent executables: their
    // pointers in static data (the time-zone tables, vtables, the bundled
    // policies) are resolved at link time, not by the dynamic loader at
    // every start (57k relocations, 1.3 MiB of the binary and ~0.6 ms of
    // cold start as a PIE; BENCHMARKS.md). The trade-off: the executable's
    // own image is not randomized (its heap, stack and libraries still are).
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if release && linux {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let mut files = Vec::new();
    collect(&root.join("policies"), &mut files);
    files.sort();

    let mut code = String::from("/// `(path relative to the crate, source)` of each bundled policy.\n");
    code.push_str("pub const BUNDLED_POLICIES: &[(&str, &str)] = &[\n");
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
        // The crate's directory is named at compile time, not written here:
        // clones sharing a target directory reuse this script's output.
        writeln!(
            code,
            "    ({relative:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/\", {relative:?}))),"
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("bundled_policies.rs");
    std::fs::write(out, code).unwrap();
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rego") {
            files.push(path);
        }
    }
}
