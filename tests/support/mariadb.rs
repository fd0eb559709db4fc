//! A MySQL/MariaDB server for the tests: the one named by
//! `RINGSIP_TEST_MYSQL_URL` when it is set (its database must exist and the
//! user may create tables), otherwise a private throwaway MariaDB started
//! here: `mariadb-install-db` (or `mysql_install_db`) makes a data directory
//! in a temp dir (in `/dev/shm` when there is one), and `mariadbd` (or
//! `mysqld`) serves it on 127.0.0.1 on a free port and on a unix socket in
//! that dir, with no durability (tests only), stopped and removed when the
//! [`MariaDb`] is dropped. A database
//! `kamailio` and a user `kamailio` / `kamailiorw` (Kamailio's stock names)
//! are made by an init file at every start.
//!
//! When the binaries are missing the tests fail (they never skip) and say to
//! install MariaDB. As root, the server runs as root (`--user=root`).
//!
//! Use it with `#[path = "support/mariadb.rs"] mod mariadb;` (tests using
//! `common`) or through `support::mariadb`.
#![allow(dead_code)]

use std::fs;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long the server may take to accept connections after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A MySQL/MariaDB server to run tests against.
pub struct MariaDb {
    url: String,
    server: Option<Server>,
}

struct Server {
    child: Child,
    daemon: PathBuf,
    port: u16,
    url: String,
    dir: tempfile::TempDir,
}

impl MariaDb {
    /// `RINGSIP_TEST_MYSQL_URL`'s server, or a new private one.
    pub fn start() -> MariaDb {
        if let Some(url) = std::env::var("RINGSIP_TEST_MYSQL_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            return MariaDb { url, server: None };
        }
        let (install, daemon) = binaries();
        let mut last_err = String::new();
        // A port free a moment ago may be taken by the time the server binds it.
        for _ in 0..3 {
            match Server::start(&install, &daemon) {
                Ok(server) => {
                    return MariaDb {
                        url: server.url.clone(),
                        server: Some(server),
                    }
                }
                Err(e) => last_err = e,
            }
        }
        panic!("could not start a throwaway MariaDB server: {last_err}");
    }

    /// `mysql://kamailio:kamailiorw@127.0.0.1:PORT/kamailio`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True when this server was started here (not `RINGSIP_TEST_MYSQL_URL`).
    pub fn is_private(&self) -> bool {
        self.server.is_some()
    }

    /// Stops the private server (a database outage); [`MariaDb::resume`]
    /// starts it again on the same port with the same data.
    pub fn stop(&mut self) {
        let server = self
            .server
            .as_mut()
            .expect("only a private server (RINGSIP_TEST_MYSQL_URL unset) can be stopped");
        server.shut_down();
    }

    /// Starts the stopped private server again.
    pub fn resume(&mut self) {
        let server = self.server.as_mut().expect("a private server");
        server.child = server
            .spawn()
            .unwrap_or_else(|e| panic!("restart MariaDB: {e}"));
        server
            .wait_ready()
            .unwrap_or_else(|e| panic!("restart MariaDB: {e}"));
    }
}

/// The first of `names` found in `PATH` or the usual system directories
/// (`sbin` is often not in a user's `PATH`).
fn find(names: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    for d in [
        "/usr/sbin",
        "/usr/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/libexec",
    ] {
        dirs.push(PathBuf::from(d));
    }
    names
        .iter()
        .find_map(|n| dirs.iter().map(|d| d.join(n)).find(|p| p.is_file()))
}

