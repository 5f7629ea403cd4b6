//! `cargo xtask demo`: the plugin's main job, seen end to end with one command after `git
//! clone`.
//!
//! It starts the sandbox (`cargo xtask sandbox up`: a real kube-apiserver with the real Flux
//! controllers, an Azure-DevOps-shaped git server), builds the plugin, bootstraps the sandbox's
//! first cluster in PAT mode, shows Flux's objects Ready and the commit the plugin pushed, and
//! prints what to try next. The sandbox stays up for that; `cargo xtask sandbox down` stops it.
//!
//! Every step is a child process (`sandbox up`, the plugin, kubectl, git), so the demo runs
//! exactly what a user would type, and the PAT reaches them through the environment only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// Where the Flux release bundle is read from (`cargo xtask flux`, the sandbox).
const MANIFESTS_ENV: &str = "FLUXBOOTSTRAP_FLUX_MANIFESTS";
/// The repository path the demo bootstraps.
const DEMO_PATH: &str = "clusters/demo";

pub(crate) fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("unknown argument `{arg}`\n\nusage: cargo xtask demo");
    }
    let root = crate::dist::workspace_root();
    let manifests = flux_manifests(&root)?;
    let xtask = std::env::current_exe().context("failed to find the xtask binary")?;
    let status = Command::new(&xtask)
        .args(["sandbox", "up"])
        .env(MANIFESTS_ENV, &manifests)
        .status()
        .context("failed to run `cargo xtask sandbox up`")?;
    ensure!(
        status.success(),
        "`cargo xtask sandbox up` failed ({status})"
    );

    step("building the plugin");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--quiet", "--package", "kubectl-fluxbootstrap"])
        .status()
        .context("failed to run `cargo build`")?;
    ensure!(status.success(), "building the plugin failed ({status})");

    let env_file = crate::sandbox::sandbox_dir().join("env");
    let vars = read_env(&env_file)?;
    let var = |key: &str| {
        vars.get(key)
            .cloned()
            .with_context(|| format!("`{}` has no {key}", env_file.display()))
    };
    // The sandbox's env file puts the plugin and kubectl on PATH, as `. target/sandbox/env`
    // does for the user.
    let path = var("PATH")?;
    let with_sandbox = |cmd: &mut Command| {
        for (key, value) in &vars {
            cmd.env(key, value);
        }
        cmd.env("PATH", &path);
    };

    step(&format!(
        "kubectl fluxbootstrap azdo --url {} --path {DEMO_PATH} (PAT mode, PAT from GIT_PASSWORD)",
        var("FLUXBOOTSTRAP_SANDBOX_HTTPS_URL")?
    ));
    let mut bootstrap = Command::new("kubectl");
    with_sandbox(&mut bootstrap);
    bootstrap
        .args(["fluxbootstrap", "azdo", "--url"])
        .arg(var("FLUXBOOTSTRAP_SANDBOX_HTTPS_URL")?)
        .arg("--ca-file")
        .arg(var("FLUXBOOTSTRAP_SANDBOX_CA_FILE")?)
        .args(["--path", DEMO_PATH]);
    let status = bootstrap
        .status()
        .context("failed to run `kubectl fluxbootstrap`")?;
    ensure!(
        status.success(),
        "`kubectl fluxbootstrap azdo` failed ({status})"
    );

    step("Flux's objects in the cluster");
    let mut get = Command::new("kubectl");
    get.env("PATH", &path).env("KUBECONFIG", var("KUBECONFIG")?);
    let status = get
        .args(["get", "gitrepositories,kustomizations", "--all-namespaces"])
        .status()
        .context("failed to run kubectl")?;
    ensure!(status.success(), "`kubectl get` failed ({status})");

    step("the commit the plugin pushed");
    let clone = tempfile::tempdir().context("failed to create a temporary directory")?;
    git(
        &vars,
        clone.path(),
        &["clone", "--quiet", "--depth", "1"],
        Some(&var("FLUXBOOTSTRAP_SANDBOX_HTTPS_URL")?),
    )?;
    let checkout = clone.path().join("repo");
    git(
        &vars,
        &checkout,
        &[
            "log",
            "-1",
            "--stat",
            "--format=commit %H%nAuthor: %an <%ae>%n%n    %s%n",
        ],
        None,
    )?;

    let env_shown = display_relative(&env_file, &root);
    // The SSH step's key is already one of the git server's keys (the sandbox added it), so
    // `--silent` skips the "add this public key" confirmation.
    output(&format!(
        "\nFlux is running on the sandbox and syncs {DEMO_PATH} of its repository. Try more:\n\n  \
         . {env_shown}\n  \
         kubectl fluxbootstrap azdo --url \"$FLUXBOOTSTRAP_SANDBOX_SSH_URL\" --private-key-file \"$FLUXBOOTSTRAP_SANDBOX_SSH_KEY\" --known-hosts-file \"$FLUXBOOTSTRAP_SANDBOX_SSH_KNOWN_HOSTS\" --context \"$FLUXBOOTSTRAP_SANDBOX_SECOND_CONTEXT\" --path clusters/ssh --silent\n  \
         cargo xtask sandbox down\n"
    ));
    Ok(())
}

