//! Command-line behaviour that needs no cluster: help, version, usage errors.

use crate::assert_transcript;
use crate::context::run;

fn plugin() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-fluxbootstrap"));
    cmd.env("NO_COLOR", "1");
    cmd
}

#[test]
fn version_client() {
    assert_transcript!(run(plugin().args(["version", "--client"])), @r"
    success: true
    exit_code: 0
    ----- stdout -----
    kubectl-fluxbootstrap: v0.1.0
    flux (default): v2.9.4

    ----- stderr -----
    ");
}

#[test]
fn usage_error_exits_2() {
    let out = run(plugin().args(["azdo", "--no-such-flag"]));
    assert_eq!(out.0, 2, "{}", out.2);
}
