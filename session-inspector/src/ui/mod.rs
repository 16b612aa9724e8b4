//! The UI functions. Each takes `&mut egui::Ui` (and the plain state its widgets
//! edit), draws, and returns [`Command`]s; the app applies them at the end of the
//! frame.

mod connection;
mod detail;
mod dialogs;
mod json;
mod overview;
pub mod table;

pub use connection::connection_bar_ui;
pub use detail::detail_ui;
pub use dialogs::{confirm_ui, status_bar_ui};
pub use json::json_tree_ui;
pub use overview::overview_ui;
pub use table::{filter_bar_ui, table_ui, TableView};

use shared_model::SortKey;

use crate::state::Tab;
use crate::worker::ExpiryChange;

/// Something the user asked for, applied by the app after the frame is drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open this database URL.
    Connect(String),
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
        session_id: String,
        /// Its user, if known.
        user_id: Option<String>,
    },
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
    /// The pending confirmation was accepted.
    Confirmed,
    /// The pending confirmation was cancelled.
    CancelConfirm,
    /// Switch the main area's tab.
    ShowTab(Tab),
    /// Load the overview's statistics.
    LoadStats,
    /// Clear the status bar.
    DismissStatus,
}
