//! Where a session is used from: the client metadata stored on its row, and the
//! rows a "your devices" page lists.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::SessionId;

/// The longest `User-Agent` stored, in bytes; longer ones are cut at a character
/// boundary.
pub const MAX_USER_AGENT_BYTES: usize = 512;

/// The client a request came from: its IP address and `User-Agent`, as stored
/// in a session's `ip_address` and `user_agent` columns.
///
/// # Examples
///
/// ```
/// use shared_model::Client;
///
/// let long = "Mozilla/5.0 ".repeat(100);
/// let client = Client::new(Some("203.0.113.7".parse()?), Some(&long));
/// assert_eq!(client.ip_address(), Some("203.0.113.7"));
/// assert_eq!(client.user_agent().map(str::len), Some(512));
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    ip_address: Option<String>,
    user_agent: Option<String>,
}

impl Client {
    /// The client at `ip` sending `user_agent` (cut to
    /// [`MAX_USER_AGENT_BYTES`]; an empty one counts as none).
    #[must_use]
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        Self {
            ip_address: ip.map(|ip| ip.to_canonical().to_string()),
            user_agent: user_agent
                .map(|agent| truncate(agent.trim(), MAX_USER_AGENT_BYTES).to_owned())
                .filter(|agent| !agent.is_empty()),
        }
    }

    /// The IP address as text.
    #[must_use]
    pub fn ip_address(&self) -> Option<&str> {
        self.ip_address.as_deref()
    }

    /// The `User-Agent`, at most [`MAX_USER_AGENT_BYTES`] long.
    #[must_use]
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }
}

/// The longest prefix of `text` that is at most `max` bytes and ends on a
/// character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// One of a user's signed-in sessions, as a "your devices" page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The session's public id (what revoking takes).
    pub id: SessionId,
    /// Whether this is the session that asked.
    pub current: bool,
    /// The IP address it was last used from, if recorded.
    pub ip_address: Option<String>,
    /// The `User-Agent` it was last used with, if recorded.
    pub user_agent: Option<String>,
    /// When the session started (kept across logins and id changes).
    pub created_at: DateTime<Utc>,
    /// When it was last written or renewed (`None` for rows from before the
    /// column existed).
    pub last_seen_at: Option<DateTime<Utc>>,
    /// When it expires unless used again.
    pub expires_at: DateTime<Utc>,
    /// Whether it has its own, longer idle timeout ("remember me").
    pub remembered: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_cut_on_a_character_boundary() {
        let agent = format!("{}é", "a".repeat(511));
        let client = Client::new(None, Some(&agent));
        assert_eq!(client.user_agent().map(str::len), Some(511));
        assert_eq!(Client::new(None, Some("  ")).user_agent(), None);
        let exact = "b".repeat(512);
        assert_eq!(
            Client::new(None, Some(&exact)).user_agent(),
            Some(exact.as_str())
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_stored_as_ipv4() {
        let mapped: IpAddr = "::ffff:192.0.2.1"
            .parse()
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(
            Client::new(Some(mapped), None).ip_address(),
            Some("192.0.2.1")
        );
    }
}
