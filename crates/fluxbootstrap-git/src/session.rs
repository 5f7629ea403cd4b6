//! One remote's libgit2 plumbing: credential and certificate callbacks, progress, custom
//! headers, process-wide libgit2 settings, and mapping libgit2 errors to [`GitError`].
//!
//! Callbacks cannot return rich errors through libgit2, so they record what went wrong in
//! [`Session::failure`] and [`Session::classify`] turns that into the precise variant.

use fluxbootstrap_auth::ExposeSecret as _;
use std::cell::{Cell, RefCell};
use std::sync::Once;
use std::time::{Duration, Instant};

use git2::{
    CertificateCheckStatus, Cred, CredentialType, FetchOptions, ProxyOptions, PushOptions,
    RemoteCallbacks,
};

use crate::known_hosts::{self, Verdict};
use crate::tls::CaBundle;
use crate::url::{Endpoint, Scheme};
use crate::{GitError, Phase, RemoteAuth, RemoteOptions, Reporter};

/// What a callback saw go wrong.
#[derive(Debug, Clone)]
enum Failure {
    /// The server asked for credentials again after getting them, or there were none.
    CredentialsRejected,
    HostKey {
        verdict: Verdict,
        fingerprint: String,
    },
    /// The certificate did not verify against `ca_file` (libgit2 then tried the system roots).
    CaRejected(String),
}

/// Callbacks and error mapping for operations against one remote.
pub(crate) struct Session<'r> {
    pub(crate) remote: &'r RemoteOptions,
    pub(crate) endpoint: Endpoint,
    ca: Option<CaBundle>,
    credential_calls: Cell<u32>,
    failure: RefCell<Option<Failure>>,
    /// When the current network operation began ([`Session::begin`]).
    began: Cell<Instant>,
}

impl<'r> Session<'r> {
    pub(crate) fn new(remote: &'r RemoteOptions) -> Result<Session<'r>, GitError> {
        configure_libgit2();
        let endpoint = Endpoint::parse(&remote.url)?;
        let ca = match &remote.ca_file {
            Some(path) => {
                let pem = fs_err::read(path).map_err(|source| GitError::ReadCaFile {
                    path: path.clone(),
                    source,
                })?;
                let bundle = CaBundle::from_pem(&pem)
                    .ok_or_else(|| GitError::InvalidCaFile { path: path.clone() })?;
                Some(if endpoint.scheme == Scheme::Https {
                    bundle.with_intermediates(crate::tls::server_intermediates(
                        &endpoint.host,
                        endpoint.port,
                        remote.timeout.min(Duration::from_secs(30)),
                    ))
                } else {
                    bundle
                })
            }
            None => None,
        };
        Ok(Session {
            remote,
            endpoint,
            ca,
            credential_calls: Cell::new(0),
            failure: RefCell::new(None),
            began: Cell::new(Instant::now()),
        })
    }

    /// Resets per-operation state and applies the timeout; call before each network operation.
    pub(crate) fn begin(&self) {
        self.credential_calls.set(0);
        self.failure.replace(None);
        self.began.set(Instant::now());
        set_timeouts(self.remote.timeout);
    }

    /// Remote callbacks wired to this session and `reporter`.
    pub(crate) fn callbacks<'s>(&'s self, reporter: &'s dyn Reporter) -> RemoteCallbacks<'s> {
        let mut callbacks = RemoteCallbacks::new();
        callbacks.credentials(|_url, _user_from_url, allowed| self.credentials(allowed));
        callbacks.certificate_check(|cert, host| self.certificate_check(cert, host));
        callbacks.transfer_progress(move |progress| {
            reporter.transfer(
                Phase::Receiving,
                progress.received_objects(),
                progress.total_objects(),
            );
            true
        });
        callbacks.push_transfer_progress(move |done, total, _bytes| {
            reporter.transfer(Phase::Sending, done, total);
        });
        callbacks
    }

    pub(crate) fn fetch_options<'s>(&'s self, reporter: &'s dyn Reporter) -> FetchOptions<'s> {
        let mut options = FetchOptions::new();
        options.remote_callbacks(self.callbacks(reporter));
        options.proxy_options(proxy());
        options.download_tags(git2::AutotagOption::None);
        options.update_fetchhead(false);
        if let Some(header) = self.auth_header() {
            options.custom_headers(&[&header]);
        }
        options
    }

    /// Push options with the session's callbacks plus `callbacks_hook` for extra callbacks.
    pub(crate) fn push_options<'s>(&'s self, callbacks: RemoteCallbacks<'s>) -> PushOptions<'s> {
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        options.proxy_options(proxy());
        if let Some(header) = self.auth_header() {
            options.custom_headers(&[&header]);
        }
        options
    }

    fn auth_header(&self) -> Option<String> {
        match &self.remote.auth {
            RemoteAuth::Bearer { token } if self.endpoint.scheme != Scheme::Ssh => {
                Some(format!("Authorization: Bearer {}", token.expose_secret()))
            }
            _ => None,
        }
    }

    fn credentials(&self, allowed: CredentialType) -> Result<Cred, git2::Error> {
        let rejected = || {
            self.failure.replace(Some(Failure::CredentialsRejected));
            Err(git2::Error::new(
                git2::ErrorCode::Auth,
                git2::ErrorClass::Callback,
                "credentials rejected",
            ))
        };
        match &self.remote.auth {
            RemoteAuth::Basic { username, password }
                if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) =>
            {
                // libgit2 asks again only when the server refused what we gave it.
                if self.bump_calls() > 1 {
                    return rejected();
                }
                let username = if username.is_empty() { "git" } else { username };
                Cred::userpass_plaintext(username, password.expose_secret())
            }
            RemoteAuth::Ssh { username, .. } if allowed.contains(CredentialType::USERNAME) => {
                Cred::username(username)
            }
            RemoteAuth::Ssh {
                username,
                private_key,
                passphrase,
                ..
            } if allowed.intersects(CredentialType::SSH_KEY | CredentialType::SSH_MEMORY) => {
                if self.bump_calls() > 1 {
                    return rejected();
                }
                Cred::ssh_key_from_memory(
                    username,
                    None,
                    private_key.expose_secret(),
                    passphrase
                        .as_ref()
                        .map(fluxbootstrap_auth::SecretString::expose_secret),
                )
            }
            // Bearer tokens travel in a header, so a credential request means the server
            // refused the token; with no credentials there is nothing to offer.
            _ => rejected(),
        }
    }

