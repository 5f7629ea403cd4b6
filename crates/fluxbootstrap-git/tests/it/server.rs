//! Against the harness's Azure-DevOps-shaped git server: real smart HTTP over TLS (PAT,
//! bearer, custom CA, 401/403) and real OpenSSH (RSA keys, host keys).

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use fluxbootstrap_auth::SecretString;
use fluxbootstrap_git::{
    Author, Checkout, GitError, NoReporter, Phase, RemoteAuth, RemoteOptions, ls_remote,
};
use fluxbootstrap_test::{GitServer, Repo};

use crate::support::{Recorder, files, git_bare, push_as_someone_else, run};

const ORG: &str = "gitcrate";

fn server() -> &'static GitServer {
    GitServer::shared()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn pat_auth(pat: &str) -> RemoteAuth {
    RemoteAuth::Basic {
        username: "git".to_owned(),
        password: secret(pat),
    }
}

fn https(repo: &Repo, auth: RemoteAuth) -> RemoteOptions {
    RemoteOptions {
        url: repo.https_url.clone(),
        auth,
        ca_file: Some(server().ca_file().to_owned()),
        timeout: Duration::from_secs(30),
    }
}

/// A repository with one seed commit on `main`, pushed with our own crate.
fn seeded(name: &str) -> (Repo, String) {
    let repo = server().create_repo(ORG, "proj", name);
    let mut checkout = Checkout::clone(
        &https(&repo, pat_auth(server().pat())),
        "main",
        false,
        &NoReporter,
    )
    .unwrap();
    let sha = checkout
        .commit_and_push(
            &files(&[("README.md", "seed\n")]),
            "Seed",
            &Author::default(),
            &NoReporter,
        )
        .unwrap()
        .unwrap();
    (repo, sha)
}

/// Configures the git CLI (through the environment, never argv) to talk to the harness
/// over HTTPS with the full PAT.
fn cli_https_auth(cmd: &mut Command) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("git:{}", server().pat()));
    cmd.env("GIT_CONFIG_COUNT", "2")
        .env("GIT_CONFIG_KEY_0", "http.extraHeader")
        .env(
            "GIT_CONFIG_VALUE_0",
            format!("Authorization: Basic {basic}"),
        )
        .env("GIT_CONFIG_KEY_1", "http.sslCAInfo")
        .env("GIT_CONFIG_VALUE_1", server().ca_file());
}

fn bare(repo: &Repo, args: &[&str]) -> String {
    git_bare(&repo.bare_path, args)
}

#[test]
fn https_pat_clone_of_empty_repo_then_push_and_reclone() {
    let repo = server().create_repo(ORG, "proj", "https-pat");
    let opts = https(&repo, pat_auth(server().pat()));
    let mut checkout = Checkout::clone(&opts, "main", false, &NoReporter).unwrap();
    assert!(checkout.is_empty_remote());
    assert_eq!(checkout.head(), None);
    let recorder = Recorder::default();
    let sha = checkout
        .commit_and_push(
            &files(&[("clusters/prod/flux-system/gotk-components.yaml", "a: 1\n")]),
            "Add Flux v2.9.4 component manifests",
            &Author::default(),
            &recorder,
        )
        .unwrap()
        .unwrap();
    assert!(recorder.saw(Phase::Sending));
    assert_eq!(repo.branch_sha("main").as_deref(), Some(sha.as_str()));
    assert_eq!(
        bare(&repo, &["log", "--format=%an <%ae>|%s", "main"]),
        "Flux <>|Add Flux v2.9.4 component manifests"
    );
    assert_eq!(
        bare(
            &repo,
            &[
                "show",
                "main:clusters/prod/flux-system/gotk-components.yaml"
            ]
        ),
        "a: 1"
    );

    // No credential in the checkout's config, and the origin URL is the clean one.
    let config = std::fs::read_to_string(checkout.workdir().join(".git/config")).unwrap();
    assert!(!config.contains(server().pat()), "{config}");
    assert!(
        config.contains(&format!("url = {}", repo.https_url)),
        "{config}"
    );

    let recorder = Recorder::default();
    let again = Checkout::clone(&opts, "main", false, &recorder).unwrap();
    assert_eq!(again.head().as_deref(), Some(sha.as_str()));
    assert!(!again.is_empty_remote());
    assert!(recorder.saw(Phase::Receiving));
    assert_eq!(
        again
            .read_file("clusters/prod/flux-system/gotk-components.yaml")
            .unwrap()
            .as_deref(),
        Some(&b"a: 1\n"[..])
    );

    let refs = ls_remote(&opts).unwrap();
    assert!(
        refs.contains(&("refs/heads/main".to_owned(), sha.clone())),
        "{refs:?}"
    );
}

