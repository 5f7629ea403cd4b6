//! Clone/commit/push against bare repositories on disk (libgit2's local transport): the
//! repository logic without any network or credentials.

use fluxbootstrap_git::{Author, Checkout, FileWrite, GitError, NoReporter, Phase, RemoteAuth};

use crate::support::{Recorder, bare_repo, files, git_bare, push_as_someone_else, remote, seed};

#[test]
fn empty_remote_first_commit_is_root_with_flux_author() {
    let (_dir, bare) = bare_repo("fleet.git");
    let url = format!("file://{}", bare.display());
    let mut checkout =
        Checkout::clone(&remote(&url, RemoteAuth::None), "main", false, &NoReporter).unwrap();
    assert!(checkout.is_empty_remote());
    assert_eq!(checkout.head(), None);
    assert_eq!(checkout.read_file("clusters/a/x.yaml").unwrap(), None);

    let sha = checkout
        .commit_and_push(
            &files(&[(
                "clusters/a/flux-system/gotk-components.yaml",
                "kind: List\n",
            )]),
            "Add Flux v2.9.4 component manifests",
            &Author::default(),
            &NoReporter,
        )
        .unwrap()
        .expect("a commit");
    assert_eq!(checkout.head().as_deref(), Some(sha.as_str()));
    assert!(!checkout.is_empty_remote());
    assert_eq!(git_bare(&bare, &["rev-parse", "refs/heads/main"]), sha);
    assert_eq!(
        git_bare(
            &bare,
            &["log", "--format=%an <%ae>|%cn <%ce>|%P|%B", "main"]
        ),
        "Flux <>|Flux <>||Add Flux v2.9.4 component manifests"
    );
    assert_eq!(
        git_bare(
            &bare,
            &["show", "main:clusters/a/flux-system/gotk-components.yaml"]
        ),
        "kind: List"
    );
    git_bare(&bare, &["fsck", "--strict"]);
}

#[test]
fn unchanged_files_make_no_commit_and_changed_files_one() {
    let (_dir, bare) = bare_repo("r.git");
    let base = seed(
        &bare,
        "main",
        &[("README.md", "hi\n"), ("a/keep.yaml", "k: 1\n")],
    );
    let url = bare.display().to_string();
    let recorder = Recorder::default();
    let mut checkout =
        Checkout::clone(&remote(&url, RemoteAuth::None), "main", false, &recorder).unwrap();
    assert_eq!(checkout.head().as_deref(), Some(base.as_str()));
    assert_eq!(
        checkout.read_file("a/keep.yaml").unwrap().as_deref(),
        Some(&b"k: 1\n"[..])
    );
    assert!(recorder.saw(Phase::Receiving));

    let same = files(&[("a/keep.yaml", "k: 1\n")]);
    assert_eq!(
        checkout
            .commit_and_push(&same, "m", &Author::default(), &NoReporter)
            .unwrap(),
        None
    );
    assert_eq!(git_bare(&bare, &["rev-parse", "main"]), base);

    let changed = files(&[("a/keep.yaml", "k: 1\n"), ("a/new.yaml", "n: 2\n")]);
    let author = Author {
        name: "Bot".into(),
        email: "bot@example.com".into(),
    };
    let sha = checkout
        .commit_and_push(&changed, "Add sync", &author, &NoReporter)
        .unwrap()
        .unwrap();
    assert_eq!(git_bare(&bare, &["rev-parse", "main"]), sha);
    // Exactly the new file changed, on top of the seed commit.
    assert_eq!(
        git_bare(&bare, &["diff", "--name-status", &base, &sha]),
        "A\ta/new.yaml"
    );
    assert_eq!(
        git_bare(&bare, &["log", "-1", "--format=%an <%ae>", "main"]),
        "Bot <bot@example.com>"
    );
    // A second identical call is a no-op.
    assert_eq!(
        checkout
            .commit_and_push(&changed, "Add sync", &author, &NoReporter)
            .unwrap(),
        None
    );
}

#[test]
fn missing_branch_names_the_default_or_is_created_from_it() {
    let (_dir, bare) = bare_repo("r.git");
    let base = seed(&bare, "main", &[("README.md", "hi\n")]);
    let opts = remote(&bare.display().to_string(), RemoteAuth::None);
    let err = Checkout::clone(&opts, "flux", false, &NoReporter).unwrap_err();
    assert!(
        matches!(&err, GitError::BranchNotFound { branch, default_branch: Some(d), .. } if branch == "flux" && d == "main"),
        "{err:?}"
    );
    assert!(err.hint().unwrap().contains("--create-branch"));

    let mut checkout = Checkout::clone(&opts, "flux", true, &NoReporter).unwrap();
    assert_eq!(checkout.head().as_deref(), Some(base.as_str()));
    assert!(!checkout.is_empty_remote());
    let sha = checkout
        .commit_and_push(
            &files(&[("c/x.yaml", "x\n")]),
            "Add",
            &Author::default(),
            &NoReporter,
        )
        .unwrap()
        .unwrap();
    assert_eq!(git_bare(&bare, &["rev-parse", "flux^"]), base);
    assert_eq!(git_bare(&bare, &["rev-parse", "flux"]), sha);
    assert_eq!(git_bare(&bare, &["rev-parse", "main"]), base);
}

