//! The git server behaves like Azure DevOps for the real `git`, `ssh` and an HTTPS client:
//! PAT / token auth over HTTPS, RSA-only SSH, the REST subset and its error answers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use fluxbootstrap_test::{GitServer, Repo};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_rustls::rustls::{self, pki_types::ServerName};

fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A scratch directory with a `git` that has no user config and trusts the server's CA.
struct Client {
    dir: tempfile::TempDir,
    server: &'static GitServer,
}

impl Client {
    fn new() -> Client {
        Client {
            dir: tempfile::tempdir().expect("temp dir"),
            server: GitServer::shared(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `git` with a clean environment; `password` is handed over by a credential helper
    /// reading an environment variable, never in argv.
    fn git(&self, password: Option<&str>) -> Command {
        let mut cmd = Command::new("git");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GIT_") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_SSL_CAINFO", self.server.ca_file())
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .args(["-c", "init.defaultBranch=main", "-c", "credential.helper="]);
        if let Some(password) = password {
            cmd.env("TEST_GIT_PASSWORD", password).args([
                "-c",
                "credential.helper=!f() { test \"$1\" = get && echo username=git && echo \"password=$TEST_GIT_PASSWORD\"; }; f",
            ]);
        }
        cmd
    }

    /// `git` whose ssh uses `key` only and verifies the server's host key.
    fn git_ssh(&self, key: &Path, extra_ssh_options: &str) -> Command {
        let known_hosts = self.path("known_hosts");
        fs_err::write(&known_hosts, format!("{}\n", self.server.ssh_known_hosts()))
            .expect("write known_hosts");
        let mut cmd = self.git(None);
        cmd.env(
            "GIT_SSH_COMMAND",
            format!(
                "ssh -F none -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes {extra_ssh_options}",
                key.display(),
                known_hosts.display()
            ),
        );
        cmd
    }

    fn commit(&self, work: &str, file: &str, content: &str) {
        let work = self.path(work);
        fs_err::write(work.join(file), content).expect("write file");
        run(self.git(None).current_dir(&work).args(["add", "."]));
        run(self
            .git(None)
            .current_dir(&work)
            .args(["commit", "-q", "-m", content]));
    }

    fn head(&self, work: &str) -> String {
        let out = run(self
            .git(None)
            .current_dir(self.path(work))
            .args(["rev-parse", "HEAD"]));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(!out.status.success(), "{cmd:?} unexpectedly succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn new_repo() -> Repo {
    GitServer::shared().create_repo(&unique("org"), "proj", &unique("repo"))
}

fn rsa_key(client: &Client, name: &str, kind: &[&str]) -> PathBuf {
    let key = client.path(name);
    run(Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-C", "test"])
        .args(kind)
        .arg("-f")
        .arg(&key));
    key
}

#[test]
fn https_clone_and_push_with_pat() {
    let server = GitServer::shared();
    let repo = new_repo();
    let client = Client::new();
    run(client
        .git(Some(server.pat()))
        .args(["clone", "-q", &repo.https_url, "work"]));
    client.commit("work", "README.md", "hello");
    run(client
        .git(Some(server.pat()))
        .current_dir(client.path("work"))
        .args(["push", "-q", "origin", "HEAD:refs/heads/main"]));
    assert_eq!(
        repo.branch_sha("main").as_deref(),
        Some(client.head("work").as_str())
    );
    run(client
        .git(Some(server.pat()))
        .args(["clone", "-q", &repo.https_url, "again"]));
    assert_eq!(
        fs_err::read_to_string(client.path("again/README.md")).expect("cloned file"),
        "hello"
    );
}

#[test]
fn https_accepts_org_userinfo_spaces_and_bearer_token() {
    let server = GitServer::shared();
    let org = unique("org");
    let repo = server.create_repo(&org, "My Project", "my repo");
    assert!(
        repo.https_url.contains("/My%20Project/_git/my%20repo"),
        "{}",
        repo.https_url
    );
    let with_user = repo
        .https_url
        .replacen("https://", &format!("https://{org}@"), 1);
    let client = Client::new();
    run(client
        .git(Some(server.pat()))
        .args(["clone", "-q", &with_user, "work"]));
    client.commit("work", "a.txt", "a");
    // Entra-style token as a Bearer header, passed through the environment.
    run(client
        .git(None)
        .current_dir(client.path("work"))
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.extraHeader")
        .env(
            "GIT_CONFIG_VALUE_0",
            format!("Authorization: Bearer {}", server.bearer_token()),
        )
        .args(["push", "-q", &repo.https_url, "HEAD:refs/heads/main"]));
    assert!(repo.branch_sha("main").is_some());
}

#[test]
fn https_refuses_bad_and_revoked_pats() {
    let server = GitServer::shared();
    let repo = new_repo();
    let client = Client::new();
    let stderr =
        fails(
            client
                .git(Some("not-a-valid-pat"))
                .args(["clone", "-q", &repo.https_url, "work"]),
        );
    assert!(stderr.contains("Authentication failed"), "{stderr}");

    server.add_pat("temporary-pat-for-revocation-test", false);
    run(client.git(Some("temporary-pat-for-revocation-test")).args([
        "clone",
        "-q",
        &repo.https_url,
        "ok",
    ]));
    server.revoke_pat("temporary-pat-for-revocation-test");
    let stderr = fails(client.git(Some("temporary-pat-for-revocation-test")).args([
        "clone",
        "-q",
        &repo.https_url,
        "revoked",
    ]));
    assert!(stderr.contains("Authentication failed"), "{stderr}");
}

#[test]
fn readonly_pat_clones_but_cannot_push() {
    let server = GitServer::shared();
    let repo = new_repo();
    let client = Client::new();
    run(client
        .git(Some(server.readonly_pat()))
        .args(["clone", "-q", &repo.https_url, "work"]));
    client.commit("work", "a.txt", "a");
    let stderr = fails(
        client
            .git(Some(server.readonly_pat()))
            .current_dir(client.path("work"))
            .args(["push", "-q", "origin", "HEAD:refs/heads/main"]),
    );
    assert!(stderr.contains("403"), "{stderr}");
    assert_eq!(repo.branch_sha("main"), None);
}

#[test]
fn first_pushed_branch_becomes_default_and_gzip_fetch_works() {
    let server = GitServer::shared();
    let repo = new_repo();
    let client = Client::new();
    run(client.git(None).args(["init", "-q", "work"]));
    client.commit("work", "a.txt", "a");
    run(client
        .git(Some(server.pat()))
        .current_dir(client.path("work"))
        .args(["push", "-q", &repo.https_url, "HEAD:refs/heads/develop"]));
    let (status, _, body) = rest(
        "GET",
        &format!(
            "/{}/{}/_apis/git/repositories/{}?api-version=7.1",
            repo.org, repo.project, repo.name
        ),
        Auth::Pat(server.pat()),
        None,
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["defaultBranch"], "refs/heads/develop");
    let head = run(repo.git().args(["symbolic-ref", "HEAD"]));
    assert_eq!(
        String::from_utf8_lossy(&head.stdout).trim(),
        "refs/heads/develop"
    );

    // Many local commits make the fetch negotiation large enough for git to gzip it.
    for i in 0..60 {
        client.commit("work", "a.txt", &format!("local {i}"));
    }
    run(client
        .git(Some(server.pat()))
        .args(["clone", "-q", &repo.https_url, "other"]));
    client.commit("other", "b.txt", "remote");
    run(client
        .git(Some(server.pat()))
        .current_dir(client.path("other"))
        .args(["push", "-q", "origin", "HEAD:refs/heads/develop"]));
    let fetch = run(client
        .git(Some(server.pat()))
        .current_dir(client.path("work"))
        .env("GIT_TRACE_CURL", "1")
        .env("GIT_TRACE_CURL_NO_DATA", "1")
        .args(["fetch", "-q", &repo.https_url, "develop"]));
    assert!(
        String::from_utf8_lossy(&fetch.stderr).contains("Content-Encoding: gzip"),
        "the negotiation request was not gzipped"
    );
    let fetched = run(client
        .git(None)
        .current_dir(client.path("work"))
        .args(["rev-parse", "FETCH_HEAD"]));
    assert_eq!(
        String::from_utf8_lossy(&fetched.stdout).trim(),
        client.head("other")
    );
}

#[test]
fn ssh_clone_and_push_with_rsa_key() {
    let server = GitServer::shared();
    let repo = server.create_repo(&unique("org"), "Ssh Project", &unique("repo"));
    let client = Client::new();
    let key = rsa_key(&client, "id_rsa", &["-t", "rsa", "-b", "3072"]);
    server.add_ssh_key(&fs_err::read_to_string(key.with_extension("pub")).expect("pub key"));
    run(client
        .git_ssh(&key, "")
        .args(["clone", "-q", &repo.ssh_url, "work"]));
    client.commit("work", "a.txt", "over ssh");
    run(client
        .git_ssh(&key, "")
        .current_dir(client.path("work"))
        .args(["push", "-q", "origin", "HEAD:refs/heads/main"]));
    assert_eq!(
        repo.branch_sha("main").as_deref(),
        Some(client.head("work").as_str())
    );
    // scp-like path without a leading slash, spaces percent-encoded, different case.
    let (_, port) = server
        .ssh_host()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .expect("host:port");
    let scp_like = format!(
        "git@127.0.0.1:v3/{}/ssh%20project/{}",
        repo.org.to_uppercase(),
        repo.name
    );
    run(client
        .git_ssh(&key, &format!("-p {port}"))
        .args(["clone", "-q", &scp_like, "scp"]));
    assert!(client.path("scp/a.txt").exists());

    // No shell, no other commands.
    let out = Command::new("ssh")
        .args([
            "-F",
            "none",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
        ])
        .arg("-i")
        .arg(&key)
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            client.path("known_hosts").display()
        ))
        .args(["-p", &port, "git@127.0.0.1", "cat /etc/passwd"])
        .output()
        .expect("ssh");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Shell access is not supported"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ssh_refuses_ecdsa_keys_and_sha1_signatures() {
    let server = GitServer::shared();
    let repo = new_repo();
    let client = Client::new();
    let ecdsa = rsa_key(&client, "id_ecdsa", &["-t", "ecdsa"]);
    server.add_ssh_key(&fs_err::read_to_string(ecdsa.with_extension("pub")).expect("pub key"));
    let stderr = fails(
        client
            .git_ssh(&ecdsa, "")
            .args(["clone", "-q", &repo.ssh_url, "ecdsa"]),
    );
    assert!(stderr.contains("Permission denied"), "{stderr}");

    let rsa = rsa_key(&client, "id_rsa", &["-t", "rsa", "-b", "2048"]);
    server.add_ssh_key(&fs_err::read_to_string(rsa.with_extension("pub")).expect("pub key"));
    let stderr = fails(
        client
            .git_ssh(&rsa, "-o PubkeyAcceptedAlgorithms=ssh-rsa")
            .args(["clone", "-q", &repo.ssh_url, "sha1"]),
    );
    assert!(stderr.contains("Permission denied"), "{stderr}");
    // The same key signing with SHA-2 works.
    run(client
        .git_ssh(&rsa, "")
        .args(["clone", "-q", &repo.ssh_url, "sha2"]));
}

#[test]
fn ssh_unknown_repo_is_not_found() {
    let server = GitServer::shared();
    let client = Client::new();
    let key = rsa_key(&client, "id_rsa", &["-t", "rsa", "-b", "2048"]);
    server.add_ssh_key(&fs_err::read_to_string(key.with_extension("pub")).expect("pub key"));
    let url = format!("ssh://git@{}/v3/nope/nope/nope", server.ssh_host());
    let stderr = fails(client.git_ssh(&key, "").args(["clone", "-q", &url, "x"]));
    assert!(stderr.contains("TF401019"), "{stderr}");
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Pat(&'a str),
    Bearer(&'a str),
}

/// One HTTPS request to the shared server (verifying its certificate against the CA file);
/// JSON bodies are parsed, others returned as a JSON string.
fn rest(
    method: &str,
    path: &str,
    auth: Auth<'_>,
    body: Option<serde_json::Value>,
) -> (StatusCode, hyper::HeaderMap, serde_json::Value) {
    rest_with(method, path, auth, body, true)
}

fn rest_with(
    method: &str,
    path: &str,
    auth: Auth<'_>,
    body: Option<serde_json::Value>,
    suppress: bool,
) -> (StatusCode, hyper::HeaderMap, serde_json::Value) {
    use base64::Engine as _;
    let server = GitServer::shared();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        let pem = fs_err::read_to_string(server.ca_file()).expect("ca");
        let der = base64::engine::general_purpose::STANDARD
            .decode(
                pem.lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .expect("pem");
        roots.add(der.into()).expect("ca cert");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let base = server.https_base();
        let addr = base.trim_start_matches("https://").to_owned();
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("127.0.0.1").expect("ip"), tcp)
            .await
            .expect("TLS handshake with the test CA");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("http handshake");
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr)
            .header("accept", "application/json");
        if suppress {
            req = req.header("x-tfs-fedauthredirect", "Suppress");
        }
        match auth {
            Auth::None => {}
            Auth::Pat(pat) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!(":{pat}"));
                req = req.header("authorization", format!("Basic {encoded}"));
            }
            Auth::Bearer(token) => {
                req = req.header("authorization", format!("Bearer {token}"));
            }
        }
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        if !bytes.is_empty() {
            req = req.header("content-type", "application/json");
        }
        let response = sender
            .send_request(req.body(Full::new(Bytes::from(bytes))).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into()));
        (status, headers, value)
    })
}

