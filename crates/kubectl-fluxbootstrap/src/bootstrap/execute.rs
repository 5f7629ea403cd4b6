//! Carrying out a plan: one clone, the plan's commits and pushes, then every target
//! concurrently.
//!
//! Invariants: the repository changes before any cluster does, so each cluster's Kustomization
//! points at a pushed commit; a failing cluster never stops the others; `kustomization.yaml` is
//! written only where the branch has none, decided again on every push attempt, and what each
//! cluster gets applied is built from the branch as pushed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fluxbootstrap_auth::SecretBytes;
use fluxbootstrap_cluster::{ApplyOptions, Change, WaitSpec};
use fluxbootstrap_git::FileWrite;
use fluxbootstrap_plan::{Step, WriteRule};
use serde_json::Value;

use super::plan::{Plan, PlannedTarget};
use super::report::{Counts, Outcome, Report, Row};
use crate::bundle;
use crate::error::Internal;
use crate::inputs;
use crate::printer::Printer;
use crate::reporters::{ClusterPrinter, change_word};
use crate::repository;
use crate::source_secret;

/// Runs `plan`, adding what happened, cluster by cluster, to `report`.
pub(crate) async fn run(plan: Plan<'_>, mut report: Report, printer: Printer) -> Result<Report> {
    if plan.core.targets.is_empty() {
        return Ok(report);
    }
    let step = Instant::now();
    let written = write_repository(&plan, &mut report, printer).await;
    report.time("git", step);
    let (args, global, fleet) = (plan.args, plan.global, plan.fleet);
    let Written { mut objects, head } = match written {
        Ok(written) => written,
        Err(err) => {
            // Nothing was applied to any cluster: say so per cluster, then fail.
            for target in plan.core.targets {
                let error = anyhow::anyhow!("the repository step failed: {err:#}");
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

    // Each cluster's components, Secrets, sync objects and waits, at most `--parallel` at a time.
    let step = Instant::now();
    let job = Arc::new(ClusterJob {
        pull_secret: plan.core.image_pull_secret.clone(),
        namespace: global.namespace.clone(),
        secret_name: args.render.secret_name.clone(),
        dry_run: args.dry_run,
        timeout: global.timeout,
        revision: head.map(|h| format!("{}@sha1:{h}", args.render.branch)),
        deployments: inputs::all_components(&plan.install),
        fleet,
        printer,
    });
    let permits = Arc::new(tokio::sync::Semaphore::new(usize::from(args.parallel)));
    let mut tasks = tokio::task::JoinSet::new();
    let steps: Vec<Vec<Step>> = plan
        .core
        .targets
        .iter()
        .map(|t| plan.core.steps(t))
        .collect();
    for (target, steps) in plan.core.targets.into_iter().zip(steps) {
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
                    if job.fleet {
                        job.printer
                            .failure(format_args!("{}: {err:#}", target.name));
                    }
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
            .push(joined.map_err(|e| Internal::new(format!("a cluster task failed: {e}")))?);
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
async fn write_repository(
    plan: &Plan<'_>,
    report: &mut Report,
    printer: Printer,
) -> Result<Written> {
    let Plan {
        args,
        ref repo,
        ref push,
        ..
    } = *plan;
    let targets = plan.core.targets.as_slice();
    let patches = plan.core.patches.as_ref();
    let mut checkout =
        repository::clone_repository(args, repo, push, plan.ca_pem.as_ref(), printer).await?;
    report.clones += 1;
    printer.success("cloned repository");

    let author = inputs::author(args);
    match targets {
        [_] => printer.action("generating component manifests"),
        _ => printer.action(format_args!(
            "generating component manifests for {} clusters",
            targets.len()
        )),
    }
    printer.success("generated component manifests");
    let last = plan.core.commits.len().saturating_sub(1);
    for (index, commit) in plan.core.commits.iter().enumerate() {
        if index == last {
            printer.action("generating sync manifests");
            if patches.is_some() {
                for target in targets {
                    let file = target.paths.kustomization_file();
                    if checkout.read_file(&file)?.is_some() {
                        printer.warning(format_args!(
                            "kept the existing \"{file}\"; make sure it carries the patches for the chosen mode"
                        ));
                    }
                }
            }
            printer.success("generated sync manifests");
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
        let (next, sha) = repository::commit_step(
            checkout,
            files,
            commit.message.clone(),
            author.clone(),
            args.dry_run,
            commit.subject,
            &args.render.branch,
            printer,
        )
        .await?;
        checkout = next;
        report.commits.extend(sha);
    }

    // What each Kustomization will own, built from the branch as pushed: with the
    // `kustomization.yaml` that is there now, ours or the user's (then `kubectl kustomize`).
    let mut objects = BTreeMap::new();
    for target in targets {
        let paths = &target.paths;
        let existing = checkout.read_file(&paths.kustomization_file())?;
        let (sync, components): (Vec<Value>, Vec<Value>) = bundle::flux_system_objects(
            &plan.core.components_yaml,
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
    fleet: bool,
    printer: Printer,
}

/// One cluster's part: the plan's steps for it ([`fluxbootstrap_plan::Plan::steps`]), in
/// flux's write order: the components (installed directly when Flux is not yet syncing the
/// cluster), the pull and source Secrets, the sync objects, the waits.
async fn converge(
    target: &PlannedTarget,
    steps: &[Step],
    (components, sync): (Vec<Value>, Vec<Value>),
    job: &ClusterJob,
    counts: &mut Counts,
    timings: &mut Vec<(&'static str, Duration)>,
) -> Result<()> {
    let printer = job.printer;
    let p = super::plan::prefix(job.fleet, &target.name);
    let cluster = &target.handle.cluster;
    let reporter = ClusterPrinter {
        printer,
        prefix: p.clone(),
    };
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
            printer.success(format_args!("{p}reconciled components"));
            components_done = true;
        }
        match step {
            Step::InstallComponents => {
                let started = Instant::now();
                printer.action(format_args!(
                    "{p}installing components in \"{namespace}\" namespace"
                ));
                let objects = components.clone().unwrap_or_default();
                let report = cluster.apply(objects, &apply_options, &reporter).await?;
                counts.add(&report);
                printer.success(format_args!("{p}installed components"));
                timings.push(("install", started.elapsed()));
            }
            // The image pull Secret of `--registry-creds`, as flux creates it after the install.
            Step::ImagePullSecret => {
                let Some(pull_secret) = &job.pull_secret else {
                    continue;
                };
                let change = source_secret::reconcile_image_pull_secret(
                    cluster,
                    namespace,
                    pull_secret,
                    job.dry_run,
                )
                .await?;
                if change != Change::Unchanged && !job.dry_run {
                    counts.add_secret_change();
                }
                printer.success(format_args!(
                    "{p}reconciled image pull secret {} ({})",
                    pull_secret.0,
                    change_word(change)
                ));
            }
            Step::SourceSecret => {
                let Some(secret) = &target.secret else {
                    continue;
                };
                write_source_secret(target, secret, job, counts, &p).await?;
            }
            Step::KeepSourceSecret => {
                printer.success(format_args!("{p}source secret up to date"));
            }
            Step::ApplySync { with_components } => {
                let started = Instant::now();
                printer.action(format_args!("{p}applying sync manifests"));
                // A dry run installed nothing, so its sync objects are checked together with
                // the CRDs they need.
                let mut objects = if with_components {
                    components.take().unwrap_or_default()
                } else {
                    Vec::new()
                };
                objects.extend(sync.take().unwrap_or_default());
                let report = cluster.apply(objects, &apply_options, &reporter).await?;
                counts.add(&report);
                printer.success(format_args!("{p}reconciled sync configuration"));
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
                // One spinner at a time: a fleet's clusters wait together, their lines say
                // enough.
                let spinner =
                    (!job.fleet).then(|| printer.progress("waiting for the cluster to reconcile"));
                cluster
                    .wait_ready(&spec, &reporter)
                    .await
                    .context("bootstrap failed")?;
                drop(spinner);
                printer.success(format_args!("{p}all components are healthy"));
                timings.push(("wait", started.elapsed()));
            }
        }
    }
    if job.dry_run {
        printer.success(format_args!("{p}dry run finished: nothing was written"));
    }
    Ok(())
}

/// Writes (or in a dry run compares) the target's source Secret, counting a change.
async fn write_source_secret(
    target: &PlannedTarget,
    secret: &fluxbootstrap_plan::SourceSecret,
    job: &ClusterJob,
    counts: &mut Counts,
    p: &str,
) -> Result<()> {
    let (printer, namespace, name) = (job.printer, job.namespace.as_str(), &job.secret_name);
    if !job.dry_run {
        printer.action(format_args!(
            "{p}applying source secret \"{namespace}/{name}\""
        ));
    }
    let cluster = &target.handle.cluster;
    match source_secret::write_source_secret(cluster, namespace, name, secret, job.dry_run).await? {
        source_secret::SecretWrite::WouldBe(verb) => printer.success(format_args!(
            "{p}source secret \"{namespace}/{name}\" would be {verb}"
        )),
        source_secret::SecretWrite::Done(change) => {
            if change != Change::Unchanged {
                counts.add_secret_change();
            }
            printer.success(format_args!(
                "{p}reconciled source secret ({})",
                change_word(change)
            ));
        }
    }
    Ok(())
}
