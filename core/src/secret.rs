//! A string that never shows itself in `Debug`, `Display` or serialized output.

use std::fmt;
use zeroize::Zeroize;

/// A secret value (a password, a token). Its `Debug` and `Display` print a fixed mask, and it
/// deliberately does not implement `Serialize`, so it cannot end up in a response or a log
/// line by accident; the one way out is [`SecretString::expose`], which call sites use only
/// where the secret is sent to the platform or encrypted for storage.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// The mask shown in place of any secret, in responses and in `Debug` output.
    pub const MASK: &'static str = "********";

    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only to hand it to the platform or to the encryption layer.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::MASK)
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::MASK)
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        // Overwrite the bytes before the allocation is freed so a later heap dump is less
        // likely to hold the secret. Best effort: copies made by libraries are out of reach.
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_masked() {
        let secret = SecretString::new("hunter2");
        assert_eq!(format!("{secret:?}"), "********");
        assert_eq!(format!("{secret}"), "********");
        assert_eq!(secret.expose(), "hunter2");
    }
}
