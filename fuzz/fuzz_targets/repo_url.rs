//! The repository URL parser: never panics, and what it accepts renders to URLs that parse
//! back to the same repository and carry no control character or credentials.
#![no_main]

use fluxbootstrap_azdo::RepoUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let Ok(url) = RepoUrl::parse(input) else {
        return;
    };
    for rendered in [url.https_url(), url.ssh_url()] {
        assert!(!rendered.chars().any(char::is_control), "{rendered:?}");
        let again = RepoUrl::parse(&rendered).expect("a rendered URL parses");
        assert_eq!(
            (&again.org, &again.project, &again.repo),
            (&url.org, &url.project, &url.repo),
            "{input:?} -> {rendered:?}"
        );
    }
});
