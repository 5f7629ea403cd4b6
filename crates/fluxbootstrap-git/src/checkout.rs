//! A clone of one branch in a private temporary directory, and the commit-and-push cycle
//! that writes generated files into it, retrying on top of concurrent pushes.

use std::cell::RefCell;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use git2::{ObjectType, Oid, Repository, RepositoryInitOptions, ResetType};

use crate::session::Session;
use crate::{GitError, RemoteOptions, Reporter};

/// How many times a push is tried when other clients keep updating the branch.
const MAX_PUSH_ATTEMPTS: u32 = 5;

/// Who commits: flux's default is name `Flux` with an empty e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Author and committer name.
    pub name: String,
    /// Author and committer e-mail; may be empty (`Flux <>`).
    pub email: String,
}

impl Default for Author {
    fn default() -> Self {
        Author {
            name: "Flux".to_owned(),
            email: String::new(),
        }
    }
}

/// One file a commit writes: its repository path (relative, `/`-separated) and contents.
///
/// A file made with [`FileWrite::unless_present`] is written only when the branch does not
/// have it yet. The check is made again on every push attempt, on top of the head the commit
/// goes onto, so a file someone else pushed in the meantime is kept, not overwritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWrite {
    /// Repository path, relative and `/`-separated.
    pub path: String,
    /// The bytes to write.
    pub contents: Vec<u8>,
    /// Keep a file that already exists at `path` instead of replacing it.
    pub keep_existing: bool,
}

impl FileWrite {
    /// `contents` at `path`, replacing what is there.
    pub fn new(path: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.into(),
            contents: contents.into(),
            keep_existing: false,
        }
    }

    /// `contents` at `path` only when the branch has no file there.
    pub fn unless_present(path: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        Self {
            keep_existing: true,
            ..Self::new(path, contents)
        }
    }
}

/// Signs commits: the armored signature (SSH, or `OpenPGP`) of a raw commit object, which
/// becomes its `gpgsig` header, as `git commit -S` writes it.
pub trait CommitSigner: Send + Sync {
    /// The signature of `raw_commit`, or why it could not be made (without secrets).
    fn sign(&self, raw_commit: &[u8]) -> Result<String, String>;
}

/// A clone of one branch in a private temporary directory, removed on drop (also when an
/// operation failed half-way or the caller unwinds).
pub struct Checkout {
    // Field order matters: the repository handle closes before the directory is removed.
    repo: Repository,
    signer: Option<Box<dyn CommitSigner>>,
    remote: RemoteOptions,
    branch: String,
    empty_remote: bool,
    workdir: PathBuf,
    _dir: tempfile::TempDir,
}

impl fmt::Debug for Checkout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkout")
            .field("branch", &self.branch)
            .field("workdir", &self.workdir)
            .field("empty_remote", &self.empty_remote)
            .finish_non_exhaustive()
    }
}

impl Checkout {
    /// Clones `branch` of `remote`. An empty remote (no refs at all) gives a fresh repository
    /// with `origin` configured and `HEAD` on the unborn `branch`, as flux does. A missing
    /// branch in a non-empty remote is an error naming the default branch, unless
    /// `create_branch`, which starts `branch` from the default branch (pushed on first commit).
    pub fn clone(
        remote: &RemoteOptions,
        branch: &str,
        create_branch: bool,
        reporter: &dyn Reporter,
    ) -> Result<Checkout, GitError> {
        let branch_ref = format!("refs/heads/{branch}");
        if branch.is_empty() || !git2::Reference::is_valid_name(&branch_ref) {
            return Err(GitError::InvalidBranch {
                branch: branch.to_owned(),
            });
        }
        let session = Session::new(remote)?;
        let (repo, workdir, dir) = init(&session, branch)?;
        let advertised = fetch(&repo, &session, branch, reporter)?;
        let checkout = Checkout {
            repo,
            signer: None,
            remote: remote.clone(),
            branch: branch.to_owned(),
            empty_remote: advertised.heads.is_empty(),
            workdir,
            _dir: dir,
        };
        if checkout.empty_remote {
            return Ok(checkout);
        }
        let start = if let Some(oid) = advertised.oid(&branch_ref) {
            oid
        } else {
            match advertised.default_branch {
                Some(default) if create_branch && default != branch => {
                    let again = fetch(&checkout.repo, &session, &default, reporter)?;
                    again.oid(&format!("refs/heads/{default}")).ok_or_else(|| {
                        GitError::BranchNotFound {
                            url: session.endpoint.sanitized.clone(),
                            branch: default.clone(),
                            default_branch: None,
                        }
                    })?
                }
                default_branch => {
                    return Err(GitError::BranchNotFound {
                        url: session.endpoint.sanitized.clone(),
                        branch: branch.to_owned(),
                        default_branch,
                    });
                }
            }
        };
        checkout.reset_to(start)?;
        Ok(checkout)
    }