#[test]
fn rest_repositories_projects_and_refs() {
    let server = GitServer::shared();
    let org = unique("org");
    let repo = server.create_repo(&org, "Rest Project", "first");
    let pat = Auth::Pat(server.pat());

    let (status, _, project) = rest(
        "GET",
        &format!("/{org}/_apis/projects/Rest%20Project?api-version=7.1"),
        pat,
        None,
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(project["name"], "Rest Project");
    assert_eq!(project["state"], "wellFormed");
    let project_id = project["id"].as_str().expect("id").to_owned();

    let (status, _, body) = rest(
        "GET",
        &format!("/{org}/_apis/projects/Nope?api-version=7.1"),
        Auth::Pat(server.pat()),
        None,
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["typeKey"], "ProjectDoesNotExistWithNameException");

    // An empty repository has no defaultBranch.
    let (status, _, body) = rest(
        "GET",
        &format!("/{org}/Rest%20Project/_apis/git/repositories/first?api-version=7.1"),
        Auth::Bearer(server.bearer_token()),
        None,
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], repo.id.as_str());
    assert_eq!(body["project"]["id"], project_id.as_str());
    assert!(body.get("defaultBranch").is_none(), "{body}");
    assert_eq!(body["sshUrl"], repo.ssh_url.as_str());
    assert!(
        body["remoteUrl"]
            .as_str()
            .expect("remoteUrl")
            .contains(&format!("https://{org}@"))
    );

    let (status, _, body) = rest(
        "GET",
        &format!("/{org}/Rest%20Project/_apis/git/repositories/missing?api-version=7.1"),
        Auth::Pat(server.pat()),
        None,
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .starts_with("TF401019")
    );
    assert_eq!(body["typeKey"], "GitRepositoryNotFoundException");

    // Create: 201, then 409; a read-only PAT may not create.
    let path = format!("/{org}/Rest%20Project/_apis/git/repositories?api-version=7.1");
    let (status, _, created) = rest(
        "POST",
        &path,
        Auth::Pat(server.pat()),
        Some(serde_json::json!({"name": "second"})),
    );
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["name"], "second");
    assert!(created.get("defaultBranch").is_none());
    assert!(server.repo(&org, "rest project", "SECOND").is_some());
    let (status, _, body) = rest(
        "POST",
        &path,
        Auth::Pat(server.pat()),
        Some(serde_json::json!({"name": "second"})),
    );
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .starts_with("TF400948")
    );
    let (status, _, _) = rest(
        "POST",
        &path,
        Auth::Pat(server.readonly_pat()),
        Some(serde_json::json!({"name": "third"})),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Refs, by repository id without a project segment too.
    let (status, _, refs) = rest(
        "GET",
        &format!(
            "/{org}/_apis/git/repositories/{}/refs?filter=heads/&api-version=7.1",
            repo.id
        ),
        Auth::Pat(server.pat()),
        None,
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(refs["count"], 0);
    let client = Client::new();
    run(client.git(None).args(["init", "-q", "work"]));
    client.commit("work", "a.txt", "a");
    run(client
        .git(Some(server.pat()))
        .current_dir(client.path("work"))
        .args(["push", "-q", &repo.https_url, "HEAD:refs/heads/main"]));
    let (_, _, refs) = rest(
        "GET",
        &format!(
            "/{org}/Rest%20Project/_apis/git/repositories/first/refs?filter=heads/&api-version=7.1"
        ),
        Auth::Pat(server.pat()),
        None,
    );
    assert_eq!(refs["count"], 1);
    assert_eq!(refs["value"][0]["name"], "refs/heads/main");
    assert_eq!(refs["value"][0]["objectId"], client.head("work").as_str());
    let (_, _, body) = rest(
        "GET",
        &format!("/{org}/Rest%20Project/_apis/git/repositories/first?api-version=7.1"),
        Auth::Pat(server.pat()),
        None,
    );
    assert_eq!(body["defaultBranch"], "refs/heads/main");
}

#[test]
fn rest_auth_failures_and_connection_data() {
    let server = GitServer::shared();
    let org = unique("org");
    server.create_project(&org, "p");

    let (status, headers, body) = rest(
        "GET",
        &format!("/{org}/_apis/connectionData?api-version=7.1-preview.1"),
        Auth::Pat("wrong"),
        None,
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .starts_with("TF400813")
    );
    let challenges: Vec<_> = headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("Basic realm=")),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c == "TFS-Federated"),
        "{challenges:?}"
    );
    assert_eq!(
        headers.get("x-vss-resourcetenant").expect("tenant header"),
        server.tenant_id()
    );

    // Without `X-TFS-FedAuthRedirect: Suppress`: 203 and an HTML sign-in page.
    let (status, headers, body) = rest_with(
        "GET",
        &format!("/{org}/_apis/projects/p?api-version=7.1"),
        Auth::None,
        None,
        false,
    );
    assert_eq!(status, StatusCode::NON_AUTHORITATIVE_INFORMATION);
    assert!(
        headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(body.as_str().expect("html").contains("Sign In"));

    let (status, _, body) = rest(
        "GET",
        &format!("/{org}/_apis/connectionData?api-version=7.1"),
        Auth::Pat(server.pat()),
        None,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("-preview")
    );

    let (status, _, body) = rest(
        "GET",
        &format!("/{org}/_apis/connectionData?api-version=7.1-preview"),
        Auth::Pat(server.readonly_pat()),
        None,
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["deploymentType"], "hosted");
    assert!(
        body["authenticatedUser"]["id"]
            .as_str()
            .is_some_and(|id| !id.starts_with("0000"))
    );
}

