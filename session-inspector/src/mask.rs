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
}

/// A path to a value in session data, as a JSON pointer (`/oauth/token`, `/cart/0`).
#[must_use]
pub fn child_path(parent: &str, key: &str) -> String {
    format!("{parent}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// Why an edit made on masked text cannot be saved: a [`MASK`] is where it
/// cannot be matched to the secret it hides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskedEdit {
    /// `••••` where the text as loaded had no masked value: a masked value was
    /// moved, or its key renamed (or `••••` was typed).
    #[error(
        "{path} is \"{MASK}\" but no masked value was there: a masked value cannot be moved \
         or its key renamed. Reveal it (👁 in the data tree) before moving or renaming it, or \
         type the value itself"
    )]
    Moved {
        /// Where, as a JSON pointer.
        path: String,
    },
    /// Items of a list holding masked values were added, removed or reordered,
    /// so its masked values cannot be matched to their secrets.
    #[error(
        "the list at {path} holds masked values and its items were added, removed or \
         reordered: reveal the masked values in it (👁 in the data tree) before moving them"
    )]
    ListChanged {
        /// Where, as a JSON pointer.
        path: String,
    },
}

/// Whether `value` holds [`MASK`] as a string, at any depth.
fn holds_mask(value: &Value) -> bool {
    match value {
        Value::String(text) => text == MASK,
        Value::Array(items) => items.iter().any(holds_mask),
        Value::Object(map) => map.values().any(holds_mask),
        _ => false,
    }
}

/// Undoes the masking of an edited copy. `shown` is what the editor started
/// from: `original` with some values shown as [`MASK`]. Wherever `edited`
/// still holds [`MASK`] where `shown` did, the value from `original` at that
/// place comes back, so saving an edit made on masked text never writes
/// `••••` over a secret. A new value typed over a `••••` is kept as typed.
///
/// # Errors
///
/// [`MaskedEdit`] when `••••` is left where `shown` had none (a masked value
/// moved or its key renamed), or when a list holding masked values changed
/// length or had items moved: restoring by position would put a secret in
/// the wrong place.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use session_inspector::mask::{unmask_value, Masking};
///
/// let masking = Masking::default();
/// let original = json!({"password": "hunter2", "cart": [1]});
/// let shown = masking.mask_value(&original);
/// let mut edited = shown.clone();
/// edited["cart"] = json!([1, 2]);
/// assert_eq!(
///     unmask_value(&edited, &shown, &original).unwrap(),
///     json!({"password": "hunter2", "cart": [1, 2]})
/// );
/// // Renamed, the masked value has nothing to come back from.
/// let renamed = json!({"pass_word": "••••", "cart": [1]});
/// assert!(unmask_value(&renamed, &shown, &original).is_err());
/// ```
pub fn unmask_value(edited: &Value, shown: &Value, original: &Value) -> Result<Value, MaskedEdit> {
    unmask_at(edited, Some(shown), Some(original), "")
}

/// [`unmask_value`] for whole session data.
///
/// # Errors
///
/// As [`unmask_value`].
pub fn unmask_data(
    edited: &SessionData,
    shown: &SessionData,
    original: &SessionData,
) -> Result<SessionData, MaskedEdit> {
    match unmask_value(
        &Value::Object(edited.clone()),
        &Value::Object(shown.clone()),
        &Value::Object(original.clone()),
    )? {
        Value::Object(map) => Ok(map),
        _ => Ok(SessionData::new()),
    }
}