    /// A checkout of `branch` of a repository that does not exist yet (a dry run that would
    /// create it): empty like a fresh clone of an empty remote, with nothing fetched.
    pub fn empty(remote: &RemoteOptions, branch: &str) -> Result<Checkout, GitError> {
        let branch_ref = format!("refs/heads/{branch}");
        if branch.is_empty() || !git2::Reference::is_valid_name(&branch_ref) {
            return Err(GitError::InvalidBranch {
                branch: branch.to_owned(),
            });
        }
        let session = Session::new(remote)?;
        let (repo, workdir, dir) = init(&session, branch)?;
        Ok(Checkout {
            repo,
            signer: None,
            remote: remote.clone(),
            branch: branch.to_owned(),
            empty_remote: true,
            workdir,
            _dir: dir,
        })
    }

    /// Signs every commit made from now on with `signer`.
    pub fn sign_commits_with(&mut self, signer: Box<dyn CommitSigner>) {
        self.signer = Some(signer);
    }

    /// The sha of `HEAD`, `None` while the branch is unborn (empty remote, nothing committed).
    pub fn head(&self) -> Option<String> {
        self.head_oid().map(|oid| oid.to_string())
    }

    /// Whether the remote had no refs at all when cloned (and nothing was pushed since).
    pub fn is_empty_remote(&self) -> bool {
        self.empty_remote
    }