#[test]
fn private_server_stops_on_drop() {
    let server = GitServer::start();
    let port = server.ssh_host();
    let base = server.https_base();
    drop(server);
    assert!(
        std::net::TcpStream::connect(&port).is_err(),
        "sshd still listening on {port}"
    );
    assert!(
        std::net::TcpStream::connect(base.trim_start_matches("https://")).is_err(),
        "https still listening on {base}"
    );
}

#[test]
fn atomic_push_is_refused_like_azure_devops() {
    let server = GitServer::shared();
    let repo = new_repo();
    let client = Client::new();
    run(client.git(None).args(["init", "-q", "work"]));
    client.commit("work", "a.txt", "a");
    let stderr = fails(
        client
            .git(Some(server.pat()))
            .current_dir(client.path("work"))
            .args([
                "push",
                "-q",
                "--atomic",
                &repo.https_url,
                "HEAD:refs/heads/main",
            ]),
    );
    assert!(stderr.contains("atomic"), "{stderr}");
}

/// Injected faults reach the real git: a 503 and a server that dies after carrying out a push
/// each fail that push promptly (no hang), only the `DieAfter` push lands, and the faults are
/// used up. (A server dying before it answers is not among them: curl quietly resends a
/// request that died on a reused connection, so the real git would succeed.)
#[test]
fn injected_faults_fail_real_git_promptly() {
    use fluxbootstrap_test::{Fault, FaultAction, FaultTarget};
    let server = GitServer::shared();
    let repo = new_repo();
    let client = Client::new();
    run(client
        .git(Some(server.pat()))
        .args(["clone", "-q", &repo.https_url, "work"]));
    for (n, action) in [
        FaultAction::Status {
            status: 503,
            retry_after_secs: None,
        },
        FaultAction::DieAfter,
    ]
    .into_iter()
    .enumerate()
    {
        client.commit("work", "README.md", &format!("attempt {n}"));
        server.inject_fault(Fault {
            org: repo.org.clone(),
            target: FaultTarget::Push,
            action,
            times: 1,
        });
        let started = std::time::Instant::now();
        let stderr = fails(
            client
                .git(Some(server.pat()))
                .env("GIT_HTTP_LOW_SPEED_LIMIT", "1")
                .env("GIT_HTTP_LOW_SPEED_TIME", "20")
                .current_dir(client.path("work"))
                .args(["push", "-q", "origin", "HEAD:refs/heads/main"]),
        );
        let took = started.elapsed();
        assert!(
            took < std::time::Duration::from_secs(10),
            "{action:?}: the push took {took:?}: {stderr}"
        );
        assert_eq!(server.faults_left(&repo.org), 0, "{action:?}");
        assert_eq!(
            repo.branch_sha("main").as_deref() == Some(client.head("work").as_str()),
            action == FaultAction::DieAfter,
            "{action:?}: {stderr}"
        );
    }
}
