//! The app's state: plain data, changed by the UI functions' [`Command`](crate::ui::Command)s
//! and by the worker's responses. Nothing here talks to the database or draws.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use shared_model::{Backend, Session, SessionData, SessionFilter, Sort, SortKey, Stats, Status};

use crate::worker::Row;

/// Rows per database page.
pub const PAGE_SIZE: u32 = 100;
/// Pages kept in memory; the ones farthest from the view are dropped first.
pub const MAX_CACHED_PAGES: usize = 40;
/// Recent connections remembered across restarts.
pub const MAX_RECENT: usize = 10;

/// The main area's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tab {
    /// The session table and the detail panel.
    #[default]
    Sessions,
    /// Counts, plots and purge.
    Overview,
}

/// The open database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// The URL as given.
    pub url: String,
    /// The URL without password.
    pub display_url: String,
    /// The engine.
    pub backend: Backend,
    /// Migrations the database has not run.
    pub pending_migrations: Vec<String>,
}

/// The connection bar.
#[derive(Debug, Clone, Default)]
pub struct ConnectionState {
    /// The URL being typed.
    pub url_input: String,
    /// The open database.
    pub current: Option<Connected>,
    /// A URL being opened.
    pub connecting: Option<String>,
    /// Recently opened URLs, most recent first.
    pub recent: Vec<String>,
    /// A native file dialog is open.
    pub picking_file: bool,
}

impl ConnectionState {
    /// Puts `url` first in the recent list (once), keeping [`MAX_RECENT`].
    /// Passwords are never kept: the list is shown and persisted.
    pub fn remember(&mut self, url: &str) {
        let url = shared_model::strip_password(url);
        self.recent.retain(|known| *known != url);
        self.recent.insert(0, url);
        self.recent.truncate(MAX_RECENT);
    }
}

/// The filter fields as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterInput {
    /// Exact user id.
    pub user_id: String,
    /// Id prefix.
    pub id_prefix: String,
    /// Text in the data.
    pub data_text: String,
    /// Active / expired / all.
    pub status: Status,
}

impl FilterInput {
    /// The filter these fields describe (empty fields match everything).
    #[must_use]
    pub fn to_filter(&self) -> SessionFilter {
        let field = |text: &str| {
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        };
        SessionFilter {
            id_prefix: field(&self.id_prefix),
            user_id: field(&self.user_id),
            status: self.status,
            data_contains: field(&self.data_text),
        }
    }
}

/// A cached page of rows and the table generation it was loaded for.
#[derive(Debug, Clone)]
pub struct CachedPage {
    /// The generation the rows are from.
    pub generation: u64,
    /// The rows.
    pub rows: Vec<Row>,
}

/// The session table: the applied filter and sort, the row count and a cache of
/// pages loaded from the database.
#[derive(Debug, Clone, Default)]
pub struct TableState {
    /// Bumped whenever what the table shows must be reloaded; responses for older
    /// generations are dropped.
    pub generation: u64,
    /// The filter the rows were loaded with.
    pub filter: SessionFilter,
    /// The order.
    pub sort: Sort,
    /// Matching rows, once counted.
    pub count: Option<u64>,
    /// Loaded pages by page number.
    pub pages: HashMap<usize, CachedPage>,
    /// Pages requested for the current generation.
    pub requested: HashSet<usize>,
    /// `(version, updated_at)` of every row seen, to spot changes on refresh.
    pub known: HashMap<String, (i64, DateTime<Utc>)>,
    /// Rows that changed in the last refresh (highlighted).
    pub changed: HashSet<String>,
    /// Whether the current generation is a refresh (changes are highlighted) or a
    /// new query (nothing is).
    pub refreshing: bool,
    /// Scroll back to the first row on the next frame.
    pub scroll_to_top: bool,
    /// Rows drawn in the last frame (first, last + 1).
    pub visible: (usize, usize),
    /// Whether the last frame drew loaded rows of the current generation.
    pub showed_rows: bool,
    /// How long the last page query took.
    pub last_query: Option<std::time::Duration>,
}

impl TableState {
    /// Starts a new query (new filter or sort): drops every cached row.
    pub fn restart(&mut self, filter: SessionFilter, sort: Sort) {
        self.generation += 1;
        self.filter = filter;
        self.sort = sort;
        self.count = None;
        self.pages.clear();
        self.requested.clear();
        self.known.clear();
        self.changed.clear();
        self.refreshing = false;
        self.scroll_to_top = true;
    }

