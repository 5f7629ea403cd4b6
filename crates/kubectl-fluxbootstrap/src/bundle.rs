//! The Flux release bundle a run renders its components from: downloaded (verified, cached)
//! or read from `--manifests`.

use std::time::Duration;

use anyhow::{Context, Result};
use fluxbootstrap_manifests::{Bundle, InstallOptions};
use fluxbootstrap_release::ReleaseSource;

use crate::cli::RenderArgs;
use crate::error::Hinted;
use crate::printer::Printer;

/// The Flux release bundle, downloaded (verified, cached) or read from `--manifests`.
pub(crate) struct BundleFiles {
    /// The resolved Flux version (`latest` resolved).
    pub(crate) version: String,
    bundle: Bundle,
}

impl BundleFiles {
    /// Loads the bundle `render` asks for.
    pub(crate) async fn load(
        render: &RenderArgs,
        timeout: Duration,
        printer: Printer,
    ) -> Result<Self> {
        if let Some(path) = &render.manifests {
            let bundle = fluxbootstrap_release::load_local(path)?;
            return Ok(Self {
                version: render.flux_version.clone(),
                bundle,
            });
        }
        let cache_dir = directories::ProjectDirs::from("", "", "kubectl-fluxbootstrap")
            .map(|dirs| dirs.cache_dir().join("flux-releases"))
            .context("no cache directory could be determined for this user")?;
        let source = ReleaseSource::new(render.releases_url.clone(), cache_dir);
        printer.detail(format_args!(
            "fetching Flux {} manifests",
            render.flux_version
        ));
        let (version, bundle) = tokio::time::timeout(
            timeout,
            fluxbootstrap_release::fetch_bundle(&source, &render.flux_version),
        )
        .await
        .map_err(|_| {
            Hinted::new(
                "downloading the Flux manifests timed out",
                "check the network, or pass `--manifests PATH` to use a local bundle",
            )
        })??;
        Ok(Self { version, bundle })
    }

    /// `gotk-components.yaml` for `options` (version forced to the resolved one).
    pub(crate) fn render(&self, options: &InstallOptions) -> Result<String> {
        let mut options = options.clone();
        options.version.clone_from(&self.version);
        Ok(fluxbootstrap_manifests::render_components(
            &self.bundle,
            &options,
        )?)
    }
}
