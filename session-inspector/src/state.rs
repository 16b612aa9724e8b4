//! The app's state: plain data, changed by the UI functions' [`Command`](crate::ui::Command)s
//! and by the worker's responses. Nothing here talks to the database or draws.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use shared_model::{
    Event, Session, SessionData, SessionFilter, SessionId, Sort, SortKey, Stats, Status,
};

use crate::export::ExportFormat;
use crate::mask::{child_path, unmask_data, MaskedEdit, Masking, MASK};
use crate::messages::{BulkAction, ConnectionInfo, DatabaseUrl, HistoryScope, Row, RowId};

/// Rows per database page.
pub const PAGE_SIZE: u32 = 100;
/// Pages kept in memory; the ones farthest from the view are dropped first.
pub const MAX_CACHED_PAGES: usize = 40;
/// Recent connections remembered across restarts.
pub const MAX_RECENT: usize = 10;
/// Bulk actions on more sessions than this ask for the count to be typed.
pub const TYPE_TO_CONFIRM_ABOVE: u64 = 100;

/// The main area's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tab {
    /// The session table and the detail panel.
    #[default]
    Sessions,
    /// Counts, plots and purge.
    Overview,
}

/// The connection bar.
#[derive(Debug, Clone, Default)]
pub struct ConnectionState {
    /// The URL being typed.
    pub url_input: String,
    /// The open database.
    pub current: Option<ConnectionInfo>,
    /// A URL being opened.
    pub connecting: Option<DatabaseUrl>,
    /// Recently opened URLs, most recent first.
    pub recent: Vec<String>,
    /// A native file dialog is open.
    pub picking_file: bool,
    /// Open databases read-only (the toggle; the open one says what it is in
    /// [`ConnectionInfo::read_only`]).
    pub read_only: bool,
    /// The inspector was started with `--read-only`: the toggle stays on.
    pub read_only_at_launch: bool,
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

    /// Whether the open database has the device columns.
    #[must_use]
    pub fn device_columns(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|current| current.device_columns)
    }

    /// Whether the open database has the audit table.
    #[must_use]
    pub fn events_table(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|current| current.events_table)
    }
}

/// The filter fields as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterInput {
    /// Exact user id.
    pub user_id: String,
    /// Id prefix.
    pub id_prefix: String,
    /// IP address prefix.
    pub ip_prefix: String,
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
            ip_prefix: field(&self.ip_prefix),
        }
    }
}

