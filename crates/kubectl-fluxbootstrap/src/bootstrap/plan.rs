//! Building the plan: every input resolved, every credential and answer taken, every cluster
//! checked, before anything is written.
//!
//! Invariant: nothing here writes to the repository or a cluster. Preflight only reads, and
//! the prompts (the PAT, adding a generated public key) are all asked here, so a "no" or a
//! Ctrl-C at any of them leaves the repository and every cluster as they were. The one write
//! elsewhere is `--cluster-pat mint`'s new read-only PAT in Azure DevOps, made here because
//! the Secret it goes into is decided here (a rerun reuses the minted PAT the Secret names).
//! The plan ends with the Flux bundle loaded (a verified download into the user's cache, or
//! `--manifests`) and the whole repository change rendered, which `--dry-run` prints.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fluxbootstrap_cluster::{Cluster, KubeOptions, PreflightReport, PreflightRequest};
use fluxbootstrap_plan::{ChangeInputs, Folder, GitMode, ModeFlags};

use fluxbootstrap_execute::{Connected, Execution, Line, PlannedTarget, Progress, Row};

use super::targets::{self, Target};
use crate::bundle::BundleFiles;
use crate::cli::{AzdoArgs, GlobalArgs};
use crate::credentials;
use crate::error::{Hinted, Internal};
use crate::inputs;
use crate::printer::Printer;
use crate::reporters::PrinterProgress;
use crate::source_secret;

/// Everything a run will do, decided: the executor's [`Execution`] (the plan crate's
/// [`fluxbootstrap_plan::Plan`], the repository access, the limits) and how it is shown.
pub(crate) struct Plan {
    /// Whether the clusters were selected as a fleet: lines name their cluster and the run
    /// ends with a table.
    pub(crate) fleet: bool,
    /// The mode, the repository change and the targets that passed preflight, each with its
    /// Secret decided.
    pub(crate) execution: Execution,
}

/// The report of a bootstrap, with the binary's errors.
pub(crate) type Report = fluxbootstrap_execute::Report<anyhow::Error>;

impl Plan {
    /// Prints what the plan will do (`--dry-run` shows it before the diffs).
    pub(crate) fn print(&self, printer: Printer) {
        let (heading, lines) = self.execution.plan.describe();
        printer.action(heading);
        for line in lines {
            printer.item(line);
        }
    }
}

