//! A PostgreSQL server for the tests: the one named by `RINGSIP_TEST_PG_URL`
//! when it is set, otherwise a private throwaway cluster started here
//! (`initdb` + `postgres` from `/usr/lib/postgresql/*/bin`) in a temp dir,
//! listening on 127.0.0.1 on a free port, with trust authentication and no
//! fsync, stopped and removed when the [`PgServer`] is dropped.
//!
//! When the binaries are missing the tests fail (they never skip) and say to
//! install PostgreSQL. PostgreSQL refuses to run as root: when the tests run
//! as root, the cluster runs as the `postgres` user (made by the Debian
//! package), or `nobody` when there is no such user.
//!
//! Use it with `#[path = "support/pg.rs"] mod pg;` (tests using `common`) or
//! through `support::pg`.
#![allow(dead_code)]

use std::fs;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long the server may take to accept connections after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A PostgreSQL server to run tests against.
pub struct PgServer {
    url: String,
    // Field order: the server stops (Drop) before its directory is removed.
    cluster: Option<Cluster>,
}

struct Cluster {
    child: Child,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    port: u16,
    url: String,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl PgServer {
    /// `RINGSIP_TEST_PG_URL`'s server, or a new private one.
    pub fn start() -> PgServer {
        if let Some(url) = std::env::var("RINGSIP_TEST_PG_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            return PgServer { url, cluster: None };
        }
        let bin = bin_dir();
        let mut last_err = String::new();
        // A port free a moment ago may be taken by the time postgres binds it.
        for _ in 0..3 {
            match Cluster::start(&bin) {
                Ok((cluster, url)) => {
                    return PgServer {
                        url,
                        cluster: Some(cluster),
                    }
                }
                Err(e) => last_err = e,
            }
        }
        panic!("could not start a throwaway PostgreSQL server: {last_err}");
    }

    /// `postgres://USER@127.0.0.1:PORT/DB`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True when this server was started here (not `RINGSIP_TEST_PG_URL`).
    pub fn is_private(&self) -> bool {
        self.cluster.is_some()
    }

    /// Stops the private server (a database outage); [`PgServer::resume`]
    /// starts it again on the same port with the same data.
    pub fn stop(&mut self) {
        let cluster = self
            .cluster
            .as_mut()
            .expect("only a private server (RINGSIP_TEST_PG_URL unset) can be stopped");
        cluster.shut_down();
    }

    /// Starts the stopped private server again.
    pub fn resume(&mut self) {
        let cluster = self.cluster.as_mut().expect("a private server");
        cluster
            .spawn()
            .unwrap_or_else(|e| panic!("restart PostgreSQL: {e}"));
        let (url, port) = (cluster.url.clone(), cluster.port);
        cluster
            .wait_ready(&url, port)
            .unwrap_or_else(|e| panic!("restart PostgreSQL: {e}"));
    }
}

/// The directory holding `initdb` and `postgres`: the newest
/// `/usr/lib/postgresql/N/bin` (Debian), else `pg_config --bindir`, else `PATH`.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return bin;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("initdb").is_file() {
            return dir;
        }
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
            return dir;
        }
    }
    panic!(
        "the PostgreSQL tests need the PostgreSQL server binaries (initdb, postgres) and found none \
         in /usr/lib/postgresql/*/bin, `pg_config --bindir` or PATH: install PostgreSQL \
         (Debian/Ubuntu: `apt-get install postgresql`; `bash tests/run` does it), or point \
         RINGSIP_TEST_PG_URL at a server (postgres://user:pass@127.0.0.1/db)"
    );
}

/// `(uid, gid)` to run PostgreSQL as when this process is root.
fn unprivileged_user() -> Option<(u32, u32)> {
    let out = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&out.stdout).trim() != "0" {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = |name: &str| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name) && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
    };
    let user = entry("postgres").or_else(|| entry("nobody"));
    assert!(
        user.is_some(),
        "running as root, PostgreSQL needs an unprivileged user: there is no `postgres` nor `nobody` in /etc/passwd"
    );
    user
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a TCP port on 127.0.0.1")
}

fn command(bin: &Path, name: &str, user: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(bin.join(name));
    cmd.env("LC_ALL", "C").env("LANG", "C").env_remove("PGDATA");
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

impl Cluster {
    fn start(bin: &Path) -> Result<(Cluster, String), String> {
        let user = unprivileged_user();
        let dir = tempfile::Builder::new()
            .prefix("ringsip-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.path().display()))?;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("chmod {}: {e}", dir.path().display()))?;
        }
        let data = dir.path().join("data");
        let out = command(bin, "initdb", user)
            .arg("-D")
            .arg(&data)
            .args(["-U", "ringsip", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .map_err(|e| format!("run {}/initdb: {e}", bin.display()))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = free_port();
        let log = dir.path().join("postgres.log");
        fs::File::create(&log).map_err(|e| format!("create log: {e}"))?;
        if let Some((uid, gid)) = user {
            let _ = std::os::unix::fs::chown(&log, Some(uid), Some(gid));
        }
        let url = format!("postgres://ringsip@127.0.0.1:{port}/postgres");
        let child = Cluster::postgres(bin, user, dir.path(), port, &log)?;
        let mut cluster = Cluster {
            child,
            bin: bin.to_path_buf(),
            user,
            port,
            url: url.clone(),
            dir,
            log,
        };
        cluster.wait_ready(&url, port)?;
        Ok((cluster, url))
    }

    /// Spawns the server on the cluster in `dir`.
    fn postgres(
        bin: &Path,
        user: Option<(u32, u32)>,
        dir: &Path,
        port: u16,
        log: &Path,
    ) -> Result<Child, String> {
        let log_file = fs::OpenOptions::new()
            .append(true)
            .open(log)
            .map_err(|e| format!("open log: {e}"))?;
        command(bin, "postgres", user)
            .arg("-D")
            .arg(dir.join("data"))
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=100",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("run {}/postgres: {e}", bin.display()))
    }

    /// Starts the server again after [`Cluster::shut_down`].
    fn spawn(&mut self) -> Result<(), String> {
        self.child =
            Cluster::postgres(&self.bin, self.user, self.dir.path(), self.port, &self.log)?;
        Ok(())
    }

    /// Fast shutdown (SIGINT), SIGKILL if it takes more than 10 s.
    fn shut_down(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = self.child.id().to_string();
            let _ = Command::new("sh")
                .args(["-c", "kill -s INT \"$0\"", &pid])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
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
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Until the server answers a query (or exits, or the timeout passes).
    fn wait_ready(&mut self, url: &str, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "postgres exited ({status}) before accepting connections:\n{}",
                    self.log_text()
                ));
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                match postgres::Client::connect(url, postgres::NoTls)
                    .and_then(|mut c| c.simple_query("SELECT 1"))
                {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e.to_string(),
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "postgres did not accept connections within {START_TIMEOUT:?} ({last}):\n{}",
            self.log_text()
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shut_down();
    }
}
