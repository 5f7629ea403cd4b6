//! The platform tier: the release archives of the platforms this machine can build but not run
//! natively (linux/arm64, windows/amd64), cross-built by `cargo xtask dist` as a release
//! builds them, and each binary started under an emulator: qemu-user for arm64, wine for
//! Windows. krew users on those platforms get exactly these archives.
//!
//! The cross builds take minutes each (fat LTO), so this test is `#[ignore]`d in the default
//! suite and `cargo xtask test-platforms` (which `.ci/run` calls) installs the cross toolchains
//! and emulators and runs it. It checks, per platform: `--help`, `version --client`, an
//! `export` whose files are byte for byte those of the host's release binary, and a
//! URL-parsing error with its hint; and that krew-index's validator accepts the manifest
//! rendered with every platform and installs each.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use crate::krew::{elf_static_pie, kubectl_dir, read, root, run, serve, values, xtask};

/// The workspace version every crate inherits.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A cross-built platform and how to start its binary here.
struct Platform {
    triple: &'static str,
    os: &'static str,
    arch: &'static str,
    /// The emulator the binary runs under.
    emulator: &'static str,
}

const PLATFORMS: &[Platform] = &[
    Platform {
        triple: "aarch64-unknown-linux-musl",
        os: "linux",
        arch: "arm64",
        emulator: "/usr/bin/qemu-aarch64-static",
    },
    Platform {
        triple: "x86_64-pc-windows-gnu",
        os: "windows",
        arch: "amd64",
        emulator: "/usr/lib/wine/wine64",
    },
];

impl Platform {
    fn archive(&self) -> String {
        let ext = if self.os == "windows" {
            "zip"
        } else {
            "tar.gz"
        };
        format!(
            "kubectl-fluxbootstrap_{VERSION}_{}_{}.{ext}",
            self.os, self.arch
        )
    }

    fn binary(&self) -> &'static str {
        if self.os == "windows" {
            "kubectl-fluxbootstrap.exe"
        } else {
            "kubectl-fluxbootstrap"
        }
    }
}

/// `ProcessPrng`, which Rust's standard library takes its random numbers from on Windows 10 and
/// later (`bcryptprimitives.dll`). Debian's Wine 8 has no such DLL, so the Windows binary is
/// given this one beside it: the same function over `RtlGenRandom`, as Windows implements
/// both. Nothing else is stood in for; the archive itself is untouched.
const PROCESS_PRNG_FOR_WINE: &str = r"#include <windows.h>
#define SystemFunction036 NTAPI SystemFunction036
#include <ntsecapi.h>
#undef SystemFunction036
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
";

/// Builds [`PROCESS_PRNG_FOR_WINE`] into `dir/bcryptprimitives.dll` with mingw-w64 (which
/// `cargo xtask dist` installed for the Windows build).
fn process_prng_dll(dir: &Path) {
    let source = dir.join("bcryptprimitives.c");
    std::fs::write(&source, PROCESS_PRNG_FOR_WINE).expect("writing the DLL source");
    run(Command::new("x86_64-w64-mingw32-gcc")
        .args(["-O2", "-shared", "-o"])
        .arg(dir.join("bcryptprimitives.dll"))
        .arg(&source)
        .arg("-ladvapi32"));
    std::fs::remove_file(&source).expect("removing the DLL source");
}

/// Unpacks the binary of `archive` (a `.tar.gz` or `.zip`) into `dir`.
fn unpack(archive: &Path, dir: &Path) {
    let file = std::fs::File::open(archive).expect("the archive");
    if archive.extension().is_some_and(|e| e == "zip") {
        zip::ZipArchive::new(file)
            .expect("a zip archive")
            .extract(dir)
            .expect("unpacking the zip archive");
    } else {
        tar::Archive::new(flate2::read::GzDecoder::new(file))
            .unpack(dir)
            .expect("unpacking the tar.gz archive");
    }
}

