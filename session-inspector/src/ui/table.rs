//! The filter bar and the virtualised session table.

use egui::{Color32, RichText};
use egui_extras::{Column, TableBuilder};
use shared_model::{SortKey, Status};

use super::Command;
use crate::format::{byte_size, relative_expiry, relative_time};
use crate::state::{AppState, TableState};
use crate::worker::Row;

/// Row height of the session table, in points.
pub const ROW_HEIGHT: f32 = 22.0;

/// Extra instructions for one frame of the table (used by the benchmark mode).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TableView {
    /// Scroll the table to this offset in points.
    pub scroll_offset: Option<f32>,
}

/// Draws the filter bar: status, user id, id prefix, text in data, the match
/// count, refresh controls and purge.
pub fn filter_bar_ui(ui: &mut egui::Ui, state: &mut AppState) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.horizontal_wrapped(|ui| {
        let input = &mut state.filter_input;
        let mut changed = false;
        let label = ui.label("Status");
        egui::ComboBox::from_id_salt("status-filter")
            .selected_text(status_name(input.status))
            .width(80.0)
            .show_ui(ui, |ui| {
                for status in [Status::All, Status::Active, Status::Expired] {
                    changed |= ui
                        .selectable_value(&mut input.status, status, status_name(status))
                        .changed();
                }
            })
            .response
            .labelled_by(label.id);
        let text_field = |ui: &mut egui::Ui, name: &str, value: &mut String, width: f32| {
            let label = ui.label(name);
            ui.add(
                egui::TextEdit::singleline(value)
                    .desired_width(width)
                    .hint_text("any"),
            )
            .labelled_by(label.id)
        };
        changed |= text_field(ui, "User id", &mut input.user_id, 110.0).changed();
        changed |= text_field(ui, "Id prefix", &mut input.id_prefix, 90.0).changed();
        let search = text_field(ui, "Search data", &mut input.data_text, 150.0);
        changed |= search.changed();
        if state.focus_filter {
            search.request_focus();
            state.focus_filter = false;
        }
        if changed {
            commands.push(Command::ApplyFilter);
        }
        ui.separator();
        match state.table.count {
            Some(1) => ui.label("1 matching session"),
            Some(count) => ui.label(format!("{} matching sessions", thousands(count))),
            None => ui.label(RichText::new("counting…").weak()),
        };
        ui.separator();
        if ui
            .button("⟳ Refresh")
            .on_hover_text("Reload the table and the selection (F5)")
            .clicked()
        {
            commands.push(Command::Refresh);
        }
        ui.checkbox(&mut state.refresh.auto, "Auto every");
        ui.add(
            egui::DragValue::new(&mut state.refresh.interval_secs)
                .range(1..=3600)
                .suffix(" s"),
        );
        ui.separator();
        if state.purge.running {
            ui.add(
                egui::ProgressBar::new(state.purge.fraction())
                    .desired_width(160.0)
                    .show_percentage()
                    .text(format!(
                        "Purging: {} of {}",
                        thousands(state.purge.removed),
                        thousands(state.purge.total)
                    )),
            );
        } else if ui
            .button("🗑 Purge expired…")
            .on_hover_text("Delete every expired session")
            .clicked()
        {
            commands.push(Command::AskPurge);
        }
    });
    commands
}

/// The name of a status filter.
#[must_use]
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::All => "All",
        Status::Active => "Active",
        Status::Expired => "Expired",
    }
}

/// `1234567` as `1,234,567`.
#[must_use]
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn sort_header(ui: &mut egui::Ui, table: &TableState, key: SortKey, name: &str) -> Option<Command> {
    let arrow = if table.sort.key == key {
        if table.sort.descending {
            " ⏷"
        } else {
            " ⏶"
        }
    } else {
        ""
    };
    ui.add(egui::Button::new(RichText::new(format!("{name}{arrow}")).strong()).frame(false))
        .on_hover_text(format!("Sort by {}", name.to_lowercase()))
        .clicked()
        .then_some(Command::SortBy(key))
}

fn status_badge(ui: &mut egui::Ui, row: &Row, now: chrono::DateTime<chrono::Utc>) {
    let (text, fill) = if row.corrupt.is_some() {
        ("corrupt", Color32::from_rgb(150, 40, 40))
    } else if row.expires_at > now {
        ("active", Color32::from_rgb(40, 120, 60))
    } else {
        ("expired", Color32::from_rgb(90, 90, 90))
    };
    egui::Frame::new()
        .fill(fill)
        .corner_radius(4.0)
        .inner_margin(egui::Margin::symmetric(6, 1))
        .show(ui, |ui| {
            ui.label(RichText::new(text).small().color(Color32::WHITE));
        });
}

