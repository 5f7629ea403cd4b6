//! `--cluster-pat mint`: the cluster gets a read-only PAT minted for it through the PAT
//! lifecycle API with the user's Entra token (a stand-in `az`), never the push PAT.

use base64::Engine as _;

use crate::context::{
    AZ_CALLS, assert_flux_synced, commit_subjects, env, path_with_stand_in_az, real_flux_cluster,
    run, temp_dir,
};

/// A minted PAT is all the cluster holds: scope Code (Read), named after the cluster and
/// namespace, unable to push, its authorization id on the Secret; the push PAT is nowhere in
/// the cluster; the real Flux syncs with the minted PAT; a rerun keeps it (mints no second).
#[test]
fn a_minted_read_only_pat_is_all_the_cluster_holds() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    // An organization of its own: the rotation test injects faults into it.
    let org = env.control_plane.unique_name("e2e-minted");
    let repo = env.git.create_repo(&org, "e2e-project", "fleet");
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let (_dir, bin) = temp_dir();
    let path = path_with_stand_in_az(env, &bin);
    let args = [
        "azdo",
        "--url",
        &repo.https_url,
        "--ca-file",
        &ca,
        "--path",
        "clusters/minted",
        "-n",
        &ns,
        "--cluster-pat",
        "mint",
        "--cluster-pat-days",
        "30",
        "--timeout",
        "3m",
    ];
    let bootstrap = || {
        run(env
            .plugin_on(&cluster)
            .args(args)
            .env("PATH", &path)
            .env("GIT_PASSWORD", env.git.pat()))
    };
    let (code, _, stderr) = bootstrap();
    assert_eq!(
        code,
        0,
        "bootstrap with a minted PAT failed (logs under {}):\n{stderr}",
        cluster.dir().display()
    );
    let minted: Vec<_> = env
        .git
        .minted_pats(&repo.org)
        .into_iter()
        .filter(|p| p.display_name.contains(&ns))
        .collect();
    assert_eq!(minted.len(), 1, "{minted:#?}\n{stderr}");
    let pat = &minted[0];
    assert_eq!(pat.scope, "vso.code");
    assert!(!pat.revoked);
    assert_eq!(env.git.token_can_push(&pat.token), Some(false), "read-only");
    let valid_to: jiff::Timestamp = pat.valid_to.parse().expect("RFC 3339");
    let days = valid_to.duration_since(jiff::Timestamp::now()).as_hours() / 24;
    assert!((29..=30).contains(&days), "valid for {days} days");
    assert!(stderr.contains("minted read-only PAT"), "{stderr}");
    assert!(
        !stderr.contains(&pat.token),
        "the minted PAT is in the output"
    );

    let kubectl = |args: &[&str]| {
        let out = cluster.kubectl().args(args).output().expect("kubectl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let password = kubectl(&[
        "-n",
        &ns,
        "get",
        "secret",
        "flux-system",
        "-o=jsonpath={.data.password}",
    ]);
    let password = base64::engine::general_purpose::STANDARD
        .decode(password.trim())
        .expect("base64");
    assert_eq!(
        password,
        pat.token.as_bytes(),
        "the Secret holds the minted PAT"
    );
    let annotation = kubectl(&[
        "-n",
        &ns,
        "get",
        "secret",
        "flux-system",
        r"-o=jsonpath={.metadata.annotations.fluxbootstrap\.io/cluster-pat-authorization-id}",
    ]);
    assert_eq!(annotation, pat.authorization_id);
    let push_pat = env.git.pat();
    let every_secret = kubectl(&["get", "secrets", "-A", "-o", "json"]);
    for form in [
        push_pat.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(push_pat),
    ] {
        assert!(
            !every_secret.contains(&form),
            "the push PAT is stored in the cluster"
        );
    }
    assert_flux_synced(&cluster, cluster.admin_context(), &ns, &repo, "main");

    let (code, _, again) = bootstrap();
    assert_eq!(code, 0, "rerun failed:\n{again}");
    assert!(again.contains("minted before"), "{again}");
    assert_eq!(
        env.git
            .minted_pats(&repo.org)
            .iter()
            .filter(|p| p.display_name.contains(&ns))
            .count(),
        1,
        "a rerun minted another PAT"
    );
    assert_eq!(commit_subjects(&repo, "main").len(), 2);

    // `check` reads the expiry from the PAT lifecycle API.
    let (code, stdout, stderr) = run(env
        .plugin_on(&cluster)
        .args(["check", "-n", &ns, "-o", "json"])
        .env("PATH", &path));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("cluster PAT valid until"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        report["clusterPat"]["authorizationId"],
        pat.authorization_id.as_str()
    );
    assert!(
        report["clusterPat"]["daysLeft"]
            .as_i64()
            .is_some_and(|d| (29..=30).contains(&d)),
        "{report:#}"
    );

    // `rotate --mint`: a new PAT (7 days), the old one revoked once Flux is Ready with it.
    let rotate = [
        "rotate",
        "--url",
        &repo.https_url,
        "--ca-file",
        &ca,
        "-n",
        &ns,
        "--mint",
        "--cluster-pat-days",
        "7",
    ];
    let (code, _, stderr) = run(env.plugin_on(&cluster).args(rotate).env("PATH", &path));
    assert_eq!(code, 0, "rotate --mint failed:\n{stderr}");
    let pats = env.git.minted_pats(&repo.org);
    assert_eq!(pats.len(), 2, "{pats:#?}");
    assert!(
        pats.iter().all(|p| !stderr.contains(&p.token)),
        "a minted PAT is in the output"
    );
    assert!(pats[0].revoked, "the old PAT was not revoked");
    let new = &pats[1];
    assert!(!new.revoked);
    let secret_password = || {
        base64::engine::general_purpose::STANDARD
            .decode(
                kubectl(&[
                    "-n",
                    &ns,
                    "get",
                    "secret",
                    "flux-system",
                    "-o=jsonpath={.data.password}",
                ])
                .trim(),
            )
            .expect("base64")
    };
    assert_eq!(secret_password(), new.token.as_bytes());
    assert_eq!(
        commit_subjects(&repo, "main").len(),
        2,
        "rotation commits nothing"
    );
    // Seven days left: `check` warns.
    let (_, _, stderr) = run(env
        .plugin_on(&cluster)
        .args(["check", "-n", &ns])
        .env("PATH", &path));
    assert!(
        stderr.contains("the cluster PAT expires in") && stderr.contains("rotate --mint"),
        "{stderr}"
    );

    // A new PAT Flux does not accept (the git server fails source-controller's fetches once
    // the Secret is switched): the old Secret is put back and the new PAT revoked.
    let mut injected = false;
    let (status, _, stderr) = crate::context::run_watching(
        env.plugin_on(&cluster)
            .args(rotate)
            .args(["--timeout", "1m"])
            .env("PATH", &path),
        |line, _stdin| {
            if !injected && line.contains("the new credential can read the repository") {
                env.git.inject_fault(fluxbootstrap_test::Fault {
                    org: repo.org.clone(),
                    target: fluxbootstrap_test::FaultTarget::FetchAdvertisement,
                    action: fluxbootstrap_test::FaultAction::Status {
                        status: 503,
                        retry_after_secs: None,
                    },
                    times: 4,
                });
                injected = true;
            }
        },
    );
    assert!(
        !status.success(),
        "rotation onto a refused PAT succeeded:\n{stderr}"
    );
    assert!(
        stderr.contains("put the previous credential back"),
        "{stderr}"
    );
    assert!(
        stderr.contains("asked Flux to reconcile with the previous credential"),
        "{stderr}"
    );
    let pats = env.git.minted_pats(&repo.org);
    assert_eq!(pats.len(), 3, "{pats:#?}");
    assert!(!pats[1].revoked, "the PAT in use was revoked");
    assert!(pats[2].revoked, "the refused PAT was not revoked");
    assert_eq!(secret_password(), pats[1].token.as_bytes());
    // Flux fetches with the credential put back.
    kubectl(&[
        "-n",
        &ns,
        "wait",
        "gitrepository",
        &ns,
        "--for=condition=Ready",
        "--timeout=90s",
    ]);

    // A plain rotation to a PAT the user gives: the minted PAT the Secret held is revoked,
    // so no unused credential to the repository stays valid.
    let (code, _, stderr) = run(env
        .plugin_on(&cluster)
        // `rotate` without `--mint` and its days.
        .args(&rotate[..7])
        .env("PATH", &path)
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(code, 0, "plain rotate failed:\n{stderr}");
    assert!(stderr.contains("revoked the PAT minted before"), "{stderr}");
    let pats = env.git.minted_pats(&repo.org);
    assert_eq!(pats.len(), 3, "a plain rotation minted a PAT: {pats:#?}");
    assert!(pats[1].revoked, "the replaced minted PAT is still valid");
    assert_eq!(secret_password(), env.git.pat().as_bytes());
}