#[test]
fn https_url_with_user_info_is_cleaned() {
    let (repo, sha) = seeded("user-info");
    // Azure DevOps' own clone URLs carry `org@`; a token there must never be stored.
    let url = repo
        .https_url
        .replacen("https://", "https://gitcrate:tok3n@", 1);
    let opts = RemoteOptions {
        url,
        ..https(&repo, pat_auth(server().pat()))
    };
    let checkout = Checkout::clone(&opts, "main", false, &NoReporter).unwrap();
    assert_eq!(checkout.head().as_deref(), Some(sha.as_str()));
    let config = std::fs::read_to_string(checkout.workdir().join(".git/config")).unwrap();
    assert!(
        !config.contains("tok3n") && !config.contains("gitcrate:"),
        "{config}"
    );
}

#[test]
fn https_bearer_token() {
    let (repo, seed) = seeded("bearer");
    let opts = https(
        &repo,
        RemoteAuth::Bearer {
            token: secret(server().bearer_token()),
        },
    );
    let mut checkout = Checkout::clone(&opts, "main", false, &NoReporter).unwrap();
    assert_eq!(checkout.head().as_deref(), Some(seed.as_str()));
    let sha = checkout
        .commit_and_push(
            &files(&[("x.yaml", "x\n")]),
            "Add",
            &Author::default(),
            &NoReporter,
        )
        .unwrap()
        .unwrap();
    assert_eq!(repo.branch_sha("main").as_deref(), Some(sha.as_str()));
    assert_eq!(bare(&repo, &["rev-parse", "main^"]), seed);
    assert!(!ls_remote(&opts).unwrap().is_empty());

    let bad = https(
        &repo,
        RemoteAuth::Bearer {
            token: secret("eyJ.not-valid.token"),
        },
    );
    let err = ls_remote(&bad).unwrap_err();
    assert!(matches!(err, GitError::TokenRejected { .. }), "{err:?}");
    assert!(!format!("{err:?}{err}").contains("not-valid"));
}

