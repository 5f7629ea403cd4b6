//! The `known_hosts` reader (`--known-hosts-file`): never panics, and every line it returns
//! is a `known_hosts` line whose key parses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str, u16)| {
    let (text, host, port) = input;
    if let Ok(lines) = fluxbootstrap_auth::known_hosts_entries(text, host, port) {
        for line in lines {
            fluxbootstrap_auth::known_hosts_fingerprint(&line).expect("a returned line parses");
        }
    }
});
