//! The Flux bundle this build was tested against, pinned by the SHA-256 of each of its nine
//! files: a download of that version whose checksum file and content agree, but which is
//! not that release (a compromised or careless mirror, a re-tagged release), is refused.
//!
//! The pin is over the files rather than `manifests.tar.gz` itself, so a faithful repack
//! (another compressor, another mirror's archive) of the same files is still the release.

use fluxbootstrap_manifests::Bundle;

use crate::ReleaseError;

/// (version, [(file, SHA-256)]) of the releases whose content this build knows.
const PINNED: &[(&str, &[(&str, &str)])] = &[(
    "v2.9.4",
    &[
        (
            "helm-controller.yaml",
            "24a16e85d6aa0ac63dbbc760d6a4687335adb745f739cabf59201ef6de37d783",
        ),
        (
            "image-automation-controller.yaml",
            "55238ef83e3f08f5d9dc22de3e328d162b818cb8a177055de622e89419062253",
        ),
        (
            "image-reflector-controller.yaml",
            "70abc9bea28d407bf233b560a99411ef60c1606ee0802299f0ac079fa74846f0",
        ),
        (
            "kustomize-controller.yaml",
            "95923c60de8effd39b3ba72de77feedd013194b058bfbf88faf129868746bc90",
        ),
        (
            "notification-controller.yaml",
            "da0cb6ae90fc528b51499e3a73889fe770731409cf1dc73f6420479dc235b4f0",
        ),
        (
            "source-controller.yaml",
            "945a3454f79dd33c069c6dc4f99ab2872fe6b1c66dfeb1aed672141213da321d",
        ),
        (
            "source-watcher.yaml",
            "d44f992b10ccce7203f063bc62c7a50868ebec5e24d22a0f903df2cc8348da8f",
        ),
        (
            "rbac.yaml",
            "55f5db7632dd9458884efcf127da57f863fc7897cfd413eb42cfb7a7172a1c51",
        ),
        (
            "policies.yaml",
            "39dd6af15834ace43252896a32a5af068ee6639babe2832ce8833acadae3d223",
        ),
    ],
)];

/// Whether this build pins `version`'s content.
pub fn is_pinned(version: &str) -> bool {
    PINNED.iter().any(|(v, _)| *v == version)
}

/// Checks a bundle that claims to be `version` against the pin, if there is one.
pub(crate) fn check(version: &str, bundle: &Bundle) -> Result<(), ReleaseError> {
    let Some((_, files)) = PINNED.iter().find(|(v, _)| *v == version) else {
        return Ok(());
    };
    for (file, expected) in *files {
        let actual = bundle.file(file).map_or_else(
            || "missing".to_owned(),
            |text| crate::download::sha256_hex(text.as_bytes()),
        );
        if actual != *expected {
            return Err(ReleaseError::NotThePinnedRelease {
                version: version.to_owned(),
                file: (*file).to_owned(),
                expected: (*expected).to_owned(),
                actual,
            });
        }
    }
    Ok(())
}
