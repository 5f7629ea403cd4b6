//! Packing a release archive the way krew installs it: the binary and `LICENSE` at the root,
//! fixed modes and timestamps (`SOURCE_DATE_EPOCH`), and its `.sha256`.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, ensure};
use sha2::{Digest, Sha256};

use super::{read, write_atomically};

/// Packs `entries` (name in the archive, file, mode) at the archive root, as a zip when
/// `archive` ends in `.zip`, else as a gzipped tar with regular files only (krew rejects
/// links).
pub(super) fn pack(archive: &Path, entries: &[(&str, &Path, u32)], mtime: u64) -> Result<()> {
    let tmp = archive.with_extension("partial");
    let file =
        File::create(&tmp).with_context(|| format!("failed to create `{}`", tmp.display()))?;
    let result = if archive.extension().is_some_and(|e| e == "zip") {
        pack_zip(file, entries, mtime)
    } else {
        pack_tar_gz(file, entries, mtime)
    };
    if let Err(err) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err.context(format!("failed to write `{}`", archive.display())));
    }
    std::fs::rename(&tmp, archive)
        .with_context(|| format!("failed to move `{}` into place", archive.display()))
}

pub(super) fn pack_tar_gz(file: File, entries: &[(&str, &Path, u32)], mtime: u64) -> Result<()> {
    let gz = flate2::GzBuilder::new().write(BufWriter::new(file), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    for (name, path, mode) in entries {
        let data =
            std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        tar.append_data(&mut header, name, data.as_slice())?;
    }
    tar.into_inner()?.finish()?.flush()?;
    Ok(())
}

pub(super) fn pack_zip(file: File, entries: &[(&str, &Path, u32)], mtime: u64) -> Result<()> {
    let mut zip = zip::ZipWriter::new(BufWriter::new(file));
    for (name, path, mode) in entries {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(*mode)
            .last_modified_time(zip_time(mtime));
        zip.start_file(*name, options)?;
        let data =
            std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
        zip.write_all(&data)?;
    }
    zip.finish()?.flush()?;
    Ok(())
}

pub(super) fn sha256_hex(path: &Path) -> Result<String> {
    let mut file =
        File::open(path).with_context(|| format!("failed to open `{}`", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    Ok(hasher.finalize().iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    }))
}

/// Writes `<archive>.sha256` in `sha256sum` format and returns the hash.
pub(super) fn write_sha256(archive: &Path) -> Result<String> {
    let sha = sha256_hex(archive)?;
    let name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let mut path = archive.as_os_str().to_owned();
    path.push(".sha256");
    write_atomically(Path::new(&path), format!("{sha}  {name}\n").as_bytes())?;
    Ok(sha)
}

/// The sha256 of `dir/file` from `dir/file.sha256`, checked against the archive when it is
/// there too; `None` when there is no checksum file.
pub(super) fn read_sha256(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(format!("{file}.sha256"));
    if !path.is_file() {
        return Ok(None);
    }
    let text = read(&path)?;
    let sha = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    ensure!(
        sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
        "`{}` does not start with a sha256",
        path.display()
    );
    let archive = dir.join(file);
    if archive.is_file() {
        let actual = sha256_hex(&archive)?;
        ensure!(
            actual == sha,
            "`{}` says {sha} but the archive hashes to {actual}",
            path.display()
        );
    }
    Ok(Some(sha))
}

/// `mtime` as a zip (DOS) timestamp in UTC; zip cannot store times before 1980.
/// `mtime` (seconds since the epoch, UTC) as a zip timestamp; the epoch itself when it does
/// not fit (zip counts from 1980).
pub(super) fn zip_time(mtime: u64) -> zip::DateTime {
    let stamp = i64::try_from(mtime)
        .ok()
        .and_then(|secs| jiff::Timestamp::from_second(secs).ok());
    let Some(stamp) = stamp else {
        return zip::DateTime::default();
    };
    let time = stamp.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    let parts = (
        u16::try_from(time.year()),
        u8::try_from(time.month()),
        u8::try_from(time.day()),
        u8::try_from(time.hour()),
        u8::try_from(time.minute()),
        u8::try_from(time.second()),
    );
    match parts {
        (Ok(y), Ok(mo), Ok(d), Ok(h), Ok(mi), Ok(s)) => {
            zip::DateTime::from_date_and_time(y, mo, d, h, mi, s).unwrap_or_default()
        }
        _ => zip::DateTime::default(),
    }
}
