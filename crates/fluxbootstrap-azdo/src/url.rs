//! Azure DevOps repository URLs: one model for every form in circulation.
//!
//! The web UI, the REST API, old organizations and Azure DevOps Server all hand out
//! different clone URLs for the same repository. Flux needs one canonical HTTPS or
//! `ssh://` URL, REST needs the organization (or collection) base, and people paste
//! whatever they have. Names are kept percent-decoded and encoded again on output.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

const CLOUD_HOST: &str = "dev.azure.com";
const CLOUD_SSH_HOST: &str = "ssh.dev.azure.com";
const LEGACY_SSH_HOST: &str = "vs-ssh.visualstudio.com";
const LEGACY_SUFFIX: &str = ".visualstudio.com";

/// Characters left as they are in a path segment (RFC 3986 unreserved); everything else,
/// including spaces and non-ASCII, is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The URL forms [`RepoUrl::parse`] accepts, for error messages.
pub const EXPECTED_FORMS: &str = "\
https://dev.azure.com/{org}/{project}/_git/{repo}
https://{org}@dev.azure.com/{org}/{project}/_git/{repo}
https://dev.azure.com/{org}/_git/{repo}   (project named like the repository)
https://{org}.visualstudio.com/[DefaultCollection/]{project}/_git/{repo}
ssh://git@ssh.dev.azure.com/v3/{org}/{project}/{repo}
git@ssh.dev.azure.com:v3/{org}/{project}/{repo}
{org}@vs-ssh.visualstudio.com:v3/{org}/{project}/{repo}
https://{server}[:port]/[tfs/]{collection}/{project}/_git/{repo}   (Azure DevOps Server)
ssh://{server}[:port]/[tfs/]{collection}/{project}/_git/{repo}   (Azure DevOps Server)";

/// Where the repository is hosted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// Azure DevOps Services at `dev.azure.com`.
    Cloud,
    /// Azure DevOps Services given with a legacy `{org}.visualstudio.com` or
    /// `vs-ssh.visualstudio.com` URL; rendered with the canonical `dev.azure.com` forms.
    LegacyVisualStudio,
    /// Azure DevOps Server (on-premises) or anything else that serves the same layout.
    Server,
}

/// A parsed Azure DevOps repository URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoUrl {
    /// Where the repository is hosted.
    pub kind: HostKind,
    /// Web/REST host (`dev.azure.com` for the cloud).
    pub host: String,
    /// Web/REST port when not the default.
    pub port: Option<u16>,
    /// Organization, or collection on Azure DevOps Server (decoded).
    pub org: String,
    /// Project (decoded).
    pub project: String,
    /// Repository (decoded).
    pub repo: String,
    /// Azure DevOps Server virtual directory before the collection (`tfs`), if any.
    pub virtual_dir: Option<String>,
    /// Plain `http://` (Azure DevOps Server only).
    pub insecure_http: bool,
    ssh: SshEndpoint,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SshEndpoint {
    user: Option<String>,
    host: String,
    port: Option<u16>,
    /// `v3/{org}/{project}/{repo}` (cloud layout) rather than `{collection}/{project}/_git/{repo}`.
    v3: bool,
}

/// A string that is not an Azure DevOps repository URL.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// Nothing was given.
    #[error("the repository URL is empty")]
    Empty,
    /// Not a form we know.
    #[error("`{url}` is not an Azure DevOps repository URL")]
    NotAzureDevOps {
        /// The input, with any user info replaced by `***`.
        url: String,
    },
    /// The URL carries a password or token.
    #[error("`{url}` contains credentials")]
    CredentialsInUrl {
        /// The input with the user info replaced by `***`.
        url: String,
    },
    /// An SSH host alias from `~/.ssh/config`, which we cannot resolve.
    #[error("`{host}` in `{url}` looks like an SSH config alias, not a host name")]
    SshAlias {
        /// The input.
        url: String,
        /// The alias.
        host: String,
    },
    /// A legacy `_ssh` URL without the organization as user name.
    #[error("`{url}` does not say which organization it belongs to")]
    MissingOrg {
        /// The input.
        url: String,
    },
    /// A percent-encoded name is not UTF-8 or a name is empty.
    #[error("`{url}` has an empty or malformed name segment")]
    BadSegment {
        /// The input, with any user info replaced by `***`.
        url: String,
    },
    /// A control character (a line break, a tab) inside the URL. URL parsers drop them
    /// silently, which would bootstrap another repository than the one the user meant.
    #[error("`{url}` contains a control character")]
    ControlCharacter {
        /// The input with control characters escaped and any user info replaced by `***`.
        url: String,
    },
    /// The URL's canonical HTTPS or SSH form would name another repository.
    #[error("`{url}` is ambiguous: its canonical form names another repository")]
    Ambiguous {
        /// The input, with any user info replaced by `***`.
        url: String,
    },
    /// An SSH endpoint given to [`RepoUrl::with_ssh_host`] is malformed.
    #[error("`{endpoint}` is not a `host[:port]` SSH endpoint")]
    BadSshEndpoint {
        /// The input.
        endpoint: String,
    },
}

