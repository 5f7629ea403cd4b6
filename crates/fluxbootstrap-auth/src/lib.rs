//! Credentials for talking to Azure DevOps and for the cluster's Flux Secret.
//!
//! Every PAT, bearer token, private key and passphrase in the project travels in a
//! [`SecretString`] or [`SecretBytes`], whose `Debug` prints `[redacted]` and which
//! implement no `Display`, so a secret cannot end up in a log line or an error by accident.
//!
//! ```
//! use fluxbootstrap_auth::SecretString;
//! let pat = SecretString::new("s3cr3t".to_owned());
//! assert_eq!(format!("{pat:?}"), "SecretString([redacted])");
//! assert_eq!(pat.expose_secret(), "s3cr3t");
//! ```

mod secret;

pub use secret::{SecretBytes, SecretString};
