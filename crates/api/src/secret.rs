//! Secrets that never print: API keys and tokens.
//!
//! `Debug` and `Display` both render `(redacted)`, so a secret cannot leak through a log line, a
//! panic message or an error chain by accident. Code that must send the value calls
//! [`ApiKey::expose`] at the one place it goes on the wire.

use std::fmt;

/// An api.video API key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key. Surrounding white space (a trailing newline from a key file) is trimmed.
    pub fn new(key: impl Into<String>) -> Self {
        let key: String = key.into();
        ApiKey(key.trim().to_owned())
    }

    /// The key itself, for the request that carries it and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the key is empty after trimming.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey((redacted))")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

/// A bearer, refresh or upload token.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token(String);

impl Token {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Token(token.into())
    }

    /// The token itself, for the request that carries it and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token((redacted))")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format() {
        let key = ApiKey::new(" sekrit-key\n");
        assert_eq!(key.expose(), "sekrit-key");
        assert!(!format!("{key} {key:?} {key:#?}").contains("sekrit"));
        let token = Token::new("tok-123");
        assert!(!format!("{token} {token:?}").contains("tok-123"));
    }
}
