//! `azdo` for a fleet (issue 8): several kubeconfig contexts bootstrapped from one repository in
//! one run.
//!
//! Every selected cluster is preflighted concurrently before the repository changes, so a
//! forbidden or unreachable context is reported (and skipped) while the healthy ones proceed.
//! Secrets are resolved one cluster at a time, because a generated SSH key asks the user to
//! register it. Then one clone, one commit for every cluster's components and one for every
//! cluster's sync manifests (or one with `--single-commit`), and finally each cluster's install,
//! Secret, apply and waits run concurrently, at most `--parallel` at a time. A failing cluster
//! never stops the others; the run ends with a table (and `--output json`) per cluster, also
//! when the clone or a push fails (every cluster is then skipped, nothing applied).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fluxbootstrap_cluster::{
    ApplyEntry, ApplyOptions, ApplyReporter, Change, Cluster, KubeOptions, PreflightReport,
    PreflightRequest, WaitReporter, WaitSpec, WaitTarget,
};
use serde_json::{Value, json};

use crate::cli::{AzdoArgs, GlobalArgs};
use crate::commands::azdo::{change_word, commit_step};
use crate::commands::shared::{self, BundleFiles, RepoPaths};
use crate::error::Hinted;
use crate::git_mode::{GitMode, ModeFlags};
use crate::printer::Printer;

/// The placeholders `--path` may hold in a fleet.
const PLACEHOLDERS: [&str; 3] = ["{context}", "{cluster}", "{namespace}"];

/// Whether the command line asks for the fleet flow rather than the single-cluster one.
pub(crate) fn wanted(args: &AzdoArgs, global: &GlobalArgs) -> bool {
    global.context.len() > 1
        || args.all_contexts
        || args.context_selector.is_some()
        || PLACEHOLDERS.iter().any(|p| args.render.path.contains(p))
}

/// One selected cluster and where it lives in the repository.
#[derive(Debug, Clone)]
struct Target {
    context: String,
    paths: RepoPaths,
}

/// What happened to one cluster.
#[derive(Debug)]
struct Row {
    context: String,
    path: String,
    result: Outcome,
    counts: Counts,
    duration: Duration,
    error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Something changed on the cluster.
    Bootstrapped,
    /// Everything was already as wanted.
    UpToDate,
    /// Preflight, the Secret or the repository step failed before anything was applied to
    /// the cluster.
    Skipped,
    /// The cluster failed after the repository changed.
    Failed,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Bootstrapped => "bootstrapped",
            Outcome::UpToDate => "up to date",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// Objects one cluster's apply touched.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    created: usize,
    configured: usize,
    unchanged: usize,
    secret_changed: bool,
}

impl Counts {
    fn changed(self) -> usize {
        self.created + self.configured + usize::from(self.secret_changed)
    }

    fn add(&mut self, report: &fluxbootstrap_cluster::ApplyReport) {
        for entry in &report.entries {
            match entry.change {
                Change::Created => self.created += 1,
                Change::Configured => self.configured += 1,
                Change::Unchanged => self.unchanged += 1,
            }
        }
    }
}

/// A cluster that passed preflight, with what the concurrent phase needs.
struct Ready {
    target: Target,
    cluster: Cluster,
    preflight: PreflightReport,
    secret: Option<shared::SourceSecret>,
    spent: Duration,
}

/// Two targets that reached the same API server would bootstrap one cluster twice at once, each
/// with its own `spec.path`, and the last writer would win (common with `--all-contexts`, where
/// several contexts name one cluster). Refused after preflight, before anything is written,
/// naming both contexts. A context that failed preflight bootstraps nothing and is not counted.
fn refuse_shared_servers(ready: &[Ready], namespace: &str) -> Result<(), Hinted> {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for item in ready {
        let server = item
            .cluster
            .server_url()
            .trim_end_matches('/')
            .to_ascii_lowercase();
        if let Some((_, first)) = seen.iter().find(|(known, _)| *known == server) {
            return Err(Hinted::new(
                format!(
                    "contexts `{first}` and `{}` both reach the API server {} (namespace `{namespace}`): \
                     bootstrapping both would write one cluster twice, with different paths",
                    item.target.context,
                    item.cluster.server_url()
                ),
                "select each cluster once: drop one of the two `--context` flags, or narrow \
                 `--context-selector` (with `--all-contexts`, use `--context-selector` instead)",
            ));
        }
        seen.push((server, item.target.context.as_str()));
    }
    Ok(())
}

