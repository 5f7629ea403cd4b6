//! The PAT lifecycle client against the harness's stand-in: a read-only PAT is created for
//! one organization, read back and revoked; a PAT cannot call the API; a policy refusal is
//! an error that names it.

use fluxbootstrap_auth::{ExposeSecret as _, SecretString};
use fluxbootstrap_azdo::{AzdoError, RepoUrl, RestClient};
use fluxbootstrap_test::GitServer;

fn harness<T: Send>(f: impl FnOnce(&'static GitServer) -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| f(GitServer::shared()))
            .join()
            .expect("the harness call succeeds")
    })
}

fn repo_in(org: &str) -> RepoUrl {
    let org = org.to_owned();
    let repo = harness(move |server| server.create_repo(&org, "Fiber", "fleet"));
    RepoUrl::parse(&repo.https_url).expect("the harness URL parses")
}

fn client(url: &RepoUrl, token: &str) -> RestClient {
    let ca = fs_err::read(harness(GitServer::ca_file)).expect("the harness wrote its CA");
    RestClient::for_pats(url, SecretString::from(token.to_owned()), Some(ca))
        .expect("the client builds")
}

#[tokio::test]
async fn a_minted_pat_is_read_only_readable_and_revocable() {
    let org = format!("pats-{}", std::process::id());
    let url = repo_in(&org);
    let pats = client(&url, harness(GitServer::bearer_token));
    let minted = pats
        .create_pat(
            "flux test/flux-system fleet",
            "vso.code",
            "2099-01-01T00:00:00.000Z",
        )
        .await
        .expect("the PAT is created");
    let token = minted.token.expose_secret().to_owned();
    assert_eq!(
        harness(move |server| server.token_can_push(&token)),
        Some(false),
        "vso.code cannot push"
    );
    // 2099 is past the organization's maximum: the lifetime came back shortened.
    assert!(!minted.valid_to.starts_with("2099"), "{}", minted.valid_to);
    let info = pats
        .get_pat(&minted.authorization_id)
        .await
        .expect("the PAT is read")
        .expect("the PAT exists");
    assert_eq!(info.scope, "vso.code");
    assert_eq!(info.valid_to, minted.valid_to);
    pats.revoke_pat(&minted.authorization_id)
        .await
        .expect("the PAT is revoked");
    let token = minted.token.expose_secret().to_owned();
    assert_eq!(harness(move |server| server.token_can_push(&token)), None);
}

#[tokio::test]
async fn a_pat_cannot_mint_and_a_policy_refusal_names_itself() {
    let org = format!("pats-policy-{}", std::process::id());
    let url = repo_in(&org);
    let with_pat = client(&url, harness(GitServer::pat));
    let err = with_pat
        .create_pat("x", "vso.code", "2099-01-01T00:00:00.000Z")
        .await
        .expect_err("a PAT cannot call the PAT lifecycle API");
    assert!(matches!(err, AzdoError::Unauthorized { .. }), "{err:?}");
    assert!(
        err.hint().is_some_and(|h| h.contains("Entra ID token")),
        "{err:?}"
    );

    let org_for_policy = org.clone();
    harness(move |server| server.disable_pat_creation(&org_for_policy));
    let pats = client(&url, harness(GitServer::bearer_token));
    let err = pats
        .create_pat("x", "vso.code", "2099-01-01T00:00:00.000Z")
        .await
        .expect_err("the policy refuses");
    assert!(
        err.to_string()
            .contains("disablePatCreationPolicyViolation"),
        "{err}"
    );
    assert!(err.hint().is_some_and(|h| h.contains("policy")), "{err:?}");
}
