//! Hostile and mistaken input, as a matrix: each case must end with exit 1, an `error:` line
//! naming the input, a `hint:` line saying what to do, nothing pushed, nothing applied, and
//! none of the secrets it was given in the output.

use crate::context::{env, run, run_with_stdin, temp_dir};

/// One bad input: the plugin's arguments after `azdo` (`{url}`, `{ssh_url}`, `{ns}`, `{ca}`,
/// `{key}`, `{dir}` replaced), what it reads on stdin, and what the error line must contain.
struct Case {
    name: &'static str,
    args: &'static [&'static str],
    /// `GIT_PASSWORD`, when set.
    password: Option<&'static str>,
    /// Bytes on stdin (a pipe), when set; otherwise stdin is closed.
    stdin: Option<&'static [u8]>,
    /// Substrings of the `error:` line (the input it names).
    names: &'static [&'static str],
}

const PAT_WITH_INNER_SPACE: &str = "abc def";

const CASES: &[Case] = &[
    Case {
        name: "a URL with embedded credentials",
        args: &["--url", "{url_with_pat}", "--ca-file", "{ca}"],
        password: None,
        stdin: None,
        names: &["contains credentials"],
    },
    Case {
        name: "a URL with CRLF and a header after it",
        args: &["--url", "{url}\r\nX-Evil: 1", "--ca-file", "{ca}"],
        password: Some("{pat}"),
        stdin: None,
        names: &["control character"],
    },
    Case {
        name: "a URL with a tab",
        args: &["--url", "{url}\tx", "--ca-file", "{ca}"],
        password: Some("{pat}"),
        stdin: None,
        names: &["control character"],
    },
    Case {
        name: "plain HTTP in upper case",
        args: &["--url", "{http_upper}"],
        password: Some("{pat}"),
        stdin: None,
        names: &["plain `http://`"],
    },
    Case {
        name: "plain HTTP after a space",
        args: &["--url", " {http}"],
        password: Some("{pat}"),
        stdin: None,
        names: &["plain `http://`"],
    },
    Case {
        name: "a PAT with inner whitespace",
        args: &["--url", "{url}", "--ca-file", "{ca}"],
        password: Some(PAT_WITH_INNER_SPACE),
        stdin: None,
        names: &["whitespace"],
    },
    Case {
        name: "an empty pipe",
        args: &["--url", "{url}", "--ca-file", "{ca}"],
        password: None,
        stdin: Some(b""),
        names: &["stdin"],
    },
    Case {
        name: "a private key that is not a key",
        args: &[
            "--url",
            "{ssh_url}",
            "--private-key-file",
            "{dir}/not-a-key",
        ],
        password: None,
        stdin: None,
        names: &["not-a-key"],
    },
    Case {
        name: "an encrypted key with the wrong passphrase",
        args: &["--url", "{ssh_url}", "--private-key-file", "{key}"],
        password: Some("wrong passphrase"),
        stdin: None,
        names: &["passphrase"],
    },
    Case {
        // The key's passphrase is no PAT: it must not reach the REST API as one.
        name: "--create-repository in SSH mode",
        args: &[
            "--url",
            "{ssh_url}",
            "--private-key-file",
            "{key}",
            "--create-repository",
        ],
        password: Some("right passphrase"),
        stdin: None,
        names: &["--create-repository"],
    },
    Case {
        name: "a path with ..",
        args: &[
            "--url",
            "{url}",
            "--ca-file",
            "{ca}",
            "--path",
            "clusters/../../x",
        ],
        password: Some("{pat}"),
        stdin: None,
        names: &["--path clusters/../../x"],
    },
    Case {
        name: "an absolute path",
        args: &["--url", "{url}", "--ca-file", "{ca}", "--path", "/etc/flux"],
        password: Some("{pat}"),
        stdin: None,
        names: &["--path /etc/flux"],
    },
    Case {
        // A NUL cannot be passed in argv; a tab or a line break can.
        name: "a path with a control character",
        args: &[
            "--url",
            "{url}",
            "--ca-file",
            "{ca}",
            "--path",
            "clusters/\tdev",
        ],
        password: Some("{pat}"),
        stdin: None,
        names: &["control character"],
    },
    Case {
        name: "--provider azure without --azure-client-id",
        args: &["--url", "{url}", "--ca-file", "{ca}", "--provider", "azure"],
        password: Some("{pat}"),
        stdin: None,
        names: &["--azure-client-id"],
    },
    Case {
        name: "a branch name git refuses",
        args: &["--url", "{url}", "--ca-file", "{ca}", "--branch", "main..x"],
        password: Some("{pat}"),
        stdin: None,
        names: &["main..x"],
    },
    Case {
        name: "a kubeconfig that is not YAML",
        args: &[
            "--url",
            "{url}",
            "--ca-file",
            "{ca}",
            "--kubeconfig",
            "{dir}/not-yaml",
        ],
        password: Some("{pat}"),
        stdin: None,
        names: &["not-yaml"],
    },
    Case {
        name: "an unknown --context",
        args: &["--url", "{url}", "--ca-file", "{ca}", "--context", "nope"],
        password: Some("{pat}"),
        stdin: None,
        names: &["nope"],
    },
];