/// Runs the fleet bootstrap.
pub(crate) async fn run(args: &AzdoArgs, global: &GlobalArgs, printer: Printer) -> Result<()> {
    let started = Instant::now();
    let namespace = global.namespace.as_str();

    // Inputs, the selection and the paths: all refused before anything is contacted.
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
    let targets = select_targets(args, global)?;
    let install = shared::install_options(&args.render, namespace)?;
    // The sync manifests and the pull Secret are refused here, before the components commit.
    for target in &targets {
        shared::render_sync(&args.render, namespace, &target.paths, &repo, &mode)?;
    }
    let pull_secret = shared::image_pull_secret(args)?;
    let ca_pem = shared::read_ca_file(args.repo.ca_file.as_deref())?;
    // The patches and every cluster's Secret reuse the host key decision made here.
    let shared::Credentials {
        private_key,
        push: push_auth,
        ..
    } = shared::credentials(args, &mode, &repo, printer).await?;

    // Preflight of every cluster, concurrently, before the repository changes.
    let mut timings: Vec<(&str, f64)> = Vec::new();
    let mut step = Instant::now();
    let mut rows = Vec::new();
    let mut ready = Vec::new();
    for (target, result, spent) in preflight_all(&targets, args, global, printer).await {
        match result {
            Ok((cluster, preflight)) => ready.push(Ready {
                target,
                cluster,
                preflight,
                secret: None,
                spent,
            }),
            Err(err) => {
                let error = format!("{err:#}");
                printer.failure(format_args!("{}: {error}", target.context));
                rows.push(skipped(&target, spent, error));
            }
        }
    }

    refuse_shared_servers(&ready, namespace)?;
    timings.push(("preflight", step.elapsed().as_secs_f64()));
    step = Instant::now();
    // Secrets one cluster at a time: a generated key asks the user to register it.
    let mut healthy = Vec::new();
    for mut item in ready {
        let step = Instant::now();
        let secret = shared::secret_for_mode(
            &mode,
            &args.repo,
            &push_auth,
            private_key.as_ref(),
            ca_pem.as_ref(),
            args,
            &repo,
            &item.cluster,
            namespace,
            printer,
        )
        .await;
        item.spent += step.elapsed();
        match secret {
            Ok(secret) => {
                item.secret = secret;
                healthy.push(item);
            }
            Err(err) => {
                let error = format!("{err:#}");
                printer.failure(format_args!("{}: {error}", item.target.context));
                rows.push(skipped(&item.target, item.spent, error));
            }
        }
    }

    timings.push(("secrets", step.elapsed().as_secs_f64()));
    step = Instant::now();
    let mut commits = Vec::new();
    let mut clones = 0;
    let written = if healthy.is_empty() {
        None
    } else {
        Some(
            write_repository(
                &RepositoryJob {
                    args,
                    global,
                    repo: &repo,
                    mode: &mode,
                    install: &install,
                    push_auth: &push_auth,
                    ca_pem: ca_pem.as_ref(),
                    healthy: &healthy,
                },
                &mut commits,
                &mut clones,
                printer,
            )
            .await,
        )
    };
    if written.is_some() {
        timings.push(("git", step.elapsed().as_secs_f64()));
    }
    let mut repository_error = None;
    match written {
        None => {}
        Some(Err(err)) => {
            // Nothing was applied to any cluster: say so per cluster, then fail.
            let error = format!("the repository step failed: {err:#}");
            for item in &healthy {
                rows.push(skipped(&item.target, item.spent, error.clone()));
            }
            repository_error = Some(err);
        }
        Some(Ok(Written {
            mut flux_system,
            head,
        })) => {
            step = Instant::now();
            // Each cluster's install, Secret, apply and waits, at most `--parallel` at a time.
            let shared_job = Arc::new(JobShared {
                pull_secret,
                namespace: namespace.to_owned(),
                secret_name: args.render.secret_name.clone(),
                dry_run: args.dry_run,
                timeout: global.timeout,
                revision: head.map(|h| format!("{}@sha1:{h}", args.render.branch)),
                deployments: shared::all_components(&install),
                printer,
            });
            let permits = Arc::new(tokio::sync::Semaphore::new(usize::from(args.parallel)));
            let mut tasks = tokio::task::JoinSet::new();
            for (index, item) in healthy.into_iter().enumerate() {
                let shared_job = Arc::clone(&shared_job);
                let permits = Arc::clone(&permits);
                let objects = flux_system.remove(&item.target.context).unwrap_or_default();
                tasks.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    let step = Instant::now();
                    let mut counts = Counts::default();
                    let result = converge(&item, objects, &shared_job, &mut counts).await;
                    (
                        index,
                        item.target,
                        counts,
                        item.spent + step.elapsed(),
                        result,
                    )
                });
            }
            let mut done = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                done.push(joined.context("a cluster task failed")?);
            }
            done.sort_by_key(|(index, ..)| *index);
            for (_, target, counts, duration, result) in done {
                let (result, error) = match result {
                    Ok(()) if counts.changed() == 0 => (Outcome::UpToDate, None),
                    Ok(()) => (Outcome::Bootstrapped, None),
                    Err(err) => {
                        let error = format!("{err:#}");
                        printer.failure(format_args!("{}: {error}", target.context));
                        (Outcome::Failed, Some(error))
                    }
                };
                rows.push(Row {
                    context: target.context,
                    path: target.paths.sync_path(),
                    result,
                    counts,
                    duration,
                    error,
                });
            }
        }
    }

    if repository_error.is_none() {
        timings.push(("clusters", step.elapsed().as_secs_f64()));
    }
    let failed = report(
        &Summary {
            rows: &rows,
            targets: &targets,
            repo: &repo,
            args,
            mode: &mode,
            commits: &commits,
            clones,
            started,
            timings: &timings,
        },
        printer,
    )?;
    if let Some(err) = repository_error {
        return Err(err);
    }
    if failed > 0 {
        return Err(Hinted::new(
            format!("{failed} of {} clusters were not bootstrapped", rows.len()),
            "fix what the table says and run the same command again: clusters that are up to date are left alone",
        )
        .into());
    }
    Ok(())
}

