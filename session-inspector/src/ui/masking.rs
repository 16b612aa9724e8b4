//! The masking menu: masking on or off and the key patterns that make a value
//! secret. Both are remembered.

use egui::containers::menu::{MenuButton, MenuConfig};
use egui::PopupCloseBehavior;

use super::Command;
use crate::mask::DEFAULT_PATTERNS;
use crate::state::AppState;

/// Draws the "🔒 Masking" menu button and, when open, its settings.
pub fn masking_menu_ui(ui: &mut egui::Ui, state: &mut AppState) -> Vec<Command> {
    let mut commands = Vec::new();
    let title = if state.masking.enabled {
        "🔒 Masking"
    } else {
        "🔓 Masking (off)"
    };
    MenuButton::new(title)
        .config(MenuConfig::new().close_behavior(PopupCloseBehavior::CloseOnClickOutside))
        .ui(ui, |ui| {
            ui.set_min_width(300.0);
            if ui
                .checkbox(&mut state.masking.enabled, "Mask secret values")
                .on_hover_text(
                    "Show values under secret-looking keys as •••• in the tree, the raw \
                     editor and exports; reveal them one by one in the tree",
                )
                .changed()
            {
                commands.push(Command::MaskingChanged);
            }
            let label = ui.label("Secret key patterns");
            if ui
                .add(egui::TextEdit::singleline(&mut state.patterns_input).desired_width(280.0))
                .labelled_by(label.id)
                .changed()
            {
                commands.push(Command::MaskingChanged);
            }
            ui.weak(
                "Comma separated. A key is secret when it contains a pattern, ignoring \
                 case, \"_\" and \"-\" (api_key matches apiKey and X-Api-Key).",
            );
            if ui.button("Reset to defaults").clicked() {
                state.patterns_input = DEFAULT_PATTERNS.join(", ");
                commands.push(Command::MaskingChanged);
            }
        });
    commands
}
