//! The filter bar, the actions bar and the virtualised session table.

use egui::{Color32, RichText};
use egui_extras::{Column, TableBuilder};
use shared_model::{SortKey, Status};

use super::{write_refusal, Command};
use crate::format::{byte_size, relative_expiry, relative_time, timestamp};
use crate::messages::{BulkAction, Row};
use crate::state::{AppState, JobKind, TableState};

/// Row height of the session table, in points.
pub const ROW_HEIGHT: f32 = 22.0;

/// Extra instructions for one frame of the table (used by the benchmark mode).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TableView {
    /// Scroll the table to this offset in points.
    pub scroll_offset: Option<f32>,
}

/// Draws the filter bar: status, user id (and its history), id prefix, IP
/// prefix, text in data and the match count.
pub fn filter_bar_ui(ui: &mut egui::Ui, state: &mut AppState) -> Vec<Command> {
    let mut commands = Vec::new();
    let devices = state.connection.device_columns();
    let events = state.connection.events_table();
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
        let user = input.user_id.trim().to_owned();
        let history_reason = if !events {
            "This database has no audit table (session_events)"
        } else {
            "Type a user id first"
        };
        if ui
            .add_enabled(
                events && !user.is_empty(),
                egui::Button::new("🕘 User history"),
            )
            .on_hover_text("The audit events of every session of this user")
            .on_disabled_hover_text(history_reason)
            .clicked()
        {
            commands.push(Command::ShowUserHistory(user));
        }
        changed |= text_field(ui, "Id prefix", &mut input.id_prefix, 90.0).changed();
        if devices {
            changed |= text_field(ui, "IP prefix", &mut input.ip_prefix, 100.0).changed();
        }
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
            None => match &state.table.count_error {
                Some(why) => ui
                    .label(RichText::new("count failed").color(ui.visuals().error_fg_color))
                    .on_hover_text(why.as_str()),
                None => ui.label(RichText::new("counting…").weak()),
            },
        };
    });
    commands
}