/// Builds the plan for `azdo`: inputs first (nothing is contacted until every flag is known
/// to be usable), then the credentials, then every cluster's preflight, then its Secret.
/// The report holds what building found so far: the targets skipped, the phases' timings.
pub(crate) async fn build(
    args: &AzdoArgs,
    global: &GlobalArgs,
    printer: Printer,
) -> Result<(Plan, Report)> {
    let started = Instant::now();
    let namespace = global.namespace.as_str();
    let fleet = targets::fleet_wanted(args, global);
    let lines = PrinterProgress { printer, fleet };

    let repo = inputs::resolve_repo_url(&args.repo)?;
    let mode = GitMode::from_flags(ModeFlags {
        url_is_ssh: inputs::is_ssh_input(&args.repo),
        token_auth: args.token_auth,
        with_bearer_token: args.with_bearer_token,
        ssh_hostname: args.ssh_hostname.as_deref(),
        provider: args.render.provider.as_deref(),
        azure_client_id: args.render.azure_client_id.as_deref(),
        mint_cluster_pat: args.cluster_pat == crate::cli::ClusterPat::Mint,
    })?;
    let selected = targets::select(args, global)?;
    let install = inputs::install_options(&args.render, namespace)?;
    // The sync manifests are refused here, before anything is contacted.
    let mut sync = Vec::with_capacity(selected.len());
    for target in &selected {
        sync.push(inputs::sync_yaml(
            &args.render,
            namespace,
            &target.paths,
            &repo,
            &mode,
        )?);
    }
    let pull_secret = inputs::image_pull_secret(args)?;
    let ca_pem = inputs::read_ca_file(args.repo.ca_file.as_deref())?;
    // The push credential and the cluster's SSH host key decision, which the patches and
    // every cluster's Secret reuse.
    let credentials::Credentials {
        private_key,
        push,
        host_keys,
    } = credentials::credentials(args, &mode, &repo, printer).await?;
    let patches = inputs::kustomization_patches(&args.render, &mode, host_keys.as_ref());
    let repository =
        crate::repository::repository_access(args, &repo, &push, ca_pem.as_ref(), printer)?;

    let mut report = Report {
        started,
        repository: repo.https_url(),
        branch: args.render.branch.clone(),
        mode: mode.name(),
        dry_run: args.dry_run,
        commits: Vec::new(),
        clones: 0,
        timings: Vec::new(),
        rows: Vec::new(),
        repository_error: None,
    };

    // Preflight of every cluster, concurrently, before the repository changes.
    let step = Instant::now();
    let mut ready = Vec::new();
    for (index, ((target, sync_yaml), (result, spent))) in selected
        .iter()
        .zip(sync)
        .zip(preflight_all(&selected, args, global, fleet, printer).await)
        .enumerate()
    {
        let name = target.context.clone().unwrap_or_default();
        match result {
            Ok((cluster, preflight)) => ready.push(PlannedTarget {
                index,
                name: cluster.context().to_owned(),
                server_url: cluster.server_url().to_owned(),
                paths: target.paths.clone(),
                sync_yaml,
                // flux's `mustInstallManifests`: no Kustomization has applied a revision yet.
                must_install: preflight
                    .existing
                    .as_ref()
                    .and_then(|e| e.applied_revision.as_deref())
                    .is_none_or(str::is_empty),
                secret: None,
                handle: Connected { cluster, spent },
            }),
            Err(err) => {
                lines.cluster_failed(&name, &err);
                let row = Row::skipped(index, name, target.paths.sync_path(), spent, err);
                report.rows.push(row);
            }
        }
    }
    refuse_shared_servers(&ready, namespace)?;
    report.time("preflight", step);

    // Secrets one cluster at a time: a generated key asks the user to register it.
    let step = Instant::now();
    let mut targets = Vec::with_capacity(ready.len());
    let pat_client = tokio::sync::OnceCell::new();
    for mut target in ready {
        let step = Instant::now();
        let secret = source_secret::secret_for_mode(&source_secret::SecretInputs {
            mode: &mode,
            args,
            push: &push,
            private_key: private_key.as_ref(),
            ca_pem: ca_pem.as_ref(),
            repo: &repo,
            cluster: &target.handle.cluster,
            namespace,
            printer,
            pat_client: &pat_client,
        })
        .await;
        target.handle.spent += step.elapsed();
        match secret {
            Ok(secret) => {
                target.secret = secret;
                targets.push(target);
            }
            // A refused prompt or a Ctrl-C ends the whole run, before the first commit.
            Err(err) if is_abort(&err) => return Err(err),
            Err(err) => {
                lines.cluster_failed(&target.name, &err);
                let row = Row::skipped(
                    target.index,
                    target.name,
                    target.paths.sync_path(),
                    target.handle.spent,
                    err,
                );
                report.rows.push(row);
            }
        }
    }
    report.time("secrets", step);

    // The repository change, whole, before the first clone: `--dry-run` shows it, and the
    // executor only commits it. Without a target nothing is committed, and nothing loaded.
    let (flux_version, components_yaml, commits) = if targets.is_empty() {
        (String::new(), String::new(), Vec::new())
    } else {
        let step = Instant::now();
        let bundle = BundleFiles::load(&args.render, global.timeout, printer).await?;
        let components_yaml = bundle.render(&install)?;
        let folders: Vec<Folder<'_>> = targets.iter().map(PlannedTarget::folder).collect();
        let commits = fluxbootstrap_plan::repository_change(&ChangeInputs {
            flux_version: &bundle.version,
            components_yaml: &components_yaml,
            patches: patches.as_ref(),
            folders: &folders,
            single_commit: args.single_commit,
            message_appendix: &args.commit_message_appendix,
        });
        report.time("bundle", step);
        (bundle.version, components_yaml, commits)
    };

    let plan = Plan {
        fleet,
        execution: Execution {
            plan: fluxbootstrap_plan::Plan {
                repository: repo.https_url(),
                mode,
                branch: args.render.branch.clone(),
                namespace: namespace.to_owned(),
                secret_name: args.render.secret_name.clone(),
                flux_version,
                components_yaml,
                patches,
                commits,
                dry_run: args.dry_run,
                image_pull_secret: pull_secret,
                targets,
            },
            repository,
            parallel: usize::from(args.parallel),
            timeout: global.timeout,
            deployments: inputs::all_components(&install),
        },
    };
    Ok((plan, report))
}

