//! Distribution through krew: the version is set in one place, and the release archive built by
//! `cargo xtask dist` installs with the real krew and runs through kubectl's plugin dispatch.
//!
//! The install test builds the dist archive itself (`cargo xtask dist`, a fat-LTO build that
//! takes minutes when the binary changed) and krew from the Go module proxy
//! (`cargo xtask krew build`, cached under `~/.cache/kubectl-fluxbootstrap/krew/`), serves the
//! archive on loopback, and runs krew-index's `validate-krew-manifest` (which installs every
//! platform and checks the LICENSE), `kubectl krew install --manifest --archive`, and an
//! install from a custom index cloned from a local git repository, all in temporary
//! `KREW_ROOT`s.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace version every crate inherits.
const VERSION: &str = env!("CARGO_PKG_VERSION");

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness crate is one level below the workspace root")
        .to_path_buf()
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Runs `cmd`, panics with its output unless it succeeds, and returns stdout.
pub(crate) fn run(cmd: &mut Command) -> String {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "{cmd:?} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout.into_owned()
}

/// `cargo xtask <args>`, from the workspace root.
pub(crate) fn xtask(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    run(Command::new(cargo)
        .current_dir(root())
        .args(["run", "--quiet", "--package", "xtask", "--"])
        .args(args))
}

/// `key: value` lines of a YAML text, trimmed (enough for the flat fields checked here).
pub(crate) fn values<'a>(yaml: &'a str, key: &str) -> Vec<&'a str> {
    yaml.lines()
        .filter_map(|line| line.trim_start().strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
        .collect()
}

#[test]
fn manifests_carry_the_workspace_version() {
    let cargo_toml = read(&root().join("Cargo.toml"));
    let package = cargo_toml
        .split("[workspace.package]")
        .nth(1)
        .expect("a [workspace.package] table");
    assert!(
        package
            .lines()
            .any(|l| l.replace(' ', "") == format!("version=\"{VERSION}\"")),
        "the workspace version is the one version"
    );
    let plugin_toml = read(&root().join("crates/kubectl-fluxbootstrap/Cargo.toml"));
    assert!(
        plugin_toml.contains("version.workspace = true"),
        "the binary inherits the workspace version"
    );

    // The template takes the version from the release tag only.
    let template = read(&root().join("plugin-manifest/.krew.yaml"));
    assert_eq!(values(&template, "version"), ["{{ .TagName }}"]);
    assert!(
        !template.contains(VERSION),
        "no version literal in the template"
    );

    // The committed custom index is rendered for this version, with real checksums.
    let index = read(&root().join("krew/plugins/fluxbootstrap.yaml"));
    assert_eq!(values(&index, "name"), ["fluxbootstrap"]);
    assert_eq!(values(&index, "version"), [format!("v{VERSION}")]);
    let uris = values(&index, "uri");
    let shas = values(&index, "sha256");
    assert!(!uris.is_empty(), "at least one platform");
    assert_eq!(uris.len(), shas.len());
    for uri in uris {
        let expected = format!("/releases/download/v{VERSION}/kubectl-fluxbootstrap_{VERSION}_");
        assert!(
            uri.contains(&expected),
            "{uri} is not an archive of v{VERSION}"
        );
    }
    for sha in shas {
        assert!(
            sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{sha}"
        );
    }
}

/// Serves the files of `dir` over plain HTTP on `listener` until the process exits.
pub(crate) fn serve(listener: TcpListener, dir: PathBuf) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let name = request
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/');
            let body = (!name.contains('/') && !name.contains(".."))
                .then(|| std::fs::read(dir.join(name)).ok())
                .flatten();
            let mut stream = &stream;
            let _ = match body {
                Some(body) => write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .and_then(|()| stream.write_all(&body)),
                None => stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
        }
    });
}

/// kubectl from the kube test binaries when built, else the one on `PATH`.
pub(crate) fn kubectl_dir() -> PathBuf {
    let kube = PathBuf::from(xtask(&["kube", "dir"]).trim());
    if kube.join("kubectl").is_file() {
        return kube;
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .find(|dir| dir.join("kubectl").is_file())
        .expect("kubectl: run `cargo xtask kube build` or install kubectl")
}

fn host_platform() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        os => os,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        arch => arch,
    };
    (os, arch)
}

/// Whether a 64-bit little-endian ELF file is a static position-independent executable: type
/// `ET_DYN` (loaded at a random address, so ASLR applies), no `PT_INTERP` program header (no
/// dynamic loader), and a `PT_DYNAMIC` one (its own relocations); `None` if it is not such an
/// ELF file.
pub(crate) fn elf_static_pie(elf: &[u8]) -> Option<bool> {
    const ET_DYN: u16 = 3;
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?));
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let program_headers = usize::try_from(u64_at(0x20)?).ok()?;
    let entry_size = usize::from(u16_at(0x36)?);
    let entries = usize::from(u16_at(0x38)?);
    let (mut has_interpreter, mut has_dynamic) = (false, false);
    for i in 0..entries {
        let kind = u32_at(program_headers + i * entry_size)?;
        has_interpreter |= kind == PT_INTERP;
        has_dynamic |= kind == PT_DYNAMIC;
    }
    Some(u16_at(0x10)? == ET_DYN && !has_interpreter && has_dynamic)
}