impl UrlError {
    /// User-actionable advice for this error.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Empty
            | Self::NotAzureDevOps { .. }
            | Self::BadSegment { .. }
            | Self::Ambiguous { .. } => {
                Some(format!("use one of these forms:\n{EXPECTED_FORMS}"))
            }
            Self::CredentialsInUrl { .. } => Some(
                "remove the credentials from the URL and pass the PAT in `GIT_PASSWORD` (or pipe it to stdin)".to_owned(),
            ),
            Self::SshAlias { .. } => Some(
                "use the real URL, e.g. `ssh://git@ssh.dev.azure.com/v3/{org}/{project}/{repo}`, and `--private-key-file` to choose the key".to_owned(),
            ),
            Self::MissingOrg { .. } => Some("use `ssh://git@ssh.dev.azure.com/v3/{org}/{project}/{repo}`".to_owned()),
            Self::BadSshEndpoint { .. } => Some("write it as `host`, `host:port` or `[ipv6]:port`".to_owned()),
            Self::ControlCharacter { .. } => Some(
                "pass the URL again without line breaks or tabs (quote it in the shell)".to_owned(),
            ),
        }
    }
}

impl RepoUrl {
    /// Parses any Azure DevOps repository URL form (see [`EXPECTED_FORMS`]).
    pub fn parse(input: &str) -> Result<RepoUrl, UrlError> {
        let url = Self::parse_named(input)?;
        // Git and Flux get the canonical renderings, never the input: one that reads back as
        // another repository (or not at all) would bootstrap the wrong one. The rules in
        // `parse_named` refuse the cases known (most found by `cargo xtask fuzz`); this is the
        // backstop for any other.
        for rendered in [url.https_url(), url.ssh_url()] {
            let same = Self::parse_named(&rendered).is_ok_and(|again| {
                (&again.org, &again.project, &again.repo) == (&url.org, &url.project, &url.repo)
            });
            if !same {
                return Err(UrlError::Ambiguous {
                    url: redact(input.trim()),
                });
            }
        }
        Ok(url)
    }

    /// The Azure DevOps Services repository `{org}/{project}/{repo}`, from the names as the web
    /// UI shows them (spaces and non-ASCII are percent-encoded here), under the rules of
    /// [`RepoUrl::parse`].
    pub fn from_cloud_names(org: &str, project: &str, repo: &str) -> Result<RepoUrl, UrlError> {
        Self::parse(&format!(
            "https://{CLOUD_HOST}/{}/{}/_git/{}",
            enc(org),
            enc(project),
            enc(repo)
        ))
    }

    /// [`RepoUrl::parse_form`] and the rules for names.
    fn parse_named(input: &str) -> Result<RepoUrl, UrlError> {
        let url = Self::parse_form(input)?;
        // Azure DevOps names never start with `_` (its naming rules reserve that for its own
        // path segments, like `_git`): a project named `_git` would render an HTTPS URL that
        // no one can read back (found by `cargo xtask fuzz`).
        // `.` and `..` (percent-encoded in the input) would be path segments, not names.
        if [&url.org, &url.project, &url.repo]
            .iter()
            .any(|name| name.starts_with('_') || is_dot_segment(name))
        {
            return Err(UrlError::BadSegment {
                url: redact(input.trim()),
            });
        }
        // A server collection named `tfs` (or `v3`) without a virtual directory renders an
        // HTTPS (SSH) URL that reads back as the `tfs` virtual directory (the cloud's `v3`
        // layout) with the next segment as collection (both found by the fuzzer), so it is
        // taken as the virtual directory with the collection missing.
        if url.kind == HostKind::Server
            && url.virtual_dir.is_none()
            && (url.org.eq_ignore_ascii_case("tfs") || url.org.eq_ignore_ascii_case("v3"))
        {
            return Err(UrlError::NotAzureDevOps {
                url: redact(input.trim()),
            });
        }
        Ok(url)
    }

