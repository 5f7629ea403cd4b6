//! `cargo xtask demo`, as a newcomer runs it after `git clone`: it ends with Flux Ready on the
//! sandbox and the next steps printed, and the SSH-mode step it prints works as printed.

use std::process::{Command, Output};

use crate::krew::root;

fn cargo_xtask(args: &[&str], sandbox_dir: &std::path::Path) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    Command::new(cargo)
        .current_dir(root())
        .args(["run", "--quiet", "--package", "xtask", "--"])
        .args(args)
        .env("FLUXBOOTSTRAP_SANDBOX_DIR", sandbox_dir)
        .output()
        .unwrap_or_else(|e| panic!("running cargo xtask {args:?}: {e}"))
}

/// Stops the demo's sandbox however the test ends.
struct Down<'a>(&'a std::path::Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = cargo_xtask(&["sandbox", "down"], self.0);
    }
}

#[test]
fn demo_ends_with_flux_ready_and_next_steps_that_work() {
    let real_bundle = std::env::var_os("FLUXBOOTSTRAP_FLUX_MANIFESTS")
        .map(std::path::PathBuf::from)
        .is_some_and(|d| d.join("v2.9.4/source-controller.yaml").is_file());
    if !real_bundle || fluxbootstrap_test::missing_flux_binaries().is_some() {
        assert!(
            std::env::var_os("FLUXBOOTSTRAP_REQUIRE_REAL_FLUX").is_none(),
            "FLUXBOOTSTRAP_REQUIRE_REAL_FLUX is set but the real Flux bundle or controllers are \
             missing"
        );
        #[expect(clippy::print_stderr, reason = "a skipped test says so")]
        {
            eprintln!(
                "SKIPPED: `cargo xtask demo` runs the real Flux controllers: it needs the real \
                 Flux bundle (FLUXBOOTSTRAP_FLUX_MANIFESTS) and `cargo xtask flux build`"
            );
        }
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let sandbox = dir.path().join("sandbox");
    let _down = Down(&sandbox);

    let demo = cargo_xtask(&["demo"], &sandbox);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&demo.stdout),
        String::from_utf8_lossy(&demo.stderr),
    );
    assert!(
        demo.status.success(),
        "cargo xtask demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // kubectl's table of Flux's objects, each Ready.
    let ready_rows = stdout
        .lines()
        .filter(|l| l.starts_with("flux-system") && l.contains("True"))
        .count();
    assert_eq!(
        ready_rows, 2,
        "the GitRepository and the Kustomization are Ready:\n{stdout}"
    );
    // The commit in the repository, with the files the plugin wrote.
    assert!(
        stdout.contains("clusters/demo/flux-system/gotk-components.yaml"),
        "the pushed commit is shown:\n{stdout}"
    );
    // Secrets stay out of what the demo prints.
    let env = std::fs::read_to_string(sandbox.join("env")).expect("the sandbox env file");
    for line in env
        .lines()
        .filter(|l| l.contains("PASSWORD") || l.contains("_PAT=") || l.contains("TOKEN"))
    {
        let value = line
            .split_once('=')
            .map_or("", |(_, v)| v.trim_matches('\''));
        assert!(
            value.len() < 8 || (!stdout.contains(value) && !stderr.contains(value)),
            "the demo printed a secret of the sandbox"
        );
    }

    // The three next steps: source the env, bootstrap the second cluster over SSH, stop.
    let steps: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.contains("Try more:"))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(steps.len(), 3, "three next steps:\n{stdout}");
    assert!(
        steps[0].starts_with(". ") && steps[0].ends_with("/env"),
        "{steps:?}"
    );
    assert!(
        steps[1].starts_with("kubectl fluxbootstrap azdo"),
        "{steps:?}"
    );
    assert_eq!(steps[2], "cargo xtask sandbox down");
    let ssh = Command::new("sh")
        .arg("-c")
        .arg(format!(
            ". {}/env && {} --timeout 3m",
            sandbox.display(),
            steps[1]
        ))
        .env("HOME", dir.path())
        .output()
        .expect("sh runs");
    assert!(
        ssh.status.success(),
        "the printed SSH-mode step failed:\n{}",
        String::from_utf8_lossy(&ssh.stderr)
    );

    let down = cargo_xtask(&["sandbox", "down"], &sandbox);
    assert!(
        down.status.success(),
        "sandbox down: {}",
        String::from_utf8_lossy(&down.stderr)
    );
}