    /// The branch this checkout is on.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The working tree (inside the private temporary directory).
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// Contents of `repo_path` (relative, `/`-separated) in the working tree, `None` when
    /// there is no such file.
    pub fn read_file(&self, repo_path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let path = self.workdir.join(checked_path(repo_path)?);
        match fs_err::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(GitError::Io { path, source }),
        }
    }

    /// Writes `files`, commits them if anything changed and pushes without force. When
    /// someone else pushed in the meantime, fetches their head, writes the same files on top
    /// (a [`FileWrite::unless_present`] file only if their head lacks it), commits and pushes
    /// again, up to a bounded number of times, so their commit is kept. Returns the new sha,
    /// or `None` when nothing changed.
    pub fn commit_and_push(
        &mut self,
        files: &[FileWrite],
        message: &str,
        author: &Author,
        reporter: &dyn Reporter,
    ) -> Result<Option<String>, GitError> {
        check_author(author)?;
        for file in files {
            checked_path(&file.path)?;
        }
        let remote = self.remote.clone();
        let session = Session::new(&remote)?;
        for _attempt in 0..MAX_PUSH_ATTEMPTS {
            let Some(commit) = self.commit(files, message, author)? else {
                return Ok(None);
            };
            // A push that broke off is repeated as it is: if its ref update landed, the
            // repeat finds the branch at `commit` already and succeeds without a new commit.
            if crate::session::retrying(reporter, || self.push(&session, reporter))? {
                let tracking = format!("refs/remotes/origin/{}", self.branch);
                self.repo
                    .reference(&tracking, commit, true, "update by push")
                    .map_err(local("update the remote-tracking branch"))?;
                self.empty_remote = false;
                return Ok(Some(commit.to_string()));
            }
            // Someone pushed first: start over from their head.
            let advertised = fetch(&self.repo, &session, &self.branch, reporter)?;
            let theirs = advertised
                .oid(&format!("refs/heads/{}", self.branch))
                .ok_or_else(|| GitError::PushRejected {
                    url: session.endpoint.sanitized.clone(),
                    branch: self.branch.clone(),
                    reason: "the branch changed during the push but is gone now".to_owned(),
                })?;
            self.reset_to(theirs)?;
            self.empty_remote = false;
        }
        Err(GitError::PushConflict {
            url: session.endpoint.sanitized.clone(),
            branch: self.branch.clone(),
            attempts: MAX_PUSH_ATTEMPTS,
        })
    }

    fn head_oid(&self) -> Option<Oid> {
        self.repo.head().ok().and_then(|head| head.target())
    }

    /// Points the branch and the working tree at `oid`, discarding local changes.
    fn reset_to(&self, oid: Oid) -> Result<(), GitError> {
        let branch_ref = format!("refs/heads/{}", self.branch);
        let object = self
            .repo
            .find_object(oid, Some(ObjectType::Commit))
            .map_err(local("find the fetched commit"))?;
        if self.head_oid().is_some() {
            let mut checkout = git2::build::CheckoutBuilder::new();
            checkout.force();
            self.repo
                .reset(&object, ResetType::Hard, Some(&mut checkout))
                .map_err(local("reset to the remote branch"))?;
        } else {
            self.repo
                .reference(&branch_ref, oid, true, "clone")
                .map_err(local("create the branch"))?;
            let mut checkout = git2::build::CheckoutBuilder::new();
            checkout.force();
            self.repo
                .checkout_head(Some(&mut checkout))
                .map_err(local("check out the branch"))?;
        }
        Ok(())
    }

    /// Writes and stages `files` (keeping present `keep_existing` ones); commits when the tree
    /// differs from `HEAD`'s.
    fn commit(
        &self,
        files: &[FileWrite],
        message: &str,
        author: &Author,
    ) -> Result<Option<Oid>, GitError> {
        let mut index = self.repo.index().map_err(local("open the index"))?;
        for file in files {
            let relative = checked_path(&file.path)?;
            let path = self.workdir.join(&relative);
            let contents = &file.contents;
            if file.keep_existing && path.exists() {
                continue;
            }
            if fs_err::read(&path).ok().as_deref() != Some(contents.as_slice()) {
                if let Some(parent) = path.parent() {
                    fs_err::create_dir_all(parent).map_err(|source| GitError::Io {
                        path: parent.to_owned(),
                        source,
                    })?;
                }
                fs_err::write(&path, contents).map_err(|source| GitError::Io {
                    path: path.clone(),
                    source,
                })?;
            }
            index.add_path(&relative).map_err(local("stage a file"))?;
        }
        index.write().map_err(local("write the index"))?;
        let tree = index.write_tree().map_err(local("write the tree"))?;
        let parent = self.head_oid();
        let parent_tree = match parent {
            Some(oid) => Some(
                self.repo
                    .find_commit(oid)
                    .map_err(local("read HEAD"))?
                    .tree_id(),
            ),
            None => None,
        };
        let empty_tree =
            Oid::hash_object(ObjectType::Tree, &[]).map_err(local("hash the empty tree"))?;
        if parent_tree.unwrap_or(empty_tree) == tree {
            return Ok(None);
        }
        let mut raw = raw_commit(tree, parent, message, author)?;
        if let Some(signer) = &self.signer {
            let signature = signer
                .sign(&raw)
                .map_err(|message| GitError::Sign { message })?;
            raw = with_signature(&raw, &signature);
        }
        let odb = self.repo.odb().map_err(local("open the object database"))?;
        let commit = odb
            .write(ObjectType::Commit, &raw)
            .map_err(local("write the commit"))?;
        let summary = message.lines().next().unwrap_or_default();
        self.repo
            .reference(
                &format!("refs/heads/{}", self.branch),
                commit,
                true,
                &format!("commit: {summary}"),
            )
            .map_err(local("update the branch"))?;
        Ok(Some(commit))
    }

    /// Pushes the branch; `Ok(false)` when the remote moved on (non-fast-forward).
    fn push(&self, session: &Session<'_>, reporter: &dyn Reporter) -> Result<bool, GitError> {
        let mut origin = self
            .repo
            .find_remote("origin")
            .map_err(local("find `origin`"))?;
        let rejection = RefCell::new(None::<String>);
        let mut callbacks = session.callbacks(reporter);
        callbacks.push_update_reference(|_refname, status| {
            if let Some(status) = status {
                rejection.replace(Some(status.to_owned()));
            }
            Ok(())
        });
        let mut options = session.push_options(callbacks);
        let refspec = format!("refs/heads/{0}:refs/heads/{0}", self.branch);
        session.begin();
        let result = origin.push(&[refspec.as_str()], Some(&mut options));
        drop(options);
        match result {
            Ok(()) => match rejection.into_inner() {
                None => Ok(true),
                Some(reason) if is_conflict(&reason) => Ok(false),
                Some(reason) => Err(GitError::PushRejected {
                    url: session.endpoint.sanitized.clone(),
                    branch: self.branch.clone(),
                    reason,
                }),
            },
            Err(e) if e.code() == git2::ErrorCode::NotFastForward => Ok(false),
            Err(e) => Err(session.classify("push to", e)),
        }
    }
}

