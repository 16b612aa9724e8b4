//! The connection bar: URL field, SQLite file picker, recent connections, the
//! read-only toggle and the schema's warnings.

use egui::{Color32, RichText};

use super::{Command, READ_ONLY_LOCKED};
use crate::state::ConnectionState;

/// Draws the connection bar.
pub fn connection_bar_ui(ui: &mut egui::Ui, connection: &mut ConnectionState) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.horizontal(|ui| {
        let label = ui.label("Database");
        let field = ui
            .add(
                egui::TextEdit::singleline(&mut connection.url_input)
                    .hint_text("db.sqlite, postgres://user@host/db, mysql://…")
                    .desired_width(420.0),
            )
            .labelled_by(label.id);
        let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button("Open").clicked() || entered {
            commands.push(Command::Connect(connection.url_input.trim().to_owned()));
        }
        let picking = connection.picking_file;
        if ui
            .add_enabled(!picking, egui::Button::new("SQLite file…"))
            .on_hover_text("Pick an SQLite database file")
            .clicked()
        {
            commands.push(Command::PickSqliteFile);
        }
        egui::ComboBox::from_label("Recent")
            .selected_text("")
            .width(24.0)
            .show_ui(ui, |ui| {
                if connection.recent.is_empty() {
                    ui.weak("No recent connections");
                }
                for url in &connection.recent {
                    if ui.selectable_label(false, url).clicked() {
                        commands.push(Command::Connect(url.clone()));
                    }
                }
            });
        // The toggle edits a copy: unticking asks first, and only the
        // confirmation (or the new connection) changes the state.
        let mut read_only = connection.read_only;
        let toggle = ui
            .add_enabled(
                !connection.read_only_at_launch,
                egui::Checkbox::new(&mut read_only, "Read-only"),
            )
            .on_hover_text(
                "Open the database read-only: the connection itself refuses every write \
                 (edit, expire, delete, purge). Toggling reopens the database; unticking \
                 asks first.",
            )
            .on_disabled_hover_text(READ_ONLY_LOCKED);
        if toggle.changed() {
            commands.push(if read_only {
                Command::SetReadOnly(true)
            } else {
                Command::AskWritable
            });
        }
        ui.separator();
        match (&connection.connecting, &connection.current) {
            (Some(url), _) => {
                ui.spinner();
                ui.label(format!("Opening {}…", url.redacted()));
            }
            (None, Some(current)) => {
                ui.label(
                    RichText::new(format!("{} · {}", current.backend, current.display_url))
                        .color(Color32::from_rgb(90, 190, 110)),
                );
                if current.read_only {
                    ui.label(
                        RichText::new("🔒 read-only")
                            .strong()
                            .color(ui.visuals().warn_fg_color),
                    )
                    .on_hover_text("Every write is refused by the database connection");
                }
            }
            (None, None) => {
                ui.label(RichText::new("Not connected").weak());
            }
        }
    });
    if let Some(current) = &connection.current {
        for warning in &current.warnings {
            ui.label(RichText::new(format!("⚠ {warning}")).color(ui.visuals().warn_fg_color));
        }
    }
    commands
}
