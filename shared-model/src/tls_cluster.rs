//! A throwaway PostgreSQL cluster that only accepts TLS, for tests (cargo feature
//! `test-util`).
//!
//! [`TlsPostgres::start`] makes a certificate authority and a server certificate
//! for `localhost` and `127.0.0.1` with the `openssl` command, runs `initdb`, and
//! starts `postgres` on a free port of 127.0.0.1 with `ssl = on`. Its
//! `pg_hba.conf` trusts TLS connections (`hostssl`) and rejects every other TCP
//! connection (`hostnossl ... reject`): a client that gets in used TLS. Dropping
//! the guard stops the server and removes its files.
//!
//! The server programs are looked up in the directory named by
//! `SESSIONS_TEST_PG_BIN`, else in the newest `/usr/lib/postgresql/*/bin`
//! (Debian's layout), else on `PATH`. `initdb` and `postgres` refuse to run as
//! root, so under root the cluster runs as the `postgres` OS user (through
//! `runuser`), which then owns the temporary directory.
//!
//! Nothing here needs the `postgres` cargo feature: connecting is up to the test.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The environment variable naming the directory with `initdb`, `pg_ctl` and
/// `postgres` (e.g. `/usr/lib/postgresql/15/bin`), when the default lookup does
/// not find them.
pub const PG_BIN_VAR: &str = "SESSIONS_TEST_PG_BIN";

/// How many free ports to try when another process takes the chosen one first.
const START_ATTEMPTS: u32 = 5;
/// Seconds `pg_ctl` waits for the server to accept connections.
const START_TIMEOUT_SECS: u32 = 30;

/// The `openssl` configuration for both certificates. `-subj` sets the names;
/// the sections set the extensions, so the result does not depend on the
/// system's `openssl.cnf`.
const OPENSSL_CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// A running PostgreSQL cluster that accepts only TLS connections; stopped and
/// removed on drop.
///
/// # Examples
///
/// ```no_run
/// use shared_model::tls_cluster::TlsPostgres;
///
/// let cluster = TlsPostgres::start();
/// let url = cluster.url("require");
/// assert!(url.starts_with("postgres://postgres@localhost:"));
/// let verified = format!("{}&sslrootcert={}", cluster.url("verify-full"), cluster.ca_file().display());
/// # let _ = verified;
/// ```
#[derive(Debug)]
pub struct TlsPostgres {
    /// Holds everything: certificates, data directory, socket, log.
    dir: tempfile::TempDir,
    data_dir: PathBuf,
    log_file: PathBuf,
    port: u16,
    ca_file: PathBuf,
    untrusted_ca_file: PathBuf,
    programs: Programs,
}

impl TlsPostgres {
    /// Makes the certificates and the cluster and starts the server; returns once
    /// it accepts connections (waiting at most 30 s).
    ///
    /// # Panics
    ///
    /// When the cluster cannot be started, with the reason: a missing program
    /// (`initdb`, `openssl`, `runuser`), a failing command with its output, or the
    /// server's log when it did not come up. A test that needs the cluster fails;
    /// it never passes silently.
    #[must_use]
    #[track_caller]
    pub fn start() -> Self {
        match Self::try_start() {
            Ok(cluster) => cluster,
            Err(reason) => panic!("cannot start the TLS PostgreSQL cluster: {reason}"),
        }
    }

    /// A URL for the cluster's `postgres` database as the `postgres` user, with
    /// this `sslmode` (`require`, `verify-full`, `disable`, ...), e.g.
    /// `postgres://postgres@localhost:54321/postgres?sslmode=require`.
    /// Add `&sslrootcert=` and [`ca_file`](Self::ca_file) for `verify-ca` and
    /// `verify-full`.
    #[must_use]
    pub fn url(&self, sslmode: &str) -> String {
        format!(
            "postgres://postgres@localhost:{}/postgres?sslmode={sslmode}",
            self.port
        )
    }

    /// The certificate (PEM) of the authority that signed the server's
    /// certificate: what `sslrootcert` names for `verify-full`.
    #[must_use]
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The certificate (PEM) of another authority, which signed nothing this
    /// server presents: `verify-ca` and `verify-full` must fail with it.
    #[must_use]
    pub fn untrusted_ca_file(&self) -> &Path {
        &self.untrusted_ca_file
    }

