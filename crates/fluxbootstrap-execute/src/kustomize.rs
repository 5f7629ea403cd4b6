//! The objects a cluster's Kustomization will own, built as flux builds them: with the user's
//! `kustomization.yaml` when the folder has one of its own (then `kubectl kustomize`), else
//! our rendering with our patches.

use std::path::Path;

use fluxbootstrap_manifests::KustomizationPatches;
use serde_json::Value;

use crate::error::ExecuteError;

/// The objects of `components_yaml` with `patches` applied, as kustomize would.
fn objects_with_patches(
    components_yaml: &str,
    patches: Option<&KustomizationPatches>,
) -> Result<Vec<Value>, ExecuteError> {
    let mut objects =
        fluxbootstrap_manifests::split_objects(components_yaml).map_err(|source| {
            ExecuteError::Manifests {
                what: "the rendered components",
                source,
            }
        })?;
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
) -> Result<Vec<Value>, ExecuteError> {
    let ours = fluxbootstrap_manifests::render_kustomization(&patches.cloned().unwrap_or_default());
    let users = existing_kustomization.filter(|existing| *existing != ours.as_bytes());
    let Some(users) = users else {
        let mut objects = objects_with_patches(components_yaml, patches)?;
        objects.extend(
            fluxbootstrap_manifests::split_objects(sync_yaml).map_err(|source| {
                ExecuteError::Manifests {
                    what: "the generated sync manifests",
                    source,
                }
            })?,
        );
        return Ok(objects);
    };
    let kubectl = which::which("kubectl").map_err(|_| ExecuteError::KubectlMissing)?;
    let local = |what: &str| {
        let what = what.to_owned();
        move |source| ExecuteError::Local { what, source }
    };
    let build = tempfile::Builder::new()
        .prefix("fluxbootstrap-kustomize-")
        .tempdir()
        .map_err(local("create a temporary directory"))?;
    copy_folder(folder, build.path())?;
    for (name, contents) in [
        ("gotk-components.yaml", components_yaml.as_bytes()),
        ("gotk-sync.yaml", sync_yaml.as_bytes()),
        ("kustomization.yaml", users),
    ] {
        fs_err::write(build.path().join(name), contents)
            .map_err(local("write the folder to build"))?;
    }
    let out = std::process::Command::new(&kubectl)
        .env_remove(fluxbootstrap_auth::SECRET_ENV)
        .arg("kustomize")
        .arg(build.path())
        .output()
        .map_err(local(&format!("run `{}`", kubectl.display())))?;
    if !out.status.success() {
        return Err(ExecuteError::Kustomize {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    fluxbootstrap_manifests::split_objects(&text).map_err(|source| ExecuteError::Manifests {
        what: "the output of `kubectl kustomize`",
        source,
    })
}

/// Copies the files of `from` (a directory of the checkout, possibly missing) into `to`.
fn copy_folder(from: &Path, to: &Path) -> Result<(), ExecuteError> {
    let Ok(entries) = fs_err::read_dir(from) else {
        return Ok(());
    };
    let local = |what: &'static str| {
        move |source| ExecuteError::Local {
            what: what.to_owned(),
            source,
        }
    };
    for entry in entries {
        let entry = entry.map_err(local("read the flux-system folder"))?;
        let target = to.join(entry.file_name());
        if entry
            .file_type()
            .map_err(local("read the flux-system folder"))?
            .is_dir()
        {
            fs_err::create_dir_all(&target).map_err(local("copy the flux-system folder"))?;
            copy_folder(&entry.path(), &target)?;
        } else {
            fs_err::copy(entry.path(), &target).map_err(local("copy the flux-system folder"))?;
        }
    }
    Ok(())
}
