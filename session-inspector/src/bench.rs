//! The timing mode (`session-inspector --bench`): opens the window, measures the
//! time from launch to the first page of rows on screen, a user filter, and the
//! frame times of a scroll through the table, prints them and closes.

use std::time::{Duration, Instant};

use crate::state::AppState;
use crate::ui::table::ROW_HEIGHT;
use crate::ui::TableView;

/// Frames drawn at the top without scrolling, as the renderer's baseline.
const IDLE_FRAMES: usize = 60;
/// Frames of steady scrolling, three rows per frame.
const SCROLL_FRAMES: usize = 400;
/// Points scrolled per frame.
const SCROLL_STEP: f32 = 3.0 * ROW_HEIGHT;
/// Scrollbar jumps (fractions of the table) after the steady scroll.
const JUMPS: [f32; 4] = [0.25, 0.5, 0.75, 0.999];
/// Frames spent at each jump.
const FRAMES_PER_JUMP: usize = 30;

/// What the benchmark asks the app to do before a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BenchAction {
    /// Filter the table by this user.
    FilterUser(String),
    /// Clear the user filter.
    ClearFilter,
    /// Measurements are complete: print this report and close.
    Finish(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    FirstPage,
    StartFilter(String),
    Filtering { user: String, generation: u64 },
    StartClear,
    Unfiltered,
    Idle { frame: usize },
    Scrolling { frame: usize },
    Done,
}

/// Records the timings; the app calls [`before_frame`](Self::before_frame) and
/// [`after_frame`](Self::after_frame) around every frame.
#[derive(Debug)]
pub struct BenchRecorder {
    launched: Instant,
    phase: Phase,
    first_page: Option<Duration>,
    filter_started: Option<Instant>,
    users: Vec<String>,
    /// Per filtered user: rows shown after, the page query's time, matches.
    filters: Vec<(String, Duration, Option<Duration>, u64)>,
    filter_rows_shown: Option<Duration>,
    filter_query: Option<Duration>,
    idle_ui_times: Vec<f64>,
    idle_intervals: Vec<f64>,
    ui_times: Vec<f64>,
    intervals: Vec<f64>,
    page_queries: Vec<f64>,
    last_frame: Option<Instant>,
    pending_generation: Option<u64>,
}

impl BenchRecorder {
    /// A recorder counting from `launched` (the start of `main`) that times the
    /// filter for each of `users` (none given: the first row's user).
    #[must_use]
    pub fn new(launched: Instant, users: Vec<String>) -> Self {
        Self {
            launched,
            phase: Phase::FirstPage,
            first_page: None,
            filter_started: None,
            users,
            filters: Vec::new(),
            filter_rows_shown: None,
            filter_query: None,
            idle_ui_times: Vec::new(),
            idle_intervals: Vec::new(),
            ui_times: Vec::new(),
            intervals: Vec::new(),
            page_queries: Vec::new(),
            last_frame: None,
            pending_generation: None,
        }
    }

    /// The action for this frame, and how to scroll the table.
    pub fn before_frame(&mut self, state: &AppState) -> (Option<BenchAction>, TableView) {
        match &self.phase {
            Phase::StartFilter(user) => {
                let user = user.clone();
                self.filter_started = Some(Instant::now());
                self.pending_generation = Some(state.table.generation + 1);
                self.phase = Phase::Filtering {
                    user: user.clone(),
                    generation: state.table.generation + 1,
                };
                (Some(BenchAction::FilterUser(user)), TableView::default())
            }
            Phase::StartClear => {
                self.phase = Phase::Unfiltered;
                self.pending_generation = Some(state.table.generation + 1);
                (Some(BenchAction::ClearFilter), TableView::default())
            }
            Phase::Scrolling { frame } => {
                let frame = *frame;
                #[allow(clippy::cast_precision_loss)] // scroll offsets
                let total = state.table.row_count() as f32 * ROW_HEIGHT;
                #[allow(clippy::cast_precision_loss)]
                let offset = if frame < SCROLL_FRAMES {
                    frame as f32 * SCROLL_STEP
                } else {
                    let jump = (frame - SCROLL_FRAMES) / FRAMES_PER_JUMP;
                    JUMPS.get(jump).copied().unwrap_or(1.0) * total
                };
                if frame >= SCROLL_FRAMES + JUMPS.len() * FRAMES_PER_JUMP {
                    self.phase = Phase::Done;
                    return (
                        Some(BenchAction::Finish(self.report(state))),
                        TableView::default(),
                    );
                }
                (
                    None,
                    TableView {
                        scroll_offset: Some(offset),
                    },
                )
            }
            Phase::Idle { .. } => (
                None,
                TableView {
                    scroll_offset: Some(0.0),
                },
            ),
            Phase::FirstPage | Phase::Filtering { .. } | Phase::Unfiltered | Phase::Done => {
                (None, TableView::default())
            }
        }
    }

