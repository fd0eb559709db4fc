//! The command line: `ringsip run`, `ringsip check`, `ringsip --version`,
//! with Kamailio's `-f`, `-l proto:addr:port` and `-A NAME[=VAL]`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "ringsip",
    version,
    about = "SIP proxy and registrar running Kamailio-style routing configurations"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (with the embedded default configuration when no -f is given).
    Run(RunArgs),
    /// Check a configuration file: exit 0 if valid, else print file:line:col: message and exit 1.
    Check(CheckArgs),
    /// Manage subscribers (the auth_db `subscriber` table), like kamctl add/rm/passwd.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage permissions address groups (the `address` table).
    #[command(subcommand)]
    Address(AddressCommand),
    /// Call a method on a running server's control socket (like kamcmd), e.g.
    /// `ringsip ctl latency`, `ringsip ctl stats.get_statistics all`.
    Ctl(CtlArgs),
}

#[derive(Args, Debug)]
pub struct CtlArgs {
    /// The control socket, `unix:PATH` (default: the server's default socket).
    #[arg(short = 's', long = "socket", value_name = "unix:PATH")]
    pub socket: Option<String>,
    /// Print the raw JSON-RPC result.
    #[arg(long)]
    pub json: bool,
    /// Call again every SECS seconds, clearing the screen (like top).
    #[arg(long, value_name = "SECS")]
    pub watch: Option<f64>,
    /// Method name (system.listMethods lists them).
    pub method: String,
    /// Parameters; integers are sent as numbers.
    #[arg(allow_hyphen_values = true)]
    pub params: Vec<String>,
}

