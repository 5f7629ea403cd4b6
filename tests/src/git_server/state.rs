//! What the git server knows: credentials, projects and repositories (names case-insensitive
//! like Azure DevOps), and how names map to bare repositories on disk.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use super::process;

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Code (read, write & manage): clone, push, create repositories.
    Full,
    /// Code (read): clone and read REST resources only.
    ReadOnly,
}

/// A project as the REST API reports it.
#[derive(Debug, Clone)]
pub(crate) struct ProjectMeta {
    pub(crate) org: String,
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) created: String,
}

/// A repository as the REST API reports it, and where it lives.
#[derive(Debug, Clone)]
pub(crate) struct RepoMeta {
    pub(crate) org: String,
    pub(crate) project: String,
    pub(crate) project_id: String,
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) bare_path: PathBuf,
}

/// Why a repository could not be created.
#[derive(Debug)]
pub(crate) enum CreateError {
    Exists,
    NoProject,
}

#[derive(Default)]
struct Catalog {
    projects: Vec<ProjectMeta>,
    repos: Vec<RepoMeta>,
}

/// Shared state of one server, used by the HTTPS handlers and the public API.
pub(crate) struct State {
    pub(crate) repos_root: PathBuf,
    pub(crate) ca_file: PathBuf,
    /// Global git config for every git process the server runs (`safe.directory=*`).
    pub(crate) git_config: PathBuf,
    pub(crate) backend_log: PathBuf,
    pub(crate) https_port: u16,
    ssh_port: AtomicU16,
    pub(crate) full_pat: String,
    pub(crate) readonly_pat: String,
    pub(crate) bearer_token: String,
    pub(crate) tenant_id: String,
    pub(crate) instance_id: String,
    pub(crate) user_id: String,
    pats: Mutex<HashMap<String, Access>>,
    catalog: Mutex<Catalog>,
    /// The Entra stand-in's trusted issuers and federated credentials.
    pub(crate) federation: Mutex<super::entra::Federation>,
    /// `host:port` of the release server the GitHub stand-in forwards to.
    github_releases: Mutex<Option<String>>,
    /// Injected faults and the log of the requests they watch.
    pub(crate) faults: super::faults::Faults,
    /// PATs the PAT lifecycle API created, and the organizations' PAT settings.
    minted: Mutex<PatBook>,
}

/// The PAT lifecycle API's records: the PATs it created and the organizations' settings.
#[derive(Default)]
struct PatBook {
    pats: Vec<super::pats::MintedPatRecord>,
    /// Organizations whose policy disables PAT creation.
    creation_disabled: Vec<String>,
    /// Organizations backed by Microsoft accounts rather than Entra ID: an Entra token means
    /// nothing to them.
    without_entra: Vec<String>,
}

impl State {
    pub(crate) fn new(dir: &Path, https_port: u16, ca_file: &Path) -> State {
        let repos_root = dir.join("repos");
        fs_err::create_dir_all(&repos_root).expect("creating the repository root works");
        process::chmod(&repos_root, 0o755);
        let git_config = dir.join("gitconfig");
        fs_err::write(
            &git_config,
            "[safe]\n\tdirectory = *\n[user]\n\tname = Test Git Server\n\temail = git-server@example.invalid\n[init]\n\tdefaultBranch = main\n",
        )
        .expect("writing the server git config works");
        process::chmod(&git_config, 0o644);
        let full_pat = random_pat();
        let readonly_pat = random_pat();
        let mut pats = HashMap::new();
        pats.insert(full_pat.clone(), Access::Full);
        pats.insert(readonly_pat.clone(), Access::ReadOnly);
        State {
            repos_root,
            ca_file: ca_file.to_owned(),
            git_config,
            backend_log: dir.join("http-backend.log"),
            https_port,
            ssh_port: AtomicU16::new(0),
            full_pat,
            readonly_pat,
            bearer_token: format!("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}", random_pat()),
            tenant_id: guid(),
            instance_id: guid(),
            user_id: guid(),
            pats: Mutex::new(pats),
            catalog: Mutex::new(Catalog::default()),
            federation: Mutex::default(),
            github_releases: Mutex::default(),
            faults: super::faults::Faults::default(),
            minted: Mutex::default(),
        }
    }

    pub(crate) fn set_github_releases(&self, backend: String) {
        *self
            .github_releases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(backend);
    }

