//! SSH host keys: decided once per run, overridable with `--known-hosts-file`, and the
//! rsa-sha2 algorithms patch only for a host whose key is RSA.

use crate::context::{env, run, temp_dir};

const ED25519_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

/// `kustomization.yaml` as `export` writes it for an SSH URL to `host` whose key (in a
/// `--known-hosts-file`) is `key`.
fn exported_kustomization(host: &str, key: &str) -> String {
    let env = env();
    let (_dir, dir) = temp_dir();
    let file = dir.join("known_hosts");
    std::fs::write(&file, format!("{host} {key}\n")).expect("writable");
    let out = run(env
        .plugin()
        .args([
            "export",
            "--url",
            &format!("ssh://git@{host}/tfs/DefaultCollection/project/_git/fleet"),
            "--known-hosts-file",
        ])
        .arg(&file)
        .args(["--output-dir"])
        .arg(&dir));
    assert_eq!(out.0, 0, "export failed:\n{}", out.2);
    std::fs::read_to_string(dir.join("flux-system/kustomization.yaml")).expect("written")
}

#[test]
fn the_hostkey_algorithms_patch_is_written_for_rsa_host_keys_only() {
    let rsa = exported_kustomization("tfs.contoso.com", fluxbootstrap_auth::AZURE_DEVOPS_HOST_KEY);
    assert!(
        rsa.contains("--ssh-hostkey-algos=rsa-sha2-512,rsa-sha2-256"),
        "{rsa}"
    );
    let ed25519 = exported_kustomization("tfs.contoso.com", ED25519_KEY);
    assert!(!ed25519.contains("ssh-hostkey-algos"), "{ed25519}");
}

/// A dry run in SSH-only mode against the harness sshd (not a pinned host): the key is
/// scanned once, however many steps need it; with `--known-hosts-file` it is not scanned at
/// all, and a file with another key makes the clone fail on the host key.
#[test]
fn the_host_key_is_decided_once_and_known_hosts_file_overrides_the_scan() {
    let env = env();
    let repo = env.repo();
    let ns = env.namespace();
    let (_dir, dir) = temp_dir();
    let (key, _) = crate::context::registered_rsa_key(env, &dir, "a passphrase");
    let dry_run = |extra: &[&std::ffi::OsStr]| {
        run(env
            .plugin()
            .args(["azdo", "--url", &repo.ssh_url, "--private-key-file"])
            .arg(&key)
            .args(["-n", &ns, "--silent", "--dry-run"])
            .args(extra)
            .env("GIT_PASSWORD", "a passphrase"))
    };

    let out = dry_run(&[]);
    assert_eq!(out.0, 0, "{}", out.2);
    assert_eq!(
        out.2.matches("on first use").count(),
        1,
        "one scan per run:\n{}",
        out.2
    );

    let file = dir.join("known_hosts");
    std::fs::write(&file, format!("{}\n", env.git.ssh_known_hosts())).expect("writable");
    let out = dry_run(&["--known-hosts-file".as_ref(), file.as_os_str()]);
    assert_eq!(out.0, 0, "{}", out.2);
    assert!(!out.2.contains("on first use"), "{}", out.2);

    let (host_field, _) = env
        .git
        .ssh_known_hosts()
        .split_once(' ')
        .map(|(h, k)| (h.to_owned(), k.to_owned()))
        .expect("a known_hosts line");
    std::fs::write(
        &file,
        format!(
            "{host_field} {}\n",
            fluxbootstrap_auth::AZURE_DEVOPS_HOST_KEY
        ),
    )
    .expect("writable");
    let out = dry_run(&["--known-hosts-file".as_ref(), file.as_os_str()]);
    assert_eq!(out.0, 1, "{}", out.2);
    assert!(out.2.contains("host key"), "{}", out.2);
    assert!(repo.branch_sha("main").is_none());
}

/// `export --ssh-hostname`: the files of PAT push + SSH sync, as bootstrap writes them for
/// that mode: the `GitRepository` syncs over SSH from the given host (the Azure DevOps path
/// form), with the pinned `ssh.dev.azure.com` key's algorithms patch.
#[test]
fn export_writes_the_files_of_pat_push_and_ssh_sync() {
    let env = env();
    let (_dir, dir) = temp_dir();
    let out = run(env
        .plugin()
        .args([
            "export",
            "--url",
            "https://dev.azure.com/fabrikam/fleet/_git/clusters",
            "--ssh-hostname",
            "ssh.dev.azure.com",
            "--output-dir",
        ])
        .arg(&dir));
    assert_eq!(out.0, 0, "export failed:\n{}", out.2);
    let sync = std::fs::read_to_string(dir.join("flux-system/gotk-sync.yaml")).expect("written");
    assert!(
        sync.contains("url: ssh://git@ssh.dev.azure.com/v3/fabrikam/fleet/clusters"),
        "{sync}"
    );
    let kustomization =
        std::fs::read_to_string(dir.join("flux-system/kustomization.yaml")).expect("written");
    assert!(
        kustomization.contains("--ssh-hostkey-algos=rsa-sha2-512,rsa-sha2-256"),
        "{kustomization}"
    );
}