#[test]
fn krew_installs_the_release_archive_and_kubectl_runs_it() {
    let krew_bin = PathBuf::from(xtask(&["krew", "build", "--print-dir"]).trim());
    let kubectl_bin = kubectl_dir();
    let tmp = tempfile::tempdir().expect("a temp dir");
    let (dist, home) = (tmp.path().join("dist"), tmp.path().join("home"));
    std::fs::create_dir_all(&home).expect("a home dir");

    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let base_url = format!(
        "http://{}/",
        listener.local_addr().expect("a bound address")
    );
    // The host's release build (static musl on Linux) unless `cargo xtask test` found this
    // machine cannot build it and asked for a native one.
    let dist_target = std::env::var("FLUXBOOTSTRAP_DIST_TARGET").unwrap_or_else(|_| "host".into());
    xtask(&[
        "dist",
        "--target",
        &dist_target,
        "--out-dir",
        &dist.to_string_lossy(),
        "--no-index",
        "--base-url",
        &base_url,
    ]);
    serve(listener, dist.clone());

    let (os, arch) = host_platform();
    let ext = if os == "windows" { "zip" } else { "tar.gz" };
    let archive = dist.join(format!("kubectl-fluxbootstrap_{VERSION}_{os}_{arch}.{ext}"));
    let manifest = dist.join("fluxbootstrap.yaml");
    assert!(
        archive.is_file() && manifest.is_file(),
        "dist wrote {} and {}",
        archive.display(),
        manifest.display()
    );
    let rendered = read(&manifest);
    assert_eq!(values(&rendered, "version"), [format!("v{VERSION}")]);
    assert_eq!(
        values(&rendered, "uri"),
        [format!(
            "{base_url}kubectl-fluxbootstrap_{VERSION}_{os}_{arch}.{ext}"
        )]
    );

    // `kubectl` dispatches to `kubectl-krew` and to the installed plugin through PATH.
    let command = |program: &Path, krew_root: &Path| {
        let path = std::env::join_paths([
            krew_root.join("bin"),
            krew_bin.clone(),
            kubectl_bin.clone(),
            PathBuf::from("/usr/bin"),
            PathBuf::from("/bin"),
        ])
        .expect("PATH entries without separators");
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", path)
            .env("HOME", &home)
            .env("KREW_ROOT", krew_root)
            .env("KREW_NO_UPGRADE_CHECK", "1")
            .env("KUBECONFIG", home.join("no-kubeconfig"));
        cmd
    };
    let kubectl = kubectl_bin.join("kubectl");

    // krew-index's CI check: schema, selectors, then a real install of each platform from
    // the URI (our loopback server) and the LICENSE check.
    let validator = krew_bin.join("validate-krew-manifest");
    run(command(&validator, &tmp.path().join("unused"))
        .args(["-manifest"])
        .arg(&manifest));
    // The committed custom index passes the schema checks too (its URIs are GitHub's).
    run(command(&validator, &tmp.path().join("unused"))
        .args(["-skip-install", "-manifest"])
        .arg(root().join("krew/plugins/fluxbootstrap.yaml")));

    // The documented local install.
    let krew_root = tmp.path().join("krew");
    run(command(&kubectl, &krew_root)
        .args(["krew", "install"])
        .arg(format!("--manifest={}", manifest.display()))
        .arg(format!("--archive={}", archive.display())));
    let plugins = run(command(&kubectl, &krew_root).args(["plugin", "list", "--name-only"]));
    assert!(
        plugins.lines().any(|l| l.trim() == "kubectl-fluxbootstrap"),
        "kubectl plugin list:\n{plugins}"
    );
    let paths = run(command(&kubectl, &krew_root).args(["plugin", "list"]));
    let link = krew_root.join("bin/kubectl-fluxbootstrap");
    assert!(
        paths.contains(&*link.to_string_lossy()),
        "kubectl plugin list:\n{paths}"
    );
    let version = run(command(&kubectl, &krew_root).args(["fluxbootstrap", "version", "--client"]));
    assert!(
        version.contains(&format!("v{VERSION}")),
        "kubectl fluxbootstrap version --client:\n{version}"
    );
    if dist_target == "host" && os == "linux" {
        // What ships for Linux runs on any distribution (no ELF interpreter, no dynamic
        // loader) and is position-independent: it holds PATs and links libgit2, libssh2 and
        // OpenSSL, so it gets ASLR like any other binary.
        let elf = std::fs::read(&link).expect("the installed binary");
        assert_eq!(
            elf_static_pie(&elf),
            Some(true),
            "{} is not a static-pie ELF executable",
            link.display()
        );
    }
    // krew keeps a receipt per installed plugin (`krew list` needs an index, absent here).
    let receipt = krew_root.join("receipts/fluxbootstrap.yaml");
    assert!(
        receipt.is_file(),
        "no krew receipt at {}",
        receipt.display()
    );

    // The custom index: a git repository whose root is `krew/` (with the loopback manifest).
    let index = tmp.path().join("index");
    std::fs::create_dir_all(index.join("plugins")).expect("an index dir");
    std::fs::copy(&manifest, index.join("plugins/fluxbootstrap.yaml"))
        .expect("copying the manifest");
    let git = |args: &[&str]| {
        run(Command::new("git")
            .current_dir(&index)
            .env("HOME", &home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "-c",
                "init.defaultBranch=master",
            ])
            .args(args))
    };
    git(&["init", "--quiet"]);
    git(&["add", "plugins"]);
    git(&["commit", "--quiet", "-m", "index"]);
    let index_root = tmp.path().join("krew-index-install");
    run(command(&kubectl, &index_root)
        .args(["krew", "index", "add", "fluxbootstrap"])
        .arg(&index));
    run(command(&kubectl, &index_root).args(["krew", "install", "fluxbootstrap/fluxbootstrap"]));
    let version =
        run(command(&kubectl, &index_root).args(["fluxbootstrap", "version", "--client"]));
    assert!(
        version.contains(&format!("v{VERSION}")),
        "installed from the index:\n{version}"
    );
}
