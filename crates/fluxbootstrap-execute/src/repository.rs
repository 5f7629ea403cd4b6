//! The repository side of a run: `--create-repository`, the one clone with its commit signer,
//! each commit and push, and the diffs of a dry run.

use fluxbootstrap_azdo::{RepoUrl, RestClient};
use fluxbootstrap_git::{Author, Checkout, CommitSigner, FileWrite, RemoteOptions};

use crate::error::ExecuteError;
use crate::progress::Lines;

/// How the run reaches the repository, every credential resolved while the plan was built.
pub struct RepositoryAccess {
    /// The remote, with the push credential.
    pub remote: RemoteOptions,
    /// `--create-repository`: the REST client that checks for and creates the repository.
    pub create: Option<RepositoryCreation>,
    /// `--create-branch`: a missing branch is started instead of refused.
    pub create_branch: bool,
    /// Signs the commits (`--gpg-*`, `--ssh-signing-*`).
    pub signer: Option<Box<dyn CommitSigner>>,
    /// The commits' author.
    pub author: Author,
}

/// What `--create-repository` needs: the repository and a client allowed to create it.
pub struct RepositoryCreation {
    /// The repository to make sure of.
    pub repo: RepoUrl,
    /// A client with the user's PAT or Entra token.
    pub client: RestClient,
}

/// `--create-repository`: makes sure the repository exists, creating it through REST; `false`
/// when it does not and this is a dry run (it would be created).
async fn ensure_repository(
    creation: &RepositoryCreation,
    dry_run: bool,
    lines: Lines<'_>,
) -> Result<bool, ExecuteError> {
    let RepositoryCreation { repo, client } = creation;
    if client.get_repository().await?.is_some() {
        lines.success(format_args!("repository \"{}\" exists", repo.repo));
        return Ok(true);
    }
    if dry_run {
        lines.success(format_args!(
            "repository \"{}\" would be created",
            repo.repo
        ));
        return Ok(false);
    }
    lines.action(format_args!(
        "creating repository \"{}\" in project \"{}\"",
        repo.repo, repo.project
    ));
    match client.create_repository().await {
        Ok(_) => lines.success("created repository"),
        // Created between our check and our request: by another client, or by an attempt of
        // ours whose answer was lost before the retry. Either way it is there to use.
        Err(fluxbootstrap_azdo::AzdoError::RepositoryExists { .. }) => {
            lines.success(format_args!("repository \"{}\" exists", repo.repo));
        }
        Err(err) => return Err(err.into()),
    }
    Ok(true)
}

/// Clones `branch` into a private temporary directory with the push credential, printing
/// flux's clone line first. With `--create-repository` the repository is made first (in a dry
/// run that would create it, the checkout is empty and nothing is fetched).
pub(crate) async fn clone_repository(
    access: &mut RepositoryAccess,
    branch: &str,
    dry_run: bool,
    progress: &std::sync::Arc<dyn crate::Progress>,
) -> Result<Checkout, ExecuteError> {
    let lines = Lines::new(progress.as_ref(), None);
    let exists = match &access.create {
        Some(creation) => ensure_repository(creation, dry_run, lines).await?,
        None => true,
    };
    lines.action(format_args!(
        "cloning branch \"{branch}\" from Git repository \"{}\"",
        access.remote.url
    ));
    let remote = access.remote.clone();
    let branch = branch.to_owned();
    let create_branch = access.create_branch;
    let _spinner = lines.spinner("cloning");
    let task_progress = std::sync::Arc::clone(progress);
    let mut checkout = tokio::task::spawn_blocking(move || {
        if exists {
            Checkout::clone(
                &remote,
                &branch,
                create_branch,
                &Lines::new(task_progress.as_ref(), None),
            )
        } else {
            Checkout::empty(&remote, &branch)
        }
    })
    .await
    .map_err(|_| ExecuteError::Task("clone"))??;
    if let Some(signer) = access.signer.take() {
        checkout.sign_commits_with(signer);
    }
    Ok(checkout)
}

/// A unified diff of one repository file, for `--dry-run`.
pub(crate) fn unified_diff(path: &str, old: Option<&[u8]>, new: &[u8]) -> String {
    let old = old.map(String::from_utf8_lossy).unwrap_or_default();
    let new = String::from_utf8_lossy(new);
    similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

/// One commit of the run.
pub(crate) struct CommitStep<'a> {
    pub(crate) files: Vec<FileWrite>,
    pub(crate) message: String,
    pub(crate) author: Author,
    pub(crate) dry_run: bool,
    /// What the commit holds, for the lines (`component manifests`).
    pub(crate) what: &'static str,
    pub(crate) branch: &'a str,
}

/// Commits and pushes `step`, or in a dry run reports the diff; returns the checkout back, and
/// the new commit when there was one.
pub(crate) async fn commit(
    mut checkout: Checkout,
    step: CommitStep<'_>,
    progress: &std::sync::Arc<dyn crate::Progress>,
) -> Result<(Checkout, Option<String>), ExecuteError> {
    let lines = Lines::new(progress.as_ref(), None);
    let CommitStep {
        files,
        message,
        author,
        dry_run,
        what,
        branch,
    } = step;
    if dry_run {
        let mut changed = false;
        for file in &files {
            let old = checkout.read_file(&file.path)?;
            if file.keep_existing && old.is_some() {
                continue;
            }
            if old.as_deref() != Some(file.contents.as_slice()) {
                changed = true;
                lines
                    .diff(&unified_diff(&file.path, old.as_deref(), &file.contents))
                    .map_err(ExecuteError::Output)?;
            }
        }
        if changed {
            lines.success(format_args!("{what} would be committed to \"{branch}\""));
        } else {
            lines.success(format_args!("{what} are up to date"));
        }
        return Ok((checkout, None));
    }
    let spinner = lines.spinner(&format!("pushing {what}"));
    let task_progress = std::sync::Arc::clone(progress);
    let (checkout, sha) = tokio::task::spawn_blocking(move || {
        let lines = Lines::new(task_progress.as_ref(), None);
        let sha = checkout.commit_and_push(&files, &message, &author, &lines);
        (checkout, sha)
    })
    .await
    .map_err(|_| ExecuteError::Task("push"))?;
    drop(spinner);
    let sha = sha.map_err(|source| ExecuteError::Push { what, source })?;
    match &sha {
        Some(sha) => lines.success(format_args!(
            "committed and pushed {what} to \"{branch}\" (\"{sha}\")"
        )),
        None => lines.success(format_args!("{what} are up to date")),
    }
    Ok((checkout, sha))
}