/// Draws the session table: only the visible rows, from pages the worker loads.
/// Returns the commands (page loads, selection, sorting, copying).
pub fn table_ui(
    ui: &mut egui::Ui,
    table: &mut TableState,
    selected: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
    view: TableView,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let row_count = table.row_count();
    let highlight = ui.visuals().warn_fg_color.gamma_multiply(0.25);
    let mut builder = TableBuilder::new(ui)
        .id_salt("sessions-table")
        .striped(true)
        .resizable(true)
        .sense(egui::Sense::click())
        .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
        .column(Column::exact(112.0))
        .column(Column::initial(110.0).at_least(60.0).clip(true))
        .column(Column::initial(84.0).at_least(60.0))
        .column(Column::initial(84.0).at_least(60.0))
        .column(Column::initial(120.0).at_least(60.0))
        .column(Column::exact(64.0))
        .column(Column::initial(70.0).at_least(50.0))
        .column(Column::remainder().at_least(120.0).clip(true))
        .min_scrolled_height(0.0)
        .animate_scrolling(false);
    if table.scroll_to_top {
        builder = builder.scroll_to_row(0, None);
        table.scroll_to_top = false;
    }
    if let Some(offset) = view.scroll_offset {
        builder = builder.vertical_scroll_offset(offset);
    }
    let mut first_drawn = usize::MAX;
    let mut end_drawn = 0;
    let mut showed_rows = false;
    let state: &TableState = table;
    builder
        .header(24.0, |mut header| {
            header.col(|ui| {
                ui.strong("Id");
            });
            header.col(|ui| {
                ui.strong("User");
            });
            for (key, name) in [
                (SortKey::CreatedAt, "Created"),
                (SortKey::UpdatedAt, "Updated"),
                (SortKey::ExpiresAt, "Expires"),
            ] {
                header.col(|ui| {
                    commands.extend(sort_header(ui, state, key, name));
                });
            }
            header.col(|ui| {
                ui.strong("Status");
            });
            header.col(|ui| {
                ui.strong("Size");
            });
            header.col(|ui| {
                ui.strong("Keys");
            });
        })
        .body(|body| {
            body.rows(ROW_HEIGHT, row_count, |mut row| {
                let index = row.index();
                first_drawn = first_drawn.min(index);
                end_drawn = end_drawn.max(index + 1);
                let Some(session) = state.row(index) else {
                    row.col(|ui| {
                        ui.weak("loading…");
                    });
                    return;
                };
                if state
                    .pages
                    .get(&(index / crate::state::PAGE_SIZE as usize))
                    .is_some_and(|page| page.generation == state.generation)
                {
                    showed_rows = true;
                }
                let is_selected = selected == Some(session.session_id.as_str());
                let changed = state.changed.contains(&session.session_id);
                row.set_selected(is_selected);
                let paint_change = |ui: &mut egui::Ui| {
                    if changed {
                        ui.painter().rect_filled(ui.max_rect(), 0.0, highlight);
                    }
                };
                let short: String = session.session_id.chars().take(8).collect();
                row.col(|ui| {
                    paint_change(ui);
                    let id_button = ui
                        .add(egui::Button::selectable(
                            is_selected,
                            RichText::new(&short).monospace(),
                        ))
                        .on_hover_text(&session.session_id);
                    if id_button.clicked() {
                        commands.push(Command::Select {
                            session_id: session.session_id.clone(),
                            user_id: session.user_id.clone(),
                        });
                    }
                    if ui
                        .small_button("📋")
                        .on_hover_text(format!("Copy {}", session.session_id))
                        .clicked()
                    {
                        commands.push(Command::Copy(session.session_id.clone()));
                    }
                });
                row.col(|ui| {
                    paint_change(ui);
                    match &session.user_id {
                        Some(user) => ui.label(user),
                        None => ui.weak("anonymous"),
                    };
                });
                for at in [session.created_at, session.updated_at] {
                    row.col(|ui| {
                        paint_change(ui);
                        ui.label(relative_time(at, now))
                            .on_hover_text(crate::format::timestamp(at));
                    });
                }
                row.col(|ui| {
                    paint_change(ui);
                    ui.label(relative_expiry(session.expires_at, now))
                        .on_hover_text(crate::format::timestamp(session.expires_at));
                });
                row.col(|ui| {
                    paint_change(ui);
                    status_badge(ui, session, now);
                });
                row.col(|ui| {
                    paint_change(ui);
                    ui.label(byte_size(session.data_size));
                });
                row.col(|ui| {
                    paint_change(ui);
                    match &session.corrupt {
                        Some(reason) => {
                            ui.label(
                                RichText::new(format!("⚠ {reason}"))
                                    .color(ui.visuals().error_fg_color),
                            )
                            .on_hover_text(reason);
                        }
                        None => {
                            ui.label(RichText::new(&session.keys).weak());
                        }
                    }
                });
                if row.response().clicked() {
                    commands.push(Command::Select {
                        session_id: session.session_id.clone(),
                        user_id: session.user_id.clone(),
                    });
                }
            });
        });
    if first_drawn == usize::MAX {
        first_drawn = 0;
    }
    table.visible = (first_drawn, end_drawn);
    table.showed_rows = showed_rows;
    commands.dedup();
    let pages = table.pages_to_load();
    if !pages.is_empty() {
        commands.push(Command::LoadPages(pages));
    }
    if row_count == 0 && table.count == Some(0) {
        ui.add_space(24.0);
        ui.vertical_centered(|ui| {
            ui.label(RichText::new("No sessions match.").weak());
        });
    }
    commands
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
