//! Host-key verification against the `known_hosts` text the user (or the cluster Secret)
//! supplies, so an SSH connection never trusts a key on first use and aborts in libgit2's
//! certificate callback, before authentication or any repository data is exchanged.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

/// Outcome of checking a presented host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A line for this host carries exactly the presented key.
    Trusted,
    /// Lines for this host exist, but none with the presented key (or it is `@revoked`).
    Mismatch,
    /// No line names this host.
    Unknown,
}

/// Checks `presented` (the raw SSH public-key blob) for `name` (`host` or `[host]:port`).
pub(crate) fn check(known_hosts: &str, name: &str, presented: &[u8]) -> Verdict {
    let mut seen_host = false;
    for line in known_hosts.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some(mut hosts) = fields.next() else {
            continue;
        };
        let mut revoked = false;
        if hosts.starts_with('@') {
            // `@cert-authority` lines describe CAs, which libgit2 cannot present; skip them.
            revoked = hosts == "@revoked";
            if !revoked {
                continue;
            }
            let Some(next) = fields.next() else { continue };
            hosts = next;
        }
        let (Some(_key_type), Some(key)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !hosts_match(hosts, name) {
            continue;
        }
        seen_host = true;
        let Ok(key) = STANDARD.decode(key) else {
            continue;
        };
        if key == presented {
            return if revoked {
                Verdict::Mismatch
            } else {
                Verdict::Trusted
            };
        }
    }
    if seen_host {
        Verdict::Mismatch
    } else {
        Verdict::Unknown
    }
}

/// The OpenSSH-style `SHA256:…` fingerprint of a raw public-key blob.
pub(crate) fn fingerprint(key: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(openssl::sha::sha256(key))
    )
}

fn hosts_match(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(hashed) = pattern.strip_prefix("|1|") {
            matched |= hashed_match(hashed, name);
        } else if let Some(negated) = pattern.strip_prefix('!') {
            if glob(negated, name) {
                return false;
            }
        } else {
            matched |= glob(pattern, name);
        }
    }
    matched
}

/// `|1|salt|hash` entries written by `ssh-keygen -H`: HMAC-SHA1 of the name keyed by the salt.
fn hashed_match(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    let mac = PKey::hmac(&salt).and_then(|key| {
        let mut signer = Signer::new(MessageDigest::sha1(), &key)?;
        signer.sign_oneshot_to_vec(name.as_bytes())
    });
    // `memcmp::eq` panics on different lengths, so compare those first.
    mac.is_ok_and(|mac| mac.len() == hash.len() && openssl::memcmp::eq(&mac, &hash))
}

/// OpenSSH host patterns: `*` matches any run, `?` one character; case-insensitive.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"\0\0\0\x07ssh-rsa\0\0\0\x01\x03";

    fn line(hosts: &str, key: &[u8]) -> String {
        format!("{hosts} ssh-rsa {}\n", STANDARD.encode(key))
    }

    #[test]
    fn plain_and_bracketed_names() {
        let kh =
            line("ssh.dev.azure.com,vs-ssh.visualstudio.com", KEY) + &line("[127.0.0.1]:2222", KEY);
        assert_eq!(check(&kh, "ssh.dev.azure.com", KEY), Verdict::Trusted);
        assert_eq!(check(&kh, "[127.0.0.1]:2222", KEY), Verdict::Trusted);
        assert_eq!(check(&kh, "127.0.0.1", KEY), Verdict::Unknown);
        assert_eq!(check(&kh, "[127.0.0.1]:2222", b"other"), Verdict::Mismatch);
    }

    #[test]
    fn hashed_names() {
        // `ssh-keygen -H` form for "[127.0.0.1]:2222" with a fixed salt.
        let salt = [7u8; 20];
        let key = PKey::hmac(&salt).unwrap();
        let mut signer = Signer::new(MessageDigest::sha1(), &key).unwrap();
        let hash = signer.sign_oneshot_to_vec(b"[127.0.0.1]:2222").unwrap();
        let hosts = format!("|1|{}|{}", STANDARD.encode(salt), STANDARD.encode(hash));
        let kh = line(&hosts, KEY);
        assert_eq!(check(&kh, "[127.0.0.1]:2222", KEY), Verdict::Trusted);
        assert_eq!(check(&kh, "[127.0.0.1]:2223", KEY), Verdict::Unknown);
    }

    #[test]
    fn revoked_and_negated() {
        let kh = format!("@revoked {}", line("h", KEY)) + &line("h", KEY);
        assert_eq!(check(&kh, "h", KEY), Verdict::Mismatch);
        let kh = line("*.azure.com,!evil.azure.com", KEY);
        assert_eq!(check(&kh, "ssh.dev.azure.com", KEY), Verdict::Trusted);
        assert_eq!(check(&kh, "evil.azure.com", KEY), Verdict::Unknown);
    }

    #[test]
    fn fingerprint_format() {
        assert!(fingerprint(KEY).starts_with("SHA256:"));
        assert!(!fingerprint(KEY).ends_with('='));
    }
}
