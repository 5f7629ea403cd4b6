//! Carrying out a plan: one clone, the plan's commits and pushes, then every target
//! concurrently in flux's write order.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fluxbootstrap_auth::SecretBytes;
use fluxbootstrap_cluster::{ApplyOptions, Change, Cluster, WaitSpec};
use fluxbootstrap_git::FileWrite;
use fluxbootstrap_plan::{Plan, SourceSecret, Step, WriteRule};
use serde_json::Value;

use crate::error::ExecuteError;
use crate::kustomize;
use crate::progress::{Lines, Progress, change_word};
use crate::report::{Counts, Outcome, Report, Row};
use crate::repository::{self, CommitStep, RepositoryAccess};
use crate::secrets::{self, SecretWrite};

/// A target's connection, and the time spent on it while the plan was built.
pub struct Connected {
    /// The cluster, connected and preflighted.
    pub cluster: Cluster,
    /// Time spent on it so far (preflight, its Secret).
    pub spent: Duration,
}

/// One cluster of a plan this crate runs.
pub type PlannedTarget = fluxbootstrap_plan::PlannedTarget<Connected>;

/// A plan, and what carrying it out needs beyond the plan's own data.
pub struct Execution {
    /// What to do: the repository change and one target per cluster.
    pub plan: Plan<Connected>,
    /// How to reach the repository.
    pub repository: RepositoryAccess,
    /// How many clusters run at once (`--parallel`, at least 1).
    pub parallel: usize,
    /// Each apply's, and each target's wait's, time limit (`--timeout`).
    pub timeout: Duration,
    /// The component Deployments the wait expects ready.
    pub deployments: Vec<String>,
}

