//! What a service writes to stdout, read the way a log file or a pipe reads it.
//!
//! The test runs itself again as a child process whose stdout is a pipe: the child installs
//! the service's telemetry and writes a line, and the parent reads the bytes that came out.

use std::process::{Command, Stdio};

use platform::telemetry::{self, LogFormat, TelemetryConfig};

/// Set in the child: install telemetry, log, exit.
const CHILD: &str = "PLATFORM_LOG_OUTPUT_CHILD";
const LINE: &str = "a line for the log file";

#[test]
fn human_friendly_lines_written_to_a_pipe_carry_no_escape_codes() {
    if std::env::var_os(CHILD).is_some() {
        let telemetry = telemetry::init(&TelemetryConfig {
            service_name: "log-output".to_owned(),
            log_format: LogFormat::Pretty,
            otlp_endpoint: None,
        })
        .unwrap();
        tracing::warn!(field = 7, "{LINE}");
        telemetry.shutdown();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "human_friendly_lines_written_to_a_pipe_carry_no_escape_codes",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains(LINE), "the line was written: {stdout:?}");
    assert!(
        !stdout.contains('\u{1b}'),
        "no ANSI escape codes in a pipe: {stdout:?}"
    );
}
