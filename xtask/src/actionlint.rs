//! `cargo xtask actionlint`: checks the GitHub Actions workflows with `actionlint`.
//!
//! The release workflow (`.github/workflows/release.yml`) only runs on a tag, on GitHub, so a
//! mistake in it shows up when a release is due. `.ci/run` lints it on every change instead.
//! actionlint is built from the Go module proxy (GitHub downloads are not available) from the
//! wrapper module `xtask/go/actionlint`, which pins it with a `tool` directive, into the
//! cache directory the other Go tools use (`~/.cache/kubectl-fluxbootstrap/actionlint/`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

const MODULE: &str = "github.com/rhysd/actionlint";
const PACKAGE: &str = "github.com/rhysd/actionlint/cmd/actionlint";

pub(crate) fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("unknown argument `{arg}`\n\nusage: cargo xtask actionlint");
    }
    let binary = build()?;
    let root = crate::dist::workspace_root();
    let workflows: Vec<PathBuf> = std::fs::read_dir(root.join(".github/workflows"))
        .context("failed to read `.github/workflows`")?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    ensure!(!workflows.is_empty(), "no workflow in `.github/workflows`");
    let status = Command::new(&binary)
        .current_dir(&root)
        .args(&workflows)
        .status()
        .with_context(|| format!("failed to run `{}`", binary.display()))?;
    ensure!(
        status.success(),
        "actionlint found problems in the workflows"
    );
    progress(&format!("{} workflow(s) pass", workflows.len()));
    Ok(())
}

fn module_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("go/actionlint")
}

/// The cached binary, built first when missing.
fn build() -> Result<PathBuf> {
    let version = crate::go_cache::required_version(&module_dir().join("go.mod"), MODULE)?;
    let dir = crate::go_cache::bin_dir("actionlint", &version, &[module_dir().join("go.sum")])?;
    let binary = dir.join("actionlint");
    if binary.is_file() {
        return Ok(binary);
    }
    progress(&format!(
        "building actionlint {version} from the Go module proxy"
    ));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let partial = dir.join(format!(".actionlint-{}", std::process::id()));
    let go = crate::go_cache::GoScratch::new()?;
    let status = go
        .go(&[])
        .current_dir(module_dir())
        .args(["build", "-trimpath", "-ldflags", "-s -w", "-o"])
        .arg(&partial)
        .arg(PACKAGE)
        .status()
        .context("failed to run `go`; install Go 1.26 or newer")?;
    ensure!(
        status.success(),
        "`go build` of actionlint failed ({status})"
    );
    std::fs::rename(&partial, &binary)
        .with_context(|| format!("failed to install `{}`", binary.display()))?;
    Ok(binary)
}

#[expect(clippy::print_stderr, reason = "xtask reports its progress on stderr")]
fn progress(message: &str) {
    eprintln!("xtask actionlint: {message}");
}