    pub(crate) fn github_releases(&self) -> Option<String> {
        self.github_releases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_ssh_port(&self, port: u16) {
        self.ssh_port.store(port, Ordering::SeqCst);
    }

    pub(crate) fn https_base(&self) -> String {
        format!("https://127.0.0.1:{}", self.https_port)
    }

    pub(crate) fn https_url(&self, repo: &RepoMeta) -> String {
        format!(
            "{}/{}/{}/_git/{}",
            self.https_base(),
            encode_segment(&repo.org),
            encode_segment(&repo.project),
            encode_segment(&repo.name)
        )
    }

    pub(crate) fn ssh_url(&self, repo: &RepoMeta) -> String {
        format!(
            "ssh://git@127.0.0.1:{}/v3/{}/{}/{}",
            self.ssh_port.load(Ordering::SeqCst),
            encode_segment(&repo.org),
            encode_segment(&repo.project),
            encode_segment(&repo.name)
        )
    }

    /// What `secret` grants: a PAT, or the Entra-style token.
    pub(crate) fn access_for(&self, secret: &str) -> Option<Access> {
        if secret.is_empty() {
            return None;
        }
        if secret == self.bearer_token {
            return Some(Access::Full);
        }
        self.pats
            .lock()
            .expect("the PAT table lock is never poisoned")
            .get(secret)
            .copied()
    }

    pub(crate) fn add_pat(&self, pat: &str, access: Access) {
        self.pats
            .lock()
            .expect("the PAT table lock is never poisoned")
            .insert(pat.to_owned(), access);
    }

    pub(crate) fn revoke_pat(&self, pat: &str) {
        self.pats
            .lock()
            .expect("the PAT table lock is never poisoned")
            .remove(pat);
    }

    fn minted(&self) -> std::sync::MutexGuard<'_, PatBook> {
        self.minted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn record_minted_pat(&self, pat: super::pats::MintedPatRecord) {
        self.minted().pats.push(pat);
    }

    pub(crate) fn minted_pats(&self, org: &str) -> Vec<super::pats::MintedPatRecord> {
        self.minted()
            .pats
            .iter()
            .filter(|p| same(&p.org, org))
            .cloned()
            .collect()
    }

    pub(crate) fn minted_pat(&self, org: &str, id: &str) -> Option<super::pats::MintedPatRecord> {
        self.minted_pats(org)
            .into_iter()
            .find(|p| p.authorization_id == id)
    }

    /// Revokes a minted PAT; false when there is none with `id`.
    pub(crate) fn revoke_minted_pat(&self, org: &str, id: &str) -> bool {
        let token = {
            let mut minted = self.minted();
            let Some(pat) = minted
                .pats
                .iter_mut()
                .find(|p| same(&p.org, org) && p.authorization_id == id)
            else {
                return false;
            };
            pat.revoked = true;
            pat.token.clone()
        };
        self.revoke_pat(&token);
        true
    }

    pub(crate) fn disable_pat_creation(&self, org: &str) {
        self.minted().creation_disabled.push(org.to_owned());
    }

    pub(crate) fn pat_creation_disabled(&self, org: &str) -> bool {
        self.minted().creation_disabled.iter().any(|o| same(o, org))
    }

    pub(crate) fn detach_from_entra(&self, org: &str) {
        self.minted().without_entra.push(org.to_owned());
    }

    pub(crate) fn backed_by_entra(&self, org: &str) -> bool {
        !self.minted().without_entra.iter().any(|o| same(o, org))
    }

    fn catalog(&self) -> std::sync::MutexGuard<'_, Catalog> {
        self.catalog
            .lock()
            .expect("the catalog lock is never poisoned")
    }

    pub(crate) fn create_project(&self, org: &str, project: &str) -> ProjectMeta {
        let mut catalog = self.catalog();
        if let Some(existing) = catalog
            .projects
            .iter()
            .find(|p| same(&p.org, org) && same(&p.name, project))
        {
            return existing.clone();
        }
        let meta = ProjectMeta {
            org: org.to_owned(),
            name: project.to_owned(),
            id: guid(),
            created: rfc3339_now(),
        };
        catalog.projects.push(meta.clone());
        meta
    }

    /// A project by name or id.
    pub(crate) fn find_project(&self, org: &str, project: &str) -> Option<ProjectMeta> {
        self.catalog()
            .projects
            .iter()
            .find(|p| same(&p.org, org) && (same(&p.name, project) || same(&p.id, project)))
            .cloned()
    }

    pub(crate) fn list_projects(&self, org: &str) -> Vec<ProjectMeta> {
        self.catalog()
            .projects
            .iter()
            .filter(|p| same(&p.org, org))
            .cloned()
            .collect()
    }

    /// A repository by project (name or id) and repository (name or id).
    pub(crate) fn find_repo(&self, org: &str, project: &str, repo: &str) -> Option<RepoMeta> {
        self.catalog()
            .repos
            .iter()
            .find(|r| {
                same(&r.org, org)
                    && (same(&r.project, project) || same(&r.project_id, project))
                    && (same(&r.name, repo) || same(&r.id, repo))
            })
            .cloned()
    }

    /// A repository by GUID only (the project segment may be omitted with an id).
    pub(crate) fn find_repo_by_id(&self, org: &str, id: &str) -> Option<RepoMeta> {
        self.catalog()
            .repos
            .iter()
            .find(|r| same(&r.org, org) && same(&r.id, id))
            .cloned()
    }

    pub(crate) fn list_repos(&self, org: &str, project: &str) -> Vec<RepoMeta> {
        self.catalog()
            .repos
            .iter()
            .filter(|r| {
                same(&r.org, org) && (same(&r.project, project) || same(&r.project_id, project))
            })
            .cloned()
            .collect()
    }

