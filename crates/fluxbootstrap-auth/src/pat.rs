//! Where the Azure DevOps PAT comes from, in the order `flux bootstrap git` uses.
//!
//! flux takes `--password`, then `GIT_PASSWORD`, then reads stdin: a pipe is read as is,
//! a terminal gets a prompt with echo off. We keep that order and make the I/O injectable
//! so every branch is testable without a terminal.

use crate::ExposeSecret as _;
use std::io::{self, Read};

use crate::SecretString;
use crate::error::AuthError;

/// Where [`resolve_pat`] found the PAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatSource {
    /// The `--password` flag: visible to other users in `ps`, so the caller should warn.
    Flag,
    /// The `GIT_PASSWORD` environment variable.
    Env,
    /// A pipe on stdin (`echo $PAT | kubectl fluxbootstrap azdo ...`).
    Stdin,
    /// The masked interactive prompt.
    Prompt,
}

impl PatSource {
    /// How error messages name this source.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flag => "`--password`",
            Self::Env => "`GIT_PASSWORD`",
            Self::Stdin => "stdin",
            Self::Prompt => "the prompt",
        }
    }

    /// A warning to show the user about this source, if any.
    pub fn warning(self) -> Option<&'static str> {
        match self {
            Self::Flag => Some(
                "the PAT was passed on the command line, where other users can see it in `ps`; prefer `GIT_PASSWORD` or stdin",
            ),
            Self::Env | Self::Stdin | Self::Prompt => None,
        }
    }
}

/// The longest PAT we read from a pipe; real ones are 52 or 84 characters.
const MAX_STDIN_PAT: usize = 4096;

/// Finds the PAT: `flag`, then `env` (`GIT_PASSWORD`), then one line of `stdin` when it is
/// not a terminal, else `prompt` when it is. Empty values count as absent, trailing
/// `\r`/`\n` are stripped from whatever was found, and a PAT with whitespace or a control
/// character left inside it is refused.
pub fn resolve_pat(
    flag: Option<SecretString>,
    env: Option<SecretString>,
    stdin: &mut dyn Read,
    stdin_is_terminal: bool,
    prompt: &dyn Fn(&str) -> io::Result<SecretString>,
) -> Result<(SecretString, PatSource), AuthError> {
    let (pat, source) = find_pat(flag, env, stdin, stdin_is_terminal, prompt)?;
    let pat = trim_newline(pat.expose_secret());
    if pat
        .expose_secret()
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(AuthError::MalformedPat {
            source_name: source.name(),
        });
    }
    Ok((pat, source))
}

fn find_pat(
    flag: Option<SecretString>,
    env: Option<SecretString>,
    stdin: &mut dyn Read,
    stdin_is_terminal: bool,
    prompt: &dyn Fn(&str) -> io::Result<SecretString>,
) -> Result<(SecretString, PatSource), AuthError> {
    if let Some(pat) = flag.and_then(non_empty) {
        return Ok((pat, PatSource::Flag));
    }
    if let Some(pat) = env.and_then(non_empty) {
        return Ok((pat, PatSource::Env));
    }
    if stdin_is_terminal {
        let pat = prompt("Please enter your Git repository password (PAT)")
            .map_err(|source| AuthError::Prompt { source })?;
        return non_empty(trim_newline(pat.expose_secret()))
            .map(|pat| (pat, PatSource::Prompt))
            .ok_or(AuthError::EmptyPat {
                source_name: "prompt",
            });
    }
    let line = read_line(stdin).map_err(|source| AuthError::Stdin { source })?;
    match non_empty(trim_newline(line.expose_secret())) {
        Some(pat) => Ok((pat, PatSource::Stdin)),
        None => Err(AuthError::NoPat),
    }
}

fn non_empty(value: SecretString) -> Option<SecretString> {
    (!value.expose_secret().is_empty()).then_some(value)
}

fn trim_newline(value: &str) -> SecretString {
    SecretString::from(value.trim_end_matches(['\r', '\n']).to_owned())
}

