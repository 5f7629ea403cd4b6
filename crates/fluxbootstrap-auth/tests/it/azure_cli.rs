//! `azure_cli_token` with a stand-in `az` script found on a private `PATH`.

use fluxbootstrap_auth::ExposeSecret as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use fluxbootstrap_auth::{AuthError, azure_cli_token, azure_cli_token_with_path};

fn fake_az(dir: &Path, body: &str) {
    let path = dir.join("az");
    fs_err::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn success_reads_token_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let args_file = dir.path().join("args");
    fake_az(
        dir.path(),
        &format!(
            r#"echo "$@" > '{}'
echo '{{"accessToken": "eyJ0eXAi.fake.token", "expiresOn": "2026-11-24 02:00:00.000000", "expires_on": 1795485601, "subscription": "s", "tenant": "72f988bf-0000-0000-0000-000000000000", "tokenType": "Bearer"}}'"#,
            args_file.display()
        ),
    );
    let token = azure_cli_token_with_path(None, Some(dir.path().as_os_str().to_owned()))
        .await
        .unwrap();
    assert_eq!(token.token.expose_secret(), "eyJ0eXAi.fake.token");
    assert_eq!(
        token.expires_on,
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_485_601))
    );
    assert_eq!(
        token.tenant.as_deref(),
        Some("72f988bf-0000-0000-0000-000000000000")
    );
    assert!(!format!("{token:?}").contains("eyJ0eXAi"));
    let args = fs_err::read_to_string(&args_file).unwrap();
    assert_eq!(
        args.trim(),
        "account get-access-token --resource 499b84ac-1321-427f-aa17-267ca6975798 --output json"
    );
    // An explicit path works too.
    let token = azure_cli_token(Some(dir.path().join("az"))).await.unwrap();
    assert_eq!(token.token.expose_secret(), "eyJ0eXAi.fake.token");
}

#[tokio::test]
async fn not_logged_in() {
    let dir = tempfile::tempdir().unwrap();
    fake_az(
        dir.path(),
        "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1",
    );
    let err = azure_cli_token_with_path(None, Some(dir.path().as_os_str().to_owned()))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::AzNotLoggedIn { .. }), "{err:?}");
    insta::assert_snapshot!(err.to_string(), @"the Azure CLI is not logged in: ERROR: Please run 'az login' to setup account.");
    assert!(err.hint().unwrap().contains("az login"));
}

#[tokio::test]
async fn other_failures_and_bad_output() {
    let dir = tempfile::tempdir().unwrap();
    fake_az(
        dir.path(),
        "echo 'ERROR: AADSTS50076: MFA required' >&2\nexit 2",
    );
    let err = azure_cli_token_with_path(None, Some(dir.path().as_os_str().to_owned()))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::AzFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("AADSTS50076"));

    fake_az(dir.path(), "echo 'not json'");
    let err = azure_cli_token_with_path(None, Some(dir.path().as_os_str().to_owned()))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::AzOutput { .. }), "{err:?}");
}

#[tokio::test]
async fn missing() {
    let empty = tempfile::tempdir().unwrap();
    let err = azure_cli_token_with_path(None, Some(empty.path().as_os_str().to_owned()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::AzMissing { path: None }),
        "{err:?}"
    );
    assert!(err.hint().unwrap().contains("install the Azure CLI"));
    let err = azure_cli_token(Some(empty.path().join("az")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::AzMissing { path: Some(_) }),
        "{err:?}"
    );
}
