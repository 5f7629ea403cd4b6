//! `azdo`: the whole bootstrap, in flux's order.
//!
//! Preflight (before the repository changes) → bundle → clone → components commit/push →
//! direct component install when Flux is not yet syncing → auth Secret → sync commit/push →
//! apply of components, sync objects and our patches → readiness waits. Each step prints a
//! flux-style line; `--dry-run` runs the same steps but writes nothing anywhere.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fluxbootstrap_auth::{SecretBytes, SecretString};
use fluxbootstrap_cluster::{ApplyOptions, Change, Cluster, PreflightRequest, WaitSpec};
use fluxbootstrap_git::{Author, Checkout};
use serde_json::json;

use crate::cli::{AzdoArgs, GlobalArgs};
use crate::commands::shared::{
    self, BundleFiles, ClusterPrinter, GitPrinter, RepoPaths, confirm, kube_options,
};
use crate::error::Hinted;
use crate::git_mode::{GitMode, ModeFlags};
use crate::printer::Printer;

/// What a bootstrap did, for `--output json` and the closing lines.
#[derive(Debug, Default)]
struct Summary {
    commits: Vec<String>,
    created: usize,
    configured: usize,
    unchanged: usize,
    secret: Option<&'static str>,
    writes: usize,
    timings: Vec<(&'static str, Duration)>,
}

impl Summary {
    fn count(&mut self, report: &fluxbootstrap_cluster::ApplyReport) {
        self.writes += report.writes;
        for entry in &report.entries {
            match entry.change {
                Change::Created => self.created += 1,
                Change::Configured => self.configured += 1,
                Change::Unchanged => self.unchanged += 1,
            }
        }
    }
}

pub(crate) async fn run(args: &AzdoArgs, global: &GlobalArgs, printer: Printer) -> Result<()> {
    if super::fleet::wanted(args, global) {
        return super::fleet::run(args, global, printer).await;
    }
    let started = Instant::now();
    let mut summary = Summary::default();
    let namespace = global.namespace.as_str();

    // Inputs first: nothing is contacted until every flag is known to be usable.
    let repo = shared::resolve_repo_url(&args.repo)?;
    let mode = GitMode::from_flags(ModeFlags {
        url_is_ssh: shared::is_ssh_input(&args.repo),
        token_auth: args.token_auth,
        with_bearer_token: args.with_bearer_token,
        ssh_hostname: args.ssh_hostname.as_deref(),
        provider: args.render.provider.as_deref(),
        azure_client_id: args.render.azure_client_id.as_deref(),
        cluster_pat: args.cluster_pat,
    })?;
    let paths = RepoPaths::new(&args.render.path, namespace)?;
    let install = shared::install_options(&args.render, namespace)?;
    let sync_yaml = shared::render_sync(&args.render, namespace, &paths, &repo, &mode)?;
    let pull_secret = shared::image_pull_secret(args)?;
    let ca_pem = shared::read_ca_file(args.repo.ca_file.as_deref())?;
    let shared::Credentials {
        private_key,
        push: push_auth,
        host_keys,
    } = shared::credentials(args, &mode, &repo, printer).await?;

    // Preflight before the repository changes, so a forbidden context leaves no commit behind.
    let cluster = Cluster::connect(&kube_options(global)).await?;
    printer.action(format_args!(
        "checking cluster \"{}\" ({})",
        cluster.context(),
        cluster.server_url()
    ));
    let preflight = cluster
        .preflight(&PreflightRequest {
            namespace: namespace.to_owned(),
            path: paths.sync_path(),
            force: args.force,
        })
        .await
        .context("preflight failed")?;
    printer.success(format_args!(
        "Kubernetes {} and cluster-admin rights",
        preflight.server_version
    ));
    if let Some(existing) = &preflight.existing
        && let Some(tool) = existing
            .managed_by
            .as_deref()
            .filter(|t| !t.is_empty() && *t != "flux")
    {
        printer.warning(format_args!(
            "Flux {} was installed on this cluster with {tool}; continuing because of `--force`",
            existing.version.as_deref().unwrap_or("(unknown version)")
        ));
    }

    let step = Instant::now();
    let bundle = BundleFiles::load(&args.render, global.timeout, printer).await?;
    let components_yaml = bundle.render(&install)?;
    summary.timings.push(("bundle", step.elapsed()));

    // Clone.
    let step = Instant::now();
    let mut checkout =
        shared::clone_repository(args, &repo, &push_auth, ca_pem.as_ref(), printer).await?;
    printer.success("cloned repository");
    summary.timings.push(("clone", step.elapsed()));

    let (author, appendix) = shared::author_and_appendix(args);

    // Components commit.
    printer.action("generating component manifests");
    printer.success("generated component manifests");
    let component_files = vec![(
        paths.components_file(),
        components_yaml.clone().into_bytes(),
    )];
    let message = format!("Add Flux {} component manifests{appendix}", bundle.version);
    let (new_checkout, sha) = commit_step(
        checkout,
        component_files,
        message,
        author.clone(),
        args.dry_run,
        "component manifests",
        &args.render.branch,
        printer,
    )
    .await?;
    checkout = new_checkout;
    summary.commits.extend(sha);

    // Direct install when Flux is not yet syncing this cluster (flux's `mustInstallManifests`).
    let must_install = preflight
        .existing
        .as_ref()
        .and_then(|e| e.applied_revision.as_deref())
        .is_none_or(str::is_empty);
    let patches = shared::kustomization_patches(&args.render, &mode, host_keys.as_ref());
    let apply_options = ApplyOptions {
        dry_run: args.dry_run,
        concurrency: 16,
        timeout: global.timeout,
    };
    // What the Kustomization will own, built like flux: with the user's kustomization.yaml
    // (and its patches) when the folder has one.
    let kustomization_file = paths.kustomization_file();
    let existing_kustomization = checkout.read_file(&kustomization_file)?;
    let flux_system = shared::flux_system_objects(
        &components_yaml,
        &sync_yaml,
        patches.as_ref(),
        existing_kustomization.as_deref(),
        &checkout.workdir().join(paths.folder()),
    )?;
    if must_install {
        let step = Instant::now();
        printer.action(format_args!(
            "installing components in \"{namespace}\" namespace"
        ));
        // The sync objects come after the Secret they refer to.
        let objects: Vec<serde_json::Value> = flux_system
            .iter()
            .filter(|o| !fluxbootstrap_manifests::is_sync_object(o))
            .cloned()
            .collect();
        let report = cluster
            .apply(objects, &apply_options, &ClusterPrinter(printer))
            .await?;
        summary.count(&report);
        printer.success("installed components");
        summary.timings.push(("install", step.elapsed()));
    }
    // The image pull Secret of `--registry-creds`, as flux creates it after the install.
    if let Some(pull_secret) = &pull_secret {
        let change =
            shared::reconcile_image_pull_secret(&cluster, namespace, pull_secret, args.dry_run)
                .await?;
        let name = &pull_secret.0;
        if change != Change::Unchanged && !args.dry_run {
            summary.writes += 1;
        }
        printer.success(format_args!(
            "reconciled image pull secret {name} ({})",
            change_word(change)
        ));
    }
    printer.success("reconciled components");

    // The auth Secret.
    let secret = shared::secret_for_mode(
        &mode,
        &args.repo,
        &push_auth,
        private_key.as_ref(),
        ca_pem.as_ref(),
        args,
        &repo,
        &cluster,
        namespace,
        printer,
    )
    .await?;
    if let Some(secret) = secret {
        let name = &args.render.secret_name;
        if !args.dry_run {
            printer.action(format_args!(
                "applying source secret \"{namespace}/{name}\""
            ));
        }
        match shared::write_source_secret(&cluster, namespace, name, &secret, args.dry_run).await? {
            shared::SecretWrite::WouldBe(verb) => printer.success(format_args!(
                "source secret \"{namespace}/{name}\" would be {verb}"
            )),
            shared::SecretWrite::Done(change) => {
                if change != Change::Unchanged {
                    summary.writes += 1;
                }
                summary.secret = Some(mode.name());
                printer.success(format_args!(
                    "reconciled source secret ({})",
                    change_word(change)
                ));
            }
        }
    } else if !matches!(mode, GitMode::AzureProvider { .. }) {
        printer.success("source secret up to date");
    }

    // Sync manifests.
    printer.action("generating sync manifests");
    let mut sync_files = vec![(paths.sync_file(), sync_yaml.clone().into_bytes())];
    if existing_kustomization.is_none() {
        sync_files.push((
            kustomization_file,
            fluxbootstrap_manifests::render_kustomization(&patches.clone().unwrap_or_default())
                .into_bytes(),
        ));
    } else if patches.is_some() {
        printer.warning(format_args!(
            "kept the existing \"{}\"; make sure it carries the patches for the chosen mode",
            paths.kustomization_file()
        ));
    }
    printer.success("generated sync manifests");
    let message = format!("Add Flux sync manifests{appendix}");
    let (checkout, sha) = commit_step(
        checkout,
        sync_files,
        message,
        author,
        args.dry_run,
        "sync manifests",
        &args.render.branch,
        printer,
    )
    .await?;
    summary.commits.extend(sha);
    let head = checkout.head();
    drop(checkout);

    // Apply everything the Kustomization will own.
    let step = Instant::now();
    printer.action("applying sync manifests");
    let report = cluster
        .apply(flux_system, &apply_options, &ClusterPrinter(printer))
        .await?;
    summary.count(&report);
    printer.success("reconciled sync configuration");
    summary.timings.push(("apply", step.elapsed()));

    // Waits.
    if args.dry_run {
        printer.success("dry run finished: nothing was written");
    } else if let Some(head) = head {
        let step = Instant::now();
        let revision = format!("{}@sha1:{head}", args.render.branch);
        let spec = WaitSpec {
            namespace: namespace.to_owned(),
            deployments: shared::all_components(&install),
            git_repository: Some(namespace.to_owned()),
            kustomization: Some(namespace.to_owned()),
            revision: Some(revision),
            reconcile_requested_at: None,
            // The wait gets the whole `--timeout`: time spent cloning, pushing or at a
            // prompt does not count against the controllers.
            timeout: global.timeout,
        };
        let spinner = printer.progress("waiting for the cluster to reconcile");
        cluster
            .wait_ready(&spec, &ClusterPrinter(printer))
            .await
            .context("bootstrap failed")?;
        drop(spinner);
        printer.success("all components are healthy");
        summary.timings.push(("wait", step.elapsed()));
    }

    if printer.json() {
        let timings: BTreeMap<&str, f64> = summary
            .timings
            .iter()
            .map(|(k, d)| (*k, d.as_secs_f64()))
            .collect();
        let out = json!({
            "context": cluster.context(),
            "repository": repo.https_url(),
            "branch": args.render.branch,
            "path": paths.sync_path(),
            "mode": mode.name(),
            "dryRun": args.dry_run,
            "commits": summary.commits,
            "objects": {"created": summary.created, "configured": summary.configured, "unchanged": summary.unchanged},
            "secret": summary.secret,
            "writes": summary.writes,
            "durationSeconds": started.elapsed().as_secs_f64(),
            "timings": timings,
        });
        printer.data(format_args!("{out:#}\n"))?;
    }
    Ok(())
}

pub(super) fn change_word(change: Change) -> &'static str {
    match change {
        Change::Created => "created",
        Change::Configured => "configured",
        Change::Unchanged => "unchanged",
    }
}

