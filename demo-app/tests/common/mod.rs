//! Running the demo binary as a real process for the browser and two-instance
//! tests.
//!
//! The binary is `$DEMO_APP_BIN` when set (`.ci/run` points it at the release
//! build, `cargo build --release -p demo-app --all-features`), otherwise the
//! binary Cargo built for this test run (`CARGO_BIN_EXE_demo-app`).

#![allow(dead_code)] // each test file uses a part of it

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a process may take to start serving.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// The demo binary under test.
pub fn demo_binary() -> PathBuf {
    match std::env::var_os("DEMO_APP_BIN") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_demo-app")),
    }
}

/// A port nobody listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// An HTTP client that shows redirects and error statuses as they are and
/// keeps no cookies: the tests carry the session cookie themselves.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Polls `url` until it answers (any status) or `deadline` passes; `alive`
/// is checked on each round so a crashed server fails fast.
pub fn wait_until_serving(
    url: &str,
    deadline: Duration,
    mut alive: impl FnMut() -> Result<(), String>,
) {
    let agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .new_agent();
    let started = Instant::now();
    loop {
        if let Err(problem) = alive() {
            panic!("{url} never came up: {problem}");
        }
        if agent.get(url).call().is_ok() {
            return;
        }
        assert!(
            started.elapsed() < deadline,
            "{url} did not answer within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed when dropped, with its output in a log file.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with stdout and stderr going to `log`.
    pub fn spawn(name: &str, mut command: Command, log: PathBuf) -> Self {
        let out = File::create(&log).expect("create the log file");
        let err = out.try_clone().expect("clone the log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({:?}): {e}", command.get_program()));
        Self {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// `Err` with the log when the process has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited with {status}; its output:\n{}",
                self.name,
                self.log_text()
            )),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }

    /// What the process printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.log.display()))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Kill, then reap, so no zombie outlives the test.
        if let Err(e) = self.child.kill() {
            eprintln!("could not stop {}: {e}", self.name);
        }
        if let Err(e) = self.child.wait() {
            eprintln!("could not reap {}: {e}", self.name);
        }
    }
}

/// A running demo-app on its own loopback port.
pub struct Demo {
    process: Process,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Demo {
    /// Starts the demo on a free port against `database_url` (working directory
    /// `workdir`) and waits until it serves.
    pub fn start(name: &str, database_url: &str, workdir: &Path) -> Self {
        let mut demo = Self::spawn(name, database_url, workdir);
        demo.wait();
        demo
    }

    /// Starts the demo without waiting for it (see [`wait`](Self::wait)).
    pub fn spawn(name: &str, database_url: &str, workdir: &Path) -> Self {
        Self::spawn_with(name, database_url, workdir, "")
    }

    /// [`spawn`](Self::spawn) with more `session` settings, e.g.
    /// `"pool_timeout_seconds=2"`.
    pub fn spawn_with(name: &str, database_url: &str, workdir: &Path, session: &str) -> Self {
        let port = free_port();
        let mut command = Command::new(demo_binary());
        command
            .current_dir(workdir)
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_PORT", port.to_string())
            .env(
                "ROCKET_SESSION",
                if session.is_empty() {
                    format!("{{database_url={database_url:?},timeout_minutes=30}}")
                } else {
                    format!("{{database_url={database_url:?},timeout_minutes=30,{session}}}")
                },
            )
            .env("ROCKET_CLI_COLORS", "false");
        let process = Process::spawn(name, command, workdir.join(format!("{name}.log")));
        Self {
            process,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Waits until the demo serves (panics with its log if it exits first).
    pub fn wait(&mut self) {
        let url = format!("{}/api/session", self.base);
        wait_until_serving(&url, START_DEADLINE, || self.process.check_alive());
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the demo printed so far.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// `Err` with the log when the process has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        self.process.check_alive()
    }
}

/// The value of the `session_id` cookie set by a response, if any (empty for a
/// removal cookie).
pub fn session_cookie<B>(response: &ureq::http::Response<B>) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|header| header.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim() == "session_id")
        .map(|(_, value)| value.trim().to_owned())
}

/// The CSRF token of the first form in `html` (its hidden `csrf_token` field),
/// which a signed-in user's form posts must carry.
pub fn form_token(html: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no CSRF token in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').expect("the token's closing quote");
    let token = &html[start..end];
    assert_eq!(token.len(), 86, "a masked token: {token}");
    token.to_owned()
}
