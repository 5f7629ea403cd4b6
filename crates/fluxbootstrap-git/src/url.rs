//! Remote URL handling: which transport a URL selects, where its host key lives, and the
//! credential-free form that is safe to store in `.git/config` and to show in errors.

use crate::GitError;

/// The transport a remote URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Https,
    Http,
    Ssh,
    /// `file://` URLs and plain paths (tests and local mirrors).
    Local,
}

/// A parsed remote URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) scheme: Scheme,
    /// Host name without brackets or port; empty for [`Scheme::Local`].
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path part, starting with `/` (scp-like SSH paths get one prepended).
    pub(crate) path: String,
    /// The URL without any password or token; HTTPS URLs lose the whole user-info part.
    pub(crate) sanitized: String,
}

impl Endpoint {
    /// Parses `url`; the error only ever carries the redacted URL.
    pub(crate) fn parse(url: &str) -> Result<Endpoint, GitError> {
        let invalid = || GitError::InvalidUrl { url: redact(url) };
        let url = url.trim();
        if url.is_empty() || url.contains(['\n', '\r', '\0']) {
            return Err(invalid());
        }
        if let Some((scheme, rest)) = url.split_once("://") {
            let scheme = match scheme.to_ascii_lowercase().as_str() {
                "https" => Scheme::Https,
                "http" => Scheme::Http,
                "ssh" | "git+ssh" | "ssh+git" => Scheme::Ssh,
                "file" => {
                    return Ok(Endpoint {
                        scheme: Scheme::Local,
                        host: String::new(),
                        port: 0,
                        path: rest.to_owned(),
                        sanitized: url.to_owned(),
                    });
                }
                _ => return Err(invalid()),
            };
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let (userinfo, hostport) = match authority.rfind('@') {
                Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
                None => (None, authority),
            };
            let default_port = match scheme {
                Scheme::Https => 443,
                Scheme::Http => 80,
                _ => 22,
            };
            let (host, port) = split_host_port(hostport, default_port).ok_or_else(invalid)?;
            // SSH keeps its (non-secret) user name, which selects the account on the server;
            // for HTTP(S) anything in the user-info part may be a token and is dropped.
            let user = match (scheme, userinfo) {
                (Scheme::Ssh, Some(info)) => {
                    let user = info.split(':').next().unwrap_or_default();
                    if user.is_empty() {
                        String::new()
                    } else {
                        format!("{user}@")
                    }
                }
                _ => String::new(),
            };
            let sanitized = format!("{}://{user}{hostport}{path}", scheme_name(scheme));
            return Ok(Endpoint {
                scheme,
                host,
                port,
                path: path.to_owned(),
                sanitized,
            });
        }
        // scp-like syntax: `[user@]host:path`, as long as no `/` precedes the colon.
        if let Some(colon) = url.find(':')
            && !url[..colon].contains('/')
        {
            let (userhost, path) = (&url[..colon], &url[colon + 1..]);
            let host = userhost.rsplit('@').next().unwrap_or_default();
            if host.is_empty() || path.is_empty() {
                return Err(invalid());
            }
            let path = if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            };
            return Ok(Endpoint {
                scheme: Scheme::Ssh,
                host: host.to_owned(),
                port: 22,
                path,
                sanitized: url.to_owned(),
            });
        }
        if url.starts_with('/') {
            return Ok(Endpoint {
                scheme: Scheme::Local,
                host: String::new(),
                port: 0,
                path: url.to_owned(),
                sanitized: url.to_owned(),
            });
        }
        Err(invalid())
    }

    /// The name a `known_hosts` line uses for this host: `host`, or `[host]:port` off port 22.
    pub(crate) fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }

    /// The Azure DevOps organisation the URL points into, when it can be told from the URL.
    pub(crate) fn azure_org(&self) -> Option<String> {
        if let Some(org) = self.host.strip_suffix(".visualstudio.com")
            && !org.starts_with("vs-ssh")
        {
            return Some(org.to_owned());
        }
        let mut segments = self.path.trim_start_matches('/').split('/');
        let first = segments.next().filter(|s| !s.is_empty())?;
        if first == "v3" {
            return segments.next().filter(|s| !s.is_empty()).map(str::to_owned);
        }
        self.path.contains("/_git/").then(|| first.to_owned())
    }
}

fn scheme_name(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Https => "https",
        Scheme::Http => "http",
        Scheme::Ssh => "ssh",
        Scheme::Local => "file",
    }
}

/// The authority's host and port (`default_port` when it names none).
fn split_host_port(hostport: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = fluxbootstrap_auth::split_host_port(hostport)?;
    Some((host.to_owned(), port.unwrap_or(default_port)))
}

/// `url` with everything between `://` and the last `@` of the authority removed, for
/// messages about URLs that did not even parse.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_loses_userinfo() {
        let e = Endpoint::parse("https://org:s3cret@dev.azure.com/org/My%20Project/_git/fleet")
            .unwrap();
        assert_eq!(e.scheme, Scheme::Https);
        assert_eq!(e.host, "dev.azure.com");
        assert_eq!(e.port, 443);
        assert_eq!(
            e.sanitized,
            "https://dev.azure.com/org/My%20Project/_git/fleet"
        );
        assert_eq!(e.azure_org().as_deref(), Some("org"));
    }

    #[test]
    fn ssh_keeps_user_drops_password() {
        let e = Endpoint::parse("ssh://git:pw@127.0.0.1:2222/v3/org/proj/repo").unwrap();
        assert_eq!(e.scheme, Scheme::Ssh);
        assert_eq!(e.sanitized, "ssh://git@127.0.0.1:2222/v3/org/proj/repo");
        assert_eq!(e.known_hosts_name(), "[127.0.0.1]:2222");
        assert_eq!(e.azure_org().as_deref(), Some("org"));
    }

    #[test]
    fn scp_like_ssh() {
        let e = Endpoint::parse("git@ssh.dev.azure.com:v3/org/proj/repo").unwrap();
        assert_eq!(e.scheme, Scheme::Ssh);
        assert_eq!(e.host, "ssh.dev.azure.com");
        assert_eq!(e.known_hosts_name(), "ssh.dev.azure.com");
        assert_eq!(e.path, "/v3/org/proj/repo");
        assert_eq!(e.azure_org().as_deref(), Some("org"));
    }

    #[test]
    fn legacy_host_org() {
        let e = Endpoint::parse("https://contoso.visualstudio.com/proj/_git/repo").unwrap();
        assert_eq!(e.azure_org().as_deref(), Some("contoso"));
        let e = Endpoint::parse("https://[::1]:8443/a/b/_git/c").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 8443));
    }

    #[test]
    fn local_paths() {
        assert_eq!(
            Endpoint::parse("/srv/repo.git").unwrap().scheme,
            Scheme::Local
        );
        assert_eq!(
            Endpoint::parse("file:///srv/r.git").unwrap().scheme,
            Scheme::Local
        );
    }

    #[test]
    fn invalid_url_error_is_redacted() {
        let err = Endpoint::parse("gopher://u:tok@h/x").unwrap_err();
        assert!(!err.to_string().contains("tok"), "{err}");
        assert_eq!(redact("https://u:tok@h/x@y"), "https://h/x@y");
    }
}
