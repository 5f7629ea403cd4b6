//! Fetching a `GitRepository`'s revision with the real `git` CLI and Flux's Secret keys.
//!
//! This is what makes a wrong Secret fail the plugin's readiness wait like it does with
//! real Flux. Secret values reach `git` only through environment variables, an askpass
//! script that reads them, and 0600 files in a private temporary directory removed right
//! after the fetch; never through arguments.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// How long one `git` command may take before the fetch counts as failed.
const GIT_TIMEOUT: Duration = Duration::from_mins(1);

/// Credentials for one fetch, from a Flux source Secret and/or a provider token.
#[derive(Default)]
pub(crate) struct Credentials {
    /// Secret data by key (`username`, `password`, `bearerToken`, `identity`,
    /// `known_hosts`, `ca.crt`).
    pub(crate) data: BTreeMap<String, Vec<u8>>,
    /// A bearer token from `spec.provider` (workload identity), overriding `bearerToken`.
    pub(crate) provider_token: Option<String>,
}

/// What to fetch: the Flux `spec.ref` reduced to a refspec or commit.
pub(crate) enum GitRef {
    /// A ref to fetch (`refs/heads/main`, `refs/tags/v1`, …), reported as `<name>@sha1:…`.
    Named { refname: String, display: String },
    /// A commit, reported as `sha1:<sha>` (or `<branch>@sha1:<sha>` with a branch).
    Commit { sha: String, branch: Option<String> },
}