/// `(install-db, server)`.
fn binaries() -> (PathBuf, PathBuf) {
    let install = find(&["mariadb-install-db", "mysql_install_db"]);
    let daemon = find(&["mariadbd", "mysqld"]);
    match (install, daemon) {
        (Some(i), Some(d)) => (i, d),
        _ => panic!(
            "the MySQL store tests need the MariaDB server binaries (mariadb-install-db, mariadbd) \
             and found none in PATH, /usr/sbin or /usr/bin: install MariaDB \
             (Debian/Ubuntu: `apt-get install mariadb-server`; `bash tests/run` does it), or point \
             RINGSIP_TEST_MYSQL_URL at a server (mysql://user:pass@127.0.0.1:3306/db)"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a TCP port on 127.0.0.1")
}

/// Server options for a small, fast, throwaway instance (shared by the
/// install step, so that its files match).
const SERVER_OPTS: &[&str] = &[
    "--innodb-buffer-pool-size=16M",
    "--innodb-log-file-size=8M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--innodb-temp-data-file-path=ibtmp1:1M:autoextend",
    "--skip-log-bin",
    "--performance-schema=0",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
];

const INIT_SQL: &str = "CREATE DATABASE IF NOT EXISTS kamailio;
CREATE USER IF NOT EXISTS 'kamailio'@'%' IDENTIFIED BY 'kamailiorw';
CREATE USER IF NOT EXISTS 'kamailio'@'localhost' IDENTIFIED BY 'kamailiorw';
GRANT ALL PRIVILEGES ON kamailio.* TO 'kamailio'@'%';
GRANT ALL PRIVILEGES ON kamailio.* TO 'kamailio'@'localhost';
";

/// Spawns the server on the data directory in `dir`.
fn spawn(daemon: &Path, dir: &Path, port: u16) -> Result<Child, String> {
    let mut cmd = Command::new(daemon);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg(format!("--log-error={}", dir.join("error.log").display()))
        .arg(format!("--init-file={}", dir.join("init.sql").display()))
        .arg(format!("--port={port}"))
        .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
        .args(SERVER_OPTS)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if is_root() {
        cmd.arg("--user=root");
    }
    cmd.spawn()
        .map_err(|e| format!("run {}: {e}", daemon.display()))
}

impl Server {
    fn start(install: &Path, daemon: &Path) -> Result<Server, String> {
        // In memory when the machine has /dev/shm: the install step alone
        // takes 4 s of disk waits on a busy machine, 1 s there.
        let mut builder = tempfile::Builder::new();
        builder.prefix("ringsip-mariadb-");
        let dir = builder
            .tempdir_in("/dev/shm")
            .or_else(|_| builder.tempdir())
            .map_err(|e| format!("temp dir: {e}"))?;
        let mut cmd = Command::new(install);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .args(SERVER_OPTS)
            .env("LC_ALL", "C");
        if is_root() {
            cmd.arg("--user=root");
        }
        let out = cmd
            .output()
            .map_err(|e| format!("run {}: {e}", install.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}): {}{}",
                install.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        fs::write(dir.path().join("init.sql"), INIT_SQL).map_err(|e| format!("init.sql: {e}"))?;
        let port = free_port();
        let mut server = Server {
            child: spawn(daemon, dir.path(), port)?,
            daemon: daemon.to_path_buf(),
            port,
            url: format!("mysql://kamailio:kamailiorw@127.0.0.1:{port}/kamailio"),
            dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Starts the server again after [`Server::shut_down`].
    fn spawn(&self) -> Result<Child, String> {
        spawn(&self.daemon, self.dir.path(), self.port)
    }

    /// SIGTERM (a clean shutdown), SIGKILL if it takes more than 20 s.
    fn shut_down(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Until the server answers a query as the `kamailio` user (or exits, or
    /// the timeout passes).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before accepting connections:\n{}",
                    self.daemon.display(),
                    self.log_text()
                ));
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                use mysql::prelude::Queryable;
                match mysql::Conn::new(mysql::Opts::from_url(&self.url).expect("test URL"))
                    .and_then(|mut c| c.query_drop("SELECT 1"))
                {
                    Ok(()) => return Ok(()),
                    Err(e) => last = e.to_string(),
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "{} did not accept connections within {START_TIMEOUT:?} ({last}):\n{}",
            self.daemon.display(),
            self.log_text()
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut_down();
    }
}