/// A filter in words, for confirmations: "user alice, active".
#[must_use]
pub fn describe_filter(filter: &SessionFilter) -> String {
    let mut parts = Vec::new();
    if let Some(user) = &filter.user_id {
        parts.push(format!("user {user}"));
    }
    match filter.status {
        Status::All => {}
        Status::Active => parts.push("active".to_owned()),
        Status::Expired => parts.push("expired".to_owned()),
    }
    if let Some(prefix) = &filter.id_prefix {
        parts.push(format!("id starting {prefix}"));
    }
    if let Some(prefix) = &filter.ip_prefix {
        parts.push(format!("IP starting {prefix}"));
    }
    if let Some(text) = &filter.data_contains {
        parts.push(format!("data containing {text:?}"));
    }
    if parts.is_empty() {
        "no filter: every session".to_owned()
    } else {
        parts.join(", ")
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
    /// Why the current generation's count failed.
    pub count_error: Option<String>,
    /// Loaded pages by page number.
    pub pages: HashMap<usize, CachedPage>,
    /// Pages requested for the current generation.
    pub requested: HashSet<usize>,
    /// `(version, updated_at)` of every row seen, to spot changes on refresh.
    pub known: HashMap<RowId, (i64, DateTime<Utc>)>,
    /// Rows that changed in the last refresh (highlighted).
    pub changed: HashSet<RowId>,
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
        self.count_error = None;
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
        self.count_error = None;
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

    /// Whether the session's row changed in the last refresh.
    #[must_use]
    pub fn is_changed(&self, session_id: SessionId) -> bool {
        self.changed.contains(&RowId::Session(session_id))
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
            match self.known.insert(row.row_id.clone(), seen) {
                Some(before) if before != seen && self.refreshing => {
                    self.changed.insert(row.row_id.clone());
                }
                None if replaced && self.refreshing => {
                    self.changed.insert(row.row_id.clone());
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
    /// Loading it failed (the message says why); a refresh tries again.
    Failed(String),
    /// Loaded.
    Session(Box<Session>),
}

/// The selected session.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Its id.
    pub session_id: SessionId,
    /// Its user, known from the table row before the session loads.
    pub user_id: Option<String>,
    /// What was loaded.
    pub loaded: Loaded,
    /// It was looked up by its cookie: say so when it is found or missing.
    pub by_cookie: bool,
}

/// Which part of the selected session the detail panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetailView {
    /// Metadata, actions, the data tree and the raw editor.
    #[default]
    Data,
    /// The audit timeline.
    History,
}

/// `data` with the values under secret keys replaced by [`MASK`], except those
/// whose path (see [`child_path`]) is in `revealed`.
#[must_use]
pub fn mask_except(
    masking: &Masking,
    data: &SessionData,
    revealed: &HashSet<String>,
) -> SessionData {
    fn walk(masking: &Masking, value: &Value, path: &str, revealed: &HashSet<String>) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, value)| {
                        let path = child_path(path, key);
                        let shown = if masking.is_secret(key) && !revealed.contains(&path) {
                            Value::String(MASK.to_owned())
                        } else {
                            walk(masking, value, &path, revealed)
                        };
                        (key.clone(), shown)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, value)| {
                        walk(
                            masking,
                            value,
                            &child_path(path, &index.to_string()),
                            revealed,
                        )
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    match walk(masking, &Value::Object(data.clone()), "", revealed) {
        Value::Object(map) => map,
        _ => SessionData::new(),
    }
}

/// The raw JSON editor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Editor {
    /// The session the text is from (saving writes to it, whatever is selected).
    pub session_id: SessionId,
    /// The text being edited (secret values masked unless revealed).
    pub text: String,
    /// The text as generated from the session.
    pub original: String,
    /// The session's data as loaded, unmasked: masked values left as they are
    /// come back from it on save.
    pub data: SessionData,
    /// The masking the text was made with (unmasking uses the same).
    pub masking: Masking,
    /// The paths revealed when the text was made (unmasking uses the same).
    pub revealed: HashSet<String>,
    /// The version the text was loaded from.
    pub base_version: i64,
    /// Why the text cannot be saved, with its line and column.
    pub error: Option<String>,
    /// The line (1-based) the error is on, highlighted in the editor.
    pub error_line: Option<usize>,
    /// Why the last save was refused before anything was sent (a masked
    /// value moved or renamed); cleared when the text changes.
    pub refusal: Option<String>,
    /// A save is in flight.
    pub saving: bool,
}

impl Editor {
    /// An editor on `session`'s data, secret values masked unless revealed.
    #[must_use]
    pub fn for_session(session: &Session, masking: &Masking, revealed: &HashSet<String>) -> Self {
        let text = pretty(&mask_except(masking, &session.data, revealed));
        Self {
            session_id: session.id,
            original: text.clone(),
            text,
            data: session.data.clone(),
            masking: masking.clone(),
            revealed: revealed.clone(),
            base_version: session.version,
            error: None,
            error_line: None,
            refusal: None,
            saving: false,
        }
    }

    /// Whether the text differs from what was loaded.
    #[must_use]
    pub fn is_dirty(&self) -> bool {
        self.text != self.original
    }

    /// Re-validates the text; returns the data as typed when it is a JSON object.
    pub fn validate(&mut self) -> Option<SessionData> {
        self.refusal = None;
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

    /// The data to save: the text, validated, with every secret value still
    /// shown as [`MASK`] put back from the loaded data, so a masked secret is
    /// never overwritten with the mask. `None` (with [`error`](Self::error) or
    /// [`refusal`](Self::refusal) saying why) when the text is not a JSON
    /// object, or when a masked value was moved or renamed (see
    /// [`unmask_data`]): nothing must be sent then.
    pub fn data_to_save(&mut self) -> Option<SessionData> {
        let typed = self.validate()?;
        let shown = mask_except(&self.masking, &self.data, &self.revealed);
        let unmasked = unmask_data(&typed, &shown, &self.data);
        self.refuse_on(unmasked)
    }

    /// [`data_to_save`](Self::data_to_save) over `current` instead of the
    /// loaded data: after a conflict, the masked values left as they are take
    /// the current version's secrets, not the ones the edit started from.
    pub fn data_to_save_over(&mut self, current: &SessionData) -> Option<SessionData> {
        let typed = self.validate()?;
        let shown = mask_except(&self.masking, current, &self.revealed);
        let unmasked = unmask_data(&typed, &shown, current);
        self.refuse_on(unmasked)
    }

    fn refuse_on(&mut self, unmasked: Result<SessionData, MaskedEdit>) -> Option<SessionData> {
        match unmasked {
            Ok(data) => Some(data),
            Err(refusal) => {
                self.refusal = Some(refusal.to_string());
                None
            }
        }
    }

    /// Drops the edit.
    pub fn revert(&mut self) {
        self.text = self.original.clone();
        self.error = None;
        self.error_line = None;
        self.refusal = None;
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
    /// The data the user tried to save (unmasked).
    pub mine: SessionData,
    /// It, as indented JSON, masked.
    pub mine_text: String,
    /// The version the edit was based on.
    pub expected_version: i64,
    /// The session as it is now.
    pub current: Box<Session>,
    /// Its data as indented JSON, masked.
    pub current_text: String,
    /// Why "Overwrite with mine" was refused (a masked value moved or renamed).
    pub error: Option<String>,
}

/// "Expire all matching" or "Delete all matching", waiting for confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkConfirm {
    /// What to do.
    pub action: BulkAction,
    /// The filter (the table's, when the button was pressed).
    pub filter: SessionFilter,
    /// How many match (`None`: still counting).
    pub count: Option<u64>,
    /// What the user typed to confirm.
    pub typed: String,
}

impl BulkConfirm {
    /// Whether the count must be typed before the action can run.
    #[must_use]
    pub fn needs_typing(&self) -> bool {
        self.count
            .is_some_and(|count| count > TYPE_TO_CONFIRM_ABOVE)
    }

    /// Whether the action may run: counted, something matches, and the count
    /// typed when [`needs_typing`](Self::needs_typing).
    #[must_use]
    pub fn is_confirmed(&self) -> bool {
        let Some(count) = self.count.filter(|count| *count > 0) else {
            return false;
        };
        if !self.needs_typing() {
            return true;
        }
        let typed: String = self
            .typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ',')
            .collect();
        typed == count.to_string()
    }
}

/// A destructive action waiting for confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    /// Delete one session.
    DeleteSession {
        /// Its id.
        session_id: SessionId,
    },
    /// Delete every session of a user.
    DeleteUser {
        /// The user.
        user_id: String,
    },
    /// Delete every expired session.
    Purge,
    /// Expire or delete every session matching the filter.
    Bulk(BulkConfirm),
    /// Reopen the database writable (untick "Read-only").
    Writable,
}

