//! Writing the Secrets a plan decided: the source Secret of each mode and the
//! `--registry-creds` pull Secret, as flux writes them (a dry run only compares).

use std::collections::BTreeMap;

use fluxbootstrap_auth::SecretBytes;
use fluxbootstrap_cluster::{Change, Cluster};
use fluxbootstrap_plan::{MINTED_PAT_ANNOTATION, SourceSecret};

use crate::error::ExecuteError;

/// Creates or updates the image pull Secret like flux's `reconcileImagePullSecret` (a dry
/// run only compares).
pub(crate) async fn reconcile_image_pull_secret(
    cluster: &Cluster,
    namespace: &str,
    (name, data): &(String, BTreeMap<String, SecretBytes>),
    dry_run: bool,
) -> Result<Change, ExecuteError> {
    if dry_run {
        return Ok(match cluster.get_secret(namespace, name).await? {
            Some(live) if fluxbootstrap_auth::same_secret_data(&live, data) => Change::Unchanged,
            Some(_) => Change::Configured,
            None => Change::Created,
        });
    }
    cluster
        .reconcile_typed_secret(
            namespace,
            name,
            Some(fluxbootstrap_cluster::DOCKER_CONFIG_JSON),
            data.clone(),
            false,
        )
        .await
        .map_err(ExecuteError::PullSecret)
}

/// What writing the source Secret did, or in a dry run would do.
pub(crate) enum SecretWrite {
    /// Dry run: `created`, `left unchanged` or `updated`.
    WouldBe(&'static str),
    /// Written.
    Done(Change),
}

/// Writes `secret` as Secret `namespace/name` (in a dry run, says what would happen), with
/// the annotation naming a minted cluster PAT.
pub(crate) async fn write_source_secret(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    secret: &SourceSecret,
    dry_run: bool,
) -> Result<SecretWrite, ExecuteError> {
    if dry_run {
        // A dry-run apply would fail in a namespace this run has not created; compare instead.
        return Ok(SecretWrite::WouldBe(
            match cluster.get_secret(namespace, name).await? {
                None => "created",
                Some(live) if fluxbootstrap_auth::same_secret_data(&live, &secret.data) => {
                    "left unchanged"
                }
                Some(_) => "updated",
            },
        ));
    }
    let change = cluster
        .reconcile_secret(namespace, name, secret.data.clone(), false)
        .await
        .map_err(ExecuteError::SourceSecret)?;
    if let Some(id) = &secret.minted_pat {
        cluster
            .annotate_secret(namespace, name, MINTED_PAT_ANNOTATION, Some(id))
            .await?;
    }
    Ok(SecretWrite::Done(change))
}