/// Commits `files` and pushes, or in dry-run mode prints the diff; returns the checkout back.
#[expect(
    clippy::too_many_arguments,
    reason = "a linear step of the bootstrap; a struct would only rename them"
)]
pub(super) async fn commit_step(
    mut checkout: Checkout,
    files: Vec<(String, Vec<u8>)>,
    message: String,
    author: Author,
    dry_run: bool,
    what: &'static str,
    branch: &str,
    printer: Printer,
) -> Result<(Checkout, Option<String>)> {
    if dry_run {
        let mut changed = false;
        for (path, contents) in &files {
            let old = checkout.read_file(path)?;
            if old.as_deref() != Some(contents.as_slice()) {
                changed = true;
                printer.data(shared::unified_diff(path, old.as_deref(), contents))?;
            }
        }
        if changed {
            printer.success(format_args!("{what} would be committed to \"{branch}\""));
        } else {
            printer.success(format_args!("{what} are up to date"));
        }
        return Ok((checkout, None));
    }
    let spinner = printer.progress(format!("pushing {what}"));
    let (checkout, sha) = tokio::task::spawn_blocking(move || {
        let sha = checkout.commit_and_push(&files, &message, &author, &GitPrinter(printer));
        (checkout, sha)
    })
    .await
    .context("the push task failed")?;
    drop(spinner);
    let sha = sha.with_context(|| format!("failed to push {what}"))?;
    match &sha {
        Some(sha) => printer.success(format_args!(
            "committed and pushed {what} to \"{branch}\" (\"{sha}\")"
        )),
        None => printer.success(format_args!("{what} are up to date")),
    }
    Ok((checkout, sha))
}