/// The export dialog's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportDialog {
    /// The format.
    pub format: ExportFormat,
    /// The file to write.
    pub path: String,
    /// The user agreed to replace the file at `path` if it exists (ticked
    /// "Replace the existing file", or picked it in the native save dialog,
    /// which asked); changing the path clears it.
    pub replace: bool,
}

/// A long job on the worker that reports progress and can be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// "Expire all matching" or "Delete all matching".
    Bulk(BulkAction),
    /// An export.
    Export,
}

/// The running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobState {
    /// What it is.
    pub kind: JobKind,
    /// Sessions done so far.
    pub done: u64,
    /// Sessions to do, when known.
    pub total: Option<u64>,
    /// Cancel was pressed; the job stops after its current batch.
    pub cancelling: bool,
}

impl JobState {
    /// Progress in `0.0..=1.0` (0 while the total is unknown).
    #[must_use]
    pub fn fraction(&self) -> f32 {
        match self.total {
            Some(0) => 1.0,
            #[allow(clippy::cast_precision_loss)] // a progress bar
            Some(total) => (self.done as f32 / total as f32).clamp(0.0, 1.0),
            None => 0.0,
        }
    }
}

/// A history timeline: whose, and its events once loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryState {
    /// Whose events.
    pub scope: HistoryScope,
    /// The events, newest first (`None`: loading).
    pub events: Option<Vec<Event>>,
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

/// How the status bar shows a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// Something done.
    Info,
    /// Worth knowing, nothing failed.
    Warning,
    /// Something failed.
    Error,
}

/// The status bar's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMessage {
    /// The text.
    pub text: String,
    /// Info, warning or error.
    pub kind: StatusKind,
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

/// The session cookie field's text. The cookie is a secret (it logs in as the
/// session's user): its `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CookieInput(String);

impl CookieInput {
    /// The text, for the field to edit.
    pub fn text_mut(&mut self) -> &mut String {
        &mut self.0
    }

    /// Whether nothing but blanks was typed.
    #[must_use]
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// The text, leaving the field empty.
    pub fn take(&mut self) -> String {
        std::mem::take(&mut self.0)
    }
}

