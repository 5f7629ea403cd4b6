//! Unpacking `manifests.tar.gz` in memory, and reading a local `--manifests` path.
//!
//! The archive comes from the network or from the user, so it is treated as hostile:
//! only regular files with plain relative names are accepted, sizes are bounded before
//! decompression can exhaust memory, and nothing is ever written to disk from it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};

use fluxbootstrap_manifests::{BUNDLE_FILES, Bundle};

use crate::ReleaseError;

/// Largest accepted single file in the bundle (the biggest Flux file is ~100 KiB).
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Largest accepted archive, compressed or unpacked.
pub const MAX_ARCHIVE_BYTES: u64 = 32 * 1024 * 1024;

/// Unpacks a `manifests.tar.gz` into a [`Bundle`]. Files other than the nine bundle
/// files are ignored; directories are skipped; links and unsafe paths are errors.
pub fn unpack_bundle(tar_gz: &[u8]) -> Result<Bundle, ReleaseError> {
    let decoder = flate2::read::GzDecoder::new(tar_gz);
    // Bounds the decompressed stream, so a gzip bomb ends as a corrupt archive.
    let mut archive = tar::Archive::new(decoder.take(MAX_ARCHIVE_BYTES));
    let mut files = BTreeMap::new();
    let entries = archive.entries().map_err(ReleaseError::CorruptArchive)?;
    for entry in entries {
        let mut entry = entry.map_err(ReleaseError::CorruptArchive)?;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let unsafe_entry = |reason| ReleaseError::UnsafeArchive {
            entry: raw_path.clone(),
            reason,
        };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(unsafe_entry("links are not allowed"));
        }
        let path = Path::new(&raw_path);
        if path.is_absolute() || raw_path.starts_with('/') {
            return Err(unsafe_entry("absolute paths are not allowed"));
        }
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(unsafe_entry("`..` is not allowed"));
        }
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(unsafe_entry("only regular files are allowed"));
        }
        let size = entry
            .header()
            .size()
            .map_err(ReleaseError::CorruptArchive)?;
        if size > MAX_FILE_BYTES {
            return Err(unsafe_entry("the file is larger than the limit"));
        }
        let names: Vec<&str> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => n.to_str(),
                _ => None,
            })
            .collect();
        let [name] = names.as_slice() else {
            // The bundle is flat; files in subdirectories are not part of it.
            continue;
        };
        if !BUNDLE_FILES.contains(name) {
            continue;
        }
        let mut bytes = Vec::new();
        (&mut entry)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(ReleaseError::CorruptArchive)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(unsafe_entry("the file is larger than the limit"));
        }
        let text = String::from_utf8(bytes).map_err(|_| ReleaseError::NotText {
            file: (*name).to_owned(),
        })?;
        files.insert((*name).to_owned(), text);
    }
    Bundle::from_files(files).map_err(ReleaseError::Bundle)
}

/// Reads `--manifests PATH`: a directory holding the bundle files, or a
/// `manifests.tar.gz`.
pub fn load_local(path: &Path) -> Result<Bundle, ReleaseError> {
    let read_err = |source| ReleaseError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.is_dir() {
        let mut files = BTreeMap::new();
        for name in BUNDLE_FILES {
            let file = path.join(name);
            match std::fs::read(&file) {
                Ok(bytes) => {
                    if bytes.len() as u64 > MAX_FILE_BYTES {
                        return Err(ReleaseError::UnsafeArchive {
                            entry: file.display().to_string(),
                            reason: "the file is larger than the limit",
                        });
                    }
                    let text = String::from_utf8(bytes).map_err(|_| ReleaseError::NotText {
                        file: name.to_owned(),
                    })?;
                    files.insert(name.to_owned(), text);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ReleaseError::Read { path: file, source }),
            }
        }
        Bundle::from_files(files).map_err(ReleaseError::Bundle)
    } else {
        if meta.len() > MAX_ARCHIVE_BYTES {
            return Err(ReleaseError::UnsafeArchive {
                entry: path.display().to_string(),
                reason: "the archive is larger than the limit",
            });
        }
        let bytes = std::fs::read(path).map_err(read_err)?;
        unpack_bundle(&bytes)
    }
}
