//! `session-inspector`: the desktop app (no subcommand) and its CLI.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use session_inspector::cli::{self, Cli};
use session_inspector::config::database_url_from_environment;
use session_inspector::{AppOptions, InitialSelection, InspectorApp};

/// The exit status of `purge` when another process is purging the same
/// database: a cron job can tell "skipped, someone else is on it" from a failure.
const PURGE_RUNNING: u8 = 3;

fn main() -> ExitCode {
    let launched = Instant::now();
    let cli = Cli::parse();
    match run(cli, launched) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let status = match error.downcast_ref::<session_inspector::Error>() {
                Some(session_inspector::Error::Model(shared_model::Error::PurgeRunning)) => {
                    ExitCode::from(PURGE_RUNNING)
                }
                _ => ExitCode::FAILURE,
            };
            // One line, even when a driver's message spans several (libpq's do).
            let message = error.to_string();
            let line: Vec<&str> = message
                .lines()
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .collect();
            eprintln!("session-inspector: {}", line.join(" "));
            status
        }
    }
}

fn run(cli: Cli, launched: Instant) -> anyhow::Result<()> {
    let (url, source) = database_url_from_environment(cli.database_url.as_deref())?;
    if let Some(command) = &cli.command {
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        // Every library error's message already includes its cause: one line.
        return match cli::run(
            command,
            &url,
            cli.read_only,
            &mut stdout.lock(),
            &mut stderr.lock(),
        ) {
            Ok(()) => Ok(()),
            Err(error) if error.is_broken_pipe() => Ok(()),
            Err(error) => {
                let message = format!(
                    "{error} (database {} from {source})",
                    shared_model::redact_url(&url)
                );
                // The message is the context; the error stays for its status.
                Err(anyhow::Error::new(error).context(message))
            }
        };
    }
    let select = match (cli.select, cli.select_first) {
        (Some(id), _) => Some(InitialSelection::Id(id)),
        (None, true) => Some(InitialSelection::First),
        (None, false) => None,
    };
    // The timing mode measures a fresh window at full speed.
    #[cfg(feature = "bench")]
    let timing = cli.bench;
    #[cfg(not(feature = "bench"))]
    let timing = {
        // Only the timing mode reads the launch time.
        let _ = launched;
        false
    };
    let options = AppOptions {
        database_url: url,
        read_only: cli.read_only,
        select,
        #[cfg(feature = "bench")]
        bench: cli.bench.then_some(launched),
        #[cfg(feature = "bench")]
        bench_users: cli.bench_user,
        auto_refresh_secs: cli.auto_refresh,
    };
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Session inspector")
            .with_inner_size([1440.0, 880.0])
            .with_min_inner_size([900.0, 520.0]),
        // The timing mode measures a fresh window, not a restored one.
        persist_window: !timing,
        // The timing mode measures how fast frames can be made, not the display's rate.
        glow_options: eframe::egui_glow::GlowConfiguration {
            vsync: !timing,
            ..eframe::egui_glow::GlowConfiguration::default()
        },
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        "session-inspector",
        native,
        Box::new(move |cc| {
            Ok(Box::new(InspectorApp::new(
                &cc.egui_ctx,
                options,
                cc.storage,
            )))
        }),
    )
    .map_err(|error| anyhow::anyhow!("cannot open the window: {error}"))
}