impl std::fmt::Debug for CookieInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = if self.0.is_empty() { "" } else { "<redacted>" };
        f.debug_tuple("CookieInput").field(&shown).finish()
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
    /// The export dialog, when open.
    pub export_dialog: Option<ExportDialog>,
    /// The bulk action or export running on the worker.
    pub job: Option<JobState>,
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
    /// What the detail panel shows.
    pub detail_view: DetailView,
    /// The history shown (the selection's, or a user's).
    pub history: Option<HistoryState>,
    /// Minutes added by "Extend".
    pub extend_minutes: u32,
    /// Which values are masked.
    pub masking: Masking,
    /// The masking patterns as typed (comma separated).
    pub patterns_input: String,
    /// Paths (see [`child_path`]) of the selection's values revealed one by one.
    pub revealed: HashSet<String>,
    /// A session cookie pasted to find its session; cleared once used.
    pub cookie_input: CookieInput,
    /// Focus the filter on the next frame (Ctrl+F).
    pub focus_filter: bool,
    /// "Now" for relative times, updated every frame.
    pub now: DateTime<Utc>,
}

impl AppState {
    /// Shows an informational message in the status bar.
    pub fn info(&mut self, text: impl Into<String>) {
        self.set_status(text, StatusKind::Info);
    }

    /// Shows a warning in the status bar.
    pub fn warn(&mut self, text: impl Into<String>) {
        self.set_status(text, StatusKind::Warning);
    }

    /// Shows an error in the status bar.
    pub fn error(&mut self, text: impl Into<String>) {
        self.set_status(text, StatusKind::Error);
    }

