//! The REST client against the harness's Azure-DevOps-shaped server: shapes, status codes,
//! TF error mapping, custom CA and both credential kinds.

use std::sync::atomic::{AtomicUsize, Ordering};

use fluxbootstrap_auth::SecretString;
use fluxbootstrap_azdo::{AzdoError, RepoUrl, RestAuth, RestClient};
use fluxbootstrap_test::GitServer;

fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `f` on the shared server from a thread outside the test's runtime: the harness API is
/// blocking and drives its own runtime.
fn harness<T: Send>(f: impl FnOnce(&'static GitServer) -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| f(GitServer::shared()))
            .join()
            .expect("the harness call succeeds")
    })
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn ca() -> Vec<u8> {
    fs_err::read(harness(GitServer::ca_file)).expect("the harness wrote its CA")
}

fn client(url: &RepoUrl, auth: RestAuth) -> RestClient {
    RestClient::new(url, auth, Some(ca())).expect("the client builds")
}

fn pat_client(url: &RepoUrl) -> RestClient {
    client(url, RestAuth::Basic(secret(harness(GitServer::pat))))
}

/// A URL for a repository that exists (empty) on the shared server.
fn existing_repo() -> RepoUrl {
    let repo = harness(|server| server.create_repo(&unique("org"), "Fiber", &unique("fleet")));
    RepoUrl::parse(&repo.https_url).expect("the harness URL is an Azure DevOps Server URL")
}

#[tokio::test]
async fn connection_data_accepts_pat_and_bearer() {
    let url = existing_repo();
    let pat_client = pat_client(&url);
    let pat = harness(GitServer::pat);
    let shown = format!("{pat_client:?}");
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!(":{pat}"),
    );
    assert!(
        !shown.contains(pat) && !shown.contains(&basic),
        "the client's Debug must not show the PAT"
    );
    let who = pat_client.connection_data().await.unwrap();
    assert_eq!(who.display_name.as_deref(), Some("Test User"));
    let bearer = client(
        &url,
        RestAuth::Bearer(secret(harness(GitServer::bearer_token))),
    );
    assert_eq!(bearer.connection_data().await.unwrap(), who);
}

#[tokio::test]
async fn bad_credentials_are_unauthorized_with_a_hint() {
    let url = existing_repo();
    let pat = "revokedpat0123456789abcdefghijklmnopqrstuvwxyz0123";
    harness(|server| server.add_pat(pat, false));
    pat_client(&url).connection_data().await.unwrap();
    client(&url, RestAuth::Basic(secret(pat)))
        .connection_data()
        .await
        .unwrap();
    harness(|server| server.revoke_pat(pat));
    for auth in [
        RestAuth::Basic(secret(pat)),
        RestAuth::Bearer(secret("not-a-token")),
    ] {
        let bearer = matches!(auth, RestAuth::Bearer(_));
        let err = client(&url, auth).get_repository().await.unwrap_err();
        assert!(matches!(err, AzdoError::Unauthorized { .. }), "{err:?}");
        let shown = format!("{err} {err:?} {}", err.hint().unwrap());
        assert!(!shown.contains(pat), "{shown}");
        assert!(shown.contains("TF400813"), "{shown}");
        if bearer {
            assert!(shown.contains("az login"), "{shown}");
        } else {
            assert!(shown.contains("Code (Read & write)"), "{shown}");
        }
    }
}

#[tokio::test]
async fn get_project_and_repository() {
    let url = existing_repo();
    let client = pat_client(&url);
    let project = client
        .get_project()
        .await
        .unwrap()
        .expect("the project exists");
    assert_eq!(project.name, "Fiber");
    let repo = client
        .get_repository()
        .await
        .unwrap()
        .expect("the repository exists");
    assert_eq!(repo.name, url.repo);
    assert!(repo.is_empty());
    assert_eq!(repo.default_branch, None);
    assert_eq!(
        repo.project.as_ref().map(|p| p.id.as_str()),
        Some(project.id.as_str())
    );
    assert!(client.list_refs("heads/").await.unwrap().is_empty());

    let mut missing = url.clone();
    missing.repo = unique("missing");
    assert_eq!(pat_client(&missing).get_repository().await.unwrap(), None);

    let mut no_project = url.clone();
    no_project.project = unique("noproject");
    let no_project = pat_client(&no_project);
    assert_eq!(no_project.get_project().await.unwrap(), None);
    let err = no_project.get_repository().await.unwrap_err();
    assert!(matches!(err, AzdoError::ProjectNotFound { .. }), "{err:?}");
    assert!(err.hint().is_some());
}

