//! Downloads against `fluxbootstrap_test::ReleaseServer`: verification, cache, failures.

use fluxbootstrap_release::{ReleaseError, ReleaseSource, fetch_bundle};
use fluxbootstrap_test::{ReleaseServer, flux_bundle_tar_gz, release_path};

/// The test server (plain HTTP on loopback, so allowed explicitly); the synthetic bundle is
/// not the pinned v2.9.4, so without the real one the pin is off.
fn source(server: &ReleaseServer, cache: &tempfile::TempDir) -> ReleaseSource {
    ReleaseSource {
        base_url: server.base_url(),
        cache_dir: cache.path().to_owned(),
        allow_http: true,
        unpinned: !fluxbootstrap_test::flux_bundle_is_real(),
    }
}

#[tokio::test]
async fn a_plain_http_mirror_needs_the_opt_in() {
    let server = ReleaseServer::start();
    let (version, tar_gz) = flux_bundle_tar_gz();
    server.publish(&version, tar_gz);
    let cache = tempfile::tempdir().expect("temp dir");
    for base_url in [
        server.base_url(),
        server.base_url().replacen("http", "HTTP", 1),
    ] {
        let src = ReleaseSource {
            base_url,
            allow_http: false,
            ..source(&server, &cache)
        };
        let err = fetch_bundle(&src, &version).await.expect_err("refused");
        assert!(
            matches!(err, ReleaseError::InsecureMirror { .. }),
            "{err:?}"
        );
        assert!(
            err.hint()
                .is_some_and(|h| h.contains("FLUXBOOTSTRAP_RELEASES_ALLOW_HTTP"))
        );
    }
    assert_eq!(server.hits(&release_path(&version, "manifests.tar.gz")), 0);
}

#[tokio::test]
async fn a_v2_9_4_that_is_not_the_pinned_release_is_refused_even_with_a_matching_checksum() {
    // The real (or synthetic) bundle with one file changed, and a checksum file that agrees.
    let (version, tar_gz) = flux_bundle_tar_gz();
    let bundle = fluxbootstrap_release::unpack_bundle(&tar_gz).expect("a bundle");
    let entries: Vec<crate::archive::Entry> = bundle
        .files()
        .iter()
        .map(|(name, text)| {
            let text = if name == "rbac.yaml" {
                format!("{text}# one more line\n")
            } else {
                text.clone()
            };
            crate::archive::Entry::file(name, text.as_bytes())
        })
        .collect();
    let server = ReleaseServer::start();
    server.publish(&version, crate::archive::tar_gz(&entries));
    let cache = tempfile::tempdir().expect("temp dir");
    let src = ReleaseSource {
        unpinned: false,
        ..source(&server, &cache)
    };
    let err = fetch_bundle(&src, &version).await.expect_err("refused");
    assert!(
        matches!(&err, ReleaseError::NotThePinnedRelease { file, .. } if file == "rbac.yaml"),
        "{err:?}"
    );
    // Nothing was cached: the next run downloads and checks again.
    assert!(!src.cache_path(&version).join("manifests.tar.gz").exists());
}

#[tokio::test]
async fn downloads_verifies_and_caches() {
    let server = ReleaseServer::start();
    let (version, tar_gz) = flux_bundle_tar_gz();
    server.publish(&version, tar_gz);
    let cache = tempfile::tempdir().expect("temp dir");
    let src = source(&server, &cache);

    let (resolved, bundle) = fetch_bundle(&src, &version).await.expect("downloads");
    assert_eq!(resolved, version);
    assert!(
        bundle
            .file("rbac.yaml")
            .is_some_and(|t| t.contains("ClusterRole"))
    );
    let tarball = release_path(&version, "manifests.tar.gz");
    assert_eq!(server.hits(&tarball), 1);

    // Second fetch: from the cache, verified, no download.
    let (_, again) = fetch_bundle(&src, &version).await.expect("cached");
    assert_eq!(again, bundle);
    assert_eq!(server.hits(&tarball), 1);

    // A corrupt cache entry is detected and replaced, never used.
    let cached = src.cache_path(&version).join("manifests.tar.gz");
    let len = std::fs::metadata(&cached).expect("cached").len();
    std::fs::write(&cached, vec![0u8; usize::try_from(len / 2).expect("small")]).expect("writable");
    let (_, repaired) = fetch_bundle(&src, &version).await.expect("re-downloads");
    assert_eq!(repaired, bundle);
    assert_eq!(server.hits(&tarball), 2);
}

