//! Masking: values under keys that look secret (`password`, `csrf_token`,
//! `apiKey`, ...) are shown and exported as [`MASK`] unless revealed.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared_model::SessionData;

/// What a masked value shows instead of itself.
pub const MASK: &str = "••••";

/// The key patterns masked by default.
pub const DEFAULT_PATTERNS: [&str; 6] = ["password", "secret", "token", "csrf", "api_key", "auth"];

/// Which values to hide: on or off, and the key patterns (a key is secret when
/// it contains a pattern, ignoring case, `_` and `-`: `api_key` matches
/// `apiKey` and `X-Api-Key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Masking {
    /// Whether masking is on.
    pub enabled: bool,
    /// The key patterns.
    pub patterns: Vec<String>,
}

impl Default for Masking {
    fn default() -> Self {
        Self {
            enabled: true,
            patterns: DEFAULT_PATTERNS.iter().map(|p| (*p).to_owned()).collect(),
        }
    }
}

/// Lowercase letters and digits only, so `api_key`, `apiKey` and `API-KEY` compare equal.
fn normalize(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl Masking {
    /// Masking switched off (the CLI's `--reveal`).
    #[must_use]
    pub fn off() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Patterns from comma-separated text (blank items dropped).
    #[must_use]
    pub fn parse_patterns(text: &str) -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Whether the value under `key` is hidden.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_inspector::mask::Masking;
    ///
    /// let masking = Masking::default();
    /// assert!(masking.is_secret("csrf_token"));
    /// assert!(masking.is_secret("apiKey"));
    /// assert!(!masking.is_secret("cart"));
    /// assert!(!Masking::off().is_secret("password"));
    /// ```
    #[must_use]
    pub fn is_secret(&self, key: &str) -> bool {
        if !self.enabled {
            return false;
        }
        let key = normalize(key);
        self.patterns
            .iter()
            .map(|p| normalize(p))
            .any(|p| !p.is_empty() && key.contains(&p))
    }

    /// `value` with every value under a secret key (at any depth) replaced by [`MASK`].
    #[must_use]
    pub fn mask_value(&self, value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, value)| {
                        let shown = if self.is_secret(key) {
                            Value::String(MASK.to_owned())
                        } else {
                            self.mask_value(value)
                        };
                        (key.clone(), shown)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_value(v)).collect()),
            other => other.clone(),
        }
    }

    /// Session data with secret values masked.
    #[must_use]
    pub fn mask_data(&self, data: &SessionData) -> SessionData {
        match self.mask_value(&Value::Object(data.clone())) {
            Value::Object(map) => map,
            _ => SessionData::new(),
        }
    }

    /// Undoes the masking of an edited copy: wherever `edited` still holds
    /// [`MASK`] under a secret key, the value from `original` at the same place
    /// comes back, so saving an edit made on masked text never writes `••••`
    /// over a secret.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use session_inspector::mask::Masking;
    ///
    /// let masking = Masking::default();
    /// let original = json!({"password": "hunter2", "cart": [1]});
    /// let mut edited = masking.mask_value(&original);
    /// edited["cart"] = json!([1, 2]);
    /// assert_eq!(
    ///     masking.unmask_value(&edited, &original),
    ///     json!({"password": "hunter2", "cart": [1, 2]})
    /// );
    /// ```
    #[must_use]
    pub fn unmask_value(&self, edited: &Value, original: &Value) -> Value {
        match (edited, original) {
            (Value::Object(edited), Value::Object(original)) => Value::Object(
                edited
                    .iter()
                    .map(|(key, value)| {
                        let restored = match original.get(key) {
                            Some(before) if self.is_secret(key) && value.as_str() == Some(MASK) => {
                                before.clone()
                            }
                            Some(before) => self.unmask_value(value, before),
                            None => value.clone(),
                        };
                        (key.clone(), restored)
                    })
                    .collect(),
            ),
            (Value::Array(edited), Value::Array(original)) => Value::Array(
                edited
                    .iter()
                    .enumerate()
                    .map(|(i, value)| match original.get(i) {
                        Some(before) => self.unmask_value(value, before),
                        None => value.clone(),
                    })
                    .collect(),
            ),
            (edited, _) => edited.clone(),
        }
    }

    /// [`unmask_value`](Self::unmask_value) for whole session data.
    #[must_use]
    pub fn unmask_data(&self, edited: &SessionData, original: &SessionData) -> SessionData {
        match self.unmask_value(
            &Value::Object(edited.clone()),
            &Value::Object(original.clone()),
        ) {
            Value::Object(map) => map,
            _ => SessionData::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_secrets_are_masked_and_others_kept() {
        let masking = Masking::default();
        let data = json!({
            "cart": [{"sku": "A", "price": 3}],
            "_csrf": "abc",
            "oauth": {"access_token": "t", "scope": "read"},
            "prefs": {"theme": "dark", "Api-Key": "k"}
        });
        let masked = masking.mask_value(&data);
        assert_eq!(masked["cart"], data["cart"]);
        assert_eq!(masked["_csrf"], json!(MASK));
        // "oauth" contains "auth": the whole object is hidden.
        assert_eq!(masked["oauth"], json!(MASK));
        assert_eq!(masked["prefs"]["theme"], json!("dark"));
        assert_eq!(masked["prefs"]["Api-Key"], json!(MASK));
        assert!(!masked.to_string().contains("abc"));
    }

    #[test]
    fn custom_patterns_replace_the_defaults() {
        let masking = Masking {
            enabled: true,
            patterns: Masking::parse_patterns(" ssn , , card "),
        };
        assert_eq!(masking.patterns, vec!["ssn", "card"]);
        assert!(masking.is_secret("user_ssn"));
        assert!(!masking.is_secret("password"));
    }

    #[test]
    fn a_secret_typed_over_is_kept_as_typed() {
        let masking = Masking::default();
        let original = json!({"password": "old"});
        let edited = json!({"password": "new", "token": MASK});
        assert_eq!(
            masking.unmask_value(&edited, &original),
            json!({"password": "new", "token": MASK}),
            "a new key that says ••••, with nothing to restore, is kept"
        );
    }
}