    /// Reloads the same query, keeping the rows on screen until fresh ones arrive.
    pub fn refresh(&mut self) {
        self.generation += 1;
        self.requested.clear();
        self.changed.clear();
        self.refreshing = true;
    }

    /// The rows to show: the count once known, else what has been loaded.
    #[must_use]
    pub fn row_count(&self) -> usize {
        match self.count {
            Some(count) => usize::try_from(count).unwrap_or(usize::MAX),
            None => self.pages.get(&0).map_or(0, |page| page.rows.len()),
        }
    }

    /// The row at `index`, if its page is loaded.
    #[must_use]
    pub fn row(&self, index: usize) -> Option<&Row> {
        let page = self.pages.get(&(index / PAGE_SIZE as usize))?;
        page.rows.get(index % PAGE_SIZE as usize)
    }

    /// Stores a loaded page, marking rows that changed since they were last seen.
    /// Pages of older generations are ignored.
    pub fn insert_page(&mut self, generation: u64, index: usize, rows: Vec<Row>) -> bool {
        if generation != self.generation {
            return false;
        }
        let replaced = self.pages.contains_key(&index);
        for row in &rows {
            let seen = (row.version, row.updated_at);
            match self.known.insert(row.session_id.clone(), seen) {
                Some(before) if before != seen && self.refreshing => {
                    self.changed.insert(row.session_id.clone());
                }
                None if replaced && self.refreshing => {
                    self.changed.insert(row.session_id.clone());
                }
                _ => {}
            }
        }
        self.pages.insert(index, CachedPage { generation, rows });
        true
    }

    /// Pages the view needs that are neither loaded for this generation nor
    /// requested yet: the visible ones and the next one.
    #[must_use]
    pub fn pages_to_load(&self) -> Vec<usize> {
        let page_size = PAGE_SIZE as usize;
        let (first, end) = self.visible;
        let first_page = first / page_size;
        let last_page = end.max(first + 1).saturating_sub(1) / page_size + 1;
        let total_pages = self.row_count().div_ceil(page_size).max(1);
        (first_page..=last_page)
            .filter(|page| *page < total_pages || *page == 0)
            .filter(|page| {
                !self.requested.contains(page)
                    && self
                        .pages
                        .get(page)
                        .is_none_or(|cached| cached.generation != self.generation)
            })
            .collect()
    }

    /// Drops the cached pages farthest from the view beyond [`MAX_CACHED_PAGES`].
    pub fn evict(&mut self) {
        if self.pages.len() <= MAX_CACHED_PAGES {
            return;
        }
        let center = self.visible.0 / PAGE_SIZE as usize;
        let mut indexes: Vec<usize> = self.pages.keys().copied().collect();
        indexes.sort_by_key(|index| std::cmp::Reverse(index.abs_diff(center)));
        for index in indexes.iter().take(self.pages.len() - MAX_CACHED_PAGES) {
            self.pages.remove(index);
            self.requested.remove(index);
        }
    }

    /// Changes the sort: a new column sorts newest first, the same column flips.
    #[must_use]
    pub fn next_sort(&self, key: SortKey) -> Sort {
        if self.sort.key == key {
            Sort {
                key,
                descending: !self.sort.descending,
            }
        } else {
            Sort {
                key,
                descending: true,
            }
        }
    }
}

/// What the detail panel shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// The worker is loading it.
    Loading,
    /// It does not exist (any more).
    Missing,
    /// Its data is not a JSON object.
    Corrupt(String),
    /// Loaded.
    Session(Box<Session>),
}

/// The selected session.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Its id.
    pub session_id: String,
    /// Its user, known from the table row before the session loads.
    pub user_id: Option<String>,
    /// What was loaded.
    pub loaded: Loaded,
}

/// The raw JSON editor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Editor {
    /// The text being edited.
    pub text: String,
    /// The text as loaded.
    pub original: String,
    /// The version the text was loaded from.
    pub base_version: i64,
    /// Why the text cannot be saved, with its line and column.
    pub error: Option<String>,
    /// The line (1-based) the error is on, highlighted in the editor.
    pub error_line: Option<usize>,
    /// A save is in flight.
    pub saving: bool,
}