    /// Records the frame that just ran in `ui_time`.
    pub fn after_frame(&mut self, state: &AppState, ui_time: Duration) {
        let now = Instant::now();
        let shown = state.table.showed_rows
            && self
                .pending_generation
                .is_none_or(|generation| state.table.generation >= generation);
        match &self.phase {
            Phase::FirstPage if shown => {
                self.first_page = Some(self.launched.elapsed());
                if self.users.is_empty() {
                    let first_user = state
                        .table
                        .pages
                        .get(&0)
                        .and_then(|page| page.rows.iter().find_map(|row| row.user_id.clone()));
                    self.users.extend(first_user);
                }
                self.users.reverse();
                self.phase = self.next_filter();
            }
            Phase::Filtering { user, generation }
                if shown && state.table.generation == *generation =>
            {
                let elapsed = self.filter_started.map_or(Duration::ZERO, |t| t.elapsed());
                let rows_shown = *self.filter_rows_shown.get_or_insert(elapsed);
                if let Some(count) = state.table.count {
                    let query = self.filter_query.take();
                    self.filters.push((user.clone(), rows_shown, query, count));
                    self.filter_rows_shown = None;
                    self.phase = self.next_filter();
                }
            }
            Phase::Unfiltered if shown => {
                self.phase = Phase::Idle { frame: 0 };
                self.last_frame = None;
            }
            Phase::Idle { frame } => {
                let frame = *frame;
                if let Some(last) = self.last_frame {
                    self.idle_intervals
                        .push((now - last).as_secs_f64() * 1000.0);
                }
                self.idle_ui_times.push(ui_time.as_secs_f64() * 1000.0);
                if frame + 1 >= IDLE_FRAMES {
                    self.phase = Phase::Scrolling { frame: 0 };
                    self.last_frame = None;
                } else {
                    self.phase = Phase::Idle { frame: frame + 1 };
                    self.last_frame = Some(now);
                }
            }
            Phase::Scrolling { frame } => {
                if let Some(last) = self.last_frame {
                    self.intervals.push((now - last).as_secs_f64() * 1000.0);
                }
                self.ui_times.push(ui_time.as_secs_f64() * 1000.0);
                self.phase = Phase::Scrolling { frame: frame + 1 };
                self.last_frame = Some(now);
            }
            _ => {}
        }
    }

    /// Records how long the worker took for one page query while scrolling.
    pub fn page_loaded(&mut self, elapsed: Duration) {
        match self.phase {
            Phase::Scrolling { .. } => self.page_queries.push(elapsed.as_secs_f64() * 1000.0),
            Phase::Filtering { .. } => self.filter_query = Some(elapsed),
            _ => {}
        }
    }

    fn next_filter(&mut self) -> Phase {
        match self.users.pop() {
            Some(user) => Phase::StartFilter(user),
            None => Phase::StartClear,
        }
    }

    fn report(&self, state: &AppState) -> String {
        let ms = |d: Option<Duration>| {
            d.map_or_else(
                || "n/a".to_owned(),
                |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0),
            )
        };
        let url = state
            .connection
            .current
            .as_ref()
            .map_or("?", |c| c.display_url.as_str());
        let mut lines = vec![
            format!(
                "bench database: {url} ({} rows)",
                state.table.count.unwrap_or(0)
            ),
            format!("bench launch to first page shown: {}", ms(self.first_page)),
        ];
        if self.filters.is_empty() {
            lines.push("bench user filter: n/a (no user in the first page)".to_owned());
        }
        for (user, rows_shown, query, count) in &self.filters {
            lines.push(format!(
                "bench user filter {user} ({count} matches): first page shown {} (page query on the worker {})",
                ms(Some(*rows_shown)),
                ms(*query)
            ));
        }
        lines.push(format!(
            "bench idle at the top: {} frames; UI time per frame {}; frame interval {}",
            self.idle_ui_times.len(),
            summary(&self.idle_ui_times),
            summary(&self.idle_intervals)
        ));
        lines.push(format!(
            "bench scroll: {} frames; UI time per frame {}; frame interval {}",
            self.ui_times.len(),
            summary(&self.ui_times),
            summary(&self.intervals)
        ));
        lines.push(format!(
            "bench page queries while scrolling (worker thread): {} pages; {}",
            self.page_queries.len(),
            summary(&self.page_queries)
        ));
        lines.join("\n")
    }
}

/// `p50 / p95 / max` of millisecond samples.
fn summary(samples: &[f64]) -> String {
    if samples.is_empty() {
        return "n/a".to_owned();
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let index = ((sorted.len() - 1) as f64 * q).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    };
    format!(
        "p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        at(0.5),
        at(0.95),
        at(1.0)
    )
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn summary_reports_percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(
            summary(&samples),
            "p50 51.00 ms, p95 95.00 ms, max 100.00 ms"
        );
        assert_eq!(summary(&[]), "n/a");
    }
}