    fn set_status(&mut self, text: impl Into<String>, kind: StatusKind) {
        self.status = Some(StatusMessage {
            text: text.into(),
            kind,
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

    /// The selected session's id.
    #[must_use]
    pub fn selected_id(&self) -> Option<SessionId> {
        self.selection
            .as_ref()
            .map(|selection| selection.session_id)
    }

    /// Session data as the UI shows it: masked, except the revealed values.
    #[must_use]
    pub fn shown_data(&self, data: &SessionData) -> SessionData {
        mask_except(&self.masking, data, &self.revealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use serde_json::json;

    fn id() -> SessionId {
        shared_model::SessionToken::generate().unwrap().public_id()
    }

    fn row(row_id: &RowId, version: i64, at: DateTime<Utc>) -> Row {
        Row {
            row_id: row_id.clone(),
            user_id: None,
            created_at: at,
            updated_at: at,
            expires_at: at,
            version,
            data_size: 2,
            keys: String::new(),
            corrupt: None,
            ip_address: None,
            user_agent: None,
            browser: None,
            last_seen_at: None,
            remembered: false,
        }
    }

    #[test]
    fn refresh_highlights_changed_and_new_rows_only() {
        let now = Utc::now();
        let [a, b, c] = [id(), id(), id()].map(RowId::Session);
        let mut table = TableState::default();
        table.restart(SessionFilter::default(), Sort::default());
        let g = table.generation;
        assert!(table.insert_page(g, 0, vec![row(&a, 1, now), row(&b, 1, now)]));
        assert!(table.changed.is_empty(), "a first load highlights nothing");
        table.refresh();
        let g = table.generation;
        table.insert_page(
            g,
            0,
            vec![
                row(&a, 1, now),
                row(&b, 2, now + Duration::seconds(1)),
                row(&c, 1, now),
            ],
        );
        assert_eq!(table.changed, HashSet::from([b, c]));
        assert!(
            !table.insert_page(g - 1, 0, vec![]),
            "stale pages are dropped"
        );
    }

    #[test]
    fn rows_with_unreadable_ids_are_kept_apart() {
        let now = Utc::now();
        let odd = RowId::Unreadable("NOT-A-UUID".to_owned());
        let mut table = TableState::default();
        table.restart(SessionFilter::default(), Sort::default());
        let g = table.generation;
        table.insert_page(g, 0, vec![row(&odd, 1, now)]);
        assert_eq!(table.row(0).unwrap().row_id.short(), "NOT-A-UU");
        assert_eq!(table.row(0).unwrap().row_id.session_id(), None);
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

    fn session(data: serde_json::Value) -> Session {
        let now = Utc::now();
        Session {
            id: id(),
            user_id: None,
            data: data.as_object().unwrap().clone(),
            expires_at: now,
            created_at: now,
            updated_at: now,
            version: 1,
            ip_address: None,
            user_agent: None,
            last_seen_at: None,
            timeout_seconds: None,
        }
    }

    #[test]
    fn editor_reports_where_the_json_is_wrong() {
        let mut editor =
            Editor::for_session(&session(json!({})), &Masking::default(), &HashSet::new());
        editor.text = "{\n  \"a\": }".into();
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
    fn the_editor_masks_secrets_and_saving_keeps_them() {
        let session =
            session(json!({"password": "hunter2", "cart": [], "nested": {"apiKey": "k"}}));
        let masking = Masking::default();
        let mut editor = Editor::for_session(&session, &masking, &HashSet::new());
        assert!(!editor.text.contains("hunter2"), "{}", editor.text);
        assert!(editor.text.contains(MASK));
        editor.text = editor.text.replace("\"cart\": []", "\"cart\": [1]");
        assert!(editor.is_dirty());
        let saved = editor.data_to_save().unwrap();
        assert_eq!(
            serde_json::Value::Object(saved),
            json!({"password": "hunter2", "cart": [1], "nested": {"apiKey": "k"}})
        );
    }

    #[test]
    fn a_moved_secret_is_refused_with_a_reason_and_nothing_to_send() {
        let session = session(json!({"password": "hunter2", "cart": []}));
        let mut editor = Editor::for_session(&session, &Masking::default(), &HashSet::new());
        editor.text = editor.text.replace("\"password\"", "\"old_password\"");
        assert!(editor.data_to_save().is_none(), "nothing to send");
        let refusal = editor.refusal.clone().unwrap();
        assert!(refusal.contains("/old_password"), "{refusal}");
        assert!(refusal.contains("Reveal it"), "{refusal}");
        assert!(editor.error.is_none(), "the JSON itself is fine");
        // Revealed first, the value moves with its key.
        let revealed = HashSet::from([child_path("", "password")]);
        let mut editor = Editor::for_session(&session, &Masking::default(), &revealed);
        editor.text = editor.text.replace("\"password\"", "\"old_password\"");
        let saved = editor.data_to_save().unwrap();
        assert_eq!(
            serde_json::Value::Object(saved),
            json!({"old_password": "hunter2", "cart": []})
        );
    }

    #[test]
    fn overwriting_takes_the_current_versions_secrets() {
        let old = session(json!({"password": "old-secret", "cart": []}));
        let mut editor = Editor::for_session(&old, &Masking::default(), &HashSet::new());
        editor.text = editor.text.replace("\"cart\": []", "\"cart\": [1]");
        let current = json!({"password": "rotated", "cart": ["theirs"]});
        let current = current.as_object().unwrap();
        let saved = editor.data_to_save_over(current).unwrap();
        assert_eq!(
            serde_json::Value::Object(saved),
            json!({"password": "rotated", "cart": [1]})
        );
    }

    #[test]
    fn a_cookie_never_shows_in_debug_output() {
        let mut state = AppState::default();
        state
            .cookie_input
            .text_mut()
            .push_str("s3cr3t-cookie-value");
        let debug = format!("{state:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("CookieInput(\"<redacted>\")"), "{debug}");
        assert_eq!(state.cookie_input.take(), "s3cr3t-cookie-value");
        assert!(state.cookie_input.is_blank());
    }

    #[test]
    fn revealing_one_value_leaves_the_others_masked() {
        let data = json!({"password": "a", "oauth": {"token": "b"}, "list": [{"secret": "c"}]});
        let data = data.as_object().unwrap().clone();
        let masking = Masking::default();
        let revealed = HashSet::from([child_path("", "password"), "/list/0/secret".to_owned()]);
        let shown = serde_json::Value::Object(mask_except(&masking, &data, &revealed));
        assert_eq!(
            shown,
            json!({"password": "a", "oauth": MASK, "list": [{"secret": "c"}]})
        );
        assert_eq!(child_path("/a", "x/y~z"), "/a/x~1y~0z");
    }

    #[test]
    fn large_bulk_actions_need_the_count_typed() {
        let mut confirm = BulkConfirm {
            action: BulkAction::Expire,
            filter: SessionFilter::default(),
            count: None,
            typed: String::new(),
        };
        assert!(!confirm.is_confirmed(), "not counted yet");
        confirm.count = Some(TYPE_TO_CONFIRM_ABOVE);
        assert!(confirm.is_confirmed(), "small counts need no typing");
        confirm.count = Some(1234);
        assert!(confirm.needs_typing());
        assert!(!confirm.is_confirmed());
        confirm.typed = "123".into();
        assert!(!confirm.is_confirmed());
        confirm.typed = " 1,234 ".into();
        assert!(confirm.is_confirmed());
        confirm.count = Some(0);
        assert!(!confirm.is_confirmed(), "nothing to do");
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