    fn parse_form(input: &str) -> Result<RepoUrl, UrlError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(UrlError::Empty);
        }
        if input.chars().any(char::is_control) {
            return Err(UrlError::ControlCharacter {
                url: redact(input).escape_debug().to_string(),
            });
        }
        let redacted = redact(input);
        let not_ado = || UrlError::NotAzureDevOps {
            url: redacted.clone(),
        };
        if let Some((scheme, rest)) = input.split_once("://") {
            // The URL parser resolves `.` and `..` (also percent-encoded) segments, which
            // would quietly name another repository than the one typed (found by the fuzzer).
            let path = rest.find('/').map_or("", |at| &rest[at..]);
            let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
            if path
                .split(['/', '\\'])
                .any(|s| is_dot_segment(&percent_decode_str(s).decode_utf8_lossy()))
            {
                return Err(UrlError::BadSegment { url: redacted });
            }
            let url = url::Url::parse(input).map_err(|_| not_ado())?;
            return match scheme.to_ascii_lowercase().as_str() {
                "https" | "http" => parse_http(&url, &redacted),
                "ssh" | "git+ssh" | "ssh+git" => {
                    let user = (!url.username().is_empty())
                        .then(|| decode(url.username(), &redacted))
                        .transpose()?;
                    let host = url.host_str().ok_or_else(not_ado)?;
                    parse_ssh(input, &redacted, user, host, url.port(), url.path(), false)
                }
                _ => Err(not_ado()),
            };
        }
        // scp-like `[user@]host:path`; a path must not start with `/` right after the colon's
        // host part being a Windows drive letter etc., so require a dotted host or a user.
        let (authority, path) = input.split_once(':').ok_or_else(not_ado)?;
        if authority.contains('/') || path.starts_with("//") {
            return Err(not_ado());
        }
        let (user, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(decode(user, &redacted)?), host),
            None => (None, authority),
        };
        parse_ssh(input, &redacted, user, host, None, path, true)
    }

    /// The canonical HTTPS clone URL (segments percent-encoded, no user info, no `.git`).
    pub fn https_url(&self) -> String {
        format!(
            "{}/{}/_git/{}",
            self.project_base(),
            enc(&self.project),
            enc(&self.repo)
        )
    }

    /// The canonical `ssh://` clone URL (the only SSH form flux accepts).
    pub fn ssh_url(&self) -> String {
        let user = self
            .ssh
            .user
            .as_deref()
            .map(|u| format!("{}@", enc(u)))
            .unwrap_or_default();
        let host = self.ssh_host();
        if self.ssh.v3 {
            format!(
                "ssh://{user}{host}/v3/{}/{}/{}",
                enc(&self.org),
                enc(&self.project),
                enc(&self.repo)
            )
        } else {
            let vdir = self
                .virtual_dir
                .as_deref()
                .map(|v| format!("{}/", enc_path(v)))
                .unwrap_or_default();
            format!(
                "ssh://{user}{host}/{vdir}{}/{}/_git/{}",
                enc(&self.org),
                enc(&self.project),
                enc(&self.repo)
            )
        }
    }

    /// The REST base of the organization (collection): `https://dev.azure.com/{org}`.
    pub fn rest_base(&self) -> String {
        let scheme = if self.insecure_http { "http" } else { "https" };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let vdir = self
            .virtual_dir
            .as_deref()
            .map(|v| format!("/{}", enc_path(v)))
            .unwrap_or_default();
        format!(
            "{scheme}://{}{port}{vdir}/{}",
            bracket(&self.host),
            enc(&self.org)
        )
    }

    /// The organization's identity service (`vssps`) base, where the PAT lifecycle API lives:
    /// `https://vssps.dev.azure.com/{org}` for Azure DevOps Services; on a server, the
    /// collection's own base (Azure DevOps Server has no such API and answers 404).
    pub fn vssps_base(&self) -> String {
        match self.kind {
            HostKind::Cloud | HostKind::LegacyVisualStudio => {
                format!("https://vssps.dev.azure.com/{}", enc(&self.org))
            }
            HostKind::Server => self.rest_base(),
        }
    }

    /// The SSH endpoint as `host` or `host:port` (`[v6]:port` for IPv6).
    pub fn ssh_host(&self) -> String {
        let host = bracket(&self.ssh.host);
        match self.ssh.port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        }
    }

    /// The SSH host name alone.
    pub fn ssh_hostname(&self) -> &str {
        &self.ssh.host
    }

    /// The SSH port (22 unless the URL said otherwise).
    pub fn ssh_port(&self) -> u16 {
        self.ssh.port.unwrap_or(22)
    }

    /// The same repository reached over SSH at `endpoint` (`host[:port]`) with the cloud's
    /// `v3/{org}/{project}/{repo}` layout and user `git` (a test server, a port-forward).
    pub fn with_ssh_host(mut self, endpoint: &str) -> Result<RepoUrl, UrlError> {
        let bad = || UrlError::BadSshEndpoint {
            endpoint: endpoint.to_owned(),
        };
        let (host, port) = split_host_port(endpoint).ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        self.ssh = SshEndpoint {
            user: Some("git".to_owned()),
            host: host.to_owned(),
            port,
            v3: true,
        };
        Ok(self)
    }

    /// Where the user adds SSH public keys: `https://dev.azure.com/{org}/_usersSettings/keys`.
    pub fn ssh_keys_settings_url(&self) -> String {
        format!("{}/_usersSettings/keys", self.rest_base())
    }

    /// Where the user creates PATs: `https://dev.azure.com/{org}/_usersSettings/tokens`.
    pub fn pat_settings_url(&self) -> String {
        format!("{}/_usersSettings/tokens", self.rest_base())
    }

    fn project_base(&self) -> String {
        self.rest_base()
    }
}

impl fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.https_url())
    }
}