/// A command for the plugin binary in `work` (paths relative to it, so the Windows binary
/// needs no drive letters), with a clean environment.
fn plugin(launcher: Option<&str>, binary: &Path, work: &Path) -> Command {
    let mut cmd = match launcher {
        Some(emulator) => {
            let mut cmd = Command::new(emulator);
            cmd.arg(binary);
            cmd
        }
        None => Command::new(binary),
    };
    cmd.current_dir(work)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", work)
        .env("KUBECONFIG", "no-kubeconfig")
        .env("NO_COLOR", "1")
        // wine: its own prefix in the test's directory, no debug chatter, no Mono/Gecko
        // installer prompts.
        .env("WINEPREFIX", work.join("wineprefix"))
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=");
    cmd
}

/// The tier's figures (sizes, times), for the CI log.
fn report(message: &str) {
    #[expect(clippy::print_stderr, reason = "the platform tier reports its figures")]
    {
        eprintln!("platforms: {message}");
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{}.{} MB", bytes / 1_000_000, bytes / 100_000 % 10)
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file under `dir`, relative path and contents, sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("a readable directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path
                    .strip_prefix(dir)
                    .expect("below the root")
                    .to_string_lossy()
                    .into_owned();
                files.push((name, std::fs::read(&path).expect("a readable file")));
            }
        }
    }
    files.sort();
    files
}