/// Asks the user to add `public_key` to Azure DevOps, unless `--silent`/`--yes`.
pub(crate) async fn prompt_public_key(
    public_key: &str,
    org_keys_url: &str,
    silent: bool,
    printer: Printer,
) -> Result<()> {
    printer.success(format_args!("public key: {public_key}"));
    if silent {
        return Ok(());
    }
    printer.action(format_args!("add it to the SSH public keys of an Azure DevOps user with access to the repository: {org_keys_url}"));
    if !confirm(
        "Please give the key access to your repository",
        std::io::stdin().is_terminal(),
    )
    .await?
    {
        return Err(Hinted::new(
            "aborting",
            "add the public key in Azure DevOps, then run the command again (or pass `--silent`)",
        )
        .into());
    }
    Ok(())
}

/// The Secret data for token auth: what flux writes, and nothing stale.
pub(crate) fn token_secret(
    username: &str,
    pat: &SecretString,
    bearer: bool,
    ca_pem: Option<&Vec<u8>>,
) -> BTreeMap<String, SecretBytes> {
    let mut data = BTreeMap::new();
    if bearer {
        data.insert(
            "bearerToken".to_owned(),
            fluxbootstrap_auth::secret_bytes(pat),
        );
    } else {
        data.insert(
            "username".to_owned(),
            SecretBytes::from(username.as_bytes().to_vec()),
        );
        data.insert("password".to_owned(), fluxbootstrap_auth::secret_bytes(pat));
    }
    if let Some(ca) = ca_pem {
        data.insert("ca.crt".to_owned(), SecretBytes::from(ca.clone()));
    }
    data
}
