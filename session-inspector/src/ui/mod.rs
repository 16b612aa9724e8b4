//! The UI functions. Each takes `&mut egui::Ui` (and the plain state its widgets
//! edit), draws, and returns [`Command`]s; the app applies them at the end of the
//! frame.

mod connection;
mod detail;
mod dialogs;
mod history;
mod json;
mod masking;
mod overview;
pub mod table;

pub use connection::connection_bar_ui;
pub use detail::detail_ui;
pub use dialogs::{confirm_ui, export_dialog_ui, status_bar_ui, ExportSummary};
pub use history::history_ui;
pub use json::json_tree_ui;
pub use masking::masking_menu_ui;
pub use overview::overview_ui;
pub use table::{actions_bar_ui, filter_bar_ui, table_ui, TableView};

use shared_model::{SessionId, SortKey};

use crate::messages::{BulkAction, ExpiryChange};
use crate::state::{ConnectionState, DetailView, Tab};

/// Why write controls are disabled on a read-only database (their tooltip).
pub const READ_ONLY_REASON: &str =
    "Read-only: the database was opened read-only, so nothing can be changed. \
     Untick \"Read-only\" in the connection bar to make changes.";

/// Why write controls are disabled when the inspector was started with
/// `--read-only` (their tooltip).
pub const LAUNCHED_READ_ONLY_REASON: &str =
    "Read-only: the inspector was started with --read-only, so nothing can be changed. \
     Restart it without --read-only to make changes.";

/// The tooltip of the Read-only toggle when `--read-only` locks it on.
pub const READ_ONLY_LOCKED: &str = "Locked on: the inspector was started with --read-only";

/// Why write controls are disabled before a database is open.
pub const NOT_CONNECTED_REASON: &str = "Not connected: open a database first";

/// Why writes are refused (the tooltip of every disabled write control), or
/// `None` when the open database takes them.
#[must_use]
pub fn write_refusal(connection: &ConnectionState) -> Option<&'static str> {
    match &connection.current {
        None => Some(NOT_CONNECTED_REASON),
        Some(current) if current.read_only && connection.read_only_at_launch => {
            Some(LAUNCHED_READ_ONLY_REASON)
        }
        Some(current) if current.read_only => Some(READ_ONLY_REASON),
        Some(_) => None,
    }
}

/// Something the user asked for, applied by the app after the frame is drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open this database URL.
    Connect(String),
    /// Reopen the database read-only or writable (refused when started with
    /// `--read-only`).
    SetReadOnly(bool),
    /// Ask before reopening the database writable.
    AskWritable,
    /// Open a native dialog to pick an SQLite file.
    PickSqliteFile,
    /// Apply the filter fields to the table.
    ApplyFilter,
    /// Sort by this column (again: flip the direction).
    SortBy(SortKey),
    /// Reload the table, the selection and the overview.
    Refresh,
    /// Load these table pages.
    LoadPages(Vec<usize>),
    /// Select a session.
    Select {
        /// Its id.
        session_id: SessionId,
        /// Its user, if known.
        user_id: Option<String>,
    },
    /// Find the session of the cookie pasted in the cookie field, and select it.
    FindByCookie,
    /// Put text on the clipboard.
    Copy(String),
    /// Save the raw JSON editor's text.
    Save,
    /// Drop the edit.
    CancelEdit,
    /// Conflict: take the current version and drop the edit.
    ReloadAfterConflict,
    /// Conflict: write my version over the current one, on purpose.
    OverwriteAfterConflict,
    /// Change the selected session's expiry.
    SetExpiry(ExpiryChange),
    /// Ask before deleting the selected session.
    AskDeleteSession,
    /// Ask before deleting every session of this user.
    AskDeleteUser(String),
    /// Ask before purging expired sessions.
    AskPurge,
    /// Count the sessions matching the filter, then ask before the action.
    AskBulk(BulkAction),
    /// The pending confirmation was accepted.
    Confirmed,
    /// The pending confirmation was cancelled.
    CancelConfirm,
    /// Stop the running bulk action or export after its current batch.
    CancelJob,
    /// Open the export dialog.
    AskExport,
    /// Pick the export file with a native dialog.
    PickExportFile,
    /// Run the export the dialog describes.
    StartExport,
    /// Close the export dialog.
    CloseExport,
    /// Switch the main area's tab.
    ShowTab(Tab),
    /// Switch the detail panel between the data and the history.
    ShowDetail(DetailView),
    /// Show the history of every session of this user.
    ShowUserHistory(String),
    /// Show a masked value (by its path in the data).
    Reveal(String),
    /// Mask a revealed value again.
    Conceal(String),
    /// The masking switch or patterns were edited.
    MaskingChanged,
    /// Load the overview's statistics.
    LoadStats,
    /// Clear the status bar.
    DismissStatus,
}