/// Draws the actions bar: refresh, find by cookie, the bulk actions, export,
/// purge and the running job's progress.
pub fn actions_bar_ui(ui: &mut egui::Ui, state: &mut AppState) -> Vec<Command> {
    let mut commands = Vec::new();
    let refusal = write_refusal(&state.connection);
    let writable = refusal.is_none();
    let idle = state.job.is_none() && !state.purge.running;
    ui.horizontal_wrapped(|ui| {
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
        let label = ui.label("Session cookie");
        let field = ui
            .add(
                egui::TextEdit::singleline(state.cookie_input.text_mut())
                    .password(true)
                    .hint_text("paste a cookie value")
                    .desired_width(150.0),
            )
            .labelled_by(label.id)
            .on_hover_text(
                "The session cookie's value: it is hashed here to the public id the table \
                 shows, never sent or stored",
            );
        let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui
            .add_enabled(
                !state.cookie_input.is_blank(),
                egui::Button::new("🔍 Find by cookie"),
            )
            .clicked()
            || (entered && !state.cookie_input.is_blank())
        {
            commands.push(Command::FindByCookie);
        }
        ui.separator();
        for (action, text, help) in [
            (
                BulkAction::Expire,
                "⏹ Expire all matching…",
                "Expire every session the filter matches (the count is shown first)",
            ),
            (
                BulkAction::Delete,
                "🗑 Delete all matching…",
                "Delete every session the filter matches (the count is shown first)",
            ),
        ] {
            let response = ui
                .add_enabled(writable && idle, egui::Button::new(text))
                .on_hover_text(help);
            let response = response
                .on_disabled_hover_text(refusal.unwrap_or("Wait for the running job to finish"));
            if response.clicked() {
                commands.push(Command::AskBulk(action));
            }
        }
        if ui
            .add_enabled(
                state.connection.current.is_some() && state.job.is_none(),
                egui::Button::new("⬇ Export…"),
            )
            .on_hover_text("Write the sessions matching the filter to a CSV or NDJSON file")
            .on_disabled_hover_text(if state.connection.current.is_none() {
                super::NOT_CONNECTED_REASON
            } else {
                "Wait for the running job to finish"
            })
            .clicked()
        {
            commands.push(Command::AskExport);
        }
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
            .add_enabled(writable && idle, egui::Button::new("🗑 Purge expired…"))
            .on_hover_text("Delete every expired session")
            .on_disabled_hover_text(refusal.unwrap_or("Wait for the running job to finish"))
            .clicked()
        {
            commands.push(Command::AskPurge);
        }
        if let Some(job) = &state.job {
            ui.separator();
            let verb = match job.kind {
                JobKind::Bulk(BulkAction::Expire) => "Expiring",
                JobKind::Bulk(BulkAction::Delete) => "Deleting",
                JobKind::Export => "Exporting",
            };
            let text = match job.total {
                Some(total) => format!("{verb}: {} of {}", thousands(job.done), thousands(total)),
                None => format!("{verb}: {}", thousands(job.done)),
            };
            ui.add(
                egui::ProgressBar::new(job.fraction())
                    .desired_width(200.0)
                    .text(text),
            );
            if ui
                .add_enabled(!job.cancelling, egui::Button::new("✖ Cancel"))
                .on_hover_text("Stop after the current batch; batches done stay done")
                .clicked()
            {
                commands.push(Command::CancelJob);
            }
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
/// `devices`: show the device columns (IP, browser, last seen, remember me).
/// Returns the commands (page loads, selection, sorting, copying).
pub fn table_ui(
    ui: &mut egui::Ui,
    table: &mut TableState,
    selected: Option<shared_model::SessionId>,
    now: chrono::DateTime<chrono::Utc>,
    devices: bool,
    view: TableView,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let row_count = table.row_count();
    let highlight = ui.visuals().warn_fg_color.gamma_multiply(0.25);
    let mut builder = TableBuilder::new(ui)
        .id_salt(if devices {
            "sessions-table-devices"
        } else {
            "sessions-table"
        })
        .striped(true)
        .resizable(true)
        .sense(egui::Sense::click())
        .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
        .column(Column::exact(100.0))
        .column(Column::initial(92.0).at_least(50.0).clip(true))
        .column(Column::initial(66.0).at_least(50.0))
        .column(Column::initial(66.0).at_least(50.0))
        .column(Column::initial(78.0).at_least(60.0))
        .column(Column::exact(58.0));
    if devices {
        builder = builder
            .column(Column::initial(112.0).at_least(60.0).clip(true))
            .column(Column::initial(148.0).at_least(60.0).clip(true))
            .column(Column::initial(68.0).at_least(50.0))
            .column(Column::exact(34.0));
    }
    builder = builder
        .column(Column::initial(56.0).at_least(44.0))
        .column(Column::remainder().at_least(80.0).clip(true))
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
            if devices {
                header.col(|ui| {
                    ui.strong("IP");
                });
                header.col(|ui| {
                    ui.strong("Browser");
                });
                header.col(|ui| {
                    ui.strong("Last seen");
                });
                header.col(|ui| {
                    ui.strong("Rem.")
                        .on_hover_text("Remember me: the session has its own, longer idle timeout");
                });
            }
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
                let session_id = session.row_id.session_id();
                let is_selected = session_id.is_some() && selected == session_id;
                let changed = state.changed.contains(&session.row_id);
                row.set_selected(is_selected);
                let paint_change = |ui: &mut egui::Ui| {
                    if changed {
                        ui.painter().rect_filled(ui.max_rect(), 0.0, highlight);
                    }
                };
                let select = |session_id| Command::Select {
                    session_id,
                    user_id: session.user_id.clone(),
                };
                row.col(|ui| {
                    paint_change(ui);
                    let short = RichText::new(session.row_id.short()).monospace();
                    match session_id {
                        Some(session_id) => {
                            if ui
                                .add(egui::Button::selectable(is_selected, short))
                                .on_hover_text(session_id.to_string())
                                .clicked()
                            {
                                commands.push(select(session_id));
                            }
                        }
                        None => {
                            ui.label(short.weak()).on_hover_text(format!(
                                "{}: not a canonical session id, so this row cannot be opened",
                                session.row_id
                            ));
                        }
                    }
                    if ui
                        .small_button("📋")
                        .on_hover_text(format!("Copy {}", session.row_id))
                        .clicked()
                    {
                        commands.push(Command::Copy(session.row_id.to_string()));
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
                            .on_hover_text(timestamp(at));
                    });
                }
                row.col(|ui| {
                    paint_change(ui);
                    ui.label(relative_expiry(session.expires_at, now))
                        .on_hover_text(timestamp(session.expires_at));
                });
                row.col(|ui| {
                    paint_change(ui);
                    status_badge(ui, session, now);
                });
                if devices {
                    device_cells(&mut row, session, now, &paint_change);
                }
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
                if let (true, Some(session_id)) = (row.response().clicked(), session_id) {
                    commands.push(select(session_id));
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

/// The IP, browser, last seen and remember-me cells of a row.
fn device_cells(
    row: &mut egui_extras::TableRow<'_, '_>,
    session: &Row,
    now: chrono::DateTime<chrono::Utc>,
    paint_change: &impl Fn(&mut egui::Ui),
) {
    row.col(|ui| {
        paint_change(ui);
        match &session.ip_address {
            Some(ip) => ui.label(RichText::new(ip).monospace()),
            None => ui.weak("–"),
        };
    });
    row.col(|ui| {
        paint_change(ui);
        match (&session.browser, &session.user_agent) {
            (Some(browser), Some(agent)) => ui.label(browser).on_hover_text(agent),
            _ => ui.weak("–"),
        };
    });
    row.col(|ui| {
        paint_change(ui);
        match session.last_seen_at {
            Some(at) => ui
                .label(relative_time(at, now))
                .on_hover_text(timestamp(at)),
            None => ui.weak("–"),
        };
    });
    row.col(|ui| {
        paint_change(ui);
        if session.remembered {
            ui.label("✔")
                .on_hover_text("Remember me: its own idle timeout");
        }
    });
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
