//! Hostile and valid archives through `unpack_bundle` and `load_local`.

use std::io::Write as _;
use std::path::Path;

use fluxbootstrap_release::{MAX_FILE_BYTES, ReleaseError, load_local, unpack_bundle};

/// One tar entry, written with raw header fields so that names the `tar` crate refuses
/// to create (absolute, `..`) can be tested.
pub(crate) struct Entry {
    name: String,
    kind: tar::EntryType,
    data: Vec<u8>,
    size: Option<u64>,
    link: Option<String>,
}

impl Entry {
    pub(crate) fn file(name: &str, data: &[u8]) -> Entry {
        Entry {
            name: name.to_owned(),
            kind: tar::EntryType::Regular,
            data: data.to_vec(),
            size: None,
            link: None,
        }
    }

    fn symlink(name: &str, target: &str) -> Entry {
        Entry {
            kind: tar::EntryType::Symlink,
            link: Some(target.to_owned()),
            ..Entry::file(name, b"")
        }
    }
}

pub(crate) fn tar_gz(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let gnu = header.as_gnu_mut().expect("GNU header");
        gnu.name[..entry.name.len()].copy_from_slice(entry.name.as_bytes());
        if let Some(link) = &entry.link {
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(entry.kind);
        header.set_mode(0o644);
        header.set_size(entry.size.unwrap_or(entry.data.len() as u64));
        header.set_cksum();
        builder
            .append(&header, entry.data.as_slice())
            .expect("in memory");
    }
    let tar = builder.into_inner().expect("in memory");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("in memory");
    gz.finish().expect("in memory")
}

fn fixture_dir() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fluxbootstrap-manifests/tests/fixtures"
    ))
}

fn bundle_entries() -> Vec<Entry> {
    [
        "rbac.yaml",
        "policies.yaml",
        "source-controller.yaml",
        "kustomize-controller.yaml",
    ]
    .iter()
    .map(|n| {
        Entry::file(
            n,
            &std::fs::read(fixture_dir().join("bundle").join(n)).expect("fixture"),
        )
    })
    .collect()
}

fn unsafe_reason(entries: &[Entry]) -> &'static str {
    match unpack_bundle(&tar_gz(entries)) {
        Err(ReleaseError::UnsafeArchive { reason, .. }) => reason,
        other => panic!("expected an unsafe-archive error, got {other:?}"),
    }
}

#[test]
fn accepts_a_flat_bundle() {
    let mut entries = bundle_entries();
    entries.push(Entry::file("README.md", b"ignored"));
    let bundle = unpack_bundle(&tar_gz(&entries)).expect("valid");
    assert!(bundle.file("README.md").is_none());
    assert!(bundle.file("rbac.yaml").is_some());
}

#[test]
fn rejects_absolute_paths() {
    let mut entries = bundle_entries();
    entries.push(Entry::file("/etc/rbac.yaml", b"x"));
    assert_eq!(unsafe_reason(&entries), "absolute paths are not allowed");
}

#[test]
fn rejects_parent_directories() {
    let mut entries = bundle_entries();
    entries.insert(0, Entry::file("a/../../rbac.yaml", b"x"));
    assert_eq!(unsafe_reason(&entries), "`..` is not allowed");
}

#[test]
fn rejects_symlinks() {
    let mut entries = bundle_entries();
    entries.push(Entry::symlink("policies.yaml", "/etc/passwd"));
    assert_eq!(unsafe_reason(&entries), "links are not allowed");
}

#[test]
fn rejects_oversized_files() {
    let mut entries = bundle_entries();
    // The header claims more than the limit; the data never needs to exist.
    let mut big = Entry::file("source-watcher.yaml", b"");
    big.size = Some(MAX_FILE_BYTES + 1);
    entries.push(big);
    let bytes = tar_gz(&entries);
    match unpack_bundle(&bytes) {
        Err(ReleaseError::UnsafeArchive { reason, .. }) => {
            assert_eq!(reason, "the file is larger than the limit");
        }
        other => panic!("expected an unsafe-archive error, got {other:?}"),
    }
}

#[test]
fn rejects_garbage_and_incomplete_bundles() {
    assert!(matches!(
        unpack_bundle(b"not gzip"),
        Err(ReleaseError::CorruptArchive(_))
    ));
    let err =
        unpack_bundle(&tar_gz(&[Entry::file("rbac.yaml", b"a: b\n")])).expect_err("incomplete");
    assert!(matches!(err, ReleaseError::Bundle(_)), "{err:?}");
    assert!(err.hint().is_some());
}

#[test]
fn loads_local_directory_and_tarball() {
    let from_dir = load_local(&fixture_dir().join("bundle")).expect("directory");
    let from_tar = load_local(&fixture_dir().join("manifests.tar.gz")).expect("tarball");
    assert_eq!(from_dir, from_tar);
    assert_eq!(from_dir.files().len(), 9);
    let err = load_local(Path::new("/nonexistent/manifests")).expect_err("missing");
    assert!(matches!(err, ReleaseError::Read { .. }), "{err:?}");
}