/// Runs `execution`, adding what happened, cluster by cluster, to `report`. A cluster that
/// fails gets its row and never stops the others; when the repository step fails, every
/// cluster is left alone and the report says why. `Err` only for a failure of the run itself
/// (a task that panicked).
pub async fn run<E>(
    execution: Execution,
    mut report: Report<E>,
    progress: Arc<dyn Progress>,
) -> Result<Report<E>, ExecuteError>
where
    E: From<ExecuteError> + Display + Send + 'static,
{
    let Execution {
        plan,
        mut repository,
        parallel,
        timeout,
        deployments,
    } = execution;
    if plan.targets.is_empty() {
        return Ok(report);
    }
    let step = Instant::now();
    let written = write_repository(&plan, &mut repository, &mut report, &progress).await;
    report.time("git", step);
    let Written { mut objects, head } = match written {
        Ok(written) => written,
        Err(err) => {
            let err = E::from(err);
            // Nothing was applied to any cluster: say so per cluster, then fail.
            for target in plan.targets {
                let error = E::from(ExecuteError::RepositoryStep(format!("{err:#}")));
                report.rows.push(Row::skipped(
                    target.index,
                    target.name,
                    target.paths.sync_path(),
                    target.handle.spent,
                    error,
                ));
            }
            report.repository_error = Some(err);
            return Ok(report);
        }
    };

    // Each cluster's components, Secrets, sync objects and waits, at most `parallel` at once.
    let step = Instant::now();
    let steps: Vec<Vec<Step>> = plan.targets.iter().map(|t| plan.steps(t)).collect();
    let Plan {
        image_pull_secret,
        namespace,
        secret_name,
        dry_run,
        branch,
        targets,
        ..
    } = plan;
    let job = Arc::new(ClusterJob {
        pull_secret: image_pull_secret,
        namespace,
        secret_name,
        dry_run,
        timeout,
        revision: head.map(|h| format!("{branch}@sha1:{h}")),
        deployments,
        progress,
    });
    let permits = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (target, steps) in targets.into_iter().zip(steps) {
        let job = Arc::clone(&job);
        let permits = Arc::clone(&permits);
        let objects = objects.remove(&target.index).unwrap_or_default();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let step = Instant::now();
            let mut counts = Counts::default();
            let mut timings = Vec::new();
            let result = converge(&target, &steps, objects, &job, &mut counts, &mut timings).await;
            let (outcome, error) = match result {
                Ok(()) if counts.changed() == 0 => (Outcome::UpToDate, None),
                Ok(()) => (Outcome::Bootstrapped, None),
                Err(err) => {
                    let err = E::from(err);
                    job.progress.cluster_failed(&target.name, &err);
                    (Outcome::Failed, Some(err))
                }
            };
            Row {
                index: target.index,
                path: target.paths.sync_path(),
                context: target.name,
                outcome,
                counts,
                duration: target.handle.spent + step.elapsed(),
                timings,
                error,
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        report
            .rows
            .push(joined.map_err(|_| ExecuteError::Task("cluster"))?);
    }
    report.time("clusters", step);
    Ok(report)
}

/// What the repository step leaves for the clusters.
struct Written {
    /// Per target index: what its Kustomization will own, as (components, sync objects).
    objects: BTreeMap<usize, (Vec<Value>, Vec<Value>)>,
    head: Option<String>,
}

/// One clone, then the plan's commits. Commits pushed before a failure are recorded in the
/// report all the same.
async fn write_repository<E>(
    plan: &Plan<Connected>,
    access: &mut RepositoryAccess,
    report: &mut Report<E>,
    progress: &Arc<dyn Progress>,
) -> Result<Written, ExecuteError> {
    let lines = Lines::new(progress.as_ref(), None);
    let targets = plan.targets.as_slice();
    let patches = plan.patches.as_ref();
    let mut checkout =
        repository::clone_repository(access, &plan.branch, plan.dry_run, progress).await?;
    report.clones += 1;
    lines.success("cloned repository");

    match targets {
        [_] => lines.action("generating component manifests"),
        _ => lines.action(format_args!(
            "generating component manifests for {} clusters",
            targets.len()
        )),
    }
    lines.success("generated component manifests");
    let last = plan.commits.len().saturating_sub(1);
    for (index, commit) in plan.commits.iter().enumerate() {
        if index == last {
            lines.action("generating sync manifests");
            if patches.is_some() {
                for target in targets {
                    let file = target.paths.kustomization_file();
                    if checkout.read_file(&file)?.is_some() {
                        lines.warning(format_args!(
                            "kept the existing \"{file}\"; make sure it carries the patches for the chosen mode"
                        ));
                    }
                }
            }
            lines.success("generated sync manifests");
        }
        // A file kept when present is written only where the branch has none: an existing one
        // is the user's, and is never rewritten, also when it arrives in a concurrent push
        // during our retry (decided again on every push attempt).
        let files = commit
            .files
            .iter()
            .map(|file| match file.rule {
                WriteRule::Always => FileWrite::new(file.path.clone(), file.contents.clone()),
                WriteRule::UnlessPresent => {
                    FileWrite::unless_present(file.path.clone(), file.contents.clone())
                }
            })
            .collect();
        let step = CommitStep {
            files,
            message: commit.message.clone(),
            author: access.author.clone(),
            dry_run: plan.dry_run,
            what: commit.subject,
            branch: &plan.branch,
        };
        let (next, sha) = repository::commit(checkout, step, progress).await?;
        checkout = next;
        report.commits.extend(sha);
    }

    // What each Kustomization will own, built from the branch as pushed: with the
    // `kustomization.yaml` that is there now, ours or the user's (then `kubectl kustomize`).
    let mut objects = BTreeMap::new();
    for target in targets {
        let paths = &target.paths;
        let existing = checkout.read_file(&paths.kustomization_file())?;
        let (sync, components): (Vec<Value>, Vec<Value>) = kustomize::flux_system_objects(
            &plan.components_yaml,
            &target.sync_yaml,
            patches,
            existing.as_deref(),
            &checkout.workdir().join(paths.folder()),
        )?
        .into_iter()
        .partition(fluxbootstrap_manifests::is_sync_object);
        objects.insert(target.index, (components, sync));
    }
    Ok(Written {
        objects,
        head: checkout.head(),
    })
}

/// What every cluster task shares.
struct ClusterJob {
    /// The `--registry-creds` pull Secret, as (name, data).
    pull_secret: Option<(String, BTreeMap<String, SecretBytes>)>,
    namespace: String,
    secret_name: String,
    dry_run: bool,
    timeout: Duration,
    revision: Option<String>,
    deployments: Vec<String>,
    progress: Arc<dyn Progress>,
}

/// One cluster's part: the plan's steps for it ([`Plan::steps`]), in flux's write order: the
/// components (installed directly when Flux is not yet syncing the cluster), the pull and
/// source Secrets, the sync objects, the waits.
async fn converge(
    target: &PlannedTarget,
    steps: &[Step],
    (components, sync): (Vec<Value>, Vec<Value>),
    job: &ClusterJob,
    counts: &mut Counts,
    timings: &mut Vec<(&'static str, Duration)>,
) -> Result<(), ExecuteError> {
    let lines = Lines::new(job.progress.as_ref(), Some(&target.name));
    let cluster = &target.handle.cluster;
    let namespace = job.namespace.as_str();
    let apply_options = ApplyOptions {
        dry_run: job.dry_run,
        concurrency: 16,
        timeout: job.timeout,
    };
    let mut components = Some(components);
    let mut sync = Some(sync);
    let mut components_done = false;
    for &step in steps {
        if !components_done && !matches!(step, Step::InstallComponents | Step::ImagePullSecret) {
            lines.success("reconciled components");
            components_done = true;
        }
        match step {
            Step::InstallComponents => {
                let started = Instant::now();
                lines.action(format_args!(
                    "installing components in \"{namespace}\" namespace"
                ));
                let objects = components.clone().unwrap_or_default();
                let report = cluster.apply(objects, &apply_options, &lines).await?;
                counts.add(&report);
                lines.success("installed components");
                timings.push(("install", started.elapsed()));
            }
            // The image pull Secret of `--registry-creds`, as flux creates it after the install.
            Step::ImagePullSecret => {
                let Some(pull_secret) = &job.pull_secret else {
                    continue;
                };
                let change = secrets::reconcile_image_pull_secret(
                    cluster,
                    namespace,
                    pull_secret,
                    job.dry_run,
                )
                .await?;
                if change != Change::Unchanged && !job.dry_run {
                    counts.add_secret_change();
                }
                lines.success(format_args!(
                    "reconciled image pull secret {} ({})",
                    pull_secret.0,
                    change_word(change)
                ));
            }
            Step::SourceSecret => {
                let Some(secret) = &target.secret else {
                    continue;
                };
                write_source_secret(cluster, secret, job, counts, lines).await?;
            }
            Step::KeepSourceSecret => lines.success("source secret up to date"),
            Step::ApplySync { with_components } => {
                let started = Instant::now();
                lines.action("applying sync manifests");
                // A dry run installed nothing, so its sync objects are checked together with
                // the CRDs they need.
                let mut objects = if with_components {
                    components.take().unwrap_or_default()
                } else {
                    Vec::new()
                };
                objects.extend(sync.take().unwrap_or_default());
                let report = cluster.apply(objects, &apply_options, &lines).await?;
                counts.add(&report);
                lines.success("reconciled sync configuration");
                timings.push(("apply", started.elapsed()));
            }
            Step::WaitReady => {
                let Some(revision) = &job.revision else {
                    continue;
                };
                let started = Instant::now();
                let spec = WaitSpec {
                    namespace: namespace.to_owned(),
                    deployments: job.deployments.clone(),
                    git_repository: Some(namespace.to_owned()),
                    kustomization: Some(namespace.to_owned()),
                    revision: Some(revision.clone()),
                    reconcile_requested_at: None,
                    // The wait gets the whole `--timeout`: time spent cloning, pushing or at
                    // a prompt does not count against the controllers.
                    timeout: job.timeout,
                };
                let spinner = lines.spinner("waiting for the cluster to reconcile");
                cluster
                    .wait_ready(&spec, &lines)
                    .await
                    .map_err(ExecuteError::Wait)?;
                drop(spinner);
                lines.success("all components are healthy");
                timings.push(("wait", started.elapsed()));
            }
        }
    }
    if job.dry_run {
        lines.success("dry run finished: nothing was written");
    }
    Ok(())
}

/// Writes (or in a dry run compares) the target's source Secret, counting a change.
async fn write_source_secret(
    cluster: &Cluster,
    secret: &SourceSecret,
    job: &ClusterJob,
    counts: &mut Counts,
    lines: Lines<'_>,
) -> Result<(), ExecuteError> {
    let (namespace, name) = (job.namespace.as_str(), &job.secret_name);
    if !job.dry_run {
        lines.action(format_args!(
            "applying source secret \"{namespace}/{name}\""
        ));
    }
    match secrets::write_source_secret(cluster, namespace, name, secret, job.dry_run).await? {
        SecretWrite::WouldBe(verb) => lines.success(format_args!(
            "source secret \"{namespace}/{name}\" would be {verb}"
        )),
        SecretWrite::Done(change) => {
            if change != Change::Unchanged {
                counts.add_secret_change();
            }
            lines.success(format_args!(
                "reconciled source secret ({})",
                change_word(change)
            ));
        }
    }
    Ok(())
}
