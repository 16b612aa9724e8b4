//! The confirmation dialog for destructive actions, the export dialog and the
//! status bar.

use egui::RichText;

use super::Command;
use crate::export::ExportFormat;
use crate::messages::BulkAction;
use crate::state::{
    describe_filter, AppState, BulkConfirm, Confirm, ExportDialog, StatusKind,
    TYPE_TO_CONFIRM_ABOVE,
};
use crate::ui::table::thousands;

/// Draws the confirmation dialog for the pending destructive action, if any.
/// `refusal`: why writes are refused (the confirm button is then disabled).
pub fn confirm_ui(
    ctx: &egui::Context,
    confirm: Option<&mut Confirm>,
    refusal: Option<&'static str>,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let Some(confirm) = confirm else {
        return commands;
    };
    let response = egui::Modal::new(egui::Id::unique("confirm-dialog")).show(ctx, |ui| {
        ui.set_max_width(440.0);
        let (action, can_confirm) = match confirm {
            Confirm::DeleteSession { session_id } => {
                ui.heading("Delete this session?");
                ui.label(format!(
                    "Session {session_id} will be deleted; its user is logged out of it."
                ));
                ("Delete".to_owned(), true)
            }
            Confirm::DeleteUser { user_id } => {
                ui.heading(format!("Delete every session of {user_id}?"));
                ui.label(format!("{user_id} will be logged out on every device."));
                ("Delete all".to_owned(), true)
            }
            Confirm::Purge => {
                ui.heading("Purge expired sessions?");
                ui.label("Every session whose expiry has passed will be deleted.");
                ("Purge".to_owned(), true)
            }
            Confirm::Bulk(bulk) => bulk_ui(ui, bulk),
            Confirm::Writable => {
                ui.heading("Open the database writable?");
                ui.label(
                    "Edits, expiry changes, deletes and purges will then change the sessions \
                     the application uses.",
                );
                ("Open writable".to_owned(), true)
            }
        };
        // Reopening writable is how writes become possible: the read-only
        // refusal does not apply to it.
        let refusal = match confirm {
            Confirm::Writable => None,
            _ => refusal,
        };
        match confirm {
            Confirm::Bulk(BulkConfirm {
                action: BulkAction::Expire,
                ..
            }) => {
                ui.label(
                    RichText::new("Their users are logged out; the rows stay until purged.").weak(),
                );
            }
            Confirm::Writable => {
                ui.label(RichText::new("Tick Read-only again to go back.").weak());
            }
            _ => {
                ui.label(RichText::new("This cannot be undone.").weak());
            }
        }
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button("Cancel").clicked() {
                commands.push(Command::CancelConfirm);
            }
            if !action.is_empty() {
                let button =
                    egui::Button::new(RichText::new(action).color(ui.visuals().error_fg_color));
                let response = ui.add_enabled(can_confirm && refusal.is_none(), button);
                let response = match refusal {
                    Some(why) => response.on_disabled_hover_text(why),
                    None => response,
                };
                if response.clicked() {
                    commands.push(Command::Confirmed);
                }
            }
        });
    });
    if response.should_close() && commands.is_empty() {
        commands.push(Command::CancelConfirm);
    }
    commands
}

/// The body of a bulk confirmation; returns the confirm button's text (empty:
/// none) and whether it is enabled.
fn bulk_ui(ui: &mut egui::Ui, bulk: &mut BulkConfirm) -> (String, bool) {
    let verb = match bulk.action {
        BulkAction::Expire => "Expire",
        BulkAction::Delete => "Delete",
    };
    let Some(count) = bulk.count else {
        ui.heading(format!("{verb} all matching sessions?"));
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Counting the matching sessions…");
        });
        return (String::new(), false);
    };
    ui.heading(format!(
        "{verb} all {} matching sessions?",
        thousands(count)
    ));
    ui.label(format!("Filter: {}.", describe_filter(&bulk.filter)));
    if count == 0 {
        ui.label("No session matches the filter: there is nothing to do.");
        return (String::new(), false);
    }
    if bulk.needs_typing() {
        ui.label(format!(
            "More than {TYPE_TO_CONFIRM_ABOVE} sessions: type {count} to confirm."
        ));
        let label = ui.label("Type the count to confirm");
        ui.add(
            egui::TextEdit::singleline(&mut bulk.typed)
                .hint_text(count.to_string())
                .desired_width(120.0),
        )
        .labelled_by(label.id);
    }
    let noun = if count == 1 { "session" } else { "sessions" };
    (
        format!("{verb} {} {noun}", thousands(count)),
        bulk.is_confirmed(),
    )
}