/// What the run did, for the closing table and `--output json`.
struct Summary<'a> {
    rows: &'a [Row],
    targets: &'a [Target],
    repo: &'a fluxbootstrap_azdo::RepoUrl,
    args: &'a AzdoArgs,
    mode: &'a GitMode,
    commits: &'a [String],
    clones: usize,
    started: Instant,
    timings: &'a [(&'static str, f64)],
}

/// Prints the table (and the JSON summary) in the selection order, whatever order the
/// clusters finished in; returns how many clusters were not bootstrapped.
fn report(summary: &Summary<'_>, printer: Printer) -> Result<usize> {
    let order: HashMap<&str, usize> = summary
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.context.as_str(), i))
        .collect();
    let mut rows: Vec<&Row> = summary.rows.iter().collect();
    rows.sort_by_key(|r| order.get(r.context.as_str()).copied().unwrap_or(usize::MAX));
    printer.stderr(table(&rows));
    if printer.json() {
        let clusters: Vec<Value> = rows.iter().map(|r| row_json(r)).collect();
        let out = json!({
            "repository": summary.repo.https_url(),
            "branch": summary.args.render.branch,
            "mode": summary.mode.name(),
            "dryRun": summary.args.dry_run,
            "commits": summary.commits,
            "clones": summary.clones,
            "clusters": clusters,
            "durationSeconds": summary.started.elapsed().as_secs_f64(),
            "timings": summary.timings.iter().copied().collect::<BTreeMap<_, _>>(),
        });
        printer.data(format_args!("{out:#}\n"))?;
    }
    Ok(rows
        .iter()
        .filter(|r| matches!(r.result, Outcome::Skipped | Outcome::Failed))
        .count())
}

