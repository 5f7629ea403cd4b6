//! `export`: the files bootstrap would write, for teams that commit through pull requests.
//!
//! Like `flux install --export` plus the sync objects; touches neither git nor a cluster. The
//! files are the plan crate's repository change for one folder, the one `azdo` commits: a
//! plan with no target to apply it to.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use fluxbootstrap_azdo::RepoUrl;
use fluxbootstrap_plan::{ChangeInputs, Folder, GitMode, ModeFlags, RepoPaths};

use crate::bundle::BundleFiles;
use crate::cli::{ExportArgs, GlobalArgs};
use crate::printer::Printer;

pub(crate) async fn run(args: &ExportArgs, global: &GlobalArgs, printer: Printer) -> Result<()> {
    let namespace = global.namespace.as_str();
    let repo = RepoUrl::parse(&args.url)?;
    let mode = GitMode::from_flags(ModeFlags {
        url_is_ssh: crate::inputs::is_ssh_url(&args.url),
        token_auth: false,
        with_bearer_token: false,
        ssh_hostname: args.ssh_hostname.as_deref(),
        provider: args.render.provider.as_deref(),
        azure_client_id: args.render.azure_client_id.as_deref(),
        mint_cluster_pat: false,
    })?;
    let paths = RepoPaths::new(&args.render.path, namespace)?;
    let install = crate::inputs::install_options(&args.render, namespace)?;
    let bundle = BundleFiles::load(&args.render, global.timeout, printer).await?;
    let host_keys =
        crate::host_keys::cluster_host_keys(&mode, &repo, &args.render, printer).await?;
    let patches = crate::inputs::kustomization_patches(&args.render, &mode, host_keys.as_ref());
    let components_yaml = bundle.render(&install)?;
    let sync_yaml = crate::inputs::sync_yaml(&args.render, namespace, &paths, &repo, &mode)?;
    // The change a bootstrap of this one folder would commit; written whole, as for an empty
    // repository (a file kept when present has nothing to be kept from here).
    let commits = fluxbootstrap_plan::repository_change(&ChangeInputs {
        flux_version: &bundle.version,
        components_yaml: &components_yaml,
        patches: patches.as_ref(),
        folders: &[Folder {
            paths: &paths,
            sync_yaml: &sync_yaml,
        }],
        single_commit: true,
        message_appendix: "",
    });
    let files: Vec<(String, String)> = commits
        .into_iter()
        .flat_map(|commit| commit.files)
        .map(|file| (file.path, file.contents))
        .collect();
    let Some(dir) = &args.output_dir else {
        let mut out = String::new();
        for (index, (path, contents)) in files.iter().enumerate() {
            if index > 0 {
                out.push_str("---\n");
            }
            let _ = write!(out, "# {path}\n{contents}");
            if !contents.ends_with('\n') {
                out.push('\n');
            }
        }
        printer.data(out)?;
        return Ok(());
    };
    for (path, contents) in &files {
        // Repository paths use `/`; joined a component at a time, the file names what the
        // platform writes (`out\flux-system\gotk-sync.yaml` on Windows, not a mix).
        let target = path
            .split('/')
            .fold(dir.clone(), |target, part| target.join(part));
        if let Some(parent) = target.parent() {
            fs_err::create_dir_all(parent).context("failed to create the output directory")?;
        }
        fs_err::write(&target, contents).context("failed to write an exported file")?;
        printer.success(format_args!("wrote \"{}\"", target.display()));
    }
    Ok(())
}
