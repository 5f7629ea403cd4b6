//! The user's PAT (in `GIT_PASSWORD`) does not reach the child processes the auth crate
//! starts: a stand-in `az` reports what it was given.
//!
//! A test binary of its own, with one test, because it sets a variable in the process
//! environment before any thread exists.

use std::os::unix::fs::PermissionsExt as _;

#[test]
fn az_does_not_inherit_git_password() {
    // SAFETY: the only test of this binary, and no other thread exists yet.
    #[expect(
        unsafe_code,
        reason = "setting a variable in the test's own environment, before any thread"
    )]
    unsafe {
        std::env::set_var(fluxbootstrap_auth::SECRET_ENV, "the-users-pat");
    }
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen");
    let az = dir.path().join("az");
    fs_err::write(
        &az,
        format!(
            "#!/bin/sh\necho \"${{GIT_PASSWORD-unset}}\" > '{}'\necho '{{\"accessToken\": \"t\", \"expires_on\": 1795485601}}'\n",
            seen.display()
        ),
    )
    .unwrap();
    fs_err::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(fluxbootstrap_auth::azure_cli_token(Some(az)))
        .unwrap();
    assert_eq!(fs_err::read_to_string(&seen).unwrap().trim(), "unset");
}
