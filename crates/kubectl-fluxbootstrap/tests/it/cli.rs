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

#[test]
fn completion_prints_a_script_on_stdout() {
    let (code, stdout, stderr) = run(plugin().args(["completion", "bash"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("complete -F"), "{stdout}");
    assert!(
        stdout.contains("--ssh-hostname"),
        "flags of `azdo` are completed"
    );
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn quiet_hides_steps_but_not_errors() {
    let (code, stdout, stderr) = run(plugin()
        .args(["azdo", "-q", "--url", "https://github.com/fluxcd/flux2"])
        .env("GIT_PASSWORD", "x"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains('►'), "{stderr}");
}