    fn bump_calls(&self) -> u32 {
        let calls = self.credential_calls.get() + 1;
        self.credential_calls.set(calls);
        calls
    }

    fn certificate_check(
        &self,
        cert: &git2::cert::Cert<'_>,
        host: &str,
    ) -> Result<CertificateCheckStatus, git2::Error> {
        if let Some(hostkey) = cert.as_hostkey() {
            let known = match &self.remote.auth {
                RemoteAuth::Ssh { known_hosts, .. } => known_hosts.as_str(),
                _ => "",
            };
            let presented = hostkey.hostkey().unwrap_or_default();
            let verdict = known_hosts::check(known, &self.endpoint.known_hosts_name(), presented);
            if verdict == Verdict::Trusted {
                return Ok(CertificateCheckStatus::CertificateOk);
            }
            self.failure.replace(Some(Failure::HostKey {
                verdict,
                fingerprint: known_hosts::fingerprint(presented),
            }));
            return Err(git2::Error::new(
                git2::ErrorCode::Certificate,
                git2::ErrorClass::Ssh,
                "host key verification failed",
            ));
        }
        if let (Some(x509), Some(ca)) = (cert.as_x509(), &self.ca) {
            match ca.verify(x509.data(), host) {
                Ok(()) => return Ok(CertificateCheckStatus::CertificateOk),
                Err(detail) => {
                    self.failure.replace(Some(Failure::CaRejected(detail)));
                }
            }
        }
        // Let libgit2's own verification against the system roots decide.
        Ok(CertificateCheckStatus::CertificatePassthrough)
    }

    /// Turns a libgit2 error from `operation` into the most precise [`GitError`].
    pub(crate) fn classify(&self, operation: &'static str, source: git2::Error) -> GitError {
        let url = self.endpoint.sanitized.clone();
        let failure = self.failure.borrow().clone();
        match failure {
            Some(Failure::HostKey {
                verdict,
                fingerprint,
            }) => {
                let host = self.endpoint.known_hosts_name();
                return if verdict == Verdict::Unknown {
                    GitError::UnknownHost { host, fingerprint }
                } else {
                    GitError::HostKeyMismatch { host, fingerprint }
                };
            }
            Some(Failure::CredentialsRejected) => return self.auth_error(url),
            _ => {}
        }
        let message = source.message().to_owned();
        if source.code() == git2::ErrorCode::Certificate
            || (source.class() == git2::ErrorClass::Ssl && message.contains("certificate"))
        {
            let detail = match failure {
                Some(Failure::CaRejected(detail)) => Some(detail),
                _ => None,
            };
            return GitError::CertificateNotTrusted {
                url,
                ca_file: self.remote.ca_file.clone(),
                detail,
                source,
            };
        }
        // libgit2 reports its own timeouts as `GIT_TIMEOUT`, but inside TLS the socket's
        // receive timeout surfaces as OpenSSL seeing `EAGAIN`. So does a server that hangs
        // up without a TLS close (libgit2 then reports a stale `errno`), which is no timeout
        // when it comes sooner.
        let eagain = message.contains("Resource temporarily unavailable");
        if source.code() == git2::ErrorCode::Timeout
            || message.contains("timed out")
            || message.contains("Timed out")
            || (eagain && self.began.get().elapsed() >= self.remote.timeout)
        {
            return GitError::Timeout {
                url,
                timeout: self.remote.timeout,
                source,
            };
        }
        if let Some(status) = http_status(&message)
            && (status == 429 || (500..600).contains(&status))
        {
            return GitError::ServerBusy {
                operation,
                url,
                status,
                attempts: 1,
            };
        }
        if message.contains("status code: 403") {
            return GitError::PermissionDenied { url };
        }
        if message.contains("status code: 404") {
            return GitError::RepositoryNotFound { url };
        }
        if source.class() == git2::ErrorClass::Ssh {
            let lower = message.to_ascii_lowercase();
            if lower.contains("private key") || lower.contains("passphrase") {
                return GitError::SshKeyUnusable { url, source };
            }
        }
        if source.code() == git2::ErrorCode::Auth {
            return self.auth_error(url);
        }
        GitError::Transport {
            operation,
            url,
            attempts: 1,
            source,
        }
    }