/// A repository in a private temporary directory with `origin` set to the session's URL and
/// `HEAD` on the unborn `branch` tracking it.
fn init(
    session: &Session<'_>,
    branch: &str,
) -> Result<(Repository, PathBuf, tempfile::TempDir), GitError> {
    let branch_ref = format!("refs/heads/{branch}");
    let dir = tempfile::Builder::new()
        .prefix("fluxbootstrap-git-")
        .tempdir()
        .map_err(|source| GitError::TempDir { source })?;
    let workdir = dir.path().join("repo");
    let mut init = RepositoryInitOptions::new();
    init.initial_head(branch)
        .external_template(false)
        .mkdir(true);
    let repo =
        Repository::init_opts(&workdir, &init).map_err(local("initialise the repository"))?;
    repo.remote_with_fetch(
        "origin",
        &session.endpoint.sanitized,
        &tracking_refspec(branch),
    )
    .map_err(local("configure `origin`"))?;
    {
        let mut config = repo.config().map_err(local("open the repository config"))?;
        config
            .set_str(&format!("branch.{branch}.remote"), "origin")
            .and_then(|()| config.set_str(&format!("branch.{branch}.merge"), &branch_ref))
            .map_err(local("configure the branch"))?;
    }
    Ok((repo, workdir, dir))
}

/// Refs the server advertised during a fetch.
struct Advertised {
    heads: Vec<(String, Oid)>,
    default_branch: Option<String>,
}

impl Advertised {
    fn oid(&self, name: &str) -> Option<Oid> {
        self.heads
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, oid)| *oid)
    }
}

/// Fetches `branch` into `refs/remotes/origin/<branch>` and returns what the server advertised.
fn fetch(
    repo: &Repository,
    session: &Session<'_>,
    branch: &str,
    reporter: &dyn Reporter,
) -> Result<Advertised, GitError> {
    let mut origin = repo.find_remote("origin").map_err(local("find `origin`"))?;
    crate::session::retrying(reporter, || {
        let mut options = session.fetch_options(reporter);
        session.begin();
        origin
            .fetch(
                &[tracking_refspec(branch).as_str()],
                Some(&mut options),
                None,
            )
            .map_err(|e| session.classify("fetch from", e))
    })?;
    let heads = origin
        .list()
        .map_err(|e| session.classify("fetch from", e))?
        .iter()
        .filter(|head| !head.oid().is_zero() && head.name().starts_with("refs/"))
        .map(|head| (head.name().to_owned(), head.oid()))
        .collect();
    let default_branch = origin
        .default_branch()
        .ok()
        .and_then(|buf| buf.as_str().ok().map(str::to_owned))
        .and_then(|name| name.strip_prefix("refs/heads/").map(str::to_owned));
    Ok(Advertised {
        heads,
        default_branch,
    })
}

fn tracking_refspec(branch: &str) -> String {
    format!("+refs/heads/{branch}:refs/remotes/origin/{branch}")
}

/// Push statuses that mean "the branch moved under you", as opposed to a policy refusal.
/// git's receive-pack and Azure DevOps (TF401028) word it differently.
fn is_conflict(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    [
        "non-fast-forward",
        "fetch first",
        "failed to update ref",
        "failed to lock",
        "cannot lock ref",
        "stale info",
        "already been updated",
        "tf401028",
    ]
    .iter()
    .any(|needle| reason.contains(needle))
}