#[test]
fn bad_input_is_refused_with_the_input_named_and_a_hint_and_nothing_written() {
    let env = env();
    let (_dir, dir) = temp_dir();
    std::fs::write(dir.join("not-a-key"), "this is not a private key\n").expect("writable");
    std::fs::write(dir.join("not-yaml"), "{ this: is: not yaml ]\n").expect("writable");
    let (key, _) = crate::context::registered_rsa_key(env, &dir, "right passphrase");
    let pat = env.git.pat();
    let mut failures = Vec::new();
    for case in CASES {
        let repo = env.repo();
        let ns = env.namespace();
        let https = repo.https_url.clone();
        let fill = |s: &str| {
            s.replace(
                "{url_with_pat}",
                &https.replacen("https://", &format!("https://git:{pat}@"), 1),
            )
            .replace("{http_upper}", &https.replacen("https://", "HTTP://", 1))
            .replace("{http}", &https.replacen("https://", "http://", 1))
            .replace("{url}", &https)
            .replace("{ssh_url}", &repo.ssh_url)
            .replace("{ca}", &env.ca_file().display().to_string())
            .replace("{key}", &key.display().to_string())
            .replace("{dir}", &dir.display().to_string())
            .replace("{pat}", pat)
        };
        let mut cmd = env.plugin();
        cmd.arg("azdo")
            .args(case.args.iter().map(|a| fill(a)))
            .args(["-n", &ns, "--silent", "--timeout", "20s"]);
        if let Some(password) = case.password {
            cmd.env("GIT_PASSWORD", fill(password));
        }
        let (code, stdout, stderr) = match case.stdin {
            Some(input) => run_with_stdin(&mut cmd, input),
            None => run(&mut cmd),
        };
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        let mut problems = Vec::new();
        if code != 1 {
            problems.push(format!("exit code {code}, not 1"));
        }
        for name in case.names {
            if !error.contains(name) {
                problems.push(format!("the error line does not name `{name}`"));
            }
        }
        if !stderr.lines().any(|l| l.starts_with("hint:")) {
            problems.push("no `hint:` line".to_owned());
        }
        if repo.branch_sha("main").is_some() {
            problems.push("something was pushed".to_owned());
        }
        let applied = env.kubectl(&["get", "namespace", &ns, "--ignore-not-found", "-o", "name"]);
        if !String::from_utf8_lossy(&applied.stdout).trim().is_empty() {
            problems.push(format!("namespace {ns} was created"));
        }
        for secret in [
            pat,
            "right passphrase",
            "wrong passphrase",
            PAT_WITH_INNER_SPACE,
        ] {
            if stderr.contains(secret) || stdout.contains(secret) {
                problems.push(format!("the output contains the secret `{secret}`"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n--- stderr\n{stderr}",
                case.name,
                problems.join("; ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs were not handled as they must be:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// The good twin of the PAT cases: a PAT piped with a trailing CRLF (`echo` from a Windows
/// file, a here-string) is accepted after trimming, and the clone authenticates with it.
#[test]
fn a_piped_pat_with_a_trailing_crlf_is_accepted() {
    let env = env();
    let repo = env.repo();
    let ns = env.namespace();
    let (code, _, stderr) = run_with_stdin(
        env.plugin()
            .args(["azdo", "--url", &repo.https_url, "--ca-file"])
            .arg(env.ca_file())
            .args(["-n", &ns, "--dry-run"]),
        format!("{}\r\n", env.git.pat()).as_bytes(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("cloned repository"), "{stderr}");
    assert!(!stderr.contains(env.git.pat()));
}