#[tokio::test]
async fn a_mirrors_bundle_is_never_served_from_the_cache_as_another_sources() {
    let (version, tar_gz) = flux_bundle_tar_gz();
    let mirror = ReleaseServer::start();
    mirror.publish(&version, tar_gz.clone());
    let cache = tempfile::tempdir().expect("temp dir");
    let from_mirror = source(&mirror, &cache);
    fetch_bundle(&from_mirror, &version)
        .await
        .expect("downloads from the mirror");

    // The same version from another source: the mirror's cached copy is not used.
    let other = ReleaseServer::start();
    other.publish(&version, tar_gz);
    let from_other = source(&other, &cache);
    fetch_bundle(&from_other, &version)
        .await
        .expect("downloads from the other source");
    let tarball = release_path(&version, "manifests.tar.gz");
    assert_eq!(other.hits(&tarball), 1, "the other source was asked");
    assert_ne!(
        from_mirror.cache_path(&version),
        from_other.cache_path(&version)
    );

    // GitHub's releases keep the plain per-version layout.
    let github = ReleaseSource {
        base_url: "https://github.com/".to_owned(),
        cache_dir: cache.path().to_owned(),
        allow_http: false,
        unpinned: false,
    };
    assert_eq!(github.cache_path(&version), cache.path().join(&version));
    assert!(
        !from_mirror
            .cache_path(&version)
            .starts_with(cache.path().join(&version))
    );
}

#[tokio::test]
async fn latest_uses_the_releases_api_under_the_same_base() {
    let server = ReleaseServer::start();
    let (version, tar_gz) = flux_bundle_tar_gz();
    server.publish(&version, tar_gz);
    server.set_latest(&version);
    let cache = tempfile::tempdir().expect("temp dir");
    let (resolved, _) = fetch_bundle(&source(&server, &cache), "latest")
        .await
        .expect("downloads");
    assert_eq!(resolved, version);
}

#[tokio::test]
async fn checksum_mismatch_is_refused() {
    let server = ReleaseServer::start();
    let (version, tar_gz) = flux_bundle_tar_gz();
    server.publish(&version, tar_gz.clone());
    let mut tampered = tar_gz;
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    server.put(&release_path(&version, "manifests.tar.gz"), tampered);
    let cache = tempfile::tempdir().expect("temp dir");
    let src = source(&server, &cache);
    let err = fetch_bundle(&src, &version)
        .await
        .expect_err("tampered download");
    assert!(
        matches!(err, ReleaseError::ChecksumMismatch { .. }),
        "{err:?}"
    );
    assert!(err.hint().is_some());
    assert!(!src.cache_path(&version).join("manifests.tar.gz").exists());
}

#[tokio::test]
async fn unknown_version_is_a_404_with_a_hint() {
    let server = ReleaseServer::start();
    let cache = tempfile::tempdir().expect("temp dir");
    let err = fetch_bundle(&source(&server, &cache), "v9.9.9")
        .await
        .expect_err("no such release");
    assert!(
        matches!(err, ReleaseError::Status { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "`{}/fluxcd/flux2/releases/download/v9.9.9/flux_9.9.9_checksums.txt` answered HTTP 404",
            server.base_url()
        )
    );
    assert!(err.hint().is_some_and(|h| h.contains("--manifests")));
}

#[tokio::test]
async fn truncated_download_is_refused() {
    let server = ReleaseServer::start();
    let (version, tar_gz) = flux_bundle_tar_gz();
    server.publish(&version, tar_gz.clone());
    let full = tar_gz.len() as u64;
    server.put_truncated(
        &release_path(&version, "manifests.tar.gz"),
        tar_gz[..tar_gz.len() / 2].to_vec(),
        full,
    );
    let cache = tempfile::tempdir().expect("temp dir");
    let err = fetch_bundle(&source(&server, &cache), &version)
        .await
        .expect_err("truncated");
    assert!(
        matches!(err, ReleaseError::Truncated { expected, .. } if expected == full),
        "{err:?}"
    );
}

#[tokio::test]
async fn invalid_versions_never_reach_the_network() {
    let server = ReleaseServer::start();
    let cache = tempfile::tempdir().expect("temp dir");
    let err = fetch_bundle(&source(&server, &cache), "v1/../../etc")
        .await
        .expect_err("invalid");
    assert!(
        matches!(err, ReleaseError::InvalidVersion { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn malicious_tarball_with_a_valid_checksum_is_refused() {
    let server = ReleaseServer::start();
    let evil = crate::archive::tar_gz(&[crate::archive::Entry::file("../rbac.yaml", b"x")]);
    server.publish("v2.9.4", evil);
    let cache = tempfile::tempdir().expect("temp dir");
    let err = fetch_bundle(&source(&server, &cache), "v2.9.4")
        .await
        .expect_err("unsafe");
    assert!(matches!(err, ReleaseError::UnsafeArchive { .. }), "{err:?}");
}
