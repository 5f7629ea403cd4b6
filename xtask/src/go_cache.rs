//! Where `cargo xtask` keeps binaries it builds from the Go module proxy.
//!
//! Both the kube test binaries and krew live outside the repository, in a directory keyed by
//! the tool's version and a hash of the wrapper modules' `go.sum`, so a dependency change
//! builds into a fresh directory and an unchanged one is never rebuilt.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").context("`HOME` is not set")?).join(".cache")
        }
    };
    Ok(cache.join(format!("kubectl-fluxbootstrap/{tool}/{version}-{hash}")))
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
