//! The confirmation dialog for destructive actions and the status bar.

use egui::RichText;

use super::Command;
use crate::state::{AppState, Confirm};
use crate::ui::table::thousands;

/// Draws the confirmation dialog for the pending destructive action, if any.
pub fn confirm_ui(ctx: &egui::Context, confirm: Option<&Confirm>) -> Vec<Command> {
    let mut commands = Vec::new();
    let Some(confirm) = confirm else {
        return commands;
    };
    let (title, detail, action) = match confirm {
        Confirm::DeleteSession { session_id } => (
            "Delete this session?".to_owned(),
            format!("Session {session_id} will be deleted; its user is logged out of it."),
            "Delete",
        ),
        Confirm::DeleteUser { user_id } => (
            format!("Delete every session of {user_id}?"),
            format!("{user_id} will be logged out on every device."),
            "Delete all",
        ),
        Confirm::Purge => (
            "Purge expired sessions?".to_owned(),
            "Every session whose expiry has passed will be deleted.".to_owned(),
            "Purge",
        ),
    };
    let response = egui::Modal::new(egui::Id::unique("confirm-dialog")).show(ctx, |ui| {
        ui.set_max_width(420.0);
        ui.heading(title);
        ui.label(detail);
        ui.label(RichText::new("This cannot be undone.").weak());
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button("Cancel").clicked() {
                commands.push(Command::CancelConfirm);
            }
            if ui
                .button(RichText::new(action).color(ui.visuals().error_fg_color))
                .clicked()
            {
                commands.push(Command::Confirmed);
            }
        });
    });
    if response.should_close() && commands.is_empty() {
        commands.push(Command::CancelConfirm);
    }
    commands
}

/// Draws the status bar: the connection, the last message or error, purge
/// results and what the worker is doing.
pub fn status_bar_ui(ui: &mut egui::Ui, state: &AppState, busy: bool) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.horizontal(|ui| {
        if busy {
            ui.spinner();
        }
        match &state.status {
            Some(message) if message.is_error => {
                ui.label(
                    RichText::new(format!("✖ {}", message.text)).color(ui.visuals().error_fg_color),
                );
                if ui.small_button("Dismiss").clicked() {
                    commands.push(Command::DismissStatus);
                }
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
