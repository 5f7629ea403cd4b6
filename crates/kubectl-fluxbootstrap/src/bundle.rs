//! The Flux release bundle, and the objects the Kustomization will own, built like flux builds
//! them (with the user's `kustomization.yaml` when the folder has one).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use fluxbootstrap_manifests::{Bundle, InstallOptions, KustomizationPatches};
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

/// The objects of `components_yaml` with `patches` applied, as kustomize would.
pub(crate) fn objects_with_patches(
    components_yaml: &str,
    patches: Option<&KustomizationPatches>,
) -> Result<Vec<serde_json::Value>> {
    let mut objects = fluxbootstrap_manifests::split_objects(components_yaml)
        .context("failed to read the rendered components")?;
    if let Some(patches) = patches {
        fluxbootstrap_manifests::patch_objects(&mut objects, patches);
    }
    Ok(objects)
}

/// The objects the Kustomization will own, as flux applies them: `kustomize build` of the
/// `<path>/<ns>` folder when its `kustomization.yaml` is the user's (patches the Flux docs use
/// for proxies, tolerations, controller flags), else our rendering with our patches.
///
/// `folder` is the checkout's copy of that folder; our `gotk-components.yaml` and
/// `gotk-sync.yaml` are written over it in a temporary copy, so a dry run builds what would be
/// committed. The build runs the user's `kubectl kustomize`.
pub(crate) fn flux_system_objects(
    components_yaml: &str,
    sync_yaml: &str,
    patches: Option<&KustomizationPatches>,
    existing_kustomization: Option<&[u8]>,
    folder: &Path,
) -> Result<Vec<serde_json::Value>> {
    let ours = fluxbootstrap_manifests::render_kustomization(&patches.cloned().unwrap_or_default());
    let users = existing_kustomization.filter(|existing| *existing != ours.as_bytes());
    let Some(users) = users else {
        let mut objects = objects_with_patches(components_yaml, patches)?;
        objects.extend(
            fluxbootstrap_manifests::split_objects(sync_yaml)
                .context("failed to read the generated sync manifests")?,
        );
        return Ok(objects);
    };
    let kubectl = which::which("kubectl").map_err(|_| {
        Hinted::new(
            "the existing `kustomization.yaml` is not the generated one, and building it needs `kubectl`, which is not on PATH",
            "install kubectl (its `kubectl kustomize` builds the folder exactly as Flux will)",
        )
    })?;
    let build = tempfile::Builder::new()
        .prefix("fluxbootstrap-kustomize-")
        .tempdir()
        .context("failed to create a temporary directory")?;
    copy_folder(folder, build.path())?;
    for (name, contents) in [
        ("gotk-components.yaml", components_yaml.as_bytes()),
        ("gotk-sync.yaml", sync_yaml.as_bytes()),
        ("kustomization.yaml", users),
    ] {
        fs_err::write(build.path().join(name), contents)
            .context("failed to write the folder to build")?;
    }
    let out = std::process::Command::new(&kubectl)
        .env_remove(fluxbootstrap_auth::SECRET_ENV)
        .arg("kustomize")
        .arg(build.path())
        .output()
        .with_context(|| format!("failed to run `{}`", kubectl.display()))?;
    if !out.status.success() {
        return Err(Hinted::new(
            format!(
                "`kubectl kustomize` of the existing `kustomization.yaml` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "fix the kustomization in the repository; Flux would fail to build it the same way",
        )
        .into());
    }
    let text = String::from_utf8(out.stdout).context("`kubectl kustomize` printed non-UTF-8")?;
    fluxbootstrap_manifests::split_objects(&text)
        .context("failed to read the output of `kubectl kustomize`")
}

/// Copies the files of `from` (a directory of the checkout, possibly missing) into `to`.
fn copy_folder(from: &Path, to: &Path) -> Result<()> {
    let Ok(entries) = fs_err::read_dir(from) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.context("failed to read the flux-system folder")?;
        let target = to.join(entry.file_name());
        if entry
            .file_type()
            .context("failed to read the flux-system folder")?
            .is_dir()
        {
            fs_err::create_dir_all(&target).context("failed to copy the flux-system folder")?;
            copy_folder(&entry.path(), &target)?;
        } else {
            fs_err::copy(entry.path(), &target).context("failed to copy the flux-system folder")?;
        }
    }
    Ok(())
}