/// A relative, normal path inside the repository that stays out of `.git`.
fn checked_path(repo_path: &str) -> Result<PathBuf, GitError> {
    let invalid = || GitError::InvalidRepoPath {
        path: repo_path.to_owned(),
    };
    if repo_path.is_empty() || repo_path.contains(['\\', '\0']) {
        return Err(invalid());
    }
    let mut out = PathBuf::new();
    for component in Path::new(repo_path).components() {
        match component {
            Component::Normal(part) if !part.eq_ignore_ascii_case(".git") => out.push(part),
            Component::CurDir => {}
            _ => return Err(invalid()),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(invalid());
    }
    Ok(out)
}

fn check_author(author: &Author) -> Result<(), GitError> {
    let bad = |s: &str| s.contains(['<', '>', '\n', '\r', '\0']);
    if author.name.trim().is_empty() || bad(&author.name) || bad(&author.email) {
        return Err(GitError::InvalidAuthor {
            name: author.name.clone(),
            email: author.email.clone(),
        });
    }
    Ok(())
}

/// The commit object, built by hand because libgit2 refuses empty e-mails and flux's
/// default author is `Flux <>`. Author and committer are the same, as with go-git.
fn raw_commit(
    tree: Oid,
    parent: Option<Oid>,
    message: &str,
    author: &Author,
) -> Result<Vec<u8>, GitError> {
    // Only for the current time and the local UTC offset, which libgit2 knows how to get.
    let now = git2::Signature::now(&author.name, "unused").map_err(local("read the clock"))?;
    let when = now.when();
    let offset = when.offset_minutes();
    let sign = if offset < 0 { '-' } else { '+' };
    let stamp = format!(
        "{} {sign}{:02}{:02}",
        when.seconds(),
        offset.abs() / 60,
        offset.abs() % 60
    );
    let ident = format!("{} <{}> {stamp}", author.name.trim(), author.email.trim());
    let parent = parent.map(|p| format!("parent {p}\n")).unwrap_or_default();
    let raw = format!("tree {tree}\n{parent}author {ident}\ncommitter {ident}\n\n{message}");
    Ok(raw.into_bytes())
}

/// `raw` with a `gpgsig` header after the committer line, continuation lines indented by a
/// space, as git writes signed commits.
fn with_signature(raw: &[u8], signature: &str) -> Vec<u8> {
    let split = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(raw.len(), |i| i + 1);
    let mut out = raw[..split].to_vec();
    out.extend_from_slice(b"gpgsig ");
    out.extend_from_slice(signature.trim_end().replace('\n', "\n ").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&raw[split..]);
    out
}

fn local(operation: &'static str) -> impl Fn(git2::Error) -> GitError {
    move |source| GitError::Local { operation, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_work_tree() {
        assert_eq!(
            checked_path("clusters/prod/flux-system/gotk-sync.yaml").unwrap(),
            PathBuf::from("clusters/prod/flux-system/gotk-sync.yaml")
        );
        assert_eq!(checked_path("./a/b").unwrap(), PathBuf::from("a/b"));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            ".git/config",
            "a/.GIT/x",
            "a\\b",
            ".",
        ] {
            assert!(checked_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conflicts_versus_policy_refusals() {
        assert!(is_conflict("non-fast-forward"));
        assert!(is_conflict(
            "TF401028: The reference 'refs/heads/main' has already been updated by another client"
        ));
        assert!(!is_conflict(
            "TF402455: Pushes to this branch are not permitted; you must use a pull request"
        ));
    }

    #[test]
    fn author_validation() {
        assert!(check_author(&Author::default()).is_ok());
        assert!(
            check_author(&Author {
                name: "a<b".into(),
                email: String::new()
            })
            .is_err()
        );
        assert!(
            check_author(&Author {
                name: " ".into(),
                email: String::new()
            })
            .is_err()
        );
    }

    #[test]
    fn commit_with_empty_email() {
        let raw = raw_commit(
            Oid::ZERO_SHA1,
            None,
            "Add Flux sync manifests",
            &Author::default(),
        )
        .unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert!(text.contains("\nauthor Flux <> "), "{text}");
        assert!(text.ends_with("\n\nAdd Flux sync manifests"), "{text}");
    }
}
