//! Refusals that protect an existing install and kubeconfig handling like kubectl's. A test
//! whose bootstrap runs to completion does so on a private control plane with the real Flux
//! controllers; refusals before anything changes use the shared one.

use std::io::Write;
use std::process::Stdio;

use crate::context::{
    assert_bootstrapped, assert_flux_synced, commit_subjects, env, real_flux_cluster, run, temp_dir,
};

#[test]
fn an_existing_kustomization_with_another_path_is_not_overwritten() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let base = [
        "azdo",
        "--url",
        &repo.https_url,
        "--ca-file",
        &ca,
        "-n",
        &ns,
        "--timeout",
        "3m",
    ];
    let out = run(env
        .plugin_on(&cluster)
        .args(base)
        .args(["--path", "clusters/one"])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_bootstrapped(&out, &cluster);
    let out = run(env
        .plugin_on(&cluster)
        .args(base)
        .args(["--path", "clusters/two"])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(out.0, 1, "{}", out.2);
    assert!(out.2.contains("clusters/one"), "{}", out.2);
    assert_eq!(
        commit_subjects(&repo, "main").len(),
        2,
        "the refused run committed"
    );
    let path = cluster
        .kubectl()
        .args(["-n", &ns, "get", "kustomization", &ns])
        .arg("-o=jsonpath={.spec.path}")
        .output()
        .expect("kubectl runs");
    assert_eq!(
        String::from_utf8_lossy(&path.stdout),
        "./clusters/one",
        "the refused run changed the Kustomization"
    );
    assert_flux_synced(&cluster, cluster.admin_context(), &ns, &repo, "main");
}

#[test]
fn flux_managed_by_another_tool_needs_force() {
    let env = env();
    let Some(private) = real_flux_cluster(env) else {
        return;
    };
    let kubeconfig = private
        .kubeconfig()
        .to_str()
        .expect("utf-8 path")
        .to_owned();
    // What a Helm-installed Flux looks like to `flux bootstrap`.
    let crd = r"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gitrepositories.source.toolkit.fluxcd.io
  labels:
    app.kubernetes.io/managed-by: Helm
    app.kubernetes.io/version: v2.8.0
spec:
  group: source.toolkit.fluxcd.io
  names: {kind: GitRepository, listKind: GitRepositoryList, plural: gitrepositories, singular: gitrepository}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
";
    let mut apply = private
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    apply
        .stdin
        .take()
        .expect("piped")
        .write_all(crd.as_bytes())
        .expect("written");
    assert!(apply.wait().expect("kubectl finishes").success());

    let repo = env.repo();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let base = [
        "azdo",
        "--kubeconfig",
        &kubeconfig,
        "--url",
        &repo.https_url,
        "--ca-file",
        &ca,
        "--path",
        "clusters/helm",
        "--timeout",
        "3m",
    ];
    let out = run(env.plugin().args(base).env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(out.0, 1, "{}", out.2);
    assert!(
        out.2.contains("Helm") && out.2.contains("--force"),
        "{}",
        out.2
    );
    assert_eq!(repo.branch_sha("main"), None, "the refused run pushed");
    let out = run(env
        .plugin()
        .args(base)
        .arg("--force")
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(
        out.0,
        0,
        "forced bootstrap failed (logs under {}):\n{}",
        private.dir().display(),
        out.2
    );
    assert_flux_synced(
        &private,
        private.admin_context(),
        "flux-system",
        &repo,
        "main",
    );
}

#[test]
fn kubeconfig_with_two_files_uses_the_first_current_context() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let (_dir, dir) = temp_dir();
    let first = dir.join("current");
    std::fs::write(
        &first,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {}\n",
            cluster.second_context()
        ),
    )
    .expect("kubeconfig written");
    let kubeconfig = format!("{}:{}", first.display(), cluster.kubeconfig().display());
    let out = run(env
        .plugin()
        .args([
            "azdo",
            "--url",
            &repo.https_url,
            "--ca-file",
            &ca,
            "--path",
            "clusters/merged",
            "-n",
            &ns,
            "--timeout",
            "3m",
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("GIT_PASSWORD", env.git.pat()));
    assert_bootstrapped(&out, &cluster);
    assert!(
        out.2.contains(&format!(
            "checking cluster \"{}\"",
            cluster.second_context()
        )),
        "{}",
        out.2
    );
    let on_second = cluster
        .kubectl()
        .args([
            "--context",
            cluster.second_context(),
            "get",
            "namespace",
            &ns,
        ])
        .output()
        .expect("kubectl runs");
    assert!(on_second.status.success());
    assert_flux_synced(&cluster, cluster.second_context(), &ns, &repo, "main");
}

#[test]
fn the_pat_from_a_masked_prompt_on_a_terminal() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let plugin = env!("CARGO_BIN_EXE_kubectl-fluxbootstrap");
    let command = format!(
        "{plugin} azdo --url {} --ca-file {ca} --path clusters/prompt -n {ns} --timeout 3m",
        repo.https_url
    );
    // `script` gives the plugin a real pseudo-terminal; our stdin is typed into it.
    let mut child = env
        .plugin_on(&cluster)
        .env_remove("GIT_PASSWORD")
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_script(&command);
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let screen = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                if n == 0 {
                    break;
                }
                screen
                    .lock()
                    .expect("not poisoned")
                    .extend_from_slice(&buf[..n]);
            }
        })
    };
    // Type the PAT only once the prompt is on the terminal (typed-ahead input may be flushed
    // when the prompt switches the terminal to no-echo), then wait for the plugin to exit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    while !String::from_utf8_lossy(&screen.lock().expect("not poisoned"))
        .to_lowercase()
        .contains("password")
    {
        assert!(std::time::Instant::now() < deadline, "no prompt appeared");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    write!(stdin, "{}\r", env.git.pat()).expect("typed");
    stdin.flush().expect("flushed");
    let status = loop {
        if let Some(status) = child.try_wait().expect("script can be polled") {
            break status;
        }
        if std::time::Instant::now() > deadline + std::time::Duration::from_mins(2) {
            let _ = child.kill();
            break child.wait().expect("killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    drop(stdin);
    reader.join().expect("reader finishes");
    let screen = String::from_utf8_lossy(&screen.lock().expect("not poisoned")).into_owned();
    assert!(
        status.success(),
        "bootstrap failed (logs under {}):\n{screen}",
        cluster.dir().display()
    );
    assert!(
        screen.contains("password"),
        "no prompt was shown:\n{screen}"
    );
    assert!(
        !screen.contains(env.git.pat()),
        "the PAT was echoed:\n{screen}"
    );
    // On a terminal, long steps show a spinner (it is hidden when stderr is not a terminal).
    assert!(
        screen.contains("waiting for the cluster to reconcile"),
        "no progress was drawn:\n{screen}"
    );
    assert_eq!(commit_subjects(&repo, "main").len(), 2);
    assert_flux_synced(&cluster, cluster.admin_context(), &ns, &repo, "main");
}

trait SpawnScript {
    fn spawn_script(&mut self, command: &str) -> std::process::Child;
}

impl SpawnScript for std::process::Command {
    /// Runs `command` under util-linux `script` with this command's environment.
    fn spawn_script(&mut self, command: &str) -> std::process::Child {
        let mut script = std::process::Command::new("script");
        script.args(["-q", "-e", "-c", command, "/dev/null"]);
        for (key, value) in self.get_envs() {
            match value {
                Some(v) => script.env(key, v),
                None => script.env_remove(key),
            };
        }
        script
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        script.spawn().expect("script runs")
    }
}

#[test]
fn a_missing_branch_is_named_with_the_default_branch() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = env.namespace();
    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    // A repository whose only branch is `main`, made with the real git CLI.
    let (_dir, work) = temp_dir();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "-C",
            ])
            .arg(&work)
            .args(args)
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["commit", "-q", "--allow-empty", "-m", "init"]);
    git(&[
        "push",
        "-q",
        repo.bare_path.to_str().expect("utf-8 path"),
        "main",
    ]);
    let before = repo.branch_sha("main");

    let out = run(env
        .plugin_on(&cluster)
        .args([
            "azdo",
            "--url",
            &repo.https_url,
            "--ca-file",
            &ca,
            "--branch",
            "dev",
            "-n",
            &ns,
        ])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_eq!(out.0, 1, "{}", out.2);
    assert!(out.2.contains("dev") && out.2.contains("main"), "{}", out.2);
    assert!(out.2.contains("hint:"), "{}", out.2);
    assert_eq!(repo.branch_sha("main"), before, "main changed");
    assert_eq!(
        repo.branch_sha("dev"),
        None,
        "dev was created without --create-branch"
    );

    let out = run(env
        .plugin_on(&cluster)
        .args([
            "azdo",
            "--url",
            &repo.https_url,
            "--ca-file",
            &ca,
            "--branch",
            "dev",
            "--create-branch",
            "-n",
            &ns,
            "--timeout",
            "3m",
        ])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_bootstrapped(&out, &cluster);
    assert_eq!(
        commit_subjects(&repo, "dev").len(),
        3,
        "init plus the two bootstrap commits"
    );
    // The real source-controller follows the new branch.
    assert_flux_synced(&cluster, cluster.admin_context(), &ns, &repo, "dev");
}

#[test]
fn ctrl_c_at_the_public_key_prompt_leaves_the_repository_and_cluster_untouched() {
    let env = env();
    let repo = env.repo();
    let ns = env.namespace();
    let (_tmp, tmp) = temp_dir();
    let before = commit_subjects(&repo, "main");
    let mut child = key_prompt_bootstrap(env, &repo, &ns)
        .env("TMPDIR", &tmp)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the plugin starts");
    let _stdin = child.stdin.take().expect("piped");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("piped"));
    let mut transcript = String::new();
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut stderr, &mut line).expect("readable") > 0 {
        transcript.push_str(&line);
        if line.contains("add it to the SSH public keys") {
            break;
        }
        line.clear();
    }
    let clones = || {
        std::fs::read_dir(&tmp)
            .expect("readable")
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("fluxbootstrap-git-")
            })
            .count()
    };
    // Every prompt comes while the plan is built: nothing was cloned, committed or applied
    // yet (the key prompt used to come after the components were pushed and installed).
    assert_eq!(
        clones(),
        0,
        "the repository was cloned before the prompt:\n{transcript}"
    );
    assert_eq!(
        commit_subjects(&repo, "main"),
        before,
        "a commit was pushed before the prompt:\n{transcript}"
    );
    assert!(
        !transcript.contains("installing components"),
        "components were installed before the prompt:\n{transcript}"
    );
    let namespace = env.kubectl(&["get", "namespace", &ns]);
    assert!(
        !namespace.status.success(),
        "the namespace was created before the prompt:\n{transcript}"
    );
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let status = child.wait().expect("the plugin exits");
    assert_eq!(status.code(), Some(130), "{transcript}");
    assert_eq!(clones(), 0, "a temporary clone was left behind");
    assert_eq!(commit_subjects(&repo, "main"), before);
}