    fn auth_error(&self, url: String) -> GitError {
        match &self.remote.auth {
            RemoteAuth::Basic { .. } => GitError::PatRejected {
                url,
                org: self.endpoint.azure_org(),
            },
            RemoteAuth::Bearer { .. } => GitError::TokenRejected { url },
            RemoteAuth::Ssh { username, .. } => GitError::SshAuthenticationFailed {
                url,
                username: username.clone(),
                org: self.endpoint.azure_org(),
            },
            RemoteAuth::None => GitError::AuthenticationRequired { url },
        }
    }
}

/// Runs `operation` (one libgit2 network call, classified), again after a backoff while it
/// fails transiently ([`GitError::is_transient`]): up to [`RETRIES`] more times, 1 s, 2 s,
/// 4 s apart (with jitter). libgit2 does not expose a 429's `Retry-After`, so the backoff
/// alone spaces the attempts. The error that outlasts the retries says how many were made.
pub(crate) fn retrying<T>(
    reporter: &dyn Reporter,
    mut operation: impl FnMut() -> Result<T, GitError>,
) -> Result<T, GitError> {
    use backon::BlockingRetryable as _;
    let attempts = Cell::new(1_u32);
    let policy = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(4))
        .with_max_times(RETRIES as usize)
        .with_jitter();
    (&mut operation)
        .retry(policy)
        .when(GitError::is_transient)
        .notify(|err, delay| {
            attempts.set(attempts.get() + 1);
            // The error with its causes (libgit2's words for a broken connection).
            let mut text = err.to_string();
            let mut cause = std::error::Error::source(err);
            while let Some(inner) = cause {
                text = format!("{text}: {inner}");
                cause = inner.source();
            }
            reporter.retrying(&text, attempts.get(), RETRIES + 1, delay);
        })
        .call()
        .map_err(|last| last.after_attempts(attempts.get()))
}

/// How many times a transient failure is retried ([`retrying`]).
const RETRIES: u32 = 3;

/// The status in libgit2's `unexpected http status code: 503`.
fn http_status(message: &str) -> Option<u16> {
    let (_, rest) = message.split_once("status code: ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn proxy() -> ProxyOptions<'static> {
    let mut proxy = ProxyOptions::new();
    proxy.auto();
    proxy
}

/// Makes libgit2 ignore the user's and the system's git configuration (insteadOf rewrites,
/// `http.sslVerify`, credential helpers) and `~/.ssh/known_hosts` (host keys are checked
/// against the caller's lines only, and libssh2 refuses a connection outright when that
/// file has a line it cannot parse), so a run depends only on its inputs. This crate is
/// the only libgit2 user in the process, so the process-wide settings are ours to make.
fn configure_libgit2() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for level in [
            git2::ConfigLevel::System,
            git2::ConfigLevel::XDG,
            git2::ConfigLevel::Global,
            git2::ConfigLevel::ProgramData,
        ] {
            #[expect(
                unsafe_code,
                reason = "libgit2 options are process-global; set once, before any repository is opened"
            )]
            // SAFETY: called once under `Once`, before this crate opens any repository.
            let _ = unsafe { git2::opts::set_search_path(level, "") };
        }
        // A home directory that does not exist: libgit2 then finds no `.ssh/known_hosts`
        // and treats that as "no extra trust" rather than an error.
        let home = c"/nonexistent/fluxbootstrap-git-home";
        #[expect(
            unsafe_code,
            reason = "git2 has no wrapper for GIT_OPT_SET_HOMEDIR; libgit2 is initialised by the calls above"
        )]
        // SAFETY: GIT_OPT_SET_HOMEDIR takes one NUL-terminated string, which libgit2 copies.
        unsafe {
            libgit2_sys::git_libgit2_opts(
                libgit2_sys::GIT_OPT_SET_HOMEDIR.cast_signed(),
                home.as_ptr(),
            );
        }
    });
}

/// libgit2's socket timeouts are process-wide; every operation sets its own before starting.
fn set_timeouts(timeout: Duration) {
    let millis = i32::try_from(timeout.as_millis())
        .unwrap_or(i32::MAX)
        .max(1);
    #[expect(
        unsafe_code,
        reason = "libgit2 exposes its server timeouts only as global options"
    )]
    // SAFETY: plain integer options read by libgit2 when it opens the next socket.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(millis);
        let _ = git2::opts::set_server_timeout_in_milliseconds(millis);
    }
}
