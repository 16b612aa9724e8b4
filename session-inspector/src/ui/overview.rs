//! The overview: counts, plots of sessions created and expiring per hour, top
//! users, and purge.

use chrono::{DateTime, Utc};
use egui::RichText;
use egui_plot::{Bar, BarChart, Plot};
use shared_model::HourCount;

use super::{write_refusal, Command};
use crate::messages::STATS_HOURS;
use crate::state::AppState;
use crate::ui::table::thousands;

/// Draws the overview tab.
pub fn overview_ui(ui: &mut egui::Ui, state: &AppState) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.horizontal(|ui| {
        ui.heading("Overview");
        if ui.button("⟳ Reload").clicked() {
            commands.push(Command::LoadStats);
        }
        if state.stats_loading {
            ui.spinner();
        }
        ui.separator();
        if state.purge.running {
            ui.add(
                egui::ProgressBar::new(state.purge.fraction())
                    .desired_width(240.0)
                    .show_percentage()
                    .text(format!(
                        "Purging: {} of {}",
                        thousands(state.purge.removed),
                        thousands(state.purge.total)
                    )),
            );
        } else if ui
            .add_enabled(
                write_refusal(&state.connection).is_none() && state.job.is_none(),
                egui::Button::new("🗑 Purge expired…"),
            )
            .on_disabled_hover_text(
                write_refusal(&state.connection).unwrap_or("Wait for the running job to finish"),
            )
            .clicked()
        {
            commands.push(Command::AskPurge);
        }
        if let Some(removed) = state.purge.last_removed {
            ui.label(format!(
                "Last purge removed {} sessions",
                thousands(removed)
            ));
        }
    });
    let Some(stats) = &state.stats else {
        ui.label(RichText::new("Loading statistics…").weak());
        return commands;
    };
    ui.add_space(8.0);
    ui.horizontal(|ui| {
        for (name, value) in [
            ("Total", stats.total),
            ("Active", stats.active),
            ("Expired", stats.expired),
            ("Distinct users", stats.distinct_users),
        ] {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.set_min_width(140.0);
                ui.vertical(|ui| {
                    ui.weak(name);
                    ui.label(RichText::new(thousands(value)).size(22.0).strong());
                });
            });
        }
    });
    ui.add_space(8.0);
    let now = state.now;
    let plot_height = (ui.available_height() / 2.0 - 40.0).clamp(120.0, 260.0);
    ui.columns(2, |columns| {
        let [left, right] = columns else {
            return;
        };
        left.strong(format!("Sessions created per hour (last {STATS_HOURS} h)"));
        hour_plot(
            left,
            "created-per-hour",
            &stats.created_per_hour,
            now,
            plot_height,
            "hours ago",
            egui::Color32::from_rgb(97, 150, 230),
        );
        right.strong(format!("Sessions expiring per hour (next {STATS_HOURS} h)"));
        hour_plot(
            right,
            "expiring-per-hour",
            &stats.expiring_per_hour,
            now,
            plot_height,
            "hours ahead",
            egui::Color32::from_rgb(220, 150, 80),
        );
    });
    ui.add_space(8.0);
    ui.strong("Top users by session count");
    if stats.top_users.is_empty() {
        ui.weak("No sessions belong to a user.");
        return commands;
    }
    let names: Vec<String> = stats.top_users.iter().map(|u| u.user_id.clone()).collect();
    #[allow(clippy::cast_precision_loss)] // plot coordinates
    let bars: Vec<Bar> = stats
        .top_users
        .iter()
        .enumerate()
        .map(|(rank, user)| {
            Bar::new(rank as f64, user.sessions as f64)
                .width(0.7)
                .name(&user.user_id)
        })
        .collect();
    Plot::new("top-users")
        .height(ui.available_height().clamp(120.0, 320.0))
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .show_grid([true, false])
        .y_axis_formatter(move |mark, _range| {
            let rank = mark.value.round();
            if (mark.value - rank).abs() > 0.01 || rank < 0.0 {
                return String::new();
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            names.get(rank as usize).cloned().unwrap_or_default()
        })
        .x_axis_label("sessions")
        .show(ui, |plot_ui| {
            plot_ui.bar_chart(
                BarChart::new("sessions per user", bars)
                    .horizontal()
                    .color(egui::Color32::from_rgb(90, 170, 110)),
            );
        });
    commands
}

fn hour_plot(
    ui: &mut egui::Ui,
    id: &str,
    counts: &[HourCount],
    now: DateTime<Utc>,
    height: f32,
    axis: &str,
    color: egui::Color32,
) {
    #[allow(clippy::cast_precision_loss)] // plot coordinates
    let bars: Vec<Bar> = counts
        .iter()
        .map(|count| {
            let hours = (count.hour - now).num_minutes() as f64 / 60.0;
            Bar::new(hours.abs().floor() + 0.5, count.sessions as f64).width(0.9)
        })
        .collect();
    Plot::new(id)
        .height(height)
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .include_x(0.0)
        .include_x(f64::from(STATS_HOURS))
        .include_y(0.0)
        .x_axis_label(axis.to_owned())
        .show(ui, |plot_ui| {
            plot_ui.bar_chart(BarChart::new(id.to_owned(), bars).color(color));
        });
}