/// Minting that cannot work fails with the cause and a hint: `--cluster-pat mint` outside
/// token auth (refused before anything happens), no `az` to get an Entra token from, an
/// organization whose policy disables PAT creation, and one not backed by Entra ID.
#[test]
fn minting_refusals_fail_clearly() {
    let env = env();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let ns = env.namespace();
    let error_and_hint = |stderr: &str, error: &str, hint: &str| {
        assert!(
            stderr
                .lines()
                .any(|l| (l.starts_with("error:") || l.starts_with("    ")) && l.contains(error)),
            "no error naming `{error}`:\n{stderr}"
        );
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("hint:") && l.contains(hint)),
            "no hint naming `{hint}`:\n{stderr}"
        );
    };

    let repo = env.repo();
    let (code, _, stderr) = run(env
        .plugin()
        .args(["azdo", "--url", &repo.ssh_url, "--cluster-pat", "mint"])
        .args(["-n", &ns, "--silent"]));
    assert_eq!(code, 1, "{stderr}");
    error_and_hint(
        &stderr,
        "`--cluster-pat mint` needs token auth",
        "HTTPS URL",
    );
    assert!(repo.branch_sha("main").is_none(), "something was pushed");

    let (_dir, bin) = temp_dir();
    let org = env.control_plane.unique_name("e2e-pat-policy");
    let repo = env.git.create_repo(&org, "e2e-project", "fleet");
    let without_az = std::env::join_paths(
        [fluxbootstrap_test::ControlPlane::bin_dir()]
            .into_iter()
            .chain(std::env::split_paths("/usr/bin:/bin")),
    )
    .expect("PATH entries contain no separator");
    let (code, _, stderr) = run(env
        .plugin()
        .args(["azdo", "--url", &repo.https_url, "--ca-file", &ca])
        .args(["-n", &ns, "--cluster-pat", "mint", "--timeout", "20s"])
        .env("PATH", without_az)
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(code, 1, "{stderr}");
    error_and_hint(&stderr, "az", "az");

    env.git.disable_pat_creation(&org);
    let (code, _, stderr) = run(env
        .plugin()
        .args(["azdo", "--url", &repo.https_url, "--ca-file", &ca])
        .args(["-n", &ns, "--cluster-pat", "mint", "--timeout", "20s"])
        .env("PATH", path_with_stand_in_az(env, &bin))
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(code, 1, "{stderr}");
    error_and_hint(
        &stderr,
        "disablePatCreationPolicyViolation",
        "policy restricts who may create PATs",
    );
    assert!(env.git.minted_pats(&org).is_empty());

    let org = env.control_plane.unique_name("e2e-msa-org");
    let repo = env.git.create_repo(&org, "e2e-project", "fleet");
    let ns = env.namespace();
    env.git.detach_from_entra(&org);
    let (code, _, stderr) = run(env
        .plugin()
        .args(["azdo", "--url", &repo.https_url, "--ca-file", &ca])
        .args(["-n", &ns, "--cluster-pat", "mint", "--timeout", "20s"])
        .env("PATH", path_with_stand_in_az(env, &bin))
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(code, 1, "{stderr}");
    error_and_hint(
        &stderr,
        "create a personal access token",
        "member of the organization",
    );
    assert!(env.git.minted_pats(&org).is_empty());
}

/// A fleet of two clusters mints one PAT per cluster, each named after its cluster, so one
/// cluster can be revoked alone; both sync with their own, in the `--secret-name` Secret,
/// where `check` finds it. Asked for a year, longer than the
/// organization allows (180 days), the PATs come back shortened, and the plugin says so.
#[test]
fn a_fleet_mints_one_pat_per_cluster() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let org = env.control_plane.unique_name("e2e-minted-fleet");
    let repo = env.git.create_repo(&org, "e2e-project", "fleet");
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let (_dir, bin) = temp_dir();
    let (admin, second) = (cluster.admin_context(), cluster.second_context());
    let (code, _, stderr) = run(env
        .plugin_on(&cluster)
        .args(["azdo", "--url", &repo.https_url, "--ca-file", &ca])
        .args(["--path", "clusters/{context}", "-n", &ns])
        .args(["--context", admin, "--context", second])
        .args(["--cluster-pat", "mint", "--cluster-pat-days", "365"])
        .args(["--secret-name", "fleet-pat", "--timeout", "3m"])
        .env("PATH", path_with_stand_in_az(env, &bin))
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(
        code,
        0,
        "fleet bootstrap failed (logs under {}):\n{stderr}",
        cluster.dir().display()
    );
    let pats = env.git.minted_pats(&org);
    assert_eq!(pats.len(), 2, "{pats:#?}");
    // One Entra token serves the whole fleet: `az` runs once, not once per cluster.
    let calls = std::fs::read_to_string(bin.join(AZ_CALLS)).expect("az was called");
    assert_eq!(calls.lines().count(), 1, "az calls:\n{calls}");
    assert_eq!(
        stderr.matches("maximum PAT lifetime shortened").count(),
        2,
        "{stderr}"
    );
    for context in [admin, second] {
        let pat = pats
            .iter()
            .find(|p| p.display_name.contains(&format!("{context}/{ns}")))
            .unwrap_or_else(|| panic!("no PAT named after {context}: {pats:#?}"));
        assert_eq!(pat.scope, "vso.code");
        let valid_to: jiff::Timestamp = pat.valid_to.parse().expect("RFC 3339");
        let days = valid_to.duration_since(jiff::Timestamp::now()).as_hours() / 24;
        assert!((179..=180).contains(&days), "valid for {days} days");
        let out = cluster
            .kubectl()
            .args([
                "--context",
                context,
                "-n",
                &ns,
                "get",
                "secret",
                "fleet-pat",
            ])
            .arg("-o=jsonpath={.data.password}")
            .output()
            .expect("kubectl runs");
        let password = base64::engine::general_purpose::STANDARD
            .decode(String::from_utf8_lossy(&out.stdout).trim())
            .expect("base64");
        assert_eq!(
            password,
            pat.token.as_bytes(),
            "{context} holds its own PAT"
        );
        assert_flux_synced(&cluster, context, &ns, &repo, "main");
        // `check` finds the minted PAT in the Secret the GitRepository names.
        let (code, stdout, stderr) = run(env
            .plugin_on(&cluster)
            .args(["check", "-n", &ns, "--context", context, "-o", "json"])
            .env("PATH", path_with_stand_in_az(env, &bin)));
        assert_eq!(code, 0, "{stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
        assert_eq!(
            report["clusterPat"]["authorizationId"],
            pat.authorization_id.as_str(),
            "{report:#}"
        );
    }
}