/// The database to work on (`sqlite:///path/file.db`, created if missing;
/// `postgres://user:pass@host/db`; `mysql://user:pass@host[:port]/db`).
#[derive(Args, Debug, Clone)]
pub struct DbArg {
    #[arg(long = "db", value_name = "URL")]
    pub db: String,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a subscriber (or replace its password): password, ha1 and ha1b are written.
    Add {
        #[arg(value_name = "USER@DOMAIN")]
        user: String,
        password: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Change a subscriber's password.
    Passwd {
        #[arg(value_name = "USER@DOMAIN")]
        user: String,
        password: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Remove a subscriber.
    Rm {
        #[arg(value_name = "USER@DOMAIN")]
        user: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// List subscribers.
    List {
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum AddressCommand {
    /// Add an address (IP, IP/MASK or DNS name) to a group; port 0 matches any port.
    Add {
        group: i64,
        #[arg(value_name = "IP[/MASK]")]
        addr: String,
        #[arg(default_value_t = 0)]
        port: u16,
        tag: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Remove addresses of a group (all ports and masks unless given).
    Rm {
        group: i64,
        #[arg(value_name = "IP[/MASK]")]
        addr: String,
        port: Option<u16>,
        #[command(flatten)]
        db: DbArg,
    },
    /// List the address table.
    List {
        #[command(flatten)]
        db: DbArg,
    },
}

/// Options shared by `run` and `check` that shape how the configuration is read.
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Configuration file (Kamailio syntax).
    #[arg(short = 'f', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The configuration file, given without -f.
    #[arg(value_name = "FILE", conflicts_with = "config")]
    pub file: Option<PathBuf>,
    /// Define a preprocessor name, as `#!define NAME [VAL]` (repeatable).
    #[arg(short = 'A', value_name = "NAME[=VAL]")]
    pub defines: Vec<String>,
}

impl ConfigArgs {
    /// The configuration file, given with -f or alone; `None`: the embedded default.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.config.as_deref().or(self.file.as_deref())
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub cfg: ConfigArgs,
    /// Listen on proto:addr:port instead of the configuration's listen= (repeatable).
    #[arg(short = 'l', long = "listen", value_name = "PROTO:ADDR:PORT")]
    pub listen: Vec<String>,
    /// Number of workers (default: the configuration's children=, else one per core).
    #[arg(long, alias = "children")]
    pub workers: Option<usize>,
    /// IO driver: auto tries io_uring and falls back to poll.
    #[arg(long, value_enum, default_value_t = IoChoice::Auto)]
    pub io: IoChoice,
    /// Do not pin workers to cores.
    #[arg(long)]
    pub no_pin: bool,
    /// Log level override (Kamailio's debug=: -3 critical … 3 debug).
    #[arg(long)]
    pub debug: Option<i32>,
    /// TLS: PEM certificate chain for tls: listens (until the tls module reads tls.cfg).
    #[arg(long, value_name = "FILE")]
    pub tls_certificate: Option<PathBuf>,
    /// TLS: PEM private key of --tls-certificate.
    #[arg(long, value_name = "FILE")]
    pub tls_private_key: Option<PathBuf>,
    /// TLS: PEM CA list that verifies servers we connect to (and clients with --tls-verify-client).
    #[arg(long, value_name = "FILE")]
    pub tls_ca_list: Option<PathBuf>,
    /// TLS: require clients to present a certificate that chains to --tls-ca-list.
    #[arg(long)]
    pub tls_verify_client: bool,
    /// Control socket (`unix:PATH` or a path); default: ctl/jsonrpcs modparams, else the runtime directory.
    #[arg(long = "ctl", value_name = "unix:PATH")]
    pub ctl: Option<String>,
    /// Serve GET /metrics (Prometheus) and POST /RPC (JSON-RPC) on this address.
    #[arg(long = "http", value_name = "IP:PORT")]
    pub http: Option<String>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub cfg: ConfigArgs,
    /// Also list accepted-but-ignored parameters and what is not implemented yet.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoChoice {
    Auto,
    Uring,
    Poll,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kamailio_style_flags() {
        let cli = Cli::try_parse_from([
            "ringsip",
            "run",
            "-f",
            "k.cfg",
            "-A",
            "WITH_AUTH",
            "-A",
            "X=1",
            "-l",
            "udp:127.0.0.1:5070",
            "--io",
            "poll",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.cfg.path().and_then(|p| p.to_str()), Some("k.cfg"));
        assert_eq!(run.cfg.defines, ["WITH_AUTH", "X=1"]);
        assert_eq!(run.listen, ["udp:127.0.0.1:5070"]);
        assert_eq!(run.io, IoChoice::Poll);
    }

    #[test]
    fn the_config_file_may_be_given_without_f() {
        let cli =
            Cli::try_parse_from(["ringsip", "check", "kamailio.cfg", "-A", "WITH_AUTH"]).unwrap();
        let Command::Check(check) = cli.command else {
            panic!("not check")
        };
        assert_eq!(
            check.cfg.path().and_then(|p| p.to_str()),
            Some("kamailio.cfg")
        );
        assert_eq!(check.cfg.defines, ["WITH_AUTH"]);
        let cli = Cli::try_parse_from(["ringsip", "run", "k.cfg"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.cfg.path().and_then(|p| p.to_str()), Some("k.cfg"));
        // Not both.
        assert!(Cli::try_parse_from(["ringsip", "check", "-f", "a.cfg", "b.cfg"]).is_err());
        // Neither: the embedded default.
        let cli = Cli::try_parse_from(["ringsip", "run"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.cfg.path(), None);
    }

    #[test]
    fn parses_user_and_address_commands() {
        let cli = Cli::try_parse_from([
            "ringsip",
            "user",
            "add",
            "alice@example.com",
            "pw",
            "--db",
            "sqlite:///tmp/x.db",
        ])
        .unwrap();
        assert!(
            matches!(cli.command, Command::User(UserCommand::Add { ref user, .. }) if user == "alice@example.com")
        );
        let cli = Cli::try_parse_from([
            "ringsip",
            "address",
            "add",
            "1",
            "10.0.0.0/8",
            "--db",
            "sqlite:///tmp/x.db",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Address(AddressCommand::Add {
                group: 1,
                port: 0,
                ..
            })
        ));
    }
}