fn parse_http(url: &url::Url, redacted: &str) -> Result<RepoUrl, UrlError> {
    let not_ado = || UrlError::NotAzureDevOps {
        url: redacted.to_owned(),
    };
    if url.password().is_some() {
        return Err(UrlError::CredentialsInUrl {
            url: redacted.to_owned(),
        });
    }
    let host = url.host_str().ok_or_else(not_ado)?.to_ascii_lowercase();
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if !is_host_name(&host) {
        return Err(not_ado());
    }
    let segments = segments(url.path(), redacted)?;
    let git = segments
        .iter()
        .position(|s| s.eq_ignore_ascii_case("_git"))
        .ok_or_else(not_ado)?;
    let repo = repo_after(&segments[git + 1..]).ok_or_else(not_ado)?;
    let before = &segments[..git];
    let parsed = if host == CLOUD_HOST {
        let (org, project) = match before {
            [org, project] => (org.clone(), project.clone()),
            [org] => (org.clone(), repo.clone()),
            _ => return Err(not_ado()),
        };
        cloud(HostKind::Cloud, org, project, repo)
    } else if let Some(org) = host
        .strip_suffix(LEGACY_SUFFIX)
        .filter(|o| !o.contains('.') && *o != "vs-ssh")
    {
        let before = match before {
            [first, rest @ ..] if first.eq_ignore_ascii_case("DefaultCollection") => rest,
            all => all,
        };
        let project = match before {
            [project] => project.clone(),
            [] => repo.clone(),
            _ => return Err(not_ado()),
        };
        cloud(HostKind::LegacyVisualStudio, org.to_owned(), project, repo)
    } else if is_microsoft_domain(&host) {
        // Microsoft's domain, but not `dev.azure.com` or `{org}.visualstudio.com`: no Azure
        // DevOps Server lives there (the SSH parser refuses it too; found by `cargo xtask fuzz`).
        return Err(not_ado());
    } else {
        let (virtual_dir, org, project) = server_parts(before, &repo).ok_or_else(not_ado)?;
        RepoUrl {
            kind: HostKind::Server,
            host: host.clone(),
            port: url.port(),
            org,
            project,
            repo,
            virtual_dir,
            insecure_http: url.scheme() == "http",
            ssh: SshEndpoint {
                user: None,
                host,
                port: Some(22),
                v3: false,
            },
        }
    };
    // `https://{org}@dev.azure.com/...` is what the web UI copies; any other user name on an
    // HTTPS URL is most likely a PAT pasted into the URL.
    if !url.username().is_empty() {
        let user = decode(url.username(), redacted)?;
        if !user.eq_ignore_ascii_case(&parsed.org) && user.len() >= 20 {
            return Err(UrlError::CredentialsInUrl {
                url: redacted.to_owned(),
            });
        }
    }
    Ok(parsed)
}