/// Answering "no" to adding the generated key stops the run before its first commit, in
/// single-cluster mode as in a fleet (the single-cluster prompt used to come after the
/// components were committed, pushed and installed, leaving a half-bootstrapped cluster).
#[test]
fn no_at_the_public_key_prompt_commits_and_applies_nothing() {
    let env = env();
    let repo = env.repo();
    let ns = env.namespace();
    let before = commit_subjects(&repo, "main");
    let mut child = key_prompt_bootstrap(env, &repo, &ns)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the plugin starts");
    writeln!(child.stdin.take().expect("piped"), "n").expect("the answer is written");
    let out = child.wait_with_output().expect("the plugin exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("aborting"), "{stderr}");
    assert!(stderr.contains("hint: add the public key"), "{stderr}");
    assert!(!stderr.contains("cloning branch"), "{stderr}");
    assert_eq!(commit_subjects(&repo, "main"), before, "{stderr}");
    assert!(
        !env.kubectl(&["get", "namespace", &ns]).status.success(),
        "the namespace was created: {stderr}"
    );
}

/// PAT push + SSH sync with a generated key: the run that asks the user to add the key.
fn key_prompt_bootstrap(
    env: &crate::context::Env,
    repo: &fluxbootstrap_test::Repo,
    ns: &str,
) -> std::process::Command {
    let mut cmd = env.plugin();
    cmd.args(["azdo", "--url", &repo.https_url, "--ca-file"])
        .arg(env.ca_file())
        .args(["--ssh-hostname", &env.git.ssh_host(), "-n", ns])
        .env("GIT_PASSWORD", env.git.pat());
    cmd
}

/// Their `kustomization.yaml`, pushed by someone else between our component push and our sync
/// push (a server hook makes the race certain): our sync push is rejected, retried on top of
/// theirs, and decides again, so theirs is kept, our commit does not touch it, and what the
/// cluster gets is built from it. Deciding once on the fresh clone wrote ours over theirs.
#[test]
fn a_kustomization_pushed_during_our_push_is_kept_and_built() {
    let env = env();
    let Some(cluster) = real_flux_cluster(env) else {
        return;
    };
    let repo = env.repo();
    let ns = env.namespace();
    let folder = format!("clusters/race/{ns}");
    let theirs = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\npatches:\n- patch: |\n    - op: add\n      path: /metadata/annotations\n      value:\n        example.com/theirs: kept\n  target:\n    kind: Deployment\n    name: source-controller\n";
    // After the push whose commit first holds our components, the server adds their file on
    // top (once), as a concurrent pusher would.
    let hooks = repo.bare_path.join("hooks");
    std::fs::rename(
        hooks.join("post-receive"),
        hooks.join("post-receive.harness"),
    )
    .expect("the harness hook exists");
    let hook = format!(
        r#"#!/bin/sh
input=$(cat)
printf '%s\n' "$input" | "$(dirname "$0")/post-receive.harness"
[ -e theirs-pushed ] && exit 0
printf '%s\n' "$input" | while read -r old new ref; do
    [ "$ref" = refs/heads/main ] || continue
    git cat-file -e "$new:{folder}/gotk-components.yaml" 2>/dev/null || continue
    touch theirs-pushed
    blob=$(git hash-object -w --stdin <<'THEIRS'
{theirs}THEIRS
)
    export GIT_INDEX_FILE="$PWD/theirs-index"
    git read-tree "$new"
    git update-index --add --cacheinfo "100644,$blob,{folder}/kustomization.yaml"
    tree=$(git write-tree)
    commit=$(echo "Their kustomization" | GIT_AUTHOR_NAME=them GIT_AUTHOR_EMAIL=them@example.com GIT_COMMITTER_NAME=them GIT_COMMITTER_EMAIL=them@example.com git commit-tree "$tree" -p "$new")
    git update-ref refs/heads/main "$commit" "$new"
    rm -f "$GIT_INDEX_FILE"
done
exit 0
"#
    );
    let hook_path = hooks.join("post-receive");
    std::fs::write(&hook_path, hook).expect("writing the hook works");
    std::fs::set_permissions(
        &hook_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod works");

    let ca = env.ca_file().to_str().expect("utf-8 path").to_owned();
    let out = run(env
        .plugin_on(&cluster)
        .args([
            "azdo",
            "--url",
            &repo.https_url,
            "--ca-file",
            &ca,
            "-n",
            &ns,
            "--path",
            "clusters/race",
            "--timeout",
            "3m",
        ])
        .env("GIT_PASSWORD", env.git.pat()));
    assert_bootstrapped(&out, &cluster);
    let subjects = commit_subjects(&repo, "main");
    assert_eq!(
        subjects[..3],
        [
            "Add Flux sync manifests",
            "Their kustomization",
            "Add Flux v2.9.4 component manifests"
        ],
        "our sync commit goes on top of theirs:\n{}",
        out.2
    );
    assert_eq!(
        crate::context::show(&repo, "main", &format!("{folder}/kustomization.yaml")),
        theirs,
        "their kustomization.yaml was written over"
    );
    let ours = repo
        .git()
        .args(["show", "--name-only", "--format=", "main"])
        .output()
        .expect("git show runs");
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout).trim(),
        format!("{folder}/gotk-sync.yaml"),
        "our sync commit touches only gotk-sync.yaml"
    );
    let annotation = cluster
        .kubectl()
        .args(["-n", &ns, "get", "deployment", "source-controller"])
        .arg("-o=jsonpath={.metadata.annotations.example\\.com/theirs}")
        .output()
        .expect("kubectl runs");
    assert_eq!(
        String::from_utf8_lossy(&annotation.stdout),
        "kept",
        "the cluster did not get what their kustomization.yaml builds"
    );
    assert_flux_synced(&cluster, cluster.admin_context(), &ns, &repo, "main");
}