impl GitRef {
    /// Reads Flux's `spec.ref` (`branch`, `tag`, `name`, `commit`; default branch `master`).
    pub(crate) fn from_spec(spec_ref: Option<&serde_json::Value>) -> GitRef {
        let field = |key: &str| {
            spec_ref
                .and_then(|r| r.get(key))
                .and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        if let Some(sha) = field("commit") {
            return GitRef::Commit {
                sha,
                branch: field("branch"),
            };
        }
        if let Some(name) = field("name") {
            return GitRef::Named {
                refname: name.clone(),
                display: name,
            };
        }
        if let Some(tag) = field("tag").or_else(|| field("semver")) {
            return GitRef::Named {
                refname: format!("refs/tags/{tag}"),
                display: tag,
            };
        }
        let branch = field("branch").unwrap_or_else(|| "master".to_owned());
        GitRef::Named {
            refname: format!("refs/heads/{branch}"),
            display: branch,
        }
    }
}

/// Fetches `git_ref` of `url` into the bare repository `repo` (created if missing) and
/// returns the Flux revision string (`main@sha1:<sha>`), or git's error message.
pub(crate) async fn fetch(
    repo: &Path,
    url: &str,
    git_ref: &GitRef,
    credentials: &Credentials,
) -> Result<String, String> {
    if !repo.join("HEAD").exists() {
        fs_err::create_dir_all(repo).map_err(|e| e.to_string())?;
        run(
            repo,
            &["init", "--bare", "--quiet", "."],
            &Credentials::default(),
            None,
        )
        .await?;
    }
    let secrets = tempfile::Builder::new()
        .prefix("fake-git-auth-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let (refspec, verify) = match git_ref {
        GitRef::Named { refname, .. } => (
            format!("+{refname}:refs/fake/source"),
            "refs/fake/source^{commit}".to_owned(),
        ),
        GitRef::Commit { sha, .. } => (
            "+refs/heads/*:refs/fake/heads/*".to_owned(),
            format!("{sha}^{{commit}}"),
        ),
    };
    run(
        repo,
        &["fetch", "--no-tags", "--quiet", url, &refspec],
        credentials,
        Some(secrets.path()),
    )
    .await
    .map_err(|e| format!("failed to checkout and determine revision: {e}"))?;
    let sha = run(
        repo,
        &["rev-parse", "--verify", "--quiet", &verify],
        &Credentials::default(),
        None,
    )
    .await
    .map_err(|_| {
        format!("failed to checkout and determine revision: `{verify}` not found in `{url}`")
    })?;
    let sha = sha.trim();
    let algo = if sha.len() == 64 { "sha256" } else { "sha1" };
    Ok(match git_ref {
        GitRef::Named { display, .. } => format!("{display}@{algo}:{sha}"),
        GitRef::Commit {
            branch: Some(branch),
            ..
        } => format!("{branch}@{algo}:{sha}"),
        GitRef::Commit { branch: None, .. } => format!("{algo}:{sha}"),
    })
}

/// Whether `path` (a Flux `spec.path` such as `./clusters/dev`) exists at `sha` in `repo`.
pub(crate) async fn path_exists(repo: &Path, sha: &str, path: &str) -> Result<bool, String> {
    if run(
        repo,
        &["cat-file", "-e", &format!("{sha}^{{commit}}")],
        &Credentials::default(),
        None,
    )
    .await
    .is_err()
    {
        return Err(format!("commit `{sha}` has not been fetched"));
    }
    let path = path.trim_start_matches("./").trim_matches('/');
    if path.is_empty() || path == "." {
        return Ok(true);
    }
    Ok(run(
        repo,
        &["cat-file", "-e", &format!("{sha}:{path}")],
        &Credentials::default(),
        None,
    )
    .await
    .is_ok())
}

/// Runs `git args…` in `repo` with a scrubbed environment; `secrets` is a private directory
/// for credential files. Returns stdout, or stderr as the error.
async fn run(
    repo: &Path,
    args: &[&str],
    credentials: &Credentials,
    secrets: Option<&Path>,
) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.current_dir(repo)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GIT_")
            || key == "SSH_ASKPASS"
            || key == "SSH_AUTH_SOCK"
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("GIT_DIR", repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSH_COMMAND", "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/dev/null");
    let mut config: Vec<(&str, String)> = vec![("credential.helper", String::new())];
    if let Some(dir) = secrets {
        configure_credentials(&mut cmd, &mut config, credentials, dir)?;
    }
    cmd.env("GIT_CONFIG_COUNT", config.len().to_string());
    for (i, (key, value)) in config.iter().enumerate() {
        cmd.env(format!("GIT_CONFIG_KEY_{i}"), key)
            .env(format!("GIT_CONFIG_VALUE_{i}"), value);
    }
    let output = tokio::time::timeout(GIT_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("`git {}` timed out after {GIT_TIMEOUT:?}", args[0]))?
        .map_err(|e| format!("cannot run `git`: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = stderr.trim();
        Err(if message.is_empty() {
            format!("`git {}` failed ({})", args[0], output.status)
        } else {
            message.to_owned()
        })
    }
}

fn configure_credentials(
    cmd: &mut tokio::process::Command,
    config: &mut Vec<(&str, String)>,
    credentials: &Credentials,
    dir: &Path,
) -> Result<(), String> {
    let value = |key: &str| credentials.data.get(key).filter(|v| !v.is_empty());
    let text = |key: &str| value(key).map(|v| String::from_utf8_lossy(v).into_owned());
    let write_private = |name: &str, contents: &[u8]| -> Result<String, String> {
        let path = dir.join(name);
        fs_err::write(&path, contents).map_err(|e| e.to_string())?;
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        Ok(path.display().to_string())
    };
    // The askpass program answers git's (and ssh's) prompts from environment variables.
    let askpass = dir.join("askpass.sh");
    fs_err::write(
        &askpass,
        "#!/bin/sh\ncase \"$1\" in\n  Username*) printf '%s\\n' \"$FAKE_GIT_USERNAME\" ;;\n  *) printf '%s\\n' \"$FAKE_GIT_PASSWORD\" ;;\nesac\n",
    )
    .map_err(|e| e.to_string())?;
    fs_err::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| e.to_string())?;

    if let Some(ca) = value("ca.crt") {
        cmd.env("GIT_SSL_CAINFO", write_private("ca.crt", ca)?);
    }
    let bearer = credentials
        .provider_token
        .clone()
        .or_else(|| text("bearerToken"));
    if let Some(token) = bearer {
        config.push((
            "http.extraHeader",
            format!("Authorization: Bearer {}", token.trim()),
        ));
    } else if let Some(identity) = value("identity") {
        let identity = write_private("identity", identity)?;
        let known_hosts = write_private(
            "known_hosts",
            value("known_hosts").map_or(&[][..], Vec::as_slice),
        )?;
        let mut ssh = format!(
            "ssh -F /dev/null -i '{identity}' -o IdentitiesOnly=yes -o IdentityAgent=none \
             -o StrictHostKeyChecking=yes -o UserKnownHostsFile='{known_hosts}' -o GlobalKnownHostsFile=/dev/null"
        );
        if let Some(passphrase) = text("password") {
            // ssh asks for the key's passphrase through SSH_ASKPASS.
            cmd.env("SSH_ASKPASS", &askpass)
                .env("SSH_ASKPASS_REQUIRE", "force")
                .env("FAKE_GIT_PASSWORD", passphrase);
        } else {
            ssh.push_str(" -o BatchMode=yes");
        }
        cmd.env("GIT_SSH_COMMAND", ssh);
    } else if let Some(password) = text("password") {
        cmd.env("GIT_ASKPASS", &askpass)
            .env(
                "FAKE_GIT_USERNAME",
                text("username").unwrap_or_else(|| "git".to_owned()),
            )
            .env("FAKE_GIT_PASSWORD", password);
    }
    Ok(())
}