/// Draws the export dialog, if open.
pub fn export_dialog_ui(
    ctx: &egui::Context,
    dialog: Option<&mut ExportDialog>,
    state_summary: &ExportSummary,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let Some(dialog) = dialog else {
        return commands;
    };
    let response = egui::Modal::new(egui::Id::unique("export-dialog")).show(ctx, |ui| {
        ui.set_max_width(480.0);
        ui.heading("Export sessions");
        ui.label(format!(
            "The sessions matching the filter ({}), newest first{}.",
            state_summary.filter,
            state_summary
                .count
                .map(|count| format!(": {}", thousands(count)))
                .unwrap_or_default()
        ));
        ui.label(if state_summary.masked {
            "Secret values are masked (••••) as the masking settings say."
        } else {
            "Masking is off: secret values are exported as they are."
        });
        ui.horizontal(|ui| {
            ui.label("Format");
            for (format, name) in [(ExportFormat::Csv, "CSV"), (ExportFormat::Ndjson, "NDJSON")] {
                if ui.radio(dialog.format == format, name).clicked() && dialog.format != format {
                    // Keep the file name's extension in step with the format.
                    let old = dialog.format.extension();
                    if let Some(stem) = dialog.path.strip_suffix(old) {
                        dialog.path = format!("{stem}{}", format.extension());
                        dialog.replace = false;
                    }
                    dialog.format = format;
                }
            }
        });
        ui.horizontal(|ui| {
            let label = ui.label("File");
            if ui
                .add(egui::TextEdit::singleline(&mut dialog.path).desired_width(320.0))
                .labelled_by(label.id)
                .changed()
            {
                // Agreeing to replace one file is not agreeing to replace another.
                dialog.replace = false;
            }
            if ui.button("Browse…").clicked() {
                commands.push(Command::PickExportFile);
            }
        });
        if state_summary.target_exists {
            ui.label(
                RichText::new(format!(
                    "⚠ {} exists: it is replaced only if you say so.",
                    dialog.path.trim()
                ))
                .color(ui.visuals().warn_fg_color),
            );
            ui.checkbox(&mut dialog.replace, "Replace the existing file");
        }
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button("Cancel").clicked() {
                commands.push(Command::CloseExport);
            }
            let ready = !dialog.path.trim().is_empty()
                && !state_summary.busy
                && (dialog.replace || !state_summary.target_exists);
            if ui
                .add_enabled(ready, egui::Button::new("⬇ Export"))
                .on_disabled_hover_text(
                    "Name a file that does not exist (or tick \"Replace the existing file\"), \
                     and wait for the running job",
                )
                .clicked()
            {
                commands.push(Command::StartExport);
            }
        });
    });
    if response.should_close() && commands.is_empty() {
        commands.push(Command::CloseExport);
    }
    commands
}

/// What the export dialog says about the export.
#[derive(Debug, Clone, Default)]
pub struct ExportSummary {
    /// The filter, in words.
    pub filter: String,
    /// The matching sessions, when counted.
    pub count: Option<u64>,
    /// Whether masking is on.
    pub masked: bool,
    /// Whether a job is running already.
    pub busy: bool,
    /// Whether something is at the dialog's path already.
    pub target_exists: bool,
}

/// Draws the status bar: the last message or error, the schema's warnings,
/// purge results and what the worker is doing.
pub fn status_bar_ui(ui: &mut egui::Ui, state: &AppState, busy: bool) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.horizontal(|ui| {
        if busy {
            ui.spinner();
        }
        match &state.status {
            Some(message) if message.kind == StatusKind::Error => {
                ui.label(
                    RichText::new(format!("✖ {}", message.text)).color(ui.visuals().error_fg_color),
                );
                if ui.small_button("Dismiss").clicked() {
                    commands.push(Command::DismissStatus);
                }
            }
            Some(message) if message.kind == StatusKind::Warning => {
                ui.label(
                    RichText::new(format!("⚠ {}", message.text)).color(ui.visuals().warn_fg_color),
                );
            }
            Some(message) => {
                ui.label(&message.text);
            }
            None => {
                ui.weak("Ready");
            }
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if let Some(elapsed) = state.table.last_query {
                ui.weak(format!(
                    "last page query {:.1} ms",
                    elapsed.as_secs_f64() * 1000.0
                ));
            }
            if let Some(removed) = state.purge.last_removed {
                ui.weak(format!("last purge removed {}", thousands(removed)));
                ui.separator();
            }
        });
    });
    commands
}
