//! Where `cargo xtask` keeps binaries it builds from the Go module proxy.
//!
//! Both the kube test binaries and krew live outside the repository, in a directory keyed by
//! the tool's version and a hash of the wrapper modules' `go.sum`, so a dependency change
//! builds into a fresh directory and an unchanged one is never rebuilt.
//!
//! Go's own build and module caches are only scratch for those builds: once a binary is
//! cached they are never read again, and together they take several gigabytes (more than
//! the binaries and the Rust target directory). So every build runs `go` with a private
//! `GOCACHE`, `GOMODCACHE` and `GOTMPDIR` ([`GoScratch`]) that is removed when the build
//! command is done, and a fresh CI machine never holds both Go's caches and the Rust test
//! build at once.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// `~/.cache/kubectl-fluxbootstrap/<tool>/<version>-<12 hex of sha256(go.sum files)>`
/// (`XDG_CACHE_HOME` respected).
pub(crate) fn bin_dir(tool: &str, version: &str, go_sums: &[PathBuf]) -> Result<PathBuf> {
    let mut hasher = Sha256::new();
    for go_sum in go_sums {
        hasher.update(read(go_sum)?);
    }
    let hash = hasher.finalize()[..6]
        .iter()
        .fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        });
    Ok(cache_root()?.join(format!("{tool}/{version}-{hash}")))
}

/// `~/.cache/kubectl-fluxbootstrap` (`XDG_CACHE_HOME` respected).
fn cache_root() -> Result<PathBuf> {
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").context("`HOME` is not set")?).join(".cache")
        }
    };
    Ok(cache.join("kubectl-fluxbootstrap"))
}

/// Go's build cache, module cache and temporary directory for one build command, under
/// `~/.cache/kubectl-fluxbootstrap/go-scratch-<pid>/`; removed on drop.
pub(crate) struct GoScratch {
    dir: PathBuf,
}

impl GoScratch {
    pub(crate) fn new() -> Result<Self> {
        let dir = cache_root()?.join(format!("go-scratch-{}", std::process::id()));
        for sub in ["build", "mod", "tmp"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path)
                .with_context(|| format!("failed to create `{}`", path.display()))?;
        }
        Ok(Self { dir })
    }

    /// `go` with the local toolchain, no cgo and this scratch's caches; `goflags` go into
    /// `GOFLAGS` after `-modcacherw` (which lets the module cache be removed like any
    /// directory).
    pub(crate) fn go(&self, goflags: &[&str]) -> Command {
        let mut flags = String::from("-modcacherw");
        for flag in goflags {
            flags.push(' ');
            flags.push_str(flag);
        }
        let mut cmd = Command::new("go");
        cmd.env("GOTOOLCHAIN", "local")
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", flags)
            .env("GOCACHE", self.dir.join("build"))
            .env("GOMODCACHE", self.dir.join("mod"))
            .env("GOTMPDIR", self.dir.join("tmp"));
        cmd
    }
}

impl Drop for GoScratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The version of `module` a wrapper module's `go.mod` requires, e.g. `v1.36.3`.
pub(crate) fn required_version(go_mod: &Path, module: &str) -> Result<String> {
    let text = std::fs::read_to_string(go_mod)
        .with_context(|| format!("failed to read `{}`", go_mod.display()))?;
    let prefix = format!("{module} ");
    text.lines()
        .map(str::trim)
        .map(|line| line.strip_prefix("require ").unwrap_or(line))
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .with_context(|| format!("`{}` does not require `{module}`", go_mod.display()))
}

/// Prints a cache directory: the output of `cargo xtask kube dir` and `krew dir`.
#[expect(
    clippy::print_stdout,
    reason = "the directory is this command's output"
)]
pub(crate) fn print_dir(dir: &Path) {
    println!("{}", dir.display());
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))
}
