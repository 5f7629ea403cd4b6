//! The leak scan every end-to-end run goes through: the plugin's stdout and stderr, the
//! temporary directory it was given (empty after it exits: no clone, key or `GnuPG` home left
//! behind), and the history of every repository a bootstrap synced, searched for every secret
//! the tests handed out: the PATs and the bearer token with their base64 and Basic forms, the
//! key passphrases, and the private keys.

use std::path::Path;
use std::sync::Mutex;

use base64::Engine as _;

/// Secrets the tests made besides the git server's (key passphrases, private keys).
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Adds a secret (a passphrase) to the scan.
pub(crate) fn remember(secret: &str) {
    SECRETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(secret.to_owned());
}

/// Adds a private key (its file's text) to the scan: found by any of its base64 lines, except
/// those that only encode the public key (`public`, which OpenSSH keeps in the private file
/// too, and which the plugin prints on purpose).
pub(crate) fn remember_private_key(text: &str, public: &str) {
    let mut secrets = SECRETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    secrets.extend(
        text.lines()
            .filter(|l| l.len() >= 40 && !l.starts_with("-----") && !public.contains(*l))
            .map(str::to_owned),
    );
}

/// Every secret to look for, with the encodings it could leak in.
fn needles(env: &crate::context::Env) -> Vec<String> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut out = Vec::new();
    for token in [
        env.git.pat(),
        env.git.readonly_pat(),
        env.git.bearer_token(),
    ] {
        out.extend([
            token.to_owned(),
            b64(token),
            b64(&format!(":{token}")),
            b64(&format!("git:{token}")),
        ]);
    }
    out.extend(
        SECRETS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned(),
    );
    out
}

/// Which secrets `text` contains (by kind, never the value).
fn found_in(env: &crate::context::Env, text: &str) -> Vec<String> {
    needles(env)
        .iter()
        .enumerate()
        .filter(|(_, needle)| text.contains(needle.as_str()))
        .map(|(i, needle)| format!("secret #{i} ({} characters)", needle.len()))
        .collect()
}

/// Asserts the plugin's output holds no secret.
pub(crate) fn assert_output_clean(env: &crate::context::Env, stdout: &str, stderr: &str) {
    let found = found_in(env, &format!("{stdout}\n{stderr}"));
    assert!(
        found.is_empty(),
        "the plugin printed {}:\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        found.join(", ")
    );
}

/// Asserts the plugin left nothing in the temporary directory it was given.
pub(crate) fn assert_temp_dir_empty(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "the plugin left {left:?} in its temporary directory {}",
        dir.display()
    );
}

/// Asserts no commit, tree or config of `repo` holds a secret.
pub(crate) fn assert_repository_clean(env: &crate::context::Env, repo: &fluxbootstrap_test::Repo) {
    let out = repo
        .git()
        .args(["log", "--all", "-p", "--format=%H %an <%ae>%n%B"])
        .output()
        .expect("git log runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&std::fs::read_to_string(repo.bare_path.join("config")).unwrap_or_default());
    let found = found_in(env, &text);
    assert!(
        found.is_empty(),
        "the history of {} holds {}",
        repo.https_url,
        found.join(", ")
    );
}
