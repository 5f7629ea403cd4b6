//! Redacting wrappers for secret material.
//!
//! They exist so that the type system, not reviewer attention, keeps secrets out of
//! output: `Debug` is redacted, there is no `Display`, and reading the value takes an
//! explicit, greppable `expose_secret()` call.

use std::fmt;

/// A secret text value (PAT, bearer token, passphrase, PEM private key).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps `value`.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself. Call this only where the value leaves the process on purpose
    /// (an HTTP header, a libgit2 credential, a Kubernetes Secret).
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

/// Secret binary data (a Kubernetes Secret value).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps `value`.
    pub fn new(value: Vec<u8>) -> Self {
        Self(value)
    }

    /// The secret bytes; see [`SecretString::expose_secret`] for when to call this.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl From<SecretString> for SecretBytes {
    fn from(value: SecretString) -> Self {
        Self(value.0.into_bytes())
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([redacted; {} bytes])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = SecretString::new("hunter2".to_owned());
        assert!(!format!("{s:?}").contains("hunter2"));
        let b = SecretBytes::from(s);
        assert_eq!(format!("{b:?}"), "SecretBytes([redacted; 7 bytes])");
    }
}
