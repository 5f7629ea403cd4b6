//! The secret types, `secrecy`'s: they zeroize their memory on drop, redact `Debug`, have
//! no `Display`, and reading the value takes an explicit, greppable `expose_secret()` call,
//! so the type system, not reviewer attention, keeps secrets out of output.

pub use secrecy::{ExposeSecret, SecretString};

/// Secret binary data (a Kubernetes Secret value).
pub type SecretBytes = secrecy::SecretSlice<u8>;

/// The bytes of a secret text, as a secret of their own (a PAT that goes into a Kubernetes
/// Secret); `text` is left as it is and zeroizes on its own drop.
pub fn secret_bytes(text: &SecretString) -> SecretBytes {
    SecretBytes::from(text.expose_secret().as_bytes().to_vec())
}

/// Whether two Secret data maps hold the same keys with the same values.
pub fn same_secret_data(
    a: &std::collections::BTreeMap<String, SecretBytes>,
    b: &std::collections::BTreeMap<String, SecretBytes>,
) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && va.expose_secret() == vb.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = SecretString::from("hunter2".to_owned());
        assert!(!format!("{s:?}").contains("hunter2"));
        let b = secret_bytes(&s);
        assert!(!format!("{b:?}").contains("hunter2"));
        assert_eq!(b.expose_secret(), b"hunter2");
    }
}
