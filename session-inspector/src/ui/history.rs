//! The history timeline: a session's or a user's audit events, newest first.

use chrono::{DateTime, Utc};
use egui::{Color32, RichText};
use shared_model::{Event, EventKind};

use super::Command;
use crate::format::{relative_time, timestamp};
use crate::mask::Masking;
use crate::messages::{HistoryScope, HISTORY_LIMIT};
use crate::state::HistoryState;

/// Draws a history timeline. `events_table`: whether the database has an
/// audit table at all; `masking`: which detail values to hide.
pub fn history_ui(
    ui: &mut egui::Ui,
    history: Option<&HistoryState>,
    events_table: bool,
    now: DateTime<Utc>,
    masking: &Masking,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let user = match history.map(|history| &history.scope) {
        Some(HistoryScope::User(user)) => Some(user.as_str()),
        _ => None,
    };
    match user {
        Some(user) => ui.heading(format!("History of {user}")),
        None => ui.strong("History of this session"),
    };
    if !events_table {
        ui.label(
            RichText::new(
                "This database has no audit table (session_events), so there is no history: \
                 run the application's migrations to record one.",
            )
            .color(ui.visuals().warn_fg_color),
        );
        return commands;
    }
    let Some(events) = history.and_then(|history| history.events.as_ref()) else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Loading the history…");
        });
        return commands;
    };
    if events.is_empty() {
        ui.label(RichText::new("No events recorded.").weak());
        return commands;
    }
    if events.len() >= HISTORY_LIMIT as usize {
        ui.weak(format!("The newest {HISTORY_LIMIT} events"));
    }
    egui::ScrollArea::vertical()
        .id_salt("history-scroll")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for event in events {
                event_ui(ui, event, user.is_some(), now, masking, &mut commands);
                ui.separator();
            }
        });
    commands
}

/// The badge colour of an event kind.
fn kind_color(kind: Option<EventKind>) -> Color32 {
    match kind {
        Some(EventKind::Created | EventKind::Login) => Color32::from_rgb(40, 120, 60),
        Some(EventKind::Rotated) => Color32::from_rgb(50, 90, 150),
        Some(EventKind::Logout | EventKind::Revoked | EventKind::RevokedOthers) => {
            Color32::from_rgb(120, 90, 30)
        }
        Some(EventKind::Expired) => Color32::from_rgb(90, 90, 90),
        Some(
            EventKind::AdminEdit
            | EventKind::AdminExpire
            | EventKind::AdminExtend
            | EventKind::AdminDelete,
        ) => Color32::from_rgb(130, 60, 130),
        None => Color32::from_rgb(70, 70, 70),
    }
}

fn event_ui(
    ui: &mut egui::Ui,
    event: &Event,
    show_session: bool,
    now: DateTime<Utc>,
    masking: &Masking,
    commands: &mut Vec<Command>,
) {
    ui.horizontal_wrapped(|ui| {
        ui.label(relative_time(event.at, now))
            .on_hover_text(timestamp(event.at));
        egui::Frame::new()
            .fill(kind_color(event.kind))
            .corner_radius(4.0)
            .inner_margin(egui::Margin::symmetric(6, 1))
            .show(ui, |ui| {
                ui.label(
                    RichText::new(&event.kind_text)
                        .small()
                        .color(Color32::WHITE),
                );
            });
        let actor = event.actor.map_or("unknown", |actor| actor.as_str());
        ui.label(format!("by {actor}"));
        if show_session {
            match crate::parse_id(&event.session_id) {
                Ok(session_id) => {
                    if ui
                        .link(RichText::new(session_id.short()).monospace())
                        .on_hover_text(format!("Open session {session_id}"))
                        .clicked()
                    {
                        commands.push(Command::Select {
                            session_id,
                            user_id: event.user_id.clone(),
                        });
                    }
                }
                Err(_) => {
                    ui.label(RichText::new(&event.session_id).monospace());
                }
            }
        }
    });
    ui.horizontal_wrapped(|ui| {
        ui.add_space(12.0);
        if let Some(ip) = &event.ip_address {
            ui.label(RichText::new(ip).monospace().weak());
        }
        if let Some(agent) = &event.user_agent {
            ui.label(RichText::new(shared_model::browser_label(Some(agent))).weak())
                .on_hover_text(agent);
        }
        if let Some(detail) = describe_detail(&event.detail, masking) {
            ui.label(RichText::new(detail).weak());
        }
    });
}

/// The detail object as `key: value` pairs; `None` when empty. Times read as
/// timestamps, session ids as their short form, lists as comma lists. Values
/// under secret keys (at any depth) show as `••••`, as in the data tree: the
/// detail is written by whoever audits, and may hold more than key names.
fn describe_detail(detail: &serde_json::Value, masking: &Masking) -> Option<String> {
    let detail = masking.mask_value(detail);
    let map = detail.as_object().filter(|map| !map.is_empty())?;
    Some(
        map.iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(key, value)| format!("{key}: {}", describe_value(value)))
            .collect::<Vec<_>>()
            .join(", "),
    )
    .filter(|text| !text.is_empty())
}

fn describe_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => {
            if let Ok(at) = DateTime::parse_from_rfc3339(text) {
                timestamp(at.with_timezone(&Utc))
            } else if let Ok(session_id) = crate::parse_id(text) {
                session_id.short()
            } else {
                text.clone()
            }
        }
        serde_json::Value::Array(items) => items
            .iter()
            .map(describe_value)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_detail;
    use crate::mask::{Masking, MASK};
    use serde_json::json;

    #[test]
    fn details_read_as_words() {
        let detail = json!({
            "keys": ["cart", "locale"],
            "expires_at": "2026-12-26T05:36:15.889506Z",
            "previous_id": "f0d26009-df4a-1419-7f5c-e213a9021a7d",
            "count": 2,
            "by": null
        });
        assert_eq!(
            describe_detail(&detail, &Masking::default()).unwrap(),
            "count: 2, expires_at: 2026-12-26 05:36:15 UTC, keys: cart, locale, previous_id: f0d26009"
        );
        assert_eq!(describe_detail(&json!({}), &Masking::default()), None);
        assert_eq!(
            describe_detail(&json!({"by": null}), &Masking::default()),
            None
        );
    }

    #[test]
    fn secret_detail_values_are_masked() {
        let detail = json!({
            "keys": ["cart", "csrf_token"],
            "csrf_token": "abc123",
            "changed": {"password": "hunter2", "locale": "de"}
        });
        let shown = describe_detail(&detail, &Masking::default()).unwrap();
        assert!(
            !shown.contains("abc123") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(shown.contains(&format!("csrf_token: {MASK}")), "{shown}");
        assert!(
            shown.contains("keys: cart, csrf_token"),
            "key names stay: {shown}"
        );
        assert!(shown.contains("\"locale\":\"de\""), "{shown}");
        let revealed = describe_detail(&detail, &Masking::off()).unwrap();
        assert!(
            revealed.contains("abc123"),
            "masking off shows it: {revealed}"
        );
    }
}
