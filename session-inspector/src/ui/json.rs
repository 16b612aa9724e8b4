//! A collapsible tree of a session's JSON data.

use egui::text::LayoutJob;
use egui::{Color32, FontId, TextFormat};
use serde_json::Value;
use shared_model::SessionData;

/// Draws `data` as a tree: objects and arrays collapse, leaves show
/// `key: value` with the value coloured by type.
pub fn json_tree_ui(ui: &mut egui::Ui, data: &SessionData) {
    if data.is_empty() {
        ui.weak("{} (empty)");
    }
    let root = egui::Id::unique("json-tree");
    for (key, value) in data {
        node_ui(ui, key, value, root.with(key), 0);
    }
}

fn node_ui(ui: &mut egui::Ui, key: &str, value: &Value, id: egui::Id, depth: usize) {
    match value {
        Value::Object(map) => {
            egui::CollapsingHeader::new(format!("{key}  {{{}}}", plural(map.len(), "key")))
                .id_salt(id)
                .default_open(depth < 1)
                .show(ui, |ui| {
                    for (child, value) in map {
                        node_ui(ui, child, value, id.with(child), depth + 1);
                    }
                });
        }
        Value::Array(items) => {
            egui::CollapsingHeader::new(format!("{key}  [{}]", plural(items.len(), "item")))
                .id_salt(id)
                .default_open(depth < 1)
                .show(ui, |ui| {
                    for (index, value) in items.iter().enumerate() {
                        node_ui(ui, &index.to_string(), value, id.with(index), depth + 1);
                    }
                });
        }
        leaf => {
            ui.label(leaf_job(ui, key, leaf));
        }
    }
}

/// `1 key`, `3 keys`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn leaf_job(ui: &egui::Ui, key: &str, value: &Value) -> LayoutJob {
    let font = FontId::monospace(12.0);
    let text_color = ui.visuals().text_color();
    let value_color = match value {
        Value::String(_) => Color32::from_rgb(152, 195, 121),
        Value::Number(_) => Color32::from_rgb(97, 175, 239),
        Value::Bool(_) | Value::Null => Color32::from_rgb(209, 154, 102),
        Value::Array(_) | Value::Object(_) => text_color,
    };
    let mut job = LayoutJob::default();
    job.append(
        key,
        0.0,
        TextFormat::simple(font.clone(), ui.visuals().strong_text_color()),
    );
    job.append(": ", 0.0, TextFormat::simple(font.clone(), text_color));
    job.append(
        &value.to_string(),
        0.0,
        TextFormat::simple(font, value_color),
    );
    job
}
