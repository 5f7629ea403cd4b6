//! The one `host[:port]` parser: `--ssh-hostname`, SSH endpoints, URL authorities and
//! `known_hosts` markers all split the same way.

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port` into the host (brackets removed) and the
/// port. An unbracketed address with several colons is a bare IPv6 address without a port,
/// as OpenSSH writes it. `None` for an empty host, a port that is not a number in `0..=65535`,
/// or text after the closing bracket.
#[must_use]
pub fn split_host_port(input: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = input.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match input.split_once(':') {
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            _ => (input, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(port) if port.bytes().all(|b| b.is_ascii_digit()) => Some(port.parse().ok()?),
        Some(_) => return None,
        None => None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_splits_the_same_way() {
        assert_eq!(
            split_host_port("ssh.dev.azure.com"),
            Some(("ssh.dev.azure.com", None))
        );
        assert_eq!(split_host_port("h:2222"), Some(("h", Some(2222))));
        assert_eq!(split_host_port("[::1]:22"), Some(("::1", Some(22))));
        assert_eq!(split_host_port("[::1]"), Some(("::1", None)));
        assert_eq!(split_host_port("fe80::1"), Some(("fe80::1", None)));
        for bad in [
            "", ":22", "h:", "h:x", "h:+1", "h:65536", "[::1]x", "[::1", "[]:22",
        ] {
            assert_eq!(split_host_port(bad), None, "{bad}");
        }
    }
}
