//! [`SessionToken`]: the secret a session cookie carries.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::{Error, Result, SessionId};

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// Characters in a token: 32 bytes in unpadded base64url.
pub const TOKEN_LEN: usize = 43;

/// The secret a session cookie carries: 32 bytes from the operating system's
/// CSPRNG, written as 43 characters of unpadded base64url (`[A-Za-z0-9_-]`).
///
/// The database never sees a token: it stores the session under its
/// [`public_id`](Self::public_id), a hash of the token. Whoever can read the
/// `sessions` table (a backup, a replica, the inspector) therefore learns no
/// cookie value.
///
/// A token has no `Display` and a redacted `Debug`, so it cannot end up in a
/// log line or an error message by accident; the cookie is the one place that
/// reads it, through [`expose_secret`](Self::expose_secret). Comparisons run in
/// constant time. The bytes are overwritten when the token is dropped.
///
/// # Examples
///
/// ```
/// use shared_model::SessionToken;
///
/// let token = SessionToken::generate()?;
/// let cookie_value = token.expose_secret();
/// assert_eq!(cookie_value.len(), 43);
/// assert_eq!(format!("{token:?}"), "SessionToken(<redacted>)");
///
/// // Parsing the cookie back gives the same session.
/// let parsed: SessionToken = cookie_value.parse()?;
/// assert_eq!(parsed.public_id(), token.public_id());
///
/// // Anything but 43 characters of canonical base64url is refused.
/// assert!("".parse::<SessionToken>().is_err());
/// assert!(token.public_id().to_string().parse::<SessionToken>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SessionToken([u8; TOKEN_LEN]);

/// The error for a cookie value that is not a session token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a session token (expected 43 characters of unpadded base64url)")]
pub struct InvalidToken;

impl SessionToken {
    /// A new token from the operating system's CSPRNG.
    ///
    /// # Errors
    ///
    /// [`Error::Randomness`] when the operating system cannot provide random
    /// bytes (no token is better than a guessable one).
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(Error::Randomness)?;
        let mut text = [0u8; TOKEN_LEN];
        let written = URL_SAFE_NO_PAD.encode_slice(bytes, &mut text);
        bytes.zeroize();
        match written {
            Ok(TOKEN_LEN) => Ok(Self(text)),
            // 32 bytes always encode to 43 characters.
            _ => Err(Error::Randomness(getrandom::Error::UNEXPECTED)),
        }
    }

    /// The session's public id: the first 16 bytes of SHA-256 over the token's
    /// 43 characters, as a UUID. This is what the database stores and what logs
    /// and the inspector show.
    #[must_use]
    pub fn public_id(&self) -> SessionId {
        let digest = Sha256::digest(self.0);
        let mut first = [0u8; 16];
        for (slot, byte) in first.iter_mut().zip(digest.iter()) {
            *slot = *byte;
        }
        SessionId::from_bytes(first)
    }

    /// The token's text, for the `Set-Cookie` header and nothing else.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        // Only base64url characters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl FromStr for SessionToken {
    type Err = InvalidToken;

    /// Accepts exactly the texts [`SessionToken::generate`] makes: 43 characters
    /// of unpadded base64url that decode to 32 bytes (the last character's
    /// unused bits are zero).
    fn from_str(text: &str) -> Result<Self, InvalidToken> {
        let bytes = text.as_bytes();
        if bytes.len() != TOKEN_LEN
            || !bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return Err(InvalidToken);
        }
        let mut decoded = [0u8; TOKEN_BYTES + 2];
        let length = URL_SAFE_NO_PAD.decode_slice(bytes, &mut decoded);
        decoded.zeroize();
        if length != Ok(TOKEN_BYTES) {
            return Err(InvalidToken);
        }
        let mut text = [0u8; TOKEN_LEN];
        text.copy_from_slice(bytes);
        Ok(Self(text))
    }
}

impl PartialEq for SessionToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SessionToken {}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

impl Drop for SessionToken {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_43_base64url_characters_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let token = SessionToken::generate().unwrap();
            let text = token.expose_secret().to_owned();
            assert_eq!(text.len(), 43);
            assert!(text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(text.parse::<SessionToken>().unwrap(), token);
            assert!(seen.insert(text), "a token repeated");
        }
    }

    #[test]
    fn the_public_id_is_the_first_half_of_sha256_of_the_text() {
        // Computed independently: printf %s "$token" | sha256sum | cut -c1-32
        let token: SessionToken = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            .parse()
            .unwrap();
        assert_eq!(
            token.public_id().to_string(),
            "0f007385-b6f9-d4b7-eeb2-748605afe1a9"
        );
    }

    #[test]
    fn only_canonical_tokens_parse() {
        let good = SessionToken::generate().unwrap();
        let text = good.expose_secret();
        for bad in [
            String::new(),
            text[1..].to_owned(),
            format!("{text}A"),
            format!("{text}="),
            text.replace(['-', '_'], "+"),
            format!(" {}", &text[1..]),
            // Standard base64's characters.
            format!("{}+", &text[..42]),
            format!("{}/", &text[..42]),
            // The last character carries 4 bits of data and 2 that must be zero.
            format!("{}B", &text[..42]),
            format!("{}_", &text[..42]),
            format!("{}\u{e9}", &text[..41]),
        ] {
            if bad != text {
                assert_eq!(bad.parse::<SessionToken>(), Err(InvalidToken), "{bad:?}");
            }
        }
        for last in "AEIMQUYcgkosw048".chars() {
            assert!(format!("{}{last}", &text[..42])
                .parse::<SessionToken>()
                .is_ok());
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let token = SessionToken::generate().unwrap();
        let debug = format!("{token:?} {:?}", Some(&token));
        assert!(!debug.contains(token.expose_secret()));
        assert!(debug.contains("redacted"));
    }
}
