//! A GitHub-releases-shaped HTTP server on loopback, for the release download tests and
//! for end-to-end runs that must not reach the internet.
//!
//! Plain HTTP/1.1 with `Connection: close`, one thread per connection: enough for a
//! handful of downloads and simple enough to misbehave on purpose (wrong checksums,
//! bodies shorter than their `Content-Length`). Layout, relative to [`ReleaseServer::base_url`]:
//! `/fluxcd/flux2/releases/download/<version>/<asset>` and the releases API
//! `/repos/fluxcd/flux2/releases/latest`, as `fluxbootstrap-release` expects.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};

struct Asset {
    body: Vec<u8>,
    advertised_len: u64,
}

#[derive(Default)]
struct State {
    assets: HashMap<String, Asset>,
    hits: HashMap<String, usize>,
}

/// The release server; stops on drop.
pub struct ReleaseServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl ReleaseServer {
    /// Starts a server on a free loopback port.
    pub fn start() -> ReleaseServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("loopback is available");
        let addr = listener.local_addr().expect("bound socket has an address");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_state, thread_stop) = (Arc::clone(&state), Arc::clone(&stop));
        thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&thread_state);
                thread::spawn(move || serve(stream, &state));
            }
        });
        ReleaseServer { addr, state, stop }
    }

    /// The base URL to pass as the release base-URL override (`FLUXBOOTSTRAP_RELEASES_URL`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `host:port` of the server.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// Serves a Flux release: `manifests.tar.gz` and `flux_<ver>_checksums.txt` (with its
    /// SHA-256) under `/fluxcd/flux2/releases/download/<version>/`.
    pub fn publish(&self, version: &str, manifests_tar_gz: Vec<u8>) {
        let sha: String =
            Sha256::digest(&manifests_tar_gz)
                .iter()
                .fold(String::new(), |mut s, b| {
                    let _ = write!(s, "{b:02x}");
                    s
                });
        let plain = version.trim_start_matches('v');
        let checksums = format!(
            "{}  flux_{plain}_linux_amd64.tar.gz\n{sha}  manifests.tar.gz\n",
            "0".repeat(64)
        );
        self.put(&release_path(version, "manifests.tar.gz"), manifests_tar_gz);
        // What GitHub's releases API answers for an existing tag (flux asks before a download).
        self.put(
            &format!("/repos/fluxcd/flux2/releases/tags/{version}"),
            format!("{{\"tag_name\":\"{version}\",\"name\":\"{version}\"}}").into_bytes(),
        );
        self.put(
            &release_path(version, &format!("flux_{plain}_checksums.txt")),
            checksums.into_bytes(),
        );
    }

    /// Serves `body` at `path` (starting with `/`).
    pub fn put(&self, path: &str, body: Vec<u8>) {
        let advertised_len = body.len() as u64;
        self.put_truncated(path, body, advertised_len);
    }

    /// Serves `body` at `path` but advertises `advertised_len` bytes, then closes the
    /// connection: a download cut off mid-way.
    pub fn put_truncated(&self, path: &str, body: Vec<u8>, advertised_len: u64) {
        self.lock().assets.insert(
            path.to_owned(),
            Asset {
                body,
                advertised_len,
            },
        );
    }

    /// Makes the releases API name `version` as the latest release.
    pub fn set_latest(&self, version: &str) {
        let body = format!("{{\"tag_name\":\"{version}\",\"name\":\"{version}\"}}");
        self.put("/repos/fluxcd/flux2/releases/latest", body.into_bytes());
    }

    /// How many requests `path` received (to tell cache hits from downloads).
    pub fn hits(&self, path: &str) -> usize {
        self.lock().hits.get(path).copied().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ReleaseServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// `/fluxcd/flux2/releases/download/<version>/<asset>`.
pub fn release_path(version: &str, asset: &str) -> String {
    format!("/fluxcd/flux2/releases/download/{version}/{asset}")
}

fn serve(mut stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let response = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        *state.hits.entry(path.clone()).or_default() += 1;
        state
            .assets
            .get(&path)
            .map(|a| (a.body.clone(), a.advertised_len))
    };
    let _ = match response {
        Some((body, advertised_len)) => stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {advertised_len}\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .and_then(|()| stream.write_all(&body)),
        None => stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nNot Found",
        ),
    };
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
}

/// The Flux bundle for download tests and e2e runs: the real v2.9.4 `manifests.tar.gz`
/// from `$FLUXBOOTSTRAP_FLUX_MANIFESTS` when set and present, else the project's small
/// synthetic fixture bundle (also published as `v2.9.4`, so default-version runs work) with
/// the harness's stand-in `GitRepository` and `Kustomization` CRDs added to the source- and
/// kustomize-controller files, so a bootstrap from it can apply and reconcile its sync objects.
pub fn flux_bundle_tar_gz() -> (String, Vec<u8>) {
    if let Some(path) = real_bundle_tarball() {
        let bytes = fs_err::read(&path).expect("the bundle tarball is readable");
        return ("v2.9.4".to_owned(), bytes);
    }
    ("v2.9.4".to_owned(), fixture_bundle_with_flux_crds())
}

/// Whether [`flux_bundle_tar_gz`] is the real Flux v2.9.4 bundle. The synthetic one is not
/// the release the plugin pins for v2.9.4, so whatever downloads it must say
/// `FLUXBOOTSTRAP_RELEASES_UNPINNED=1`.
pub fn flux_bundle_is_real() -> bool {
    real_bundle_tarball().is_some()
}

fn real_bundle_tarball() -> Option<PathBuf> {
    std::env::var_os("FLUXBOOTSTRAP_FLUX_MANIFESTS")
        .map(|dir| PathBuf::from(dir).join("v2.9.4/manifests.tar.gz"))
        .filter(|p| p.is_file())
}

fn fixture_bundle_with_flux_crds() -> Vec<u8> {
    const FLUX_CRDS: &str = include_str!("../tests/it/kube_fixtures/flux-crds.yaml");
    let crd = |plural: &str| {
        FLUX_CRDS
            .split("\n---\n")
            .find(|doc| doc.contains(plural))
            .expect("the stand-in CRDs define both kinds")
            .trim()
            .to_owned()
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/fluxbootstrap-manifests/tests/fixtures/bundle");
    let mut names: Vec<_> = fs_err::read_dir(&dir)
        .expect("the fixture bundle is readable")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for name in names {
        let mut text = fs_err::read_to_string(dir.join(&name)).expect("a fixture file is readable");
        let extra = match name.as_str() {
            "source-controller.yaml" => Some(crd("gitrepositories.source.toolkit.fluxcd.io")),
            "kustomize-controller.yaml" => Some(crd("kustomizations.kustomize.toolkit.fluxcd.io")),
            _ => None,
        };
        if let Some(extra) = extra {
            text = format!("---\n{extra}\n---\n{text}");
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive
            .append_data(&mut header, &name, text.as_bytes())
            .expect("appending to an in-memory archive works");
    }
    archive
        .into_inner()
        .and_then(flate2::write::GzEncoder::finish)
        .expect("finishing an in-memory archive works")
}
