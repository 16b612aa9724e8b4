//! A collapsible tree of a session's JSON data, with secret values masked and
//! revealed one by one.

use std::collections::HashSet;

use egui::text::LayoutJob;
use egui::{Color32, FontId, TextFormat};
use serde_json::Value;
use shared_model::SessionData;

use super::Command;
use crate::mask::{child_path, Masking, MASK};

/// Draws `data` as a tree: objects and arrays collapse, leaves show
/// `key: value` with the value coloured by type. Values under secret keys show
/// as [`MASK`] with a reveal button (`Reveal <key>`) unless their path is in
/// `revealed`; revealed ones get a `Hide <key>` button.
pub fn json_tree_ui(
    ui: &mut egui::Ui,
    data: &SessionData,
    masking: &Masking,
    revealed: &HashSet<String>,
) -> Vec<Command> {
    let mut commands = Vec::new();
    if data.is_empty() {
        ui.weak("{} (empty)");
    }
    let tree = Tree {
        masking,
        revealed,
        root: egui::Id::unique("json-tree"),
    };
    for (key, value) in data {
        tree.node_ui(ui, key, value, &child_path("", key), 0, &mut commands);
    }
    commands
}

struct Tree<'a> {
    masking: &'a Masking,
    revealed: &'a HashSet<String>,
    root: egui::Id,
}

impl Tree<'_> {
    fn node_ui(
        &self,
        ui: &mut egui::Ui,
        key: &str,
        value: &Value,
        path: &str,
        depth: usize,
        commands: &mut Vec<Command>,
    ) {
        let secret = self.masking.is_secret(key);
        if secret && !self.revealed.contains(path) {
            ui.horizontal(|ui| {
                ui.label(leaf_job(ui, key, &Value::String(MASK.to_owned()), true));
                if ui
                    .small_button("👁")
                    .on_hover_text("Reveal this value (masked because its key looks secret)")
                    .accessible_name(format!("Reveal {key}"))
                    .clicked()
                {
                    commands.push(Command::Reveal(path.to_owned()));
                }
            });
            return;
        }
        let conceal = |ui: &mut egui::Ui, commands: &mut Vec<Command>| {
            if secret
                && ui
                    .small_button("🙈")
                    .on_hover_text("Mask this value again")
                    .accessible_name(format!("Hide {key}"))
                    .clicked()
            {
                commands.push(Command::Conceal(path.to_owned()));
            }
        };
        let id = self.root.with(path);
        match value {
            Value::Object(map) => {
                conceal(ui, commands);
                egui::CollapsingHeader::new(format!("{key}  {{{}}}", plural(map.len(), "key")))
                    .id_salt(id)
                    .default_open(depth < 1)
                    .show(ui, |ui| {
                        for (child, value) in map {
                            let path = child_path(path, child);
                            self.node_ui(ui, child, value, &path, depth + 1, commands);
                        }
                    });
            }
            Value::Array(items) => {
                conceal(ui, commands);
                egui::CollapsingHeader::new(format!("{key}  [{}]", plural(items.len(), "item")))
                    .id_salt(id)
                    .default_open(depth < 1)
                    .show(ui, |ui| {
                        for (index, value) in items.iter().enumerate() {
                            let child = index.to_string();
                            let path = child_path(path, &child);
                            self.node_ui(ui, &child, value, &path, depth + 1, commands);
                        }
                    });
            }
            leaf => {
                ui.horizontal(|ui| {
                    ui.label(leaf_job(ui, key, leaf, false));
                    conceal(ui, commands);
                });
            }
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

fn leaf_job(ui: &egui::Ui, key: &str, value: &Value, masked: bool) -> LayoutJob {
    let font = FontId::monospace(12.0);
    let text_color = ui.visuals().text_color();
    let value_color = if masked {
        ui.visuals().weak_text_color()
    } else {
        match value {
            Value::String(_) => Color32::from_rgb(152, 195, 121),
            Value::Number(_) => Color32::from_rgb(97, 175, 239),
            Value::Bool(_) | Value::Null => Color32::from_rgb(209, 154, 102),
            Value::Array(_) | Value::Object(_) => text_color,
        }
    };
    let mut job = LayoutJob::default();
    job.append(
        key,
        0.0,
        TextFormat::simple(font.clone(), ui.visuals().strong_text_color()),
    );
    job.append(": ", 0.0, TextFormat::simple(font.clone(), text_color));
    let shown = if masked {
        MASK.to_owned()
    } else {
        value.to_string()
    };
    job.append(&shown, 0.0, TextFormat::simple(font, value_color));
    job
}