impl Editor {
    /// An editor on `session`'s data.
    #[must_use]
    pub fn for_session(session: &Session) -> Self {
        let text = pretty(&session.data);
        Self {
            original: text.clone(),
            text,
            base_version: session.version,
            error: None,
            error_line: None,
            saving: false,
        }
    }

    /// Whether the text differs from what was loaded.
    #[must_use]
    pub fn is_dirty(&self) -> bool {
        self.text != self.original
    }

    /// Re-validates the text; returns the data when it is a JSON object.
    pub fn validate(&mut self) -> Option<SessionData> {
        match shared_model::parse_data(&self.text) {
            Ok(data) => {
                self.error = None;
                self.error_line = None;
                Some(data)
            }
            Err(error) => {
                self.error = Some(describe_json_error(&error));
                self.error_line = match &error {
                    shared_model::Error::InvalidJson(json) => Some(json.line()),
                    _ => None,
                };
                None
            }
        }
    }

    /// Drops the edit.
    pub fn revert(&mut self) {
        self.text = self.original.clone();
        self.error = None;
        self.error_line = None;
    }
}

/// A JSON error as "line L, column C: what".
#[must_use]
pub fn describe_json_error(error: &shared_model::Error) -> String {
    match error {
        shared_model::Error::InvalidJson(json) => {
            let message = json.to_string();
            let what = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(what, _)| what);
            format!("line {}, column {}: {what}", json.line(), json.column())
        }
        other => other.to_string(),
    }
}

/// Session data as indented JSON.
#[must_use]
pub fn pretty(data: &SessionData) -> String {
    serde_json::to_string_pretty(data).unwrap_or_else(|_| "{}".to_owned())
}

/// A save refused because the session changed meanwhile: both versions.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictState {
    /// The data the user tried to save.
    pub mine: SessionData,
    /// It, as indented JSON.
    pub mine_text: String,
    /// The version the edit was based on.
    pub expected_version: i64,
    /// The session as it is now.
    pub current: Box<Session>,
    /// Its data as indented JSON.
    pub current_text: String,
}

/// A destructive action waiting for confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    /// Delete one session.
    DeleteSession {
        /// Its id.
        session_id: String,
    },
    /// Delete every session of a user.
    DeleteUser {
        /// The user.
        user_id: String,
    },
    /// Delete every expired session.
    Purge,
}

/// The purge in progress or its last result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeState {
    /// A purge is running.
    pub running: bool,
    /// Expired rows when it started.
    pub total: u64,
    /// Rows removed so far.
    pub removed: u64,
    /// Rows removed by the last finished purge.
    pub last_removed: Option<u64>,
}

impl PurgeState {
    /// Progress in `0.0..=1.0`.
    #[must_use]
    pub fn fraction(&self) -> f32 {
        if self.total == 0 {
            return 1.0;
        }
        #[allow(clippy::cast_precision_loss)] // a progress bar
        let fraction = self.removed as f32 / self.total as f32;
        fraction.clamp(0.0, 1.0)
    }
}

/// The status bar's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMessage {
    /// The text.
    pub text: String,
    /// Shown in red.
    pub is_error: bool,
}

/// Auto-refresh settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshState {
    /// Refresh every `interval_secs`.
    pub auto: bool,
    /// Seconds between refreshes.
    pub interval_secs: u32,
    /// `egui` time of the last refresh.
    pub last: f64,
}

impl Default for RefreshState {
    fn default() -> Self {
        Self {
            auto: false,
            interval_secs: 5,
            last: 0.0,
        }
    }
}

/// Everything the app shows.
#[derive(Debug, Clone, Default)]
pub struct AppState {
    /// The connection bar.
    pub connection: ConnectionState,
    /// The filter fields.
    pub filter_input: FilterInput,
    /// The table.
    pub table: TableState,
    /// The selected session.
    pub selection: Option<Selection>,
    /// The raw JSON editor of the selection.
    pub editor: Option<Editor>,
    /// A refused save.
    pub conflict: Option<ConflictState>,
    /// A destructive action waiting for confirmation.
    pub confirm: Option<Confirm>,
    /// Purge progress.
    pub purge: PurgeState,
    /// Overview statistics.
    pub stats: Option<Stats>,
    /// Statistics are being loaded.
    pub stats_loading: bool,
    /// The status bar's message.
    pub status: Option<StatusMessage>,
    /// Auto-refresh.
    pub refresh: RefreshState,
    /// The main area's tab.
    pub tab: Tab,
    /// Minutes added by "Extend".
    pub extend_minutes: u32,
    /// Focus the filter on the next frame (Ctrl+F).
    pub focus_filter: bool,
    /// "Now" for relative times, updated every frame.
    pub now: DateTime<Utc>,
}