#[test]
fn concurrent_push_is_kept_and_ours_goes_on_top() {
    let (_dir, bare) = bare_repo("race.git");
    seed(&bare, "main", &[("README.md", "hi\n")]);
    let url = bare.display().to_string();
    let mut checkout =
        Checkout::clone(&remote(&url, RemoteAuth::None), "main", false, &NoReporter).unwrap();
    // Another client pushes between our clone and our push.
    let theirs = push_as_someone_else(&url, "main", &[("theirs.txt", "mine\n")], |_| {});
    let ours = checkout
        .commit_and_push(
            &files(&[("clusters/a/sync.yaml", "s\n")]),
            "Add Flux sync manifests",
            &Author::default(),
            &NoReporter,
        )
        .unwrap()
        .unwrap();
    assert_eq!(git_bare(&bare, &["rev-parse", "main"]), ours);
    assert_eq!(git_bare(&bare, &["rev-parse", "main^"]), theirs);
    assert_eq!(git_bare(&bare, &["show", "main:theirs.txt"]), "mine");
    assert_eq!(git_bare(&bare, &["show", "main:clusters/a/sync.yaml"]), "s");
    assert_eq!(checkout.head().as_deref(), Some(ours.as_str()));
}

/// A file written "unless present" (bootstrap's `kustomization.yaml`) is decided again on the
/// retry: when the concurrent push added it, theirs is kept and ours is not written over it.
/// Deciding once on the fresh clone, as bootstrap used to, would replace their file.
#[test]
fn a_file_kept_when_present_is_decided_again_on_every_push_attempt() {
    let (_dir, bare) = bare_repo("keep.git");
    seed(&bare, "main", &[("README.md", "hi\n")]);
    let url = bare.display().to_string();
    let mut checkout =
        Checkout::clone(&remote(&url, RemoteAuth::None), "main", false, &NoReporter).unwrap();
    assert_eq!(checkout.read_file("c/kustomization.yaml").unwrap(), None);
    // Between our clone and our push, someone adds their own kustomization.yaml.
    let theirs = push_as_someone_else(
        &url,
        "main",
        &[("c/kustomization.yaml", "theirs: patches\n")],
        |_| {},
    );
    let ours = checkout
        .commit_and_push(
            &[
                FileWrite::new("c/gotk-sync.yaml", "sync\n"),
                FileWrite::unless_present("c/kustomization.yaml", "ours\n"),
            ],
            "Add Flux sync manifests",
            &Author::default(),
            &NoReporter,
        )
        .unwrap()
        .unwrap();
    assert_eq!(git_bare(&bare, &["rev-parse", "main^"]), theirs);
    assert_eq!(git_bare(&bare, &["rev-parse", "main"]), ours);
    assert_eq!(
        git_bare(&bare, &["show", "main:c/kustomization.yaml"]),
        "theirs: patches"
    );
    assert_eq!(git_bare(&bare, &["show", "main:c/gotk-sync.yaml"]), "sync");
    // On a branch without the file, it is written.
    let mut fresh =
        Checkout::clone(&remote(&url, RemoteAuth::None), "main", false, &NoReporter).unwrap();
    fresh
        .commit_and_push(
            &[FileWrite::unless_present("d/kustomization.yaml", "ours\n")],
            "Add",
            &Author::default(),
            &NoReporter,
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        git_bare(&bare, &["show", "main:d/kustomization.yaml"]),
        "ours"
    );
}

#[test]
fn path_with_spaces_and_temp_dir_removed_on_drop() {
    let (_dir, bare) = bare_repo("my project/my repo.git");
    seed(&bare, "main", &[("README.md", "hi\n")]);
    let url = format!("file://{}", bare.display());
    let mut checkout =
        Checkout::clone(&remote(&url, RemoteAuth::None), "main", false, &NoReporter).unwrap();
    checkout
        .commit_and_push(
            &files(&[("dir with space/f.yaml", "f\n")]),
            "Add",
            &Author::default(),
            &NoReporter,
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        git_bare(&bare, &["show", "main:dir with space/f.yaml"]),
        "f"
    );
    let workdir = checkout.workdir().to_owned();
    assert!(workdir.join(".git").is_dir());
    drop(checkout);
    assert!(!workdir.exists());
    assert!(!workdir.parent().unwrap().exists());
}

#[test]
fn bad_inputs_are_rejected_before_any_io() {
    let (_dir, bare) = bare_repo("r.git");
    let opts = remote(&bare.display().to_string(), RemoteAuth::None);
    assert!(matches!(
        Checkout::clone(&opts, "bad..name", false, &NoReporter),
        Err(GitError::InvalidBranch { .. })
    ));
    let mut checkout = Checkout::clone(&opts, "main", false, &NoReporter).unwrap();
    let err = checkout
        .commit_and_push(
            &files(&[("../escape", "x")]),
            "m",
            &Author::default(),
            &NoReporter,
        )
        .unwrap_err();
    assert!(matches!(err, GitError::InvalidRepoPath { .. }), "{err:?}");
    let err = checkout
        .commit_and_push(
            &files(&[(".git/config", "x")]),
            "m",
            &Author::default(),
            &NoReporter,
        )
        .unwrap_err();
    assert!(matches!(err, GitError::InvalidRepoPath { .. }), "{err:?}");
    assert!(git_bare(&bare, &["for-each-ref"]).is_empty());
}