/// What the repository step needs.
struct RepositoryJob<'a> {
    args: &'a AzdoArgs,
    global: &'a GlobalArgs,
    repo: &'a fluxbootstrap_azdo::RepoUrl,
    mode: &'a GitMode,
    install: &'a fluxbootstrap_manifests::InstallOptions,
    push_auth: &'a shared::PushAuth,
    ca_pem: Option<&'a Vec<u8>>,
    healthy: &'a [Ready],
}

/// What the repository step leaves for the clusters.
struct Written {
    /// Per context: what its Kustomization will own, as (components, sync objects).
    flux_system: HashMap<String, (Vec<Value>, Vec<Value>)>,
    head: Option<String>,
}

/// One clone, then the component and sync commits for every healthy cluster. Commits pushed
/// before a failure are recorded in `commits` all the same.
async fn write_repository(
    job: &RepositoryJob<'_>,
    commits: &mut Vec<String>,
    clones: &mut usize,
    printer: Printer,
) -> Result<Written> {
    let RepositoryJob {
        args,
        global,
        repo,
        mode,
        install,
        push_auth,
        ca_pem,
        healthy,
    } = *job;
    let namespace = global.namespace.as_str();
    let bundle = BundleFiles::load(&args.render, global.timeout, printer).await?;
    let components_yaml = bundle.render(install)?;

    let mut checkout = shared::clone_repository(args, repo, push_auth, ca_pem, printer).await?;
    *clones += 1;
    printer.success("cloned repository");

    let (author, appendix) = shared::author_and_appendix(args);

    printer.action(format_args!(
        "generating component manifests for {} clusters",
        healthy.len()
    ));
    let component_files: Vec<(String, Vec<u8>)> = healthy
        .iter()
        .map(|r| {
            (
                r.target.paths.components_file(),
                components_yaml.clone().into_bytes(),
            )
        })
        .collect();
    printer.success("generated component manifests");
    let mut pending = component_files;
    if !args.single_commit {
        let message = format!("Add Flux {} component manifests{appendix}", bundle.version);
        let (next, sha) = commit_step(
            checkout,
            std::mem::take(&mut pending),
            message,
            author.clone(),
            args.dry_run,
            "component manifests",
            &args.render.branch,
            printer,
        )
        .await?;
        checkout = next;
        commits.extend(sha);
    }

    // Decided before the first commit (cached): no second scan.
    let host_keys = shared::cluster_host_keys(mode, repo, &args.render, printer).await?;
    let patches = shared::kustomization_patches(&args.render, mode, host_keys.as_ref());
    printer.action("generating sync manifests");
    let mut flux_system = HashMap::new();
    for item in healthy {
        let paths = &item.target.paths;
        let sync_yaml = shared::render_sync(&args.render, namespace, paths, repo, mode)?;
        let kustomization_file = paths.kustomization_file();
        let existing_kustomization = checkout.read_file(&kustomization_file)?;
        let (sync, components): (Vec<Value>, Vec<Value>) = shared::flux_system_objects(
            &components_yaml,
            &sync_yaml,
            patches.as_ref(),
            existing_kustomization.as_deref(),
            &checkout.workdir().join(paths.folder()),
        )?
        .into_iter()
        .partition(fluxbootstrap_manifests::is_sync_object);
        flux_system.insert(item.target.context.clone(), (components, sync));
        pending.push((paths.sync_file(), sync_yaml.into_bytes()));
        if existing_kustomization.is_none() {
            pending.push((
                kustomization_file,
                fluxbootstrap_manifests::render_kustomization(&patches.clone().unwrap_or_default())
                    .into_bytes(),
            ));
        } else if patches.is_some() {
            printer.warning(format_args!(
                    "kept the existing \"{kustomization_file}\"; make sure it carries the patches for the chosen mode"
                ));
        }
    }
    printer.success("generated sync manifests");
    let (message, what) = if args.single_commit {
        (
            format!(
                "Add Flux {} component and sync manifests{appendix}",
                bundle.version
            ),
            "component and sync manifests",
        )
    } else {
        (
            format!("Add Flux sync manifests{appendix}"),
            "sync manifests",
        )
    };
    let (checkout, sha) = commit_step(
        checkout,
        pending,
        message,
        author,
        args.dry_run,
        what,
        &args.render.branch,
        printer,
    )
    .await?;
    commits.extend(sha);
    let head = checkout.head();
    Ok(Written { flux_system, head })
}