/// Runs the smoke commands with `binary` in `work` and returns the exported files.
fn smoke(
    name: &str,
    launcher: Option<&str>,
    separator: char,
    binary: &Path,
    work: &Path,
) -> Vec<(String, Vec<u8>)> {
    let started = Instant::now();
    let help = output(plugin(launcher, binary, work).arg("--help"));
    assert!(
        help.status.success() && text(&help.stdout).contains("azdo"),
        "{name}: --help: {help:?}"
    );
    let version = output(plugin(launcher, binary, work).args(["version", "--client"]));
    assert!(
        version.status.success() && text(&version.stdout).contains(&format!("v{VERSION}")),
        "{name}: version --client: {version:?}"
    );
    let export = output(plugin(launcher, binary, work).args([
        "export",
        "--url",
        "https://dev.azure.com/fabrikam/fleet/_git/clusters",
        "--manifests",
        "bundle",
        "--output-dir",
        "out",
    ]));
    assert!(export.status.success(), "{name}: export: {export:?}");
    // The files are named as the platform writes paths (no `out\flux-system/…` mix).
    let written = format!("out{separator}flux-system{separator}gotk-sync.yaml");
    assert!(
        text(&export.stderr).contains(&written),
        "{name}: export names {written}: {export:?}"
    );
    let exported = tree(&work.join("out"));
    assert_eq!(
        exported
            .iter()
            .map(|(f, _)| f.replace('\\', "/"))
            .collect::<Vec<_>>(),
        [
            "flux-system/gotk-components.yaml",
            "flux-system/gotk-sync.yaml",
            "flux-system/kustomization.yaml"
        ],
        "{name}: exported files"
    );
    let bad =
        output(plugin(launcher, binary, work).args(["azdo", "--url", "dev.azure.com/fabrikam"]));
    let stderr = text(&bad.stderr);
    assert!(
        !bad.status.success()
            && stderr.contains("`dev.azure.com/fabrikam` is not an Azure DevOps repository URL")
            && stderr.contains("hint: use one of these forms"),
        "{name}: a bad URL: {bad:?}"
    );
    report(&format!(
        "{name}: --help, version, export and a URL error in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    exported
}

#[test]
#[ignore = "platform tier (cross builds take minutes): `cargo xtask test-platforms` runs it"]
fn cross_built_release_binaries_run_under_emulation() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dist = tmp.path().join("dist");
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let base_url = format!(
        "http://{}/",
        listener.local_addr().expect("a bound address")
    );
    let mut args = vec!["dist", "--target", "host"];
    for platform in PLATFORMS {
        args.extend(["--target", platform.triple]);
    }
    let out_dir = dist.to_string_lossy().into_owned();
    args.extend(["--out-dir", &out_dir, "--no-index", "--base-url", &base_url]);
    let started = Instant::now();
    xtask(&args);
    report(&format!(
        "`cargo xtask {}` took {:.0} s",
        args.join(" "),
        started.elapsed().as_secs_f64()
    ));
    serve(listener, dist.clone());

    // The manifest lists the host's platform and every cross-built one, and krew-index's
    // validator installs each from its URI.
    let manifest = dist.join("fluxbootstrap.yaml");
    let uris = values(&read(&manifest), "uri")
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    for platform in PLATFORMS {
        assert!(
            uris.contains(&format!("{base_url}{}", platform.archive())),
            "{} missing from the manifest: {uris:?}",
            platform.triple
        );
    }
    let krew_bin = PathBuf::from(xtask(&["krew", "build", "--print-dir"]).trim());
    // The validator installs through `kubectl krew`: kubectl and kubectl-krew on PATH.
    let path = std::env::join_paths([
        krew_bin.clone(),
        kubectl_dir(),
        PathBuf::from("/usr/bin"),
        PathBuf::from("/bin"),
    ])
    .expect("PATH entries without separators");
    run(Command::new(krew_bin.join("validate-krew-manifest"))
        .env_clear()
        .env("PATH", path)
        .env("KREW_NO_UPGRADE_CHECK", "1")
        .env("HOME", tmp.path())
        .env("KREW_ROOT", tmp.path().join("krew"))
        .args(["-manifest"])
        .arg(&manifest));

    let bundle = root().join("crates/fluxbootstrap-manifests/tests/fixtures/bundle");
    let prepare = |name: &str, archive: &Path| {
        let work = tmp.path().join(name);
        std::fs::create_dir_all(work.join("bundle")).expect("a work dir");
        for entry in std::fs::read_dir(&bundle).expect("the fixture bundle") {
            let entry = entry.expect("an entry");
            std::fs::copy(entry.path(), work.join("bundle").join(entry.file_name()))
                .expect("copying the bundle");
        }
        unpack(archive, &work.join("bin"));
        work
    };

    // The reference: the host's release binary, run natively.
    let host_archive = std::fs::read_dir(&dist)
        .expect("the dist dir")
        .map(|e| e.expect("an entry").path())
        .find(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.ends_with(".tar.gz")
                && !PLATFORMS.iter().any(|platform| name == platform.archive())
        })
        .expect("the host's archive");
    let host = prepare("host", &host_archive);
    report(&format!(
        "host: binary {}, archive {}",
        megabytes(
            std::fs::metadata(host.join("bin/kubectl-fluxbootstrap"))
                .expect("the host binary")
                .len()
        ),
        megabytes(std::fs::metadata(&host_archive).expect("the archive").len())
    ));
    let reference = smoke(
        "host",
        None,
        std::path::MAIN_SEPARATOR,
        &host.join("bin/kubectl-fluxbootstrap"),
        &host,
    );

    for platform in PLATFORMS {
        let archive = dist.join(platform.archive());
        let work = prepare(platform.triple, &archive);
        let binary = work.join("bin").join(platform.binary());
        let size = std::fs::metadata(&binary).expect("the binary").len();
        report(&format!(
            "{}: binary {}, archive {}",
            platform.triple,
            megabytes(size),
            megabytes(std::fs::metadata(&archive).expect("the archive").len())
        ));
        if platform.os == "linux" {
            // Static (any distribution) and position-independent (ASLR), as on amd64.
            let elf = std::fs::read(&binary).expect("the binary");
            assert_eq!(
                elf_static_pie(&elf),
                Some(true),
                "{}: not a static-pie ELF executable",
                platform.triple
            );
        }
        if platform.os == "windows" {
            process_prng_dll(&work.join("bin"));
        }
        let separator = if platform.os == "windows" { '\\' } else { '/' };
        let exported = smoke(
            platform.triple,
            Some(platform.emulator),
            separator,
            &binary,
            &work,
        );
        let normalized = |files: Vec<(String, Vec<u8>)>| {
            files
                .into_iter()
                .map(|(name, bytes)| (name.replace('\\', "/"), bytes))
                .collect::<Vec<_>>()
        };
        assert!(
            normalized(exported) == reference,
            "{}: export differs from the host binary's",
            platform.triple
        );
    }
}
