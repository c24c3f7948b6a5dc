//! An evaluation's bounds hold whatever a policy calls: the real binary, a
//! policy whose one builtin call would build 200 million numbers (4.7 GB
//! before the guard), in a 256 MB memory cgroup where the machine has one
//! (as a Lambda function of 256 MB runs), its peak RSS measured either way.
//! Its own test binary: the peak is read from the children's rusage.

use std::ffi::c_long;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

#[repr(C)]
#[derive(Default)]
struct Timeval {
    seconds: c_long,
    micros: c_long,
}

/// `struct rusage` of Linux (x86_64 and aarch64).
#[repr(C)]
#[derive(Default)]
struct Rusage {
    user: Timeval,
    system: Timeval,
    max_rss_kib: c_long,
    rest: [c_long; 13],
}

extern "C" {
    fn getrusage(who: std::ffi::c_int, usage: *mut Rusage) -> std::ffi::c_int;
}

const RUSAGE_CHILDREN: std::ffi::c_int = -1;

fn peak_rss_of_children_mib() -> f64 {
    let mut usage = Rusage::default();
    // SAFETY: getrusage fills the struct it is given, laid out as above.
    assert_eq!(unsafe { getrusage(RUSAGE_CHILDREN, &mut usage) }, 0);
    usage.max_rss_kib as f64 / 1024.0
}

/// A cgroup (v1 memory controller) limited to 256 MB, when this machine
/// lets the tests make one.
fn memory_cgroup() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(format!(
        "/sys/fs/cgroup/memory/alert-responder-bounds-{}",
        std::process::id()
    ));
    std::fs::create_dir(&dir).ok()?;
    std::fs::write(dir.join("memory.limit_in_bytes"), "268435456").ok()?;
    Some(dir)
}

#[test]
fn a_builtin_call_that_would_build_gigabytes_ends_as_a_policy_error() {
    let policies = tempfile::tempdir().unwrap();
    std::fs::create_dir(policies.path().join("alert")).unwrap();
    std::fs::write(
        policies.path().join("alert/matano.rego"),
        include_str!("../policies/alert/matano.rego"),
    )
    .unwrap();
    std::fs::write(
        policies.path().join("action.rego"),
        r#"package action

n := count([x | some x in numbers.range(1, 200000000); x % 7 == 0])

run contains {"id": "a", "uses": "webhook.post", "args": {"url": "https://h.example", "data": {"n": n}}}
"#,
    )
    .unwrap();
    let cgroup = memory_cgroup();
    let mut command = Command::new(env!("CARGO_BIN_EXE_alert-responder"));
    command.args(["run", "--dry-run", "--policies"]).arg(policies.path());
    if let Some(dir) = &cgroup {
        let procs = dir.join("cgroup.procs");
        // SAFETY: only writes this (forked) process's id into the cgroup.
        unsafe {
            command.pre_exec(move || std::fs::write(&procs, std::process::id().to_string()));
        }
    }
    let started = Instant::now();
    let output = command.output().unwrap();
    let elapsed = started.elapsed();
    let peak = peak_rss_of_children_mib();
    if let Some(dir) = &cgroup {
        let _ = std::fs::remove_dir(dir);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!(
        "bounds: {elapsed:?}, peak RSS {peak:.1} MiB, {}",
        if cgroup.is_some() {
            "in a 256 MB memory cgroup"
        } else {
            "no cgroup here: RSS measured"
        }
    );
    assert_eq!(output.status.code(), Some(2), "a policy error: {stdout}");
    assert!(stdout.contains("\"event_type\":\"policy_error\""), "{stdout}");
    assert!(stdout.contains("data.action.run"), "the error names the rule: {stdout}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert!(peak < 100.0, "peak RSS {peak:.1} MiB");
}