fn skipped(target: &Target, spent: Duration, error: String) -> Row {
    Row {
        context: target.context.clone(),
        path: target.paths.sync_path(),
        result: Outcome::Skipped,
        counts: Counts::default(),
        duration: spent,
        error: Some(error),
    }
}

fn row_json(row: &Row) -> Value {
    json!({
        "context": row.context,
        "path": row.path,
        "result": row.result.word(),
        "objects": {
            "created": row.counts.created,
            "configured": row.counts.configured,
            "unchanged": row.counts.unchanged,
        },
        "secretChanged": row.counts.secret_changed,
        "changed": row.counts.changed(),
        "durationSeconds": row.duration.as_secs_f64(),
        "error": row.error,
    })
}

/// The closing table: context, result, objects changed, duration, error.
fn table(rows: &[&Row]) -> String {
    let header = ["CONTEXT", "RESULT", "CHANGED", "DURATION", "ERROR"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.context.clone(),
                r.result.word().to_owned(),
                if r.result == Outcome::Skipped {
                    "-".to_owned()
                } else {
                    r.counts.changed().to_string()
                },
                format!("{:.1}s", r.duration.as_secs_f64()),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cols: [&str; 5]| {
        let mut out = String::new();
        for (i, (cell, width)) in cols.iter().zip(widths).enumerate() {
            if i == 4 {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<width$}  ");
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header);
    for row in &cells {
        out.push('\n');
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}

/// The clusters the flags select, with their rendered paths; refuses colliding paths.
fn select_targets(args: &AzdoArgs, global: &GlobalArgs) -> Result<Vec<Target>> {
    let needs_kubeconfig = args.all_contexts
        || args.context_selector.is_some()
        || global.context.is_empty()
        || args.render.path.contains("{cluster}");
    let kubeconfig = if needs_kubeconfig {
        read_kubeconfig(global)?
    } else {
        KubeContexts::default()
    };
    let explicit = !global.context.is_empty();
    if explicit && (args.all_contexts || args.context_selector.is_some()) {
        return Err(Hinted::new(
            "`--context` cannot be combined with `--all-contexts` or `--context-selector`",
            "name the contexts with `--context`, or select them with one of the other two",
        )
        .into());
    }
    let mut contexts: Vec<String> = if explicit {
        let mut seen = Vec::new();
        for c in &global.context {
            if !seen.contains(c) {
                seen.push(c.clone());
            }
        }
        seen
    } else if args.all_contexts {
        kubeconfig.names.clone()
    } else if let Some(selector) = &args.context_selector {
        // The regex crate (already in the lockfile through other dependencies) gives linear-time
        // matching, so a user-supplied pattern cannot blow up.
        let regex = regex::Regex::new(selector).map_err(|err| {
            Hinted::new(
                format!("`--context-selector {selector}` is not a valid regular expression: {err}"),
                "pass a regular expression such as `^prod-`",
            )
        })?;
        kubeconfig
            .names
            .iter()
            .filter(|n| regex.is_match(n))
            .cloned()
            .collect()
    } else {
        kubeconfig.current.clone().into_iter().collect()
    };
    contexts.retain(|c| !c.is_empty());
    if contexts.is_empty() {
        return Err(Hinted::new(
            "no kubeconfig context was selected",
            "check `kubectl config get-contexts`, or name the contexts with `--context`",
        )
        .into());
    }

    let namespace = global.namespace.as_str();
    let mut targets = Vec::with_capacity(contexts.len());
    let mut by_path: HashMap<String, String> = HashMap::new();
    for context in contexts {
        let cluster = global
            .cluster
            .clone()
            .or_else(|| kubeconfig.clusters.get(&context).cloned())
            .unwrap_or_else(|| context.clone());
        let rendered = render_path(&args.render.path, &context, &cluster, namespace)?;
        let paths = RepoPaths::new(&rendered, namespace)?;
        if let Some(first) = by_path.insert(paths.sync_path(), context.clone()) {
            return Err(Hinted::new(
                format!(
                    "contexts \"{first}\" and \"{context}\" both render `--path {}` to \"{}\"",
                    args.render.path,
                    paths.sync_path()
                ),
                "give every cluster its own directory, e.g. `--path clusters/{context}`",
            )
            .into());
        }
        targets.push(Target { context, paths });
    }
    Ok(targets)
}

fn render_path(template: &str, context: &str, cluster: &str, namespace: &str) -> Result<String> {
    let mut rest = template.to_owned();
    for p in PLACEHOLDERS {
        rest = rest.replace(p, "");
    }
    if rest.contains('{') || rest.contains('}') {
        return Err(Hinted::new(
            format!("`--path {template}` has an unknown placeholder"),
            "use `{context}`, `{cluster}` or `{namespace}`",
        )
        .into());
    }
    Ok(template
        .replace("{context}", context)
        .replace("{cluster}", cluster)
        .replace("{namespace}", namespace))
}

/// The context names of the kubeconfig, like kubectl merges them (first definition wins).
#[derive(Debug, Default)]
struct KubeContexts {
    names: Vec<String>,
    clusters: HashMap<String, String>,
    current: Option<String>,
}

fn kubeconfig_files(global: &GlobalArgs) -> Vec<PathBuf> {
    if let Some(path) = &global.kubeconfig {
        return vec![path.clone()];
    }
    if let Some(value) = std::env::var_os("KUBECONFIG") {
        let files: Vec<PathBuf> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty() && p.exists())
            .collect();
        if !files.is_empty() {
            return files;
        }
    }
    directories::BaseDirs::new()
        .map(|dirs| dirs.home_dir().join(".kube").join("config"))
        .filter(|p| p.exists())
        .into_iter()
        .collect()
}

fn read_kubeconfig(global: &GlobalArgs) -> Result<KubeContexts> {
    let mut out = KubeContexts::default();
    let files = kubeconfig_files(global);
    if files.is_empty() {
        return Err(Hinted::new(
            "no kubeconfig was found to list contexts from",
            "pass `--kubeconfig FILE` or set `KUBECONFIG`",
        )
        .into());
    }
    for file in files {
        let text = fs_err::read_to_string(&file).context("failed to read the kubeconfig")?;
        // A kubeconfig is one YAML mapping; the manifests splitter reads it as JSON.
        let docs = fluxbootstrap_manifests::split_objects(&text)
            .with_context(|| format!("failed to parse the kubeconfig `{}`", file.display()))?;
        let Some(doc) = docs.into_iter().next() else {
            continue;
        };
        if out.current.is_none() {
            out.current = doc
                .get("current-context")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
        }
        for entry in doc
            .get("contexts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(name) = entry.get("name").and_then(Value::as_str) else {
                continue;
            };
            if out.clusters.contains_key(name) || out.names.iter().any(|n| n == name) {
                continue;
            }
            out.names.push(name.to_owned());
            if let Some(cluster) = entry.pointer("/context/cluster").and_then(Value::as_str) {
                out.clusters.insert(name.to_owned(), cluster.to_owned());
            }
        }
    }
    Ok(out)
}

type PreflightResult = Result<(Cluster, PreflightReport)>;

/// Connects to and preflights every target concurrently, in the targets' order.
async fn preflight_all(
    targets: &[Target],
    args: &AzdoArgs,
    global: &GlobalArgs,
    printer: Printer,
) -> Vec<(Target, PreflightResult, Duration)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, target) in targets.iter().enumerate() {
        let options = KubeOptions {
            context: Some(target.context.clone()),
            ..shared::kube_options(global)
        };
        let request = PreflightRequest {
            namespace: global.namespace.clone(),
            path: target.paths.sync_path(),
            force: args.force,
        };
        let timeout = global.timeout;
        let context = target.context.clone();
        tasks.spawn(async move {
            let started = Instant::now();
            let result = tokio::time::timeout(timeout, async {
                let cluster = Cluster::connect(&options)
                    .await
?;
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
            .unwrap_or_else(|_| Err(anyhow::anyhow!("preflight timed out")));
            if let Ok((_, report)) = &result {
                printer.success(format_args!(
                    "{context}: Kubernetes {} and cluster-admin rights",
                    report.server_version
                ));
                if let Some(existing) = &report.existing
                    && let Some(tool) = existing
                        .managed_by
                        .as_deref()
                        .filter(|t| !t.is_empty() && *t != "flux")
                {
                    printer.warning(format_args!(
                        "{context}: Flux {} was installed with {tool}; continuing because of `--force`",
                        existing.version.as_deref().unwrap_or("(unknown version)")
                    ));
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
                    *slot = Some((Err(anyhow::anyhow!(message.clone())), Duration::ZERO));
                }
            }
        }
    }
    targets
        .iter()
        .cloned()
        .zip(results)
        .map(|(target, slot)| {
            let (result, spent) = slot.unwrap_or_else(|| {
                (
                    Err(anyhow::anyhow!("the preflight task did not finish")),
                    Duration::ZERO,
                )
            });
            (target, result, spent)
        })
        .collect()
}

/// What every cluster task shares.
struct JobShared {
    /// The `--registry-creds` pull Secret, as (name, data).
    pull_secret: Option<(
        String,
        std::collections::BTreeMap<String, fluxbootstrap_auth::SecretBytes>,
    )>,
    namespace: String,
    secret_name: String,
    dry_run: bool,
    timeout: Duration,
    revision: Option<String>,
    deployments: Vec<String>,
    printer: Printer,
}

/// One cluster's install, Secret, apply and waits.
async fn converge(
    item: &Ready,
    (components, sync): (Vec<Value>, Vec<Value>),
    job: &JobShared,
    counts: &mut Counts,
) -> Result<()> {
    let printer = job.printer;
    let context = item.target.context.as_str();
    let cluster = &item.cluster;
    let reporter = FleetReporter {
        printer,
        context: context.to_owned(),
    };
    let namespace = job.namespace.as_str();
    let apply_options = ApplyOptions {
        dry_run: job.dry_run,
        concurrency: 16,
        timeout: job.timeout,
    };
    let must_install = item
        .preflight
        .existing
        .as_ref()
        .and_then(|e| e.applied_revision.as_deref())
        .is_none_or(str::is_empty);
    if must_install {
        printer.action(format_args!(
            "{context}: installing components in \"{namespace}\" namespace"
        ));
        let report = cluster
            .apply(components.clone(), &apply_options, &reporter)
            .await?;
        counts.add(&report);
        printer.success(format_args!("{context}: installed components"));
    }

    if let Some(pull_secret) = &job.pull_secret {
        let change =
            shared::reconcile_image_pull_secret(cluster, namespace, pull_secret, job.dry_run)
                .await?;
        let name = &pull_secret.0;
        counts.secret_changed |= change != Change::Unchanged && !job.dry_run;
        printer.success(format_args!(
            "{context}: reconciled image pull secret {name} ({})",
            change_word(change)
        ));
    }

    if let Some(secret) = &item.secret {
        let name = &job.secret_name;
        match shared::write_source_secret(cluster, namespace, name, secret, job.dry_run).await? {
            shared::SecretWrite::WouldBe(verb) => printer.success(format_args!(
                "{context}: source secret \"{namespace}/{name}\" would be {verb}"
            )),
            shared::SecretWrite::Done(change) => {
                counts.secret_changed |= change != Change::Unchanged;
                printer.success(format_args!(
                    "{context}: reconciled source secret ({})",
                    change_word(change)
                ));
            }
        }
    }

    printer.action(format_args!("{context}: applying sync manifests"));
    // Components just installed are as wanted; re-diffing them would only cost the API server
    // time that the other clusters of the fleet share on a small machine.
    let mut objects = if must_install { Vec::new() } else { components };
    objects.extend(sync);
    let report = cluster.apply(objects, &apply_options, &reporter).await?;
    counts.add(&report);
    printer.success(format_args!("{context}: reconciled sync configuration"));

    if let (false, Some(revision)) = (job.dry_run, &job.revision) {
        let spec = WaitSpec {
            namespace: namespace.to_owned(),
            deployments: job.deployments.clone(),
            git_repository: Some(namespace.to_owned()),
            kustomization: Some(namespace.to_owned()),
            revision: Some(revision.clone()),
            reconcile_requested_at: None,
            // The whole `--timeout`, as for a single cluster.
            timeout: job.timeout,
        };
        cluster
            .wait_ready(&spec, &reporter)
            .await
            .context("bootstrap failed")?;
        printer.success(format_args!("{context}: all components are healthy"));
    }
    Ok(())
}

/// Cluster progress as flux-style lines prefixed with the context.
struct FleetReporter {
    printer: Printer,
    context: String,
}

impl ApplyReporter for FleetReporter {
    fn object(&self, entry: &ApplyEntry) {
        self.printer.detail(format_args!(
            "{}: {} {}",
            self.context,
            entry.object,
            change_word(entry.change)
        ));
    }
}

impl WaitReporter for FleetReporter {
    fn waiting(&self, target: &WaitTarget) {
        match target {
            WaitTarget::GitRepository(name) | WaitTarget::Kustomization(name) => {
                self.printer.waiting(format_args!(
                    "{}: waiting for {target} to be reconciled ({name})",
                    self.context
                ));
            }
            WaitTarget::Deployment(_) => {}
        }
    }

    fn ready(&self, target: &WaitTarget) {
        match target {
            WaitTarget::Deployment(name) => self
                .printer
                .detail(format_args!("{}: {name}: deployment ready", self.context)),
            other => self.printer.success(format_args!(
                "{}: {other} reconciled successfully",
                self.context
            )),
        }
    }

    fn failed(&self, target: &WaitTarget, message: &str) {
        self.printer
            .failure(format_args!("{}: {target}: {message}", self.context));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_templates_render_and_refuse_unknown_placeholders() {
        assert_eq!(
            render_path("clusters/{cluster}/{context}-{namespace}", "a", "b", "ns")
                .expect("known placeholders render"),
            "clusters/b/a-ns"
        );
        assert!(render_path("clusters/{name}", "a", "b", "ns").is_err());
    }

    #[test]
    fn table_aligns_columns() {
        let row = |context: &str, result, error: Option<&str>| Row {
            context: context.to_owned(),
            path: "./x".to_owned(),
            result,
            counts: Counts {
                created: 3,
                ..Counts::default()
            },
            duration: Duration::from_millis(1500),
            error: error.map(str::to_owned),
        };
        let rows = [
            row("admin", Outcome::Bootstrapped, None),
            row("unreachable", Outcome::Skipped, Some("connection refused")),
        ];
        let text = table(&rows.iter().collect::<Vec<_>>());
        assert_eq!(
            text,
            "CONTEXT      RESULT        CHANGED  DURATION  ERROR\n\
             admin        bootstrapped  3        1.5s\n\
             unreachable  skipped       -        1.5s      connection refused"
        );
    }
}