fn parse_ssh(
    input: &str,
    redacted: &str,
    user: Option<String>,
    host: &str,
    port: Option<u16>,
    path: &str,
    scp_like: bool,
) -> Result<RepoUrl, UrlError> {
    let not_ado = || UrlError::NotAzureDevOps {
        url: redacted.to_owned(),
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if host.is_empty() {
        return Err(not_ado());
    }
    // A host name or an IP address; the scp-like form reaches here unvalidated. Found by
    // `cargo xtask fuzz` (`repo_url`): `git@ssh.deom?:v3/...` rendered an HTTPS URL that
    // nothing parses.
    if !is_host_name(&host) {
        return Err(not_ado());
    }
    let segments = segments(path, redacted)?;
    let kind = match host.as_str() {
        CLOUD_SSH_HOST => HostKind::Cloud,
        LEGACY_SSH_HOST => HostKind::LegacyVisualStudio,
        // Microsoft's own domains serve no Azure DevOps Server; read as one, its HTTPS form
        // would be taken for a legacy `{org}.visualstudio.com` URL or refused (found by the
        // fuzzer: `https://x@ssh.dev.azure.com/...` rendered an SSH URL nothing parses).
        other if is_microsoft_domain(other) => {
            return Err(not_ado());
        }
        _ => HostKind::Server,
    };
    // Only the scp-like form is written with `~/.ssh/config` aliases; an `ssh://` URL with a
    // single-label host is an intranet server (`ssh://tfs:22/...`), and it is what
    // `ssh_url()` renders for one.
    if scp_like
        && kind == HostKind::Server
        && !host.contains('.')
        && !host.contains(':')
        && host != "localhost"
    {
        return Err(UrlError::SshAlias {
            url: input.to_owned(),
            host,
        });
    }
    match (kind, segments.as_slice()) {
        (_, [v3, org, project, repo]) if v3.eq_ignore_ascii_case("v3") => {
            let repo = strip_git(repo).ok_or_else(not_ado)?;
            if kind == HostKind::Server {
                Ok(RepoUrl {
                    kind,
                    host: host.clone(),
                    port: None,
                    org: org.clone(),
                    project: project.clone(),
                    repo,
                    virtual_dir: None,
                    insecure_http: false,
                    ssh: SshEndpoint {
                        user,
                        host,
                        port,
                        v3: true,
                    },
                })
            } else {
                Ok(cloud(kind, org.clone(), project.clone(), repo))
            }
        }
        (HostKind::LegacyVisualStudio, [project, ssh, repo])
            if ssh.eq_ignore_ascii_case("_ssh") =>
        {
            let org = user
                .filter(|u| u != "git")
                .ok_or_else(|| UrlError::MissingOrg {
                    url: input.to_owned(),
                })?;
            let repo = strip_git(repo).ok_or_else(not_ado)?;
            Ok(cloud(kind, org, project.clone(), repo))
        }
        (HostKind::Server, _) => {
            let git = segments
                .iter()
                .position(|s| s.eq_ignore_ascii_case("_git"))
                .ok_or_else(not_ado)?;
            let repo = repo_after(&segments[git + 1..]).ok_or_else(not_ado)?;
            let (virtual_dir, org, project) =
                server_parts(&segments[..git], &repo).ok_or_else(not_ado)?;
            Ok(RepoUrl {
                kind,
                host: host.clone(),
                port: None,
                org,
                project,
                repo,
                virtual_dir,
                insecure_http: false,
                ssh: SshEndpoint {
                    user,
                    host,
                    port: Some(port.unwrap_or(22)),
                    v3: false,
                },
            })
        }
        _ => Err(not_ado()),
    }
}

fn cloud(kind: HostKind, org: String, project: String, repo: String) -> RepoUrl {
    RepoUrl {
        kind,
        host: CLOUD_HOST.to_owned(),
        port: None,
        org,
        project,
        repo,
        virtual_dir: None,
        insecure_http: false,
        ssh: SshEndpoint {
            user: Some("git".to_owned()),
            host: CLOUD_SSH_HOST.to_owned(),
            port: None,
            v3: true,
        },
    }
}

/// `[vdir..., collection, project]` or `[vdir..., collection]` (project named like the repo).
fn server_parts(before: &[String], repo: &str) -> Option<(Option<String>, String, String)> {
    let join = |parts: &[String]| (!parts.is_empty()).then(|| parts.join("/"));
    match before {
        [] => None,
        [collection] => Some((None, collection.clone(), repo.to_owned())),
        [vdir, collection] if vdir.eq_ignore_ascii_case("tfs") => {
            Some((Some(vdir.clone()), collection.clone(), repo.to_owned()))
        }
        [vdirs @ .., collection, project] => {
            Some((join(vdirs), collection.clone(), project.clone()))
        }
    }
}

/// The repository after `_git`: `[_optimized|_full/]{repo}[.git]`.
fn repo_after(rest: &[String]) -> Option<String> {
    match rest {
        [marker, repo] if marker == "_optimized" || marker == "_full" => strip_git(repo),
        [repo] => strip_git(repo),
        _ => None,
    }
}

fn strip_git(repo: &str) -> Option<String> {
    let repo = repo.strip_suffix(".git").unwrap_or(repo);
    (!repo.is_empty()).then(|| repo.to_owned())
}

/// Decoded, non-empty path segments (a trailing `/` is ignored; an inner empty one is an error).
fn segments(path: &str, redacted: &str) -> Result<Vec<String>, UrlError> {
    let path = path.trim_start_matches('/').trim_end_matches('/');
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let segments: Vec<String> = path
        .split('/')
        .map(|s| decode(s, redacted))
        .collect::<Result<_, _>>()?;
    if segments.iter().any(|s| is_dot_segment(s)) {
        return Err(UrlError::BadSegment {
            url: redacted.to_owned(),
        });
    }
    Ok(segments)
}

/// `.` or `..`: a path step, never a name.
fn is_dot_segment(segment: &str) -> bool {
    segment == "." || segment == ".."
}

fn decode(segment: &str, redacted: &str) -> Result<String, UrlError> {
    let bad = || UrlError::BadSegment {
        url: redacted.to_owned(),
    };
    let decoded = percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| bad())?;
    if decoded.is_empty() {
        return Err(bad());
    }
    Ok(decoded.into_owned())
}

