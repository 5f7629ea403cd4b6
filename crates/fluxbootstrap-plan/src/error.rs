//! The one error of this crate: a refused input, with what to do about it.

/// A flag combination or value that cannot work, said in the user's terms (the flags), with
/// a hint naming the fix.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PlanError {
    message: String,
    hint: String,
}

impl PlanError {
    /// `message` with `hint` as the advice.
    pub(crate) fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// What to do about it.
    #[must_use]
    pub fn hint(&self) -> &str {
        &self.hint
    }
}
