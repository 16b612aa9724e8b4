//! What the inspector remembers between runs: one serde struct stored under
//! one key of eframe's persistence. Passwords are never part of it.

use serde::{Deserialize, Serialize};

use crate::mask::Masking;
use crate::state::MAX_RECENT;

/// The storage key of [`Settings`].
pub const SETTINGS_KEY: &str = "settings";

/// Where versions before [`SETTINGS_KEY`] kept the recent connections; read
/// once, then removed.
const LEGACY_RECENT_KEY: &str = "recent-connections";
/// Where versions before [`SETTINGS_KEY`] kept `(auto, interval)`; read once,
/// then removed.
const LEGACY_REFRESH_KEY: &str = "auto-refresh";

/// Minutes "Extend" adds unless the user picks another number.
pub const DEFAULT_EXTEND_MINUTES: u32 = 30;

/// The remembered settings. Missing fields (from an older version) take their
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Recently opened URLs, most recent first, without passwords.
    pub recent_connections: Vec<String>,
    /// Refresh the table by itself.
    pub auto_refresh: bool,
    /// Seconds between automatic refreshes.
    pub refresh_interval_secs: u32,
    /// Which values are masked: the patterns are remembered, masking itself
    /// always starts on (switched off, it stays off until the app closes).
    pub masking: Masking,
    /// Minutes "Extend" adds.
    pub extend_minutes: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            recent_connections: Vec::new(),
            auto_refresh: false,
            refresh_interval_secs: 5,
            masking: Masking::default(),
            extend_minutes: DEFAULT_EXTEND_MINUTES,
        }
    }
}

impl Settings {
    /// The settings in `storage`: under [`SETTINGS_KEY`], else from the keys
    /// older versions wrote, else the defaults. Passwords an older version
    /// persisted are dropped.
    #[must_use]
    pub fn load(storage: &dyn eframe::Storage) -> Self {
        let settings = eframe::get_value::<Self>(storage, SETTINGS_KEY).unwrap_or_else(|| {
            let mut legacy = Self::default();
            if let Some(recent) = eframe::get_value::<Vec<String>>(storage, LEGACY_RECENT_KEY) {
                legacy.recent_connections = recent;
            }
            if let Some((auto, interval)) =
                eframe::get_value::<(bool, u32)>(storage, LEGACY_REFRESH_KEY)
            {
                legacy.auto_refresh = auto;
                legacy.refresh_interval_secs = interval;
            }
            legacy
        });
        settings.cleaned()
    }

    /// Writes the settings under [`SETTINGS_KEY`] and removes the older keys.
    pub fn save(&self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, &self.clone().cleaned());
        storage.remove_string(LEGACY_RECENT_KEY);
        storage.remove_string(LEGACY_REFRESH_KEY);
    }

    /// Without passwords, duplicates or out-of-range numbers, and with
    /// masking on: secrets are never shown at start because they were once
    /// revealed.
    #[must_use]
    pub fn cleaned(mut self) -> Self {
        self.masking.enabled = true;
        let mut recent: Vec<String> = Vec::with_capacity(self.recent_connections.len());
        for url in &self.recent_connections {
            let url = shared_model::strip_password(url);
            if !recent.contains(&url) {
                recent.push(url);
            }
        }
        recent.truncate(MAX_RECENT);
        self.recent_connections = recent;
        self.refresh_interval_secs = self.refresh_interval_secs.clamp(1, 3600);
        self.extend_minutes = self.extend_minutes.clamp(1, 60 * 24 * 30);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eframe::Storage as _;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Memory(HashMap<String, String>);

    impl eframe::Storage for Memory {
        fn get_string(&self, key: &str) -> Option<String> {
            self.0.get(key).cloned()
        }
        fn set_string(&mut self, key: &str, value: String) {
            self.0.insert(key.to_owned(), value);
        }
        fn remove_string(&mut self, key: &str) {
            self.0.remove(key);
        }
        fn flush(&mut self) {}
    }

    #[test]
    fn the_old_keys_are_read_once_without_passwords() {
        let mut storage = Memory::default();
        eframe::set_value(
            &mut storage,
            LEGACY_RECENT_KEY,
            &vec!["postgres://app:hunter2@db/app".to_owned()],
        );
        eframe::set_value(&mut storage, LEGACY_REFRESH_KEY, &(true, 0u32));
        let settings = Settings::load(&storage);
        assert_eq!(settings.recent_connections, vec!["postgres://app@db/app"]);
        assert!(settings.auto_refresh);
        assert_eq!(settings.refresh_interval_secs, 1, "clamped");
        settings.save(&mut storage);
        assert_eq!(
            storage.0.len(),
            1,
            "only the new key is left: {:?}",
            storage.0
        );
        assert!(!storage.0.values().any(|v| v.contains("hunter2")));
        assert_eq!(Settings::load(&storage), settings);
    }

    #[test]
    fn masking_switched_off_is_not_remembered_but_its_patterns_are() {
        let mut storage = Memory::default();
        let settings = Settings {
            masking: Masking {
                enabled: false,
                patterns: vec!["ssn".to_owned()],
            },
            ..Settings::default()
        };
        settings.save(&mut storage);
        assert!(
            !storage.0[SETTINGS_KEY].contains("enabled: false"),
            "{:?}",
            storage.0
        );
        let loaded = Settings::load(&storage);
        assert!(loaded.masking.enabled, "masking starts on");
        assert_eq!(loaded.masking.patterns, vec!["ssn"]);
        // A file written by an older version that stored it off.
        storage.set_string(
            SETTINGS_KEY,
            "(masking: (enabled: false, patterns: [\"pin\"]))".to_owned(),
        );
        let loaded = Settings::load(&storage);
        assert!(loaded.masking.enabled);
        assert_eq!(loaded.masking.patterns, vec!["pin"]);
    }

    #[test]
    fn fields_missing_from_an_older_version_take_their_defaults() {
        let mut storage = Memory::default();
        storage.set_string(SETTINGS_KEY, "(auto_refresh: true)".to_owned());
        let settings = Settings::load(&storage);
        assert!(settings.auto_refresh);
        assert_eq!(settings.masking, Masking::default());
        assert_eq!(settings.extend_minutes, DEFAULT_EXTEND_MINUTES);
    }
}
