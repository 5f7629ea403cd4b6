//! The multi-document YAML reader that reads `kubectl kustomize` output and the repository's
//! manifests, and the `--path` cleaner: never panic; a cleaned path never leaves the root.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let _ = fluxbootstrap_manifests::split_objects(input);
    if let Ok(path) = fluxbootstrap_manifests::normalize_target_path(input) {
        assert!(!path.split('/').any(|part| part == ".."), "{input:?} -> {path:?}");
        assert!(!path.contains('\0'), "{input:?} -> {path:?}");
    }
});