    /// Create an empty bare repository, creating the project unless `require_project`.
    pub(crate) fn create_repo_in(
        &self,
        org: &str,
        project: &str,
        repo: &str,
        require_project: bool,
    ) -> Result<RepoMeta, CreateError> {
        let project_meta = if require_project {
            self.find_project(org, project)
                .ok_or(CreateError::NoProject)?
        } else {
            self.create_project(org, project)
        };
        let mut catalog = self.catalog();
        if catalog.repos.iter().any(|r| {
            same(&r.org, org) && same(&r.project_id, &project_meta.id) && same(&r.name, repo)
        }) {
            return Err(CreateError::Exists);
        }
        let bare_path = self.bare_path(org, &project_meta.name, repo);
        init_bare(&bare_path, &self.git_config);
        let meta = RepoMeta {
            org: project_meta.org.clone(),
            project: project_meta.name.clone(),
            project_id: project_meta.id.clone(),
            name: repo.to_owned(),
            id: guid(),
            bare_path,
        };
        catalog.repos.push(meta.clone());
        Ok(meta)
    }

    pub(crate) fn create_repo(
        &self,
        org: &str,
        project: &str,
        repo: &str,
    ) -> Result<RepoMeta, CreateError> {
        self.create_repo_in(org, project, repo, false)
    }

    /// `{repos_root}/{org}/{project}/{repo}.git`, lower-cased so the SSH forced command can map
    /// any spelling of a name to the same directory.
    pub(crate) fn bare_path(&self, org: &str, project: &str, repo: &str) -> PathBuf {
        self.repos_root
            .join(org.to_lowercase())
            .join(project.to_lowercase())
            .join(format!("{}.git", repo.to_lowercase()))
    }
}

fn same(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// The hook that gives an empty repository the first pushed branch as default (HEAD), as Azure
/// DevOps does.
const POST_RECEIVE: &str = r#"#!/bin/sh
head=$(git symbolic-ref -q HEAD) || exit 0
git rev-parse -q --verify "$head^{commit}" >/dev/null && exit 0
while read -r old new ref; do
    case "$ref" in
    refs/heads/*)
        if git rev-parse -q --verify "$ref^{commit}" >/dev/null; then
            git symbolic-ref HEAD "$ref"
            exit 0
        fi
        ;;
    esac
done
exit 0
"#;

fn init_bare(path: &Path, git_config: &Path) {
    let parent = path
        .parent()
        .expect("a bare repository path has a parent because it is under the repos root");
    fs_err::create_dir_all(parent).expect("creating the project directory works");
    for dir in parent.ancestors().take(2) {
        process::chmod(dir, 0o755);
    }
    let status = process::git_command(git_config)
        .args([
            "init",
            "--bare",
            "--quiet",
            "--shared=0777",
            "--initial-branch=main",
        ])
        .arg(path)
        .status()
        .expect("running `git init` works because git is installed");
    assert!(
        status.success(),
        "`git init --bare` failed for {}",
        path.display()
    );
    for (key, value) in [
        // Azure DevOps allows force pushes to users with the permission (the PAT owner here).
        ("receive.denyNonFastForwards", "false"),
        // Azure DevOps' receive-pack has no `atomic` (so `git push --atomic` fails there too).
        ("receive.advertiseAtomic", "false"),
        ("uploadpack.allowTipSHA1InWant", "true"),
        ("uploadpack.allowFilter", "true"),
    ] {
        let status = process::git_command(git_config)
            .env("GIT_DIR", path)
            .args(["config", key, value])
            .status()
            .expect("running `git config` works because git is installed");
        assert!(status.success(), "`git config {key}` failed");
    }
    let hook = path.join("hooks").join("post-receive");
    fs_err::write(&hook, POST_RECEIVE).expect("writing the post-receive hook works");
    process::chmod(&hook, 0o777);
}

/// Percent-encode one URL path segment (spaces become `%20`).
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Percent-decode one URL path segment; `None` when it is not valid UTF-8 afterwards.
pub(crate) fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = segment.get(i + 1..i + 3)
            && let Ok(value) = u8::from_str_radix(hex, 16)
        {
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// A random GUID in the usual 8-4-4-4-12 form.
pub(crate) fn guid() -> String {
    let hex = format!("{:016x}{:016x}", random_u64(), random_u64());
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// A random 52-character PAT in the classic Azure DevOps alphabet.
pub(crate) fn random_pat() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(52);
    while out.len() < 52 {
        let mut value = random_u64();
        for _ in 0..12 {
            out.push(char::from(
                ALPHABET[usize::try_from(value % 32).unwrap_or(0)],
            ));
            value /= 32;
        }
    }
    out.truncate(52);
    out
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip() {
        assert_eq!(encode_segment("My Project"), "My%20Project");
        assert_eq!(
            decode_segment("My%20Project").as_deref(),
            Some("My Project")
        );
        assert_eq!(decode_segment("100%").as_deref(), Some("100%"));
    }

    #[test]
    fn guid_shape() {
        let id = guid();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(id, guid());
    }

    #[test]
    fn time_shape() {
        let now = rfc3339_now();
        assert!(now.starts_with("20"), "{now}");
        assert!(now.ends_with('Z'));
        assert_eq!(now.len(), 20);
    }
}