/// Whether `err` is the user declining a prompt: it stops the run, not only one cluster.
fn is_abort(err: &anyhow::Error) -> bool {
    err.downcast_ref::<crate::prompt::Declined>().is_some()
}

/// Two targets that reached the same API server would bootstrap one cluster twice at once, each
/// with its own `spec.path`, and the last writer would win (common with `--all-contexts`, where
/// several contexts name one cluster). Refused after preflight, before anything is written,
/// naming both contexts. A context that failed preflight bootstraps nothing and is not counted.
fn refuse_shared_servers(ready: &[PlannedTarget], namespace: &str) -> Result<(), Hinted> {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for item in ready {
        let server = item.server_url.trim_end_matches('/').to_ascii_lowercase();
        if let Some((_, first)) = seen.iter().find(|(known, _)| *known == server) {
            return Err(Hinted::new(
                format!(
                    "contexts `{first}` and `{}` both reach the API server {} (namespace `{namespace}`): \
                     bootstrapping both would write one cluster twice, with different paths",
                    item.name, item.server_url
                ),
                "select each cluster once: drop one of the two `--context` flags, or narrow \
                 `--context-selector` (with `--all-contexts`, use `--context-selector` instead)",
            ));
        }
        seen.push((server, item.name.as_str()));
    }
    Ok(())
}

type PreflightResult = Result<(Cluster, PreflightReport)>;

/// Connects to and preflights every target concurrently, each within `--timeout`; the
/// results come back in the targets' order.
async fn preflight_all(
    targets: &[Target],
    args: &AzdoArgs,
    global: &GlobalArgs,
    fleet: bool,
    printer: Printer,
) -> Vec<(PreflightResult, Duration)> {
    let lines = PrinterProgress { printer, fleet };
    let mut tasks = tokio::task::JoinSet::new();
    for (index, target) in targets.iter().enumerate() {
        let options = KubeOptions {
            context: target.context.clone(),
            ..inputs::kube_options(global)
        };
        let request = PreflightRequest {
            namespace: global.namespace.clone(),
            path: target.paths.sync_path(),
            force: args.force,
        };
        let timeout = global.timeout;
        tasks.spawn(async move {
            let started = Instant::now();
            let result = tokio::time::timeout(timeout, async {
                let cluster = Cluster::connect(&options).await?;
                printer.action(format_args!(
                    "checking cluster \"{}\" ({})",
                    cluster.context(),
                    cluster.server_url()
                ));
                let report = cluster
                    .preflight(&request)
                    .await
                    .context("preflight failed")?;
                Ok::<_, anyhow::Error>((cluster, report))
            })
            .await
            .unwrap_or_else(|_| {
                Err(Hinted::new(
                    format!("preflight timed out after {}", fluxbootstrap_plan::go_duration(timeout)),
                    "check that the API server is reachable, or raise `--timeout`",
                )
                .into())
            });
            if let Ok((cluster, report)) = &result {
                let context = Some(cluster.context());
                lines.line(
                    Line::Success,
                    context,
                    format_args!("Kubernetes {} and cluster-admin rights", report.server_version),
                );
                if let Some(existing) = &report.existing
                    && let Some(tool) = existing
                        .managed_by
                        .as_deref()
                        .filter(|t| !t.is_empty() && *t != "flux")
                {
                    lines.line(
                        Line::Warning,
                        context,
                        format_args!(
                            "Flux {} was installed on this cluster with {tool}; continuing because of `--force`",
                            existing.version.as_deref().unwrap_or("(unknown version)")
                        ),
                    );
                }
            }
            (index, result, started.elapsed())
        });
    }
    let mut results: Vec<Option<(PreflightResult, Duration)>> =
        targets.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result, spent)) => results[index] = Some((result, spent)),
            Err(err) => {
                // A panicked task cannot say which cluster it was; report it on every gap below.
                let message = format!("the preflight task failed: {err}");
                for slot in results.iter_mut().filter(|s| s.is_none()) {
                    *slot = Some((Err(Internal::new(message.clone()).into()), Duration::ZERO));
                }
            }
        }
    }
    results
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| {
                (
                    Err(Internal::new("the preflight task did not finish").into()),
                    Duration::ZERO,
                )
            })
        })
        .collect()
}