    /// The TCP port the server listens on (on 127.0.0.1).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log so far (empty when it cannot be read): for a failing
    /// test's message.
    #[must_use]
    pub fn server_log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    fn try_start() -> Result<Self, String> {
        let programs = Programs::find()?;
        let dir = tempfile::Builder::new()
            .prefix("tls-postgres-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let base_dir = dir.path();
        // Files are created with the effective user id: owned by root means root.
        let as_root = base_dir
            .metadata()
            .map_err(|e| format!("{}: {e}", base_dir.display()))?
            .uid()
            == 0;
        let programs = Programs {
            runuser: if as_root { Some(find_runuser()?) } else { None },
            ..programs
        };

        let tls = base_dir.join("tls");
        create_dir(&tls)?;
        let certificates = make_certificates(&programs.openssl, &tls)?;
        let data_dir = base_dir.join("data");
        let log_file = base_dir.join("server.log");
        if as_root {
            // The server reads its key and writes its files as `postgres`.
            run(
                Command::new("chown")
                    .arg("-R")
                    .arg("postgres:")
                    .arg(base_dir),
                "chown -R postgres: (the cluster runs as the postgres OS user)",
            )?;
        }

        run(
            programs
                .server("initdb")
                .arg("-D")
                .arg(&data_dir)
                .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8"])
                .args(["--locale=C", "--no-sync"])
                .current_dir(base_dir),
            &programs.describe("initdb"),
        )?;
        configure(&data_dir, base_dir, &certificates)?;

        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let started = run(
                programs
                    .server("pg_ctl")
                    .arg("-D")
                    .arg(&data_dir)
                    .arg("-l")
                    .arg(&log_file)
                    .args(["-w", "-t", &START_TIMEOUT_SECS.to_string()])
                    .args(["-o", &format!("-p {port}")])
                    .arg("start")
                    .current_dir(base_dir),
                &programs.describe("pg_ctl start"),
            );
            match started {
                Ok(_) => {
                    return Ok(Self {
                        dir,
                        data_dir,
                        log_file,
                        port,
                        ca_file: certificates.ca,
                        untrusted_ca_file: certificates.untrusted_ca,
                        programs,
                    })
                }
                Err(error) => {
                    let log = fs::read_to_string(&log_file).unwrap_or_default();
                    last_error = format!("{error}\nserver log ({}):\n{log}", log_file.display());
                    // A server still starting after the wait must not outlive its files.
                    if stop_server(&programs, &data_dir, base_dir).is_ok() {
                        last_error.push_str("\n(the server was still starting; stopped it)");
                    }
                    // Another process took the port between our check and the bind.
                    if !log.contains("could not bind") && !log.contains("already in use") {
                        break;
                    }
                }
            }
        }
        Err(last_error)
    }
}

/// Whether the server sees a connection of `db` as encrypted
/// (`pg_stat_ssl.ssl` for the connection's own backend).
///
/// # Panics
///
/// When `db` is not a PostgreSQL pool or the query fails.
#[cfg(feature = "postgres")]
#[must_use]
pub fn server_sees_tls(db: &crate::Database) -> bool {
    use diesel::RunQueryDsl as _;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ssl: bool,
    }
    let row: Result<Row, crate::Error> = db.with_connection(|conn| match conn {
        crate::AnyConnection::Postgres(conn) => {
            diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .get_result(conn)
                .map_err(crate::Error::from)
        }
        #[allow(unreachable_patterns)]
        _ => panic!("server_sees_tls needs a PostgreSQL pool"),
    });
    match row {
        Ok(row) => row.ssl,
        Err(error) => panic!("pg_stat_ssl: {error}"),
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        if let Err(error) = stop_server(&self.programs, &self.data_dir, self.dir.path()) {
            // Best effort, so no server outlives the test: kill the postmaster.
            let pid = fs::read_to_string(self.data_dir.join("postmaster.pid"))
                .ok()
                .and_then(|text| text.lines().next().map(str::to_owned));
            let killed = pid.map(|pid| run(Command::new("kill").args(["-KILL", &pid]), "kill"));
            eprintln!("TLS PostgreSQL cluster: {error}; killing it: {killed:?}");
        }
    }
}