/// [`unmask_value`] at `path`; `shown` and `original` are `None` where the
/// edit has a key or item they lack.
fn unmask_at(
    edited: &Value,
    shown: Option<&Value>,
    original: Option<&Value>,
    path: &str,
) -> Result<Value, MaskedEdit> {
    if edited.as_str() == Some(MASK) {
        return match (shown, original) {
            (Some(shown), Some(original)) if shown.as_str() == Some(MASK) => Ok(original.clone()),
            _ => Err(MaskedEdit::Moved {
                path: display_path(path),
            }),
        };
    }
    match edited {
        Value::Object(map) => {
            let shown = shown.and_then(Value::as_object);
            let original = original.and_then(Value::as_object);
            map.iter()
                .map(|(key, value)| {
                    let restored = unmask_at(
                        value,
                        shown.and_then(|shown| shown.get(key)),
                        original.and_then(|original| original.get(key)),
                        &child_path(path, key),
                    )?;
                    Ok((key.clone(), restored))
                })
                .collect::<Result<_, _>>()
                .map(Value::Object)
        }
        Value::Array(items) => {
            let shown = shown.and_then(Value::as_array);
            let original = original.and_then(Value::as_array);
            if let Some(shown) = shown {
                if shown.iter().any(holds_mask) && list_changed(items, shown) {
                    return Err(MaskedEdit::ListChanged {
                        path: display_path(path),
                    });
                }
            }
            items
                .iter()
                .enumerate()
                .map(|(index, value)| {
                    unmask_at(
                        value,
                        shown.and_then(|shown| shown.get(index)),
                        original.and_then(|original| original.get(index)),
                        &child_path(path, &index.to_string()),
                    )
                })
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
        other => Ok(other.clone()),
    }
}

/// Whether the items of a list that showed masked values were added, removed
/// or moved: another length, or an item holding [`MASK`] that is now where
/// another shown item was (edited in place, an item stays where it was).
fn list_changed(edited: &[Value], shown: &[Value]) -> bool {
    edited.len() != shown.len()
        || edited
            .iter()
            .zip(shown)
            .enumerate()
            .any(|(index, (item, was))| {
                item != was
                    && holds_mask(item)
                    && shown
                        .iter()
                        .enumerate()
                        .any(|(other, shown)| other != index && shown == item)
            })
}

/// A JSON pointer for messages (the root is "the data").
fn display_path(path: &str) -> String {
    if path.is_empty() {
        "the data".to_owned()
    } else {
        path.to_owned()
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
        let original = json!({"password": "old", "token": "t"});
        let shown = masking.mask_value(&original);
        let edited = json!({"password": "new", "token": MASK});
        assert_eq!(
            unmask_value(&edited, &shown, &original).unwrap(),
            json!({"password": "new", "token": "t"}),
            "the typed value is kept, the untouched one restored"
        );
        let added = json!({"password": "new", "token": MASK, "api_token": MASK});
        assert_eq!(
            unmask_value(&added, &shown, &original),
            Err(MaskedEdit::Moved {
                path: "/api_token".to_owned()
            }),
            "a new key that says ••••, with nothing to restore, is refused"
        );
    }

    #[test]
    fn a_renamed_or_moved_secret_is_refused() {
        let masking = Masking::default();
        let original = json!({"password": "hunter2", "prefs": {"theme": "dark"}});
        let shown = masking.mask_value(&original);
        for edited in [
            json!({"user_password": MASK, "prefs": {"theme": "dark"}}),
            json!({"pw": MASK, "prefs": {"theme": "dark"}}),
            json!({"prefs": {"theme": "dark", "password": MASK}}),
        ] {
            let refused = unmask_value(&edited, &shown, &original).unwrap_err();
            assert!(matches!(refused, MaskedEdit::Moved { .. }), "{edited}");
            assert!(refused.to_string().contains("Reveal it"), "{refused}");
        }
    }

    #[test]
    fn a_list_of_secrets_keeps_its_items_in_place() {
        let masking = Masking::default();
        let original = json!({"accounts": [
            {"name": "a", "token": "secret-a"},
            {"name": "b", "token": "secret-b"},
            {"name": "c", "token": "secret-c"}
        ]});
        let shown = masking.mask_value(&original);
        let item = |name: &str| json!({"name": name, "token": MASK});
        let refused = |accounts: Vec<Value>| {
            unmask_value(&json!({ "accounts": accounts }), &shown, &original)
        };
        // Deleting the first item used to give "b" the secret of "a".
        assert_eq!(
            refused(vec![item("b"), item("c")]),
            Err(MaskedEdit::ListChanged {
                path: "/accounts".to_owned()
            })
        );
        // Reordering.
        assert!(refused(vec![item("b"), item("a"), item("c")]).is_err());
        // Adding.
        assert!(refused(vec![item("a"), item("b"), item("c"), item("d")]).is_err());
        // Editing an item in place is fine: its secret stays its own.
        let renamed = refused(vec![item("a"), item("bee"), item("c")]).unwrap();
        assert_eq!(
            renamed["accounts"][1],
            json!({"name": "bee", "token": "secret-b"})
        );
        // A list without masked values may change at will.
        let original = json!({"cart": [1, 2, 3]});
        let shown = masking.mask_value(&original);
        assert_eq!(
            unmask_value(&json!({"cart": [3, 1]}), &shown, &original).unwrap(),
            json!({"cart": [3, 1]})
        );
    }
}
