//! `cargo xtask kube build`: builds kube-apiserver, kube-controller-manager, kube-scheduler,
//! kubectl and etcd from the Go module proxy.
//!
//! The tests need a real API server, and nothing on the test machines ships one, so the
//! binaries are compiled from the wrapper modules in `xtask/go/{kube,etcd}` into a cache
//! directory outside the repository, keyed by the Kubernetes version and a hash of both
//! `go.sum` files. The test harness (`fluxbootstrap-test`) computes the same directory.
//! Only missing binaries are built; each is built into a temporary directory and renamed
//! into place, so the cache never holds a half-written binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::go_cache::GoScratch;

const USAGE: &str = "usage: cargo xtask kube build [--print-dir]
       cargo xtask kube dir

  build        build the missing kube-apiserver, kube-controller-manager, kube-scheduler,
               kubectl and etcd binaries into the cache
               (progress goes to stderr); with --print-dir, print the directory on stdout
  dir          print the cache directory without building

The directory is ~/.cache/kubectl-fluxbootstrap/kube/<k8s version>-<go.sum hash>/
(XDG_CACHE_HOME is respected; FLUXBOOTSTRAP_KUBE_BIN_DIR overrides it).";

/// The binaries the kube wrapper module builds, as (file name, Go package).
const KUBE_BINARIES: &[(&str, &str)] = &[
    ("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver"),
    ("kubectl", "k8s.io/kubernetes/cmd/kubectl"),
    (
        "kube-controller-manager",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
    ),
    ("kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler"),
];

pub(crate) fn run(args: &[String]) -> Result<()> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["build"] => build(false),
        ["build", "--print-dir"] | ["--print-dir", "build"] => build(true),
        ["dir" | "--print-dir"] => {
            crate::go_cache::print_dir(&bin_dir()?);
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

fn go_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("go")
}

/// The Kubernetes version the kube wrapper module requires, e.g. `v1.36.3`.
fn k8s_version() -> Result<String> {
    crate::go_cache::required_version(&go_dir().join("kube/go.mod"), "k8s.io/kubernetes")
}

/// The cache directory for the binaries; the harness derives the same path.
fn bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FLUXBOOTSTRAP_KUBE_BIN_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let go_sums = ["kube", "etcd"].map(|module| go_dir().join(module).join("go.sum"));
    crate::go_cache::bin_dir("kube", &k8s_version()?, &go_sums)
}

#[expect(clippy::print_stderr, reason = "xtask reports its progress on stderr")]
fn progress(message: &str) {
    eprintln!("xtask kube: {message}");
}

fn build(print: bool) -> Result<()> {
    let dir = bin_dir()?;
    let version = k8s_version()?;
    let missing_kube: Vec<_> = KUBE_BINARIES
        .iter()
        .filter(|(name, _)| !dir.join(name).is_file())
        .collect();
    let missing_etcd = !dir.join("etcd").is_file();
    if missing_kube.is_empty() && !missing_etcd {
        progress(&format!(
            "binaries for Kubernetes {version} are up to date in `{}`",
            dir.display()
        ));
    } else {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
        let tmp = dir.join(format!(".tmp-{}", std::process::id()));
        std::fs::create_dir_all(&tmp)
            .with_context(|| format!("failed to create `{}`", tmp.display()))?;
        let go = crate::go_cache::GoScratch::new()?;
        let result = build_missing(&go, &dir, &tmp, &version, &missing_kube, missing_etcd);
        let _ = std::fs::remove_dir_all(&tmp);
        result?;
    }
    if print {
        crate::go_cache::print_dir(&dir);
    }
    Ok(())
}

fn build_missing(
    go: &GoScratch,
    dir: &Path,
    tmp: &Path,
    version: &str,
    missing_kube: &[&(&str, &str)],
    missing_etcd: bool,
) -> Result<()> {
    if !missing_kube.is_empty() {
        let (major, minor) = version
            .trim_start_matches('v')
            .split_once('.')
            .map(|(major, rest)| (major, rest.split('.').next().unwrap_or(rest)))
            .with_context(|| format!("unexpected Kubernetes version `{version}`"))?;
        let ldflags = format!(
            "-s -w -X k8s.io/component-base/version.gitVersion={version} \
             -X k8s.io/component-base/version.gitMajor={major} \
             -X k8s.io/component-base/version.gitMinor={minor} \
             -X k8s.io/component-base/version.gitTreeState=clean \
             -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
        );
        let names: Vec<&str> = missing_kube.iter().map(|(name, _)| *name).collect();
        let mut cmd = go_build(go, &go_dir().join("kube"), tmp, &ldflags);
        cmd.args(missing_kube.iter().map(|(_, package)| *package));
        run_build(&format!("{} (Kubernetes {version})", names.join(", ")), cmd)?;
        for name in names {
            install(tmp, dir, name)?;
        }
    }
    if missing_etcd {
        let mut cmd = go_build(go, &go_dir().join("etcd"), tmp, "-s -w");
        cmd.arg(".");
        run_build("etcd", cmd)?;
        install(tmp, dir, "etcd")?;
    }
    Ok(())
}

fn go_build(go: &GoScratch, module: &Path, out: &Path, ldflags: &str) -> Command {
    let mut cmd = go.go(&[]);
    cmd.current_dir(module)
        .args(["build", "-trimpath", "-ldflags", ldflags, "-o"])
        // A trailing slash makes `go build` write one binary per package into the directory.
        .arg(format!("{}/", out.display()));
    cmd
}

fn run_build(what: &str, mut cmd: Command) -> Result<()> {
    progress(&format!(
        "building {what} in `{}` (a cold build takes several minutes)",
        cmd.get_current_dir().unwrap_or(Path::new(".")).display()
    ));
    let started = Instant::now();
    let status = cmd
        .status()
        .context("failed to run `go`; install Go 1.26 or newer")?;
    if !status.success() {
        bail!("`go build` of {what} failed ({status})");
    }
    progress(&format!("built {what} in {:.0?}", started.elapsed()));
    Ok(())
}

fn install(tmp: &Path, dir: &Path, name: &str) -> Result<()> {
    let (from, to) = (tmp.join(name), dir.join(name));
    std::fs::rename(&from, &to)
        .with_context(|| format!("failed to move `{}` to `{}`", from.display(), to.display()))?;
    progress(&format!("installed `{}`", to.display()));
    Ok(())
}