/// Stops the server of `data_dir` at once: `immediate`, because its files are
/// deleted next and nothing needs a clean shutdown.
fn stop_server(programs: &Programs, data_dir: &Path, base_dir: &Path) -> Result<Output, String> {
    run(
        programs
            .server("pg_ctl")
            .arg("-D")
            .arg(data_dir)
            .args(["-m", "immediate", "-w", "-t", "10", "stop"])
            .current_dir(base_dir),
        &programs.describe("pg_ctl stop"),
    )
}

/// Where the programs are and how to run the server ones.
#[derive(Debug, Clone)]
struct Programs {
    /// The directory with `initdb`, `pg_ctl` and `postgres`.
    bin: PathBuf,
    openssl: PathBuf,
    /// `runuser`, when the server programs must run as the `postgres` OS user.
    runuser: Option<PathBuf>,
}

impl Programs {
    fn find() -> Result<Self, String> {
        let bin = find_server_bin()?;
        let openssl = find_on_path("openssl").ok_or(
            "openssl not found on PATH; install it (Debian: apt-get install openssl)".to_owned(),
        )?;
        Ok(Self {
            bin,
            openssl,
            runuser: None,
        })
    }

    /// A command running the server program `name`, as `postgres` under root.
    fn server(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        match &self.runuser {
            Some(runuser) => {
                let mut command = Command::new(runuser);
                command.args(["-u", "postgres", "--"]).arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    fn describe(&self, what: &str) -> String {
        match self.runuser {
            Some(_) => format!("{what} (as the postgres OS user)"),
            None => what.to_owned(),
        }
    }
}

/// `SESSIONS_TEST_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`, else the
/// directory of `initdb` on `PATH`.
fn find_server_bin() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os(PG_BIN_VAR) {
        let dir = PathBuf::from(dir);
        let initdb = dir.join("initdb");
        return if initdb.is_file() {
            Ok(dir)
        } else {
            Err(format!(
                "initdb not found at {} ({PG_BIN_VAR}); install postgresql \
                 (Debian: apt-get install postgresql) or point {PG_BIN_VAR} at its bin directory",
                initdb.display()
            ))
        };
    }
    let debian = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(debian)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Some(bin) = find_on_path("initdb").and_then(|initdb| initdb.parent().map(Path::to_owned))
    {
        return Ok(bin);
    }
    Err(format!(
        "initdb not found in {}/*/bin nor on PATH; install postgresql \
         (Debian: apt-get install postgresql) or point {PG_BIN_VAR} at its bin directory",
        debian.display()
    ))
}

fn find_runuser() -> Result<PathBuf, String> {
    find_on_path("runuser")
        .or_else(|| {
            ["/usr/sbin/runuser", "/sbin/runuser"]
                .into_iter()
                .map(PathBuf::from)
                .find(|path| path.is_file())
        })
        .ok_or_else(|| {
            "runuser not found: as root, initdb and postgres must run as the postgres OS user \
             (Debian: apt-get install util-linux postgresql)"
                .to_owned()
        })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// The files [`make_certificates`] writes.
struct Certificates {
    ca: PathBuf,
    untrusted_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

/// A CA, a server certificate for `localhost` and `127.0.0.1` signed by it, and
/// a second, unrelated CA. EC keys: generated in milliseconds.
fn make_certificates(openssl: &Path, dir: &Path) -> Result<Certificates, String> {
    let config = dir.join("openssl.cnf");
    fs::write(&config, OPENSSL_CONFIG).map_err(|e| format!("{}: {e}", config.display()))?;
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let make_ca = |name: &str, subject: &str| -> Result<PathBuf, String> {
        let cert = dir.join(format!("{name}.crt"));
        run(
            Command::new(openssl)
                .args(["req", "-x509", "-new"])
                .args(new_key)
                .arg("-keyout")
                .arg(dir.join(format!("{name}.key")))
                .arg("-out")
                .arg(&cert)
                .args(["-days", "2", "-subj", subject, "-extensions", "ca_ext"])
                .arg("-config")
                .arg(&config),
            "openssl req (certificate authority)",
        )?;
        Ok(cert)
    };
    let ca = make_ca("ca", "/CN=sessions test CA")?;
    let untrusted_ca = make_ca("untrusted-ca", "/CN=sessions untrusted test CA")?;

    let server_key = dir.join("server.key");
    let request = dir.join("server.csr");
    run(
        Command::new(openssl)
            .args(["req", "-new"])
            .args(new_key)
            .arg("-keyout")
            .arg(&server_key)
            .arg("-out")
            .arg(&request)
            .args(["-subj", "/CN=localhost"])
            .arg("-config")
            .arg(&config),
        "openssl req (server key)",
    )?;
    let server_cert = dir.join("server.crt");
    run(
        Command::new(openssl)
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(&request)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(dir.join("ca.key"))
            .arg("-out")
            .arg(&server_cert)
            .args(["-extensions", "server_ext"])
            .arg("-extfile")
            .arg(&config),
        "openssl x509 (sign the server certificate)",
    )?;
    // The server refuses a key others can read.
    fs::set_permissions(&server_key, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", server_key.display()))?;
    Ok(Certificates {
        ca,
        untrusted_ca,
        server_cert,
        server_key,
    })
}

/// TLS on, TCP on 127.0.0.1 only, the socket in `socket_dir`, and
/// `pg_hba.conf`: TLS trusted, plain TCP rejected.
fn configure(
    data_dir: &Path,
    socket_dir: &Path,
    certificates: &Certificates,
) -> Result<(), String> {
    let hba = data_dir.join("pg_hba.conf");
    // Rewriting keeps the file's owner (`postgres` under root).
    fs::write(
        &hba,
        "local     all all              trust\n\
         hostssl   all all 127.0.0.1/32 trust\n\
         hostssl   all all ::1/128      trust\n\
         hostnossl all all 0.0.0.0/0    reject\n\
         hostnossl all all ::/0         reject\n",
    )
    .map_err(|e| format!("{}: {e}", hba.display()))?;

    let mut settings = String::from("\n# tls_cluster\n");
    for (name, value) in [
        ("listen_addresses", "127.0.0.1".to_owned()),
        ("unix_socket_directories", path_setting(socket_dir)),
        ("ssl", "on".to_owned()),
        ("ssl_cert_file", path_setting(&certificates.server_cert)),
        ("ssl_key_file", path_setting(&certificates.server_key)),
        // A scratch cluster: durability only costs time.
        ("fsync", "off".to_owned()),
        ("synchronous_commit", "off".to_owned()),
        ("full_page_writes", "off".to_owned()),
        ("max_connections", "50".to_owned()),
        ("shared_buffers", "16MB".to_owned()),
    ] {
        // Infallible: writing to a String.
        let _infallible = writeln!(settings, "{name} = '{value}'");
    }
    let config = data_dir.join("postgresql.conf");
    fs::OpenOptions::new()
        .append(true)
        .open(&config)
        .and_then(|mut file| file.write_all(settings.as_bytes()))
        .map_err(|e| format!("{}: {e}", config.display()))
}

/// A path as the text of a quoted setting (`'` doubled).
fn path_setting(path: &Path) -> String {
    path.display().to_string().replace('\'', "''")
}

/// A port nobody listens on right now (the OS picks it).
fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

fn create_dir(dir: &Path) -> Result<(), String> {
    fs::create_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Runs `command` to completion; a failure names `what` and includes its output.
fn run(command: &mut Command, what: &str) -> Result<Output, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {what} ({program}): {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        let printed: Vec<String> = [&output.stderr, &output.stdout]
            .into_iter()
            .map(|bytes| String::from_utf8_lossy(bytes).trim().to_owned())
            .filter(|text| !text.is_empty())
            .collect();
        Err(format!(
            "{what} failed ({}): {}",
            output.status,
            printed.join("\n")
        ))
    }
}
