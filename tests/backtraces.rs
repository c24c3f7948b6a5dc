//! `RUST_BACKTRACE` is for panics: errors capture no stack trace unless
//! `RUST_LIB_BACKTRACE` asks. Its own test binary, because the standard
//! library reads the variables once, at the first capture.

#[test]
fn errors_capture_no_backtrace_under_rust_backtrace_unless_asked() {
    std::env::set_var("RUST_BACKTRACE", "1");
    std::env::remove_var("RUST_LIB_BACKTRACE");
    alert_responder::process::keep_backtraces_for_panics();
    assert_eq!(std::env::var("RUST_LIB_BACKTRACE").as_deref(), Ok("0"));
    let err = anyhow::anyhow!("an error a parser drops");
    assert_eq!(err.backtrace().status(), std::backtrace::BacktraceStatus::Disabled);

    // An explicit choice is kept.
    std::env::set_var("RUST_LIB_BACKTRACE", "1");
    alert_responder::process::keep_backtraces_for_panics();
    assert_eq!(std::env::var("RUST_LIB_BACKTRACE").as_deref(), Ok("1"));
}