#[tokio::test]
async fn refs_and_default_branch_after_a_commit() {
    let repo = harness(|server| server.create_repo(&unique("org"), "Fiber", &unique("fleet")));
    let out = repo
        .git()
        .args([
            "commit-tree",
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
            "-m",
            "init",
        ])
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sha = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let status = repo
        .git()
        .args(["update-ref", "refs/heads/main", &sha])
        .status()
        .unwrap();
    assert!(status.success());

    let url = RepoUrl::parse(&repo.https_url).unwrap();
    let client = pat_client(&url);
    let refs = client.list_refs("heads/").await.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(
        (refs[0].name.as_str(), refs[0].object_id.as_str()),
        ("refs/heads/main", sha.as_str())
    );
    let fetched = client.get_repository().await.unwrap().unwrap();
    assert_eq!(fetched.default_branch.as_deref(), Some("refs/heads/main"));
    assert!(!fetched.is_empty());
}

#[tokio::test]
async fn refs_are_read_across_continuation_pages() {
    use std::io::Write as _;

    let repo = harness(|server| server.create_repo(&unique("org"), "Fiber", &unique("many")));
    let out = repo
        .git()
        .args([
            "commit-tree",
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
            "-m",
            "init",
        ])
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(out.status.success());
    let sha = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    // 2,345 branches (three pages of at most 1000) and a tag the filter leaves out.
    let mut update = repo
        .git()
        .args(["update-ref", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = update.stdin.take().unwrap();
    for i in 0..2345 {
        writeln!(stdin, "create refs/heads/cluster-{i:05} {sha}").unwrap();
    }
    writeln!(stdin, "create refs/tags/v1 {sha}").unwrap();
    drop(stdin);
    assert!(update.wait().unwrap().success());

    let client = pat_client(&RepoUrl::parse(&repo.https_url).unwrap());
    let refs = client.list_refs("heads/").await.unwrap();
    assert_eq!(refs.len(), 2345);
    let mut names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    names.dedup();
    assert_eq!(names.len(), 2345, "no ref is listed twice");
    assert_eq!(names[0], "refs/heads/cluster-00000");
    assert_eq!(names[2344], "refs/heads/cluster-02344");
    assert!(refs.iter().all(|r| r.object_id == sha));
    assert_eq!(client.list_refs("tags/").await.unwrap().len(), 1);
}

#[tokio::test]
async fn create_repository_with_spaces_and_non_ascii() {
    let org = unique("org");
    let base = harness(|server| {
        server.create_project(&org, "My Project");
        server.https_base()
    });
    let url = RepoUrl::parse(&format!("{base}/{org}/My%20Project/_git/Caf%C3%A9%20fleet")).unwrap();
    assert_eq!(url.repo, "Café fleet");
    let client = pat_client(&url);
    assert_eq!(client.get_repository().await.unwrap(), None);
    let created = client.create_repository().await.unwrap();
    assert_eq!(created.name, "Café fleet");
    assert!(created.is_empty());
    assert_eq!(
        client.get_repository().await.unwrap().unwrap().id,
        created.id
    );
    let err = client.create_repository().await.unwrap_err();
    assert!(matches!(err, AzdoError::RepositoryExists { .. }), "{err:?}");
}

#[tokio::test]
async fn read_only_pat_cannot_create() {
    let org = unique("org");
    let (base, readonly_pat) = harness(|server| {
        server.create_project(&org, "Fiber");
        (server.https_base(), server.readonly_pat())
    });
    let url = RepoUrl::parse(&format!("{base}/{org}/Fiber/_git/new")).unwrap();
    let readonly = client(&url, RestAuth::Basic(secret(readonly_pat)));
    let err = readonly.create_repository().await.unwrap_err();
    assert!(matches!(err, AzdoError::Forbidden { .. }), "{err:?}");
    assert!(err.hint().unwrap().contains("Code (Read, write & manage)"));
}

#[tokio::test]
async fn tls_needs_the_custom_ca() {
    let url = existing_repo();
    let client =
        RestClient::new(&url, RestAuth::Basic(secret(harness(GitServer::pat))), None).unwrap();
    let err = client.connection_data().await.unwrap_err();
    assert!(matches!(err, AzdoError::Http { .. }), "{err:?}");
    assert!(err.hint().unwrap().contains("--ca-file"));
    let err = RestClient::new(
        &url,
        RestAuth::Basic(secret("x")),
        Some(b"not a pem".to_vec()),
    )
    .unwrap_err();
    assert!(matches!(err, AzdoError::EmptyCa), "{err:?}");
}
