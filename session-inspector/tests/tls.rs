//! PostgreSQL over TLS: the real CLI binary and the shared-model pool against a
//! throwaway cluster that refuses plain connections (`TlsPostgres`).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use std::os::unix::process::ExitStatusExt as _;
use std::process::Output;

use assert_cmd::Command;
use shared_model::tls_cluster::{server_sees_tls, TlsPostgres};
use shared_model::Database;

/// Runs of each short command: a process that crashes at exit now and then
/// (libpq's OpenSSL exit handlers) fails one of them.
const RUNS: usize = 20;

fn inspector(url: &str) -> Command {
    let mut command = Command::cargo_bin("session-inspector").unwrap();
    command
        .env_remove("DATABASE_URL")
        .args(["--database-url", url]);
    command
}

/// The output of a run that exited with status 0; a crash (a signal) or a
/// failure is reported with the run's stderr.
fn successful(command: &mut Command, what: &str) -> Output {
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if let Some(signal) = output.status.signal() {
        panic!(
            "{what}: killed by signal {signal}{}; stderr: {stderr}",
            if output.status.core_dumped() {
                " (core dumped)"
            } else {
                ""
            }
        );
    }
    assert!(
        output.status.success(),
        "{what}: {}; stderr: {stderr}",
        output.status
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A pool that opens connections only while a caller waits: none is being set
/// up on r2d2's thread when the test process exits.
fn connect(url: &str) -> Database {
    Database::builder(url).min_idle(0).connect().unwrap()
}

/// The message of a connection attempt that must fail.
fn connect_error(url: &str) -> String {
    match Database::builder(url).min_idle(0).connect() {
        Ok(_) => panic!("{url}: connected, but must be refused"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn the_cli_works_over_tls_and_never_crashes_at_exit() {
    let cluster = TlsPostgres::start();
    let url = cluster.url("require");

    let seeded = successful(inspector(&url).args(["seed", "--count", "50"]), "seed");
    assert!(
        stdout(&seeded).starts_with("inserted 50 fake session(s) into postgres://"),
        "{}",
        stdout(&seeded)
    );
    for run in 1..=RUNS {
        let listed = successful(
            inspector(&url).args(["list", "--limit", "5"]),
            &format!("list, run {run} of {RUNS}"),
        );
        assert!(
            stdout(&listed).ends_with("5 session(s)\n"),
            "{}",
            stdout(&listed)
        );
        let stats = successful(
            inspector(&url).arg("stats"),
            &format!("stats, run {run} of {RUNS}"),
        );
        assert!(
            stdout(&stats).starts_with("total           50\n"),
            "{}",
            stdout(&stats)
        );
    }
}

#[test]
fn tls_is_really_used_and_the_certificate_is_verified() {
    let cluster = TlsPostgres::start();

    // The server refuses a plain connection (`hostnossl ... reject`).
    let plain = connect_error(&cluster.url("disable"));
    assert!(
        plain.contains("pg_hba.conf rejects") && plain.contains("no encryption"),
        "{plain}\nserver log:\n{}",
        cluster.server_log()
    );

    // `require` encrypts, and the server says so.
    let required = connect(&cluster.url("require"));
    assert!(server_sees_tls(&required));

    // `verify-full` with the CA that signed the server's certificate for `localhost`.
    let verified = connect(&format!(
        "{}&sslrootcert={}",
        cluster.url("verify-full"),
        cluster.ca_file().display()
    ));
    assert!(server_sees_tls(&verified));

    // ... and with another CA, verification fails before any query.
    let wrong_ca = connect_error(&format!(
        "{}&sslrootcert={}",
        cluster.url("verify-full"),
        cluster.untrusted_ca_file().display()
    ));
    assert!(wrong_ca.contains("certificate verify failed"), "{wrong_ca}");

    // The CLI reports the same failure on one line and exits with status 1.
    let output = inspector(&format!(
        "{}&sslrootcert={}",
        cluster.url("verify-full"),
        cluster.untrusted_ca_file().display()
    ))
    .arg("stats")
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("certificate verify failed"), "{stderr}");
}