/// Reads up to the first `\n` without buffering past it, so whatever follows the PAT on
/// stdin stays there for the rest of the program.
fn read_line(stdin: &mut dyn Read) -> io::Result<SecretString> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stdin.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => {
                if byte[0] == b'\n' {
                    break;
                }
                if bytes.len() >= MAX_STDIN_PAT {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the line on stdin is too long for a PAT",
                    ));
                }
                bytes.push(byte[0]);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    String::from_utf8(bytes)
        .map(SecretString::from)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the PAT on stdin is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn no_prompt(_: &str) -> io::Result<SecretString> {
        panic!("the prompt must not be shown")
    }

    #[test]
    fn flag_wins_over_everything() {
        let (pat, source) = resolve_pat(
            Some(secret("flag")),
            Some(secret("env")),
            &mut &b"stdin\n"[..],
            false,
            &no_prompt,
        )
        .unwrap();
        assert_eq!((pat.expose_secret(), source), ("flag", PatSource::Flag));
        assert!(source.warning().is_some());
    }

    #[test]
    fn env_then_stdin() {
        let (pat, source) = resolve_pat(
            None,
            Some(secret("env")),
            &mut &b"stdin\n"[..],
            false,
            &no_prompt,
        )
        .unwrap();
        assert_eq!((pat.expose_secret(), source), ("env", PatSource::Env));
        let (pat, source) = resolve_pat(
            Some(secret("")),
            Some(secret("")),
            &mut &b"piped\r\nrest"[..],
            false,
            &no_prompt,
        )
        .unwrap();
        assert_eq!((pat.expose_secret(), source), ("piped", PatSource::Stdin));
    }

    #[test]
    fn stdin_reads_only_the_first_line() {
        let mut input: &[u8] = b"first\nsecond\n";
        let (pat, _) = resolve_pat(None, None, &mut input, false, &no_prompt).unwrap();
        assert_eq!(pat.expose_secret(), "first");
        assert_eq!(input, b"second\n");
    }

    #[test]
    fn trailing_line_breaks_are_trimmed_and_inner_whitespace_is_refused() {
        for (env, want) in [("pat\r\n", "pat"), ("pat\n\n", "pat")] {
            let (pat, _) =
                resolve_pat(None, Some(secret(env)), &mut &b""[..], false, &no_prompt).unwrap();
            assert_eq!(pat.expose_secret(), want);
        }
        let (pat, _) = resolve_pat(None, None, &mut &b"pat\r\n"[..], false, &no_prompt).unwrap();
        assert_eq!(pat.expose_secret(), "pat");
        for bad in ["abc def", "abc\tdef", "abc\rdef", " abc", "abc\u{7}"] {
            let err =
                resolve_pat(None, Some(secret(bad)), &mut &b""[..], false, &no_prompt).unwrap_err();
            assert_eq!(
                err.to_string(),
                "the PAT from `GIT_PASSWORD` contains whitespace or a control character",
                "{bad:?}"
            );
            assert!(!err.to_string().contains(bad));
        }
    }

    #[test]
    fn terminal_prompts() {
        let prompt = |text: &str| {
            assert!(text.contains("PAT"));
            Ok(SecretString::from("typed\n".to_owned()))
        };
        let (pat, source) = resolve_pat(None, None, &mut &b""[..], true, &prompt).unwrap();
        assert_eq!((pat.expose_secret(), source), ("typed", PatSource::Prompt));
    }

    #[test]
    fn nothing_available_is_a_clear_error() {
        let err = resolve_pat(None, None, &mut &b"\n"[..], false, &no_prompt).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no Azure DevOps PAT was given: `--password` and `GIT_PASSWORD` are unset and stdin was empty"
        );
        insta::assert_snapshot!(err.hint().unwrap(), @"pass the PAT in `GIT_PASSWORD` or pipe it to stdin (`echo \"$PAT\" | kubectl fluxbootstrap azdo ...`), or run in a terminal to be prompted for it");
    }
}