impl AppState {
    /// Shows an informational message in the status bar.
    pub fn info(&mut self, text: impl Into<String>) {
        self.status = Some(StatusMessage {
            text: text.into(),
            is_error: false,
        });
    }

    /// Shows an error in the status bar.
    pub fn error(&mut self, text: impl Into<String>) {
        self.status = Some(StatusMessage {
            text: text.into(),
            is_error: true,
        });
    }

    /// The selected session, when loaded.
    #[must_use]
    pub fn selected_session(&self) -> Option<&Session> {
        match &self.selection.as_ref()?.loaded {
            Loaded::Session(session) => Some(session),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn row(id: &str, version: i64, at: DateTime<Utc>) -> Row {
        Row {
            session_id: id.into(),
            user_id: None,
            created_at: at,
            updated_at: at,
            expires_at: at,
            version,
            data_size: 2,
            keys: String::new(),
            corrupt: None,
        }
    }

    #[test]
    fn refresh_highlights_changed_and_new_rows_only() {
        let now = Utc::now();
        let mut table = TableState::default();
        table.restart(SessionFilter::default(), Sort::default());
        let g = table.generation;
        assert!(table.insert_page(g, 0, vec![row("a", 1, now), row("b", 1, now)]));
        assert!(table.changed.is_empty(), "a first load highlights nothing");
        table.refresh();
        let g = table.generation;
        table.insert_page(
            g,
            0,
            vec![
                row("a", 1, now),
                row("b", 2, now + Duration::seconds(1)),
                row("c", 1, now),
            ],
        );
        assert_eq!(
            table.changed,
            HashSet::from(["b".to_owned(), "c".to_owned()])
        );
        assert!(
            !table.insert_page(g - 1, 0, vec![]),
            "stale pages are dropped"
        );
    }

    #[test]
    fn pages_to_load_covers_the_view_once() {
        let mut table = TableState::default();
        table.restart(SessionFilter::default(), Sort::default());
        table.count = Some(1000);
        table.visible = (150, 190);
        assert_eq!(table.pages_to_load(), vec![1, 2]);
        table.requested.insert(1);
        assert_eq!(table.pages_to_load(), vec![2]);
        table.visible = (990, 1000);
        assert_eq!(table.pages_to_load(), vec![9]);
    }

    #[test]
    fn editor_reports_where_the_json_is_wrong() {
        let mut editor = Editor {
            text: "{\n  \"a\": }".into(),
            original: "{}".into(),
            base_version: 1,
            error: None,
            error_line: None,
            saving: false,
        };
        assert!(editor.validate().is_none());
        let error = editor.error.clone().unwrap();
        assert!(error.starts_with("line 2, column"), "{error}");
        assert_eq!(editor.error_line, Some(2));
        editor.text = "[1]".into();
        assert!(editor.validate().is_none());
        assert!(editor.error.as_deref().unwrap().contains("not array"));
        editor.revert();
        assert!(!editor.is_dirty());
    }

    #[test]
    fn recent_connections_never_keep_a_password() {
        let mut connection = ConnectionState::default();
        connection.remember("postgres://app:hunter2@db/app?sslmode=require&password=x");
        connection.remember("postgres://app@db/app?sslmode=require");
        assert_eq!(
            connection.recent,
            vec!["postgres://app@db/app?sslmode=require"]
        );
        assert!(!format!("{:?}", connection.recent).contains("hunter2"));
    }

    #[test]
    fn recent_connections_are_unique_and_bounded() {
        let mut connection = ConnectionState::default();
        for i in 0..15 {
            connection.remember(&format!("db{i}.sqlite"));
        }
        connection.remember("db10.sqlite");
        assert_eq!(connection.recent.len(), MAX_RECENT);
        assert_eq!(connection.recent[0], "db10.sqlite");
        assert_eq!(
            connection
                .recent
                .iter()
                .filter(|u| *u == "db10.sqlite")
                .count(),
            1
        );
    }
}
