//! [`SessionId`]: a session's public id, the primary key of `sessions`.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A session's public id: derived from its secret
/// [`SessionToken`](crate::SessionToken) (the first 16 bytes of SHA-256 over the
/// token's text) and written as a lowercase hyphenated UUID
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, 36 characters).
///
/// The public id is the primary key of the `sessions` table and the name logs,
/// the inspector and support use for a session. It is safe to show: a cookie
/// carrying it is not a session, since only the token hashes to it.
///
/// The field is private, so a `SessionId` is always well formed; parsing accepts
/// nothing but the canonical lowercase form, so malformed input is rejected
/// before any database query is made.
///
/// # Examples
///
/// ```
/// use shared_model::{SessionId, SessionToken};
///
/// let id = SessionToken::generate()?.public_id();
/// let text = id.to_string();
/// assert_eq!(text.len(), 36);
/// assert_eq!(text.parse::<SessionId>()?, id);
///
/// // Anything but the canonical lowercase form is refused.
/// assert!(text.to_uppercase().parse::<SessionId>().is_err());
/// assert!("1' OR '1'='1".parse::<SessionId>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Uuid);

/// The error for a string that is not a canonical session id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a session id (expected 36 characters of lowercase hex and hyphens, such as 9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5d)"
)]
pub struct InvalidSessionId;

impl SessionId {
    pub(crate) fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Uuid::from_bytes(bytes))
    }

    /// The first eight characters, for logs and narrow columns.
    #[must_use]
    pub fn short(&self) -> String {
        let mut text = self.to_string();
        text.truncate(8);
        text
    }
}

impl FromStr for SessionId {
    type Err = InvalidSessionId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        if bytes.len() != 36 {
            return Err(InvalidSessionId);
        }
        for (position, byte) in bytes.iter().enumerate() {
            let well_placed = match position {
                8 | 13 | 18 | 23 => *byte == b'-',
                _ => byte.is_ascii_digit() || (b'a'..=b'f').contains(byte),
            };
            if !well_placed {
                return Err(InvalidSessionId);
            }
        }
        Uuid::try_parse_ascii(bytes)
            .map(Self)
            .map_err(|_| InvalidSessionId)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        f.write_str(self.0.hyphenated().encode_lower(&mut buf))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl serde::Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_ids_are_canonical_and_round_trip() {
        for _ in 0..1000 {
            let id = crate::SessionToken::generate().unwrap().public_id();
            let text = id.to_string();
            assert_eq!(text, text.to_lowercase());
            assert_eq!(text.parse::<SessionId>(), Ok(id));
        }
    }

    #[test]
    fn rejects_non_canonical_forms() {
        let good = "9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5d";
        assert!(good.parse::<SessionId>().is_ok());
        for bad in [
            "",
            "9B2F0C4E-1D3A-4F6B-8C2D-0E1F2A3B4C5D",
            "9b2f0c4e1d3a4f6b8c2d0e1f2a3b4c5d",
            "{9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5d}",
            "urn:uuid:9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5d",
            " 9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5d",
            "9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5d ",
            "9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5g",
            "9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5\u{e9}",
            "9b2f0c4e+1d3a-4f6b-8c2d-0e1f2a3b4c5d",
        ] {
            assert_eq!(bad.parse::<SessionId>(), Err(InvalidSessionId), "{bad:?}");
        }
    }

    #[test]
    fn short_is_the_first_eight_characters() {
        let id: SessionId = "9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5d".parse().unwrap();
        assert_eq!(id.short(), "9b2f0c4e");
    }

    #[test]
    fn serde_uses_the_canonical_text() {
        let id = crate::SessionToken::generate().unwrap().public_id();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<SessionId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<SessionId>("\"nope\"").is_err());
    }
}