#[test]
fn custom_ca_is_required_and_checked() {
    let (repo, _) = seeded("custom-ca");
    let without = RemoteOptions {
        ca_file: None,
        ..https(&repo, pat_auth(server().pat()))
    };
    let err = Checkout::clone(&without, "main", false, &NoReporter).unwrap_err();
    assert!(
        matches!(err, GitError::CertificateNotTrusted { ca_file: None, .. }),
        "{err:?}"
    );
    assert!(err.hint().unwrap().contains("--ca-file"));

    // A CA that did not sign the server certificate.
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, self_signed_ca_pem()).unwrap();
    let wrong = RemoteOptions {
        ca_file: Some(other_ca),
        ..https(&repo, pat_auth(server().pat()))
    };
    let err = Checkout::clone(&wrong, "main", false, &NoReporter).unwrap_err();
    assert!(
        matches!(
            &err,
            GitError::CertificateNotTrusted {
                ca_file: Some(_),
                detail: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn missing_branch_on_the_server() {
    let (repo, seed) = seeded("missing-branch");
    let opts = https(&repo, pat_auth(server().pat()));
    let err = Checkout::clone(&opts, "flux", false, &NoReporter).unwrap_err();
    assert!(
        matches!(&err, GitError::BranchNotFound { default_branch: Some(d), .. } if d == "main"),
        "{err:?}"
    );
    let mut checkout = Checkout::clone(&opts, "flux", true, &NoReporter).unwrap();
    checkout
        .commit_and_push(
            &files(&[("f.yaml", "f\n")]),
            "Add",
            &Author::default(),
            &NoReporter,
        )
        .unwrap()
        .unwrap();
    assert_eq!(bare(&repo, &["rev-parse", "flux^"]), seed);
    assert_eq!(repo.branch_sha("main").as_deref(), Some(seed.as_str()));
}

#[test]
fn bad_pat_is_401_with_hint_and_no_secret() {
    let (repo, _) = seeded("bad-pat");
    let opts = https(&repo, pat_auth("definitely-not-a-pat"));
    let err = Checkout::clone(&opts, "main", false, &NoReporter).unwrap_err();
    assert!(
        matches!(&err, GitError::PatRejected { org: Some(o), .. } if o == ORG),
        "{err:?}"
    );
    let shown = format!("{err}\n{err:?}\n{}", err.hint().unwrap());
    assert!(!shown.contains("definitely-not-a-pat"), "{shown}");
    assert!(
        shown.contains("https://dev.azure.com/gitcrate/_usersSettings/tokens"),
        "{shown}"
    );
    assert!(matches!(
        ls_remote(&opts).unwrap_err(),
        GitError::PatRejected { .. }
    ));
}

#[test]
fn readonly_pat_clones_but_push_is_403() {
    let (repo, seed) = seeded("readonly");
    let opts = https(&repo, pat_auth(server().readonly_pat()));
    let mut checkout = Checkout::clone(&opts, "main", false, &NoReporter).unwrap();
    let err = checkout
        .commit_and_push(
            &files(&[("f.yaml", "f\n")]),
            "Add",
            &Author::default(),
            &NoReporter,
        )
        .unwrap_err();
    assert!(matches!(err, GitError::PermissionDenied { .. }), "{err:?}");
    assert!(err.hint().unwrap().contains("Code (Read & write)"));
    assert_eq!(repo.branch_sha("main").as_deref(), Some(seed.as_str()));
}

#[test]
fn concurrent_pusher_over_https_is_not_lost() {
    let (repo, seed) = seeded("race");
    let opts = https(&repo, pat_auth(server().pat()));
    let mut checkout = Checkout::clone(&opts, "main", false, &NoReporter).unwrap();
    let theirs = push_as_someone_else(
        &repo.https_url,
        "main",
        &[("theirs.txt", "t\n")],
        cli_https_auth,
    );
    assert_ne!(theirs, seed);
    let ours = checkout
        .commit_and_push(
            &files(&[("clusters/x/gotk-sync.yaml", "s\n")]),
            "Add Flux sync manifests",
            &Author::default(),
            &NoReporter,
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        bare(&repo, &["log", "--format=%s", "main"]),
        "Add Flux sync manifests\nConcurrent change\nSeed"
    );
    assert_eq!(bare(&repo, &["rev-parse", "main^"]), theirs);
    assert_eq!(bare(&repo, &["rev-parse", "main"]), ours);
    assert_eq!(bare(&repo, &["show", "main:theirs.txt"]), "t");
}

#[test]
fn repo_and_project_with_spaces() {
    let repo = server().create_repo(ORG, "My Project", "my repo");
    assert!(
        repo.https_url.contains("My%20Project"),
        "{}",
        repo.https_url
    );
    let mut checkout = Checkout::clone(
        &https(&repo, pat_auth(server().pat())),
        "main",
        false,
        &NoReporter,
    )
    .unwrap();
    let sha = checkout
        .commit_and_push(
            &files(&[("a b/c.yaml", "c\n")]),
            "Add",
            &Author::default(),
            &NoReporter,
        )
        .unwrap()
        .unwrap();
    assert_eq!(repo.branch_sha("main").as_deref(), Some(sha.as_str()));
    assert_eq!(bare(&repo, &["show", "main:a b/c.yaml"]), "c");

    let key = SshKey::generate(false);
    server().add_ssh_key(&key.public);
    let over_ssh = Checkout::clone(
        &ssh(&repo, &key, server().ssh_known_hosts()),
        "main",
        false,
        &NoReporter,
    )
    .unwrap();
    assert_eq!(over_ssh.head().as_deref(), Some(sha.as_str()));
}

/// An RSA key made by `ssh-keygen`; the encrypted variant is re-encrypted in-process so the
/// passphrase never appears in a child's arguments.
struct SshKey {
    private: String,
    passphrase: Option<String>,
    public: String,
}

impl SshKey {
    fn generate(with_passphrase: bool) -> SshKey {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_rsa");
        let mut keygen = Command::new("ssh-keygen");
        keygen
            .args([
                "-q",
                "-t",
                "rsa",
                "-b",
                "3072",
                "-N",
                "",
                "-C",
                "fluxbootstrap-git-test",
                "-f",
            ])
            .arg(&path);
        if with_passphrase {
            // PEM, so that OpenSSL can re-encrypt it below.
            keygen.args(["-m", "PEM"]);
        }
        run(&mut keygen);
        let mut private = std::fs::read_to_string(&path).unwrap();
        let public = std::fs::read_to_string(path.with_extension("pub"))
            .unwrap()
            .trim()
            .to_owned();
        let passphrase = with_passphrase.then(|| "correct horse battery".to_owned());
        if let Some(pass) = &passphrase {
            let rsa = openssl::rsa::Rsa::private_key_from_pem(private.as_bytes()).unwrap();
            let encrypted = rsa
                .private_key_to_pem_passphrase(
                    openssl::symm::Cipher::aes_256_cbc(),
                    pass.as_bytes(),
                )
                .unwrap();
            private = String::from_utf8(encrypted).unwrap();
            assert!(private.contains("ENCRYPTED"));
        }
        SshKey {
            private,
            passphrase,
            public,
        }
    }
}

fn ssh(repo: &Repo, key: &SshKey, known_hosts: String) -> RemoteOptions {
    RemoteOptions {
        url: repo.ssh_url.clone(),
        auth: RemoteAuth::Ssh {
            username: "git".to_owned(),
            private_key: secret(&key.private),
            passphrase: key.passphrase.as_deref().map(secret),
            known_hosts,
        },
        ca_file: None,
        timeout: Duration::from_secs(30),
    }
}

#[test]
fn ssh_rsa_key_without_passphrase() {
    let repo = server().create_repo(ORG, "proj", "ssh-plain");
    let key = SshKey::generate(false);
    assert!(key.private.contains("OPENSSH PRIVATE KEY"));
    server().add_ssh_key(&key.public);
    let opts = ssh(&repo, &key, server().ssh_known_hosts());
    let mut checkout = Checkout::clone(&opts, "main", false, &NoReporter).unwrap();
    assert!(checkout.is_empty_remote());
    let sha = checkout
        .commit_and_push(
            &files(&[("s.yaml", "s\n")]),
            "Add over SSH",
            &Author::default(),
            &NoReporter,
        )
        .unwrap()
        .unwrap();
    assert_eq!(repo.branch_sha("main").as_deref(), Some(sha.as_str()));
    assert_eq!(
        bare(&repo, &["log", "--format=%an <%ae>|%s", "main"]),
        "Flux <>|Add over SSH"
    );
    assert!(
        ls_remote(&opts)
            .unwrap()
            .iter()
            .any(|(r, s)| r == "refs/heads/main" && *s == sha)
    );
}

#[test]
fn ssh_rsa_key_with_passphrase() {
    let (repo, seed) = seeded("ssh-passphrase");
    let key = SshKey::generate(true);
    server().add_ssh_key(&key.public);
    let mut checkout = Checkout::clone(
        &ssh(&repo, &key, server().ssh_known_hosts()),
        "main",
        false,
        &NoReporter,
    )
    .unwrap();
    assert_eq!(checkout.head().as_deref(), Some(seed.as_str()));
    let sha = checkout
        .commit_and_push(
            &files(&[("p.yaml", "p\n")]),
            "Add",
            &Author::default(),
            &NoReporter,
        )
        .unwrap()
        .unwrap();
    assert_eq!(repo.branch_sha("main").as_deref(), Some(sha.as_str()));

    let wrong = SshKey {
        passphrase: Some("wrong".to_owned()),
        ..key
    };
    let err = Checkout::clone(
        &ssh(&repo, &wrong, server().ssh_known_hosts()),
        "main",
        false,
        &NoReporter,
    )
    .unwrap_err();
    assert!(matches!(err, GitError::SshKeyUnusable { .. }), "{err:?}");
}

#[test]
fn ssh_key_not_registered_points_at_settings_page() {
    let (repo, _) = seeded("ssh-unregistered");
    let key = SshKey::generate(false);
    let err = Checkout::clone(
        &ssh(&repo, &key, server().ssh_known_hosts()),
        "main",
        false,
        &NoReporter,
    )
    .unwrap_err();
    assert!(
        matches!(err, GitError::SshAuthenticationFailed { .. }),
        "{err:?}"
    );
    assert!(
        err.hint()
            .unwrap()
            .contains("https://dev.azure.com/gitcrate/_usersSettings/keys")
    );
}

#[test]
fn wrong_host_key_aborts_before_authentication() {
    let (repo, seed) = seeded("ssh-hostkey");
    let key = SshKey::generate(false);
    server().add_ssh_key(&key.public);
    let impostor = SshKey::generate(false);
    let port = server().ssh_host().rsplit(':').next().unwrap().to_owned();
    let known_hosts = format!("[127.0.0.1]:{port} {}", impostor.public);
    let err =
        Checkout::clone(&ssh(&repo, &key, known_hosts), "main", false, &NoReporter).unwrap_err();
    // A host-key error, not an authentication result: libgit2 stopped before offering the key.
    assert!(
        matches!(&err, GitError::HostKeyMismatch { host, fingerprint } if *host == format!("[127.0.0.1]:{port}") && fingerprint.starts_with("SHA256:")),
        "{err:?}"
    );
    let err = Checkout::clone(
        &ssh(
            &repo,
            &key,
            "[other.example]:22 ".to_owned() + &impostor.public,
        ),
        "main",
        false,
        &NoReporter,
    )
    .unwrap_err();
    assert!(matches!(err, GitError::UnknownHost { .. }), "{err:?}");
    assert_eq!(repo.branch_sha("main").as_deref(), Some(seed.as_str()));
}

#[test]
fn unreachable_host_times_out_with_a_clear_error() {
    // Accepts TCP connections (through the kernel backlog) but never answers a byte.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let opts = RemoteOptions {
        url: format!("https://127.0.0.1:{port}/{ORG}/proj/_git/nothing"),
        auth: pat_auth(server().pat()),
        ca_file: None,
        timeout: Duration::from_secs(4),
    };
    let started = Instant::now();
    let err = Checkout::clone(&opts, "main", false, &NoReporter).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, GitError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().starts_with("Timed out after 4s"), "{err}");

    let ssh_opts = RemoteOptions {
        url: format!("ssh://git@127.0.0.1:{port}/v3/{ORG}/proj/nothing"),
        auth: RemoteAuth::Ssh {
            username: "git".to_owned(),
            private_key: secret("unused"),
            passphrase: None,
            known_hosts: String::new(),
        },
        ..opts
    };
    let started = Instant::now();
    let err = Checkout::clone(&ssh_opts, "main", false, &NoReporter).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, GitError::Timeout { .. }), "{err:?}");
    drop(silent);
}

fn self_signed_ca_pem() -> Vec<u8> {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "Unrelated CA").unwrap();
    let name = name.build();
    let mut builder = X509Builder::new().unwrap();
    builder.set_version(2).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    builder.sign(&key, MessageDigest::sha256()).unwrap();
    builder.build().to_pem().unwrap()
}