/// The real Flux v2.9.4 bundle the sandbox's controllers run: `$FLUXBOOTSTRAP_FLUX_MANIFESTS`,
/// else the project's steering checkout next to the workspace (`../shared/flux-manifests`).
fn flux_manifests(root: &Path) -> Result<PathBuf> {
    let candidates = std::env::var_os(MANIFESTS_ENV)
        .map(PathBuf::from)
        .into_iter()
        .chain([root.join("../shared/flux-manifests")]);
    for dir in candidates {
        if dir.join("v2.9.4/source-controller.yaml").is_file() {
            return dir
                .canonicalize()
                .with_context(|| format!("failed to resolve `{}`", dir.display()));
        }
    }
    bail!(
        "the demo runs the real Flux controllers, which need the Flux v2.9.4 release bundle: set \
         {MANIFESTS_ENV} to a directory holding `v2.9.4/` (the release's manifests and \
         manifests.tar.gz)"
    )
}

/// `export KEY='value'` lines of the sandbox's env file; `PATH` is expanded against ours.
fn read_env(path: &Path) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    let mut vars = HashMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('='))
        else {
            continue;
        };
        let value = match value.strip_suffix(":\"$PATH\"") {
            Some(prefix) => format!(
                "{}:{}",
                unquote(prefix),
                std::env::var("PATH").unwrap_or_default()
            ),
            None => unquote(value),
        };
        vars.insert(key.to_owned(), value);
    }
    Ok(vars)
}

/// A single-quoted shell word (`'it'\''s'`) as its value.
fn unquote(word: &str) -> String {
    word.trim_matches('\'').replace("'\\''", "'")
}

/// git against the sandbox's HTTPS server: its CA, and the PAT as a Basic header through
/// git's environment configuration (never an argument).
fn git(vars: &HashMap<String, String>, dir: &Path, args: &[&str], url: Option<&str>) -> Result<()> {
    use base64::Engine as _;
    let pat = vars
        .get("GIT_PASSWORD")
        .context("the sandbox env has no GIT_PASSWORD")?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("pat:{pat}"));
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.extraHeader")
        .env(
            "GIT_CONFIG_VALUE_0",
            format!("Authorization: Basic {basic}"),
        )
        .env("GIT_TERMINAL_PROMPT", "0");
    if let Some(ca) = vars.get("FLUXBOOTSTRAP_SANDBOX_CA_FILE") {
        cmd.env("GIT_SSL_CAINFO", ca);
    }
    if let Some(url) = url {
        cmd.arg(url).arg("repo");
    }
    let status = cmd.status().context("failed to run git")?;
    ensure!(
        status.success(),
        "`git {}` failed ({status})",
        args.join(" ")
    );
    Ok(())
}

fn display_relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn step(message: &str) {
    #[expect(clippy::print_stderr, reason = "xtask reports progress on stderr")]
    {
        eprintln!("\ndemo: {message}");
    }
}

fn output(text: &str) {
    #[expect(clippy::print_stdout, reason = "the next steps are the demo's output")]
    {
        print!("{text}");
    }
}