fn enc(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

fn enc_path(path: &str) -> String {
    path.split('/').map(enc).collect::<Vec<_>>().join("/")
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// `host[:port]` of an SSH endpoint; an IPv6 address must be in brackets there.
fn split_host_port(endpoint: &str) -> Option<(&str, Option<u16>)> {
    fluxbootstrap_auth::split_host_port(endpoint)
        .filter(|(host, _)| !host.contains(':') || endpoint.starts_with('['))
}

/// A DNS name or an IP address (brackets removed): what both URL forms may carry, so the
/// HTTPS and SSH renderings of one repository parse back. The URL parsers let through hosts
/// no server has (`tfs*contoso`, `.09`: found by `cargo xtask fuzz`).
fn is_host_name(host: &str) -> bool {
    if host.contains(':') {
        return host.parse::<std::net::Ipv6Addr>().is_ok();
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    };
    // A numeric (or `0x` hexadecimal) last label makes the WHATWG parser read an IPv4 address.
    let last = labels.last().copied().unwrap_or_default();
    let numeric_last = last.chars().all(|c| c.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .is_some_and(|hex| hex.chars().all(|c| c.is_ascii_hexdigit()));
    // And what the HTTPS parser (WHATWG, with its IDNA rules for `xn--` labels) keeps as is.
    labels.iter().all(label_ok)
        && !numeric_last
        && url::Url::parse(&format!("https://{host}/")).is_ok_and(|u| u.host_str() == Some(host))
}

/// `visualstudio.com`, `azure.com` or a name under them: Microsoft's domains, where only
/// Azure DevOps Services itself lives (callers match its own hosts first).
fn is_microsoft_domain(host: &str) -> bool {
    ["visualstudio.com", "azure.com"].iter().any(|domain| {
        host == *domain || host.strip_suffix(domain).is_some_and(|h| h.ends_with('.'))
    })
}

/// The input with the user info of an `http(s)://` URL replaced by `***`, so a PAT typed into
/// a URL never reaches an error message.
fn redact(input: &str) -> String {
    let Some((scheme, rest)) = input.split_once("://") else {
        return input.to_owned();
    };
    if !scheme.to_ascii_lowercase().starts_with("http") {
        return input.to_owned();
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => input.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_not_dropped() {
        for input in [
            "https://dev.azure.com/o/p/_git/r\r\nX-Evil: 1",
            "https://dev.azure.com/o/p/_git/r\nx",
            "https://dev.azure.com/o/p\t/_git/r",
            "ssh://git@ssh.dev.azure.com/v3/o/p/r\u{0}",
            "git@ssh.dev.azure.com:v3/o/p/r\x1b[31m",
        ] {
            let err = RepoUrl::parse(input).unwrap_err();
            assert!(
                matches!(err, UrlError::ControlCharacter { .. }),
                "{input:?}: {err}"
            );
            assert!(!err.to_string().contains('\n') && !err.to_string().contains('\r'));
        }
        let err = RepoUrl::parse("https://user:s3cret@dev.azure.com/o/p/_git/r\n").unwrap_err();
        // Trailing whitespace is trimmed; the credentials are refused on their own.
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let err = RepoUrl::parse("https://user:s3cret@dev.azure.com/o/p\n/_git/r").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn plain_http_is_known_from_the_parsed_scheme() {
        for input in [
            "http://tfs.contoso.com/DefaultCollection/p/_git/r",
            "HTTP://tfs.contoso.com/DefaultCollection/p/_git/r",
            "  Http://tfs.contoso.com/DefaultCollection/p/_git/r",
        ] {
            assert!(RepoUrl::parse(input).unwrap().insecure_http, "{input}");
        }
        assert!(
            !RepoUrl::parse("HTTPS://dev.azure.com/o/p/_git/r")
                .unwrap()
                .insecure_http
        );
    }

    fn show(input: &str) -> String {
        match RepoUrl::parse(input) {
            Ok(u) => format!(
                "{input}\n  {:?} org={:?} project={:?} repo={:?}\n  https: {}\n  ssh:   {}\n  rest:  {}",
                u.kind,
                u.org,
                u.project,
                u.repo,
                u.https_url(),
                u.ssh_url(),
                u.rest_base()
            ),
            Err(e) => format!("{input}\n  error: {e}"),
        }
    }

    const FORMS: &[&str] = &[
        "https://dev.azure.com/fabrikam/Fiber/_git/fleet",
        "https://fabrikam@dev.azure.com/fabrikam/Fiber/_git/fleet",
        "https://dev.azure.com/fabrikam/_git/Fiber",
        "https://dev.azure.com/fabrikam/Fiber/_git/fleet.git/",
        "https://dev.azure.com/fabrikam/Fiber/_git/_optimized/fleet",
        "https://dev.azure.com/fabrikam/Fiber/_git/_full/fleet",
        "https://fabrikam.visualstudio.com/Fiber/_git/fleet",
        "https://fabrikam.visualstudio.com/DefaultCollection/Fiber/_git/fleet",
        "https://fabrikam.visualstudio.com/DefaultCollection/_git/Fiber",
        "https://fabrikam.visualstudio.com/Fiber/_git/_optimized/fleet",
        "ssh://git@ssh.dev.azure.com/v3/fabrikam/Fiber/fleet",
        "git@ssh.dev.azure.com:v3/fabrikam/Fiber/fleet",
        "fabrikam@vs-ssh.visualstudio.com:v3/fabrikam/Fiber/fleet",
        "ssh://fabrikam@vs-ssh.visualstudio.com/v3/fabrikam/Fiber/fleet",
        "ssh://fabrikam@vs-ssh.visualstudio.com:22/Fiber/_ssh/fleet",
        "https://dev.azure.com/fabrikam/My%20Project/_git/Caf%C3%A9%20fleet",
        "https://dev.azure.com/fabrikam/My Project/_git/Café fleet",
        "git@ssh.dev.azure.com:v3/fabrikam/My%20Project/Caf%C3%A9%20fleet",
        "https://tfs.contoso.com/tfs/DefaultCollection/Fiber/_git/fleet",
        "https://tfs.contoso.com:8443/DefaultCollection/Fiber/_git/fleet",
        "http://tfs.contoso.com:8080/tfs/DefaultCollection/_git/Fiber",
        "ssh://tfs.contoso.com:22/DefaultCollection/Fiber/_git/fleet",
        "https://127.0.0.1:40123/org/proj/_git/repo",
        "ssh://git@127.0.0.1:40222/v3/org/proj/repo",
    ];

    #[test]
    fn every_form() {
        let out: Vec<String> = FORMS.iter().map(|f| show(f)).collect();
        insta::assert_snapshot!(out.join("\n"));
    }

    #[test]
    fn round_trips() {
        for form in FORMS {
            let url = RepoUrl::parse(form).unwrap();
            for rendered in [url.https_url(), url.ssh_url()] {
                let again = RepoUrl::parse(&rendered).unwrap_or_else(|e| panic!("{rendered}: {e}"));
                assert_eq!(
                    (&again.org, &again.project, &again.repo),
                    (&url.org, &url.project, &url.repo),
                    "{form} -> {rendered}"
                );
            }
            let again = RepoUrl::parse(&url.https_url()).unwrap();
            assert_eq!(again.https_url(), url.https_url(), "{form}");
            assert_eq!(again.rest_base(), url.rest_base(), "{form}");
        }
    }

    #[test]
    fn not_azure_devops() {
        for input in [
            "https://github.com/fluxcd/flux2",
            "https://dev.azure.com/fabrikam/Fiber",
            "git@github.com:fluxcd/flux2.git",
            "ftp://dev.azure.com/a/b/_git/c",
            "just-a-name",
        ] {
            let err = RepoUrl::parse(input).unwrap_err();
            assert!(
                matches!(err, UrlError::NotAzureDevOps { .. }),
                "{input}: {err:?}"
            );
            assert!(
                err.hint()
                    .unwrap()
                    .contains("https://dev.azure.com/{org}/{project}/_git/{repo}")
            );
        }
        insta::assert_snapshot!(RepoUrl::parse("https://github.com/fluxcd/flux2").unwrap_err().hint().unwrap(), @r"
        use one of these forms:
        https://dev.azure.com/{org}/{project}/_git/{repo}
        https://{org}@dev.azure.com/{org}/{project}/_git/{repo}
        https://dev.azure.com/{org}/_git/{repo}   (project named like the repository)
        https://{org}.visualstudio.com/[DefaultCollection/]{project}/_git/{repo}
        ssh://git@ssh.dev.azure.com/v3/{org}/{project}/{repo}
        git@ssh.dev.azure.com:v3/{org}/{project}/{repo}
        {org}@vs-ssh.visualstudio.com:v3/{org}/{project}/{repo}
        https://{server}[:port]/[tfs/]{collection}/{project}/_git/{repo}   (Azure DevOps Server)
        ssh://{server}[:port]/[tfs/]{collection}/{project}/_git/{repo}   (Azure DevOps Server)
        ");
    }

    #[test]
    fn credentials_are_refused_and_never_echoed() {
        let pat = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst";
        for input in [
            format!("https://user:{pat}@dev.azure.com/fabrikam/Fiber/_git/fleet"),
            format!("https://{pat}@fabrikam.visualstudio.com/Fiber/_git/fleet"),
            format!("https://git:{pat}@github.com/fluxcd/flux2"),
        ] {
            let err = RepoUrl::parse(&input).unwrap_err();
            let shown = format!("{err} {err:?} {}", err.hint().unwrap_or_default());
            assert!(!shown.contains(pat), "{shown}");
            if input.contains("azure") || input.contains("visualstudio") {
                assert!(matches!(err, UrlError::CredentialsInUrl { .. }), "{err:?}");
                assert!(err.hint().unwrap().contains("GIT_PASSWORD"));
            }
        }
        let err = RepoUrl::parse(&format!(
            "https://user:{pat}@dev.azure.com/fabrikam/Fiber/_git/fleet"
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`https://***@dev.azure.com/fabrikam/Fiber/_git/fleet` contains credentials"
        );
    }

    /// Found by `cargo xtask fuzz` (`repo_url`): an Azure DevOps Server with a single-label
    /// host parsed, but its own `ssh_url()` was then refused as an SSH config alias.
    #[test]
    fn a_single_label_server_host_round_trips() {
        let url = RepoUrl::parse("https://tfs/DefaultCollection/Fiber/_git/fleet").unwrap();
        let ssh = RepoUrl::parse(&url.ssh_url()).unwrap();
        assert_eq!(
            (ssh.org, ssh.project, ssh.repo),
            (url.org, url.project, url.repo)
        );
    }

    #[test]
    fn cloud_names_are_encoded_once_and_checked() {
        let url = RepoUrl::from_cloud_names("fabrikam", "Fiber Optics", "fleet/ä?").unwrap();
        assert_eq!(
            (url.org.as_str(), url.project.as_str(), url.repo.as_str()),
            ("fabrikam", "Fiber Optics", "fleet/ä?")
        );
        assert_eq!(
            url.https_url(),
            "https://dev.azure.com/fabrikam/Fiber%20Optics/_git/fleet%2F%C3%A4%3F"
        );
        assert!(RepoUrl::from_cloud_names("fabrikam", "_git", "r").is_err());
        assert!(matches!(
            RepoUrl::from_cloud_names("fabrikam", "..", "r"),
            Err(UrlError::BadSegment { .. })
        ));
    }

    #[test]
    fn names_starting_with_an_underscore_are_refused() {
        assert!(matches!(
            RepoUrl::parse("git@tfs.contoso.com:v3/fabrikam/_git/fleet"),
            Err(UrlError::BadSegment { .. })
        ));
        // `.` and `..` are path steps the URL parser would resolve (the last found by the
        // fuzzer: it bootstrapped `tfs/fl` instead of refusing).
        for bad in [
            "git@gite.com:v3/fabrikam/p/%2E%2E",
            "https://tm:8443/tfs/'DefaultCollection/.%2E/_git/fl",
            "https://dev.azure.com/o/./p/_git/r",
            "ssh://git@ssh.dev.azure.com/v3/o/../p/r",
            "tfs.contoso.com:./c/p/_git/r",
        ] {
            assert!(
                matches!(RepoUrl::parse(bad), Err(UrlError::BadSegment { .. })),
                "{bad}: {:?}",
                RepoUrl::parse(bad)
            );
        }
    }

    #[test]
    fn scp_like_hosts_are_host_names() {
        for bad in [
            "git@ssh.deom?:v3/eit@ssh.deoe.com:v3/f/My",
            "fabrikamvs-ssh.visualstudio.com:v3/fabrikam/fabrikam/Ft",
            "http://tfs*contoso.bom/DefaultCollection/p/_git/r",
            "ssh://.09/DefaultCollec/t)on/brieF/_git/fleac",
            "https://a.fabrikam.visualstudio.com/DefaultCollection/Fiber/_git/f",
            "ssh://gi.visualv.xn--ftp-fed41yure.com/v3/fabrikam/Fiber/fleet",
            // Microsoft's hosts that serve no HTTPS repositories (the first found by the
            // fuzzer in CI); their renderings would not parse back.
            "https://tfs.it@ssh.dev.azure.com/Fiber/_git/fleet",
            "https://vssps.dev.azure.com/Fiber/_git/fleet",
            "https://azure.com/Fiber/p/_git/fleet",
            "ssh://git@dev.azure.com/v3/fabrikam/Fiber/fleet",
            "ssh://tfs.azure.com/Fiber/p/_git/fleet",
            // A collection named `tfs` reads back as the virtual directory (fuzzer).
            "https://tm:8443/tfs/_git/fl",
            "ssh://tfs.contoso.com/v3/tfs/p/r",
            "https://tfs.contoso.com/v3/fct/_git/f",
        ] {
            assert!(
                matches!(RepoUrl::parse(bad), Err(UrlError::NotAzureDevOps { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn ssh_alias_and_missing_org() {
        assert!(matches!(
            RepoUrl::parse("git@devops_fabrikam:v3/fabrikam/Fiber/fleet"),
            Err(UrlError::SshAlias { .. })
        ));
        assert!(matches!(
            RepoUrl::parse("ssh://git@vs-ssh.visualstudio.com:22/Fiber/_ssh/fleet"),
            Err(UrlError::MissingOrg { .. })
        ));
    }

    #[test]
    fn ssh_endpoint_override() {
        let url = RepoUrl::parse("https://127.0.0.1:40123/org/My%20proj/_git/repo")
            .unwrap()
            .with_ssh_host("127.0.0.1:40222")
            .unwrap();
        assert_eq!(
            url.ssh_url(),
            "ssh://git@127.0.0.1:40222/v3/org/My%20proj/repo"
        );
        assert_eq!(url.ssh_host(), "127.0.0.1:40222");
        assert_eq!((url.ssh_hostname(), url.ssh_port()), ("127.0.0.1", 40222));
        assert_eq!(url.rest_base(), "https://127.0.0.1:40123/org");
        let cloud = RepoUrl::parse("https://dev.azure.com/o/p/_git/r").unwrap();
        assert_eq!(
            (cloud.ssh_host(), cloud.ssh_port()),
            ("ssh.dev.azure.com".to_owned(), 22)
        );
        assert_eq!(
            cloud.ssh_keys_settings_url(),
            "https://dev.azure.com/o/_usersSettings/keys"
        );
        assert!(cloud.with_ssh_host("[::1").is_err());
    }
}
