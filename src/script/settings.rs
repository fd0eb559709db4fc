//! Core global parameters (`listen=`, `children=`, `debug=`…) read from a
//! parsed configuration. Parameters Kamailio has that ringsip accepts but does
//! not act on are kept in [`Settings::ignored`] for `ringsip check --verbose`.

use super::ast::{Config, Socket, Value};
use super::diag::{Diagnostic, Span};
use crate::sip::Proto;

/// One `listen=` socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenDef {
    pub proto: Proto,
    /// Address as written (`0.0.0.0`, `127.0.0.1`, `[::1]`, `::`…).
    pub host: String,
    pub port: Option<u16>,
    pub advertise: Option<(String, Option<u16>)>,
    /// No transport was written (`listen=1.2.3.4:5060`): Kamailio then
    /// listens with every enabled transport, UDP and TCP unless
    /// `disable_tcp=yes`. `proto` is UDP then.
    pub any_proto: bool,
    /// `name "id"`: what `$Rn` reads and `$fsn` selects the socket by.
    pub name: Option<String>,
}

impl ListenDef {
    /// Parses Kamailio's `[proto:]addr[:port]` form (`-l udp:127.0.0.1:5070`, `[::1]:5060`).
    pub fn parse(text: &str) -> Result<ListenDef, String> {
        let (proto, rest) = match text.split_once(':') {
            Some((p, rest)) if Proto::from_name(p.as_bytes()).is_some() => {
                (Proto::from_name(p.as_bytes()), rest)
            }
            _ => (None, text),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (h, after) = inner
                .split_once(']')
                .ok_or_else(|| format!("unclosed '[' in {text}"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse().map_err(|_| format!("bad port in {text}"))?),
                None if after.is_empty() => None,
                None => return Err(format!("unexpected text after ']' in {text}")),
            };
            (h.to_string(), port)
        } else if rest.matches(':').count() > 1 {
            // A bare IPv6 address without brackets: no port.
            (rest.to_string(), None)
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    Some(p.parse().map_err(|_| format!("bad port in {text}"))?),
                ),
                None => (rest.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(format!("no address in {text}"));
        }
        Ok(ListenDef {
            proto: proto.unwrap_or(Proto::Udp),
            host,
            port,
            advertise: None,
            any_proto: proto.is_none(),
            name: None,
        })
    }
}

/// The core settings of a configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub listens: Vec<ListenDef>,
    pub aliases: Vec<(String, Option<u16>)>,
    /// `port=`: the port of a `listen` that names none (default 5060).
    pub port: Option<u16>,
    pub children: Option<usize>,
    /// `debug=` log level.
    pub debug: i32,
    pub log_stderror: bool,
    /// `server_header=`: the value of the Server header of local replies
    /// (Kamailio takes the whole line, `Server: name`; the name is kept).
    pub server_header: Option<String>,
    /// `user_agent_header=`: the value of the User-Agent header of requests
    /// ringsip makes itself (`uac_req_send`, presence NOTIFY); the whole
    /// line in Kamailio, as for `server_header`.
    pub user_agent_header: Option<String>,
    /// `server_signature=no`: neither of the two headers is sent.
    pub no_server_signature: bool,
    /// `advertised_address=` / `advertised_port=`: what the Via of relayed
    /// requests names (the compiler puts them in the program).
    pub advertised_address: Option<String>,
    pub advertised_port: Option<u16>,
    /// `force_rport=yes`: every message as if it called `force_rport()`.
    pub force_rport: bool,
    /// `disable_tcp=yes`: a listen without a transport is UDP only.
    pub disable_tcp: bool,
    /// `enable_tls=yes` (or `disable_tls=no`): a listen without a transport
    /// also serves TLS, on its port + 1 (5061 when it has none), as Kamailio
    /// does. Off by default.
    pub enable_tls: bool,
    /// The `tcp_*` parameters that were set.
    pub tcp: TcpParams,
    /// The `dns_*` parameters that were set.
    pub dns: DnsParams,
    /// Parameters accepted but not acted on, with where they were set.
    pub ignored: Vec<(String, Span)>,
    /// Parameters accepted although they change what Kamailio does in a way
    /// ringsip does not follow: one `file:line:col: NAME: …` line each, for
    /// `ringsip check` and the start-up log.
    pub warnings: Vec<String>,
}

/// Kamailio's `tcp_*` core parameters ringsip acts on (unset: the runtime's
/// defaults). Times are in seconds, as Kamailio has them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpParams {
    pub connection_lifetime: Option<u32>,
    pub max_connections: Option<u32>,
    pub connect_timeout: Option<u32>,
    pub send_timeout: Option<u32>,
    pub msg_read_timeout: Option<u32>,
    pub accept_no_cl: Option<bool>,
    /// `tcp_conn_wq_max`: bytes queued per connection.
    pub conn_wq_max: Option<u32>,
    /// `tls_max_connections`: TLS connections open at once.
    pub tls_max_connections: Option<u32>,
}

/// Kamailio's DNS core parameters ringsip follows (unset: Kamailio's default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsParams {
    pub try_naptr: Option<bool>,
    pub srv_lb: Option<bool>,
    pub use_dns_failover: Option<bool>,
    pub try_ipv6: Option<bool>,
    pub use_dns_cache: Option<bool>,
    pub use_search_list: Option<bool>,
    /// `dns_udp_pref`, `dns_tcp_pref`, `dns_tls_pref`.
    pub udp_pref: Option<i32>,
    pub tcp_pref: Option<i32>,
    pub tls_pref: Option<i32>,
    /// Seconds.
    pub retr_time: Option<u32>,
    pub retr_no: Option<u32>,
    pub servers_no: Option<u32>,
    pub cache_min_ttl: Option<u32>,
    pub cache_max_ttl: Option<u32>,
    pub cache_negative_ttl: Option<u32>,
}

/// Core parameters Kamailio knows that ringsip accepts without acting on them
/// (yet): memory tuning, logging facilities, TCP/TLS/SCTP knobs…
const ACCEPTED: &[&str] = &[
    "memdbg",
    "memlog",
    "mem_join",
    "mem_safety",
    "mem_summary",
    "log_facility",
    "log_prefix",
    "log_prefix_mode",
    "log_name",
    "log_color",
    "log_colors",
    "auto_aliases",
    "mpath",
    "loadpath",
    "enable_sctp",
    "disable_sctp",
    "tcp_rd_buf_size",
    "tcp_keepalive",
    "tcp_keepidle",
    "tcp_keepintvl",
    "tcp_keepcnt",
    "tcp_async",
    "tcp_wq_max",
    "tcp_children",
    "dns",
    "rev_dns",
    "dns_try_ipv6",
    "dns_try_naptr",
    "dns_srv_lb",
    "dns_udp_pref",
    "dns_tcp_pref",
    "dns_tls_pref",
    "dns_retr_time",
    "dns_retr_no",
    "dns_servers_no",
    "dns_use_search_list",
    "dns_search_full_match",
    "dns_cache_init",
    "use_dns_cache",
    "use_dns_failover",
    "dns_cache_negative_ttl",
    "dns_cache_min_ttl",
    "dns_cache_max_ttl",
    "dns_cache_mem",
    "dns_cache_gc_interval",
    "dns_cache_del_nonexp",
    "maxbuffer",
    "max_while_loops",
    "fork",
    "fork_delay",
    "workdir",
    "wdir",
    "chroot",
    "user",
    "uid",
    "group",
    "gid",
    "pid_file",
    "pgid_file",
    "shm_mem_size",
    "pkg_mem_size",
    "shm_force_alloc",
    "mlock_pages",
    "real_time",
    "rt_prio",
    "rt_policy",
    "rt_timer1_prio",
    "rt_timer1_policy",
    "rt_timer2_prio",
    "rt_timer2_policy",
    "open_files_limit",
    "corelog",
    "latency_log",
    "latency_limit_action",
    "latency_limit_db",
    "latency_cfg_log",
    "tos",
    "pmtu_discovery",
    "udp4_raw",
    "udp4_raw_mtu",
    "udp4_raw_ttl",
    "check_via",
    "dst_blocklist_init",
    "use_dst_blocklist",
    "dst_blocklist_mem",
    "dst_blocklist_expire",
    "dst_blocklist_gc_interval",
    "dst_blacklist_init",
    "use_dst_blacklist",
    "onsend_route_reply",
    "sql_buffer_size",
    "stat",
    "statistics",
    "async_workers",
    "async_usleep",
    "async_nonblock",
    "shm_mem",
    "sock_mode",
    "sock_user",
    "sock_group",
    "unix_sock",
    "unix_sock_children",
    "unix_tx_timeout",
    "xavp_via_fields",
    "kemi.onsend_route_callback",
    "kemi.reply_route_callback",
    "kemi.event_route_callback",
    "modinit_delay",
    "http_reply_parse",
    "enable_ipv6",
    "ipv6_hex_style",
    "socket_workers",
    "bind_ipv6_link_local",
    "route_locks_size",
    "verbose_startup",
    "receive_buffer_size",
    "return_code_mode",
    "tcp_crlf_ping",
    "tcp_reuse_port",
    "tcp_defer_accept",
    "tcp_delayed_ack",
    "tcp_syncnt",
    "tcp_linger2",
    "tcp_fd_cache",
    "tcp_clone_rcvbuf",
    "tcp_accept_unique",
    "tcp_connection_match",
    "sctp_children",
    "pv_buffer_size",
    "pv_buffer_slots",
    "pv_cache_limit",
    "pv_cache_action",
    "version_table",
    "sip_parser_log",
    "max_recursive_level",
    "wait_worker1_mode",
    "ip_free_bind",
    "msg_time",
];

/// Core parameters Kamailio knows that change what it sends or how it routes,
/// which ringsip accepts but does not follow: each use is a start-up warning
/// naming its place (never a silent difference).
const NOT_FOLLOWED: &[(&str, &str)] = &[
    (
        "dns_cache_flags",
        "the IPv4/IPv6-only and prefer-IPv6 flags are not followed (A first, then AAAA)",
    ),
    ("sip_warning", "no Warning header is added to local replies"),
    (
        "reply_to_via",
        "replies go to the source address, not to the Via sent-by",
    ),
    (
        "udp_mtu",
        "large requests are not switched to another transport",
    ),
    (
        "udp_mtu_try_proto",
        "large requests are not switched to another transport",
    ),
    ("phone2tel", "user=phone URIs are not read as tel URIs"),
    (
        "mhomed",
        "the outgoing socket is not chosen by the route to the destination",
    ),
    (
        "local_rport",
        "locally generated requests carry no rport parameter",
    ),
    (
        "received_route_mode",
        "event_route[core:msg-received] is not run",
    ),
    (
        "max_branches",
        "the branch limit stays at Kamailio's default of 12",
    ),
    (
        "log_engine_type",
        "ringsip's log lines go to the standard log, not to another engine (log_custom's log_udp() uses it)",
    ),
    (
        "log_engine_data",
        "ringsip's log lines go to the standard log, not to another engine (log_custom's log_udp() uses it)",
    ),
    (
        "tcp_accept_aliases",
        "Via alias parameters do not add TCP connection aliases",
    ),
    (
        "tcp_accept_haproxy",
        "the PROXY protocol header is not read on TCP connections",
    ),
    (
        "tcp_source_ipv4",
        "outgoing TCP connections use the system's source address",
    ),
    (
        "tcp_source_ipv6",
        "outgoing TCP connections use the system's source address",
    ),
    ("sip_parser_mode", "the SIP parser keeps its own strictness"),
];

/// Reads the core parameters; problems go to `diags` at their place.
pub fn from_config(cfg: &Config, diags: &mut Vec<Diagnostic>) -> Settings {
    let mut s = Settings::default();
    for g in &cfg.globals {
        match g.name.as_str() {
            "listen" => match &g.value {
                Value::Sockets(list) => {
                    for sock in list {
                        match listen_of(sock) {
                            Ok(l) => s.listens.extend(l),
                            Err(e) => diags.push(Diagnostic::new(sock.span, e)),
                        }
                    }
                }
                other => match value_text(other).map(|t| ListenDef::parse(&t)) {
                    Some(Ok(l)) => s.listens.push(l),
                    Some(Err(e)) => diags.push(Diagnostic::new(g.span, e)),
                    None => diags.push(Diagnostic::new(
                        g.span,
                        "listen needs [proto:]address[:port]",
                    )),
                },
            },
            "alias" => match &g.value {
                Value::Sockets(list) => {
                    for sock in list {
                        for h in &sock.hosts {
                            s.aliases.push((h.clone(), sock.port));
                        }
                    }
                }
                other => match value_text(other) {
                    Some(t) => s.aliases.push(match ListenDef::parse(&t) {
                        Ok(l) => (l.host, l.port),
                        Err(_) => (t, None),
                    }),
                    None => diags.push(Diagnostic::new(g.span, "alias needs a host name")),
                },
            },
            "port" => match int_of(&g.value).and_then(|p| u16::try_from(p).ok()) {
                Some(p) => s.port = Some(p),
                None => diags.push(Diagnostic::new(g.span, "port needs a number in 0..65535")),
            },
            "children" => match int_of(&g.value)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
            {
                Some(n) => s.children = Some(n),
                None => diags.push(Diagnostic::new(g.span, "children needs a positive number")),
            },
            "debug" => match int_of(&g.value) {
                Some(n) => s.debug = n.clamp(-5, 3) as i32,
                None => diags.push(Diagnostic::new(g.span, "debug needs a number")),
            },
            "log_stderror" | "log_stderr" => match int_of(&g.value) {
                Some(n) => s.log_stderror = n != 0,
                None => diags.push(Diagnostic::new(g.span, "log_stderror needs yes or no")),
            },
            "server_header" => {
                s.server_header = value_text(&g.value).map(|v| header_value(&v, "Server"))
            }
            "user_agent_header" => {
                s.user_agent_header = value_text(&g.value).map(|v| header_value(&v, "User-Agent"))
            }
            "server_signature" => match int_of(&g.value) {
                Some(n) => s.no_server_signature = n == 0,
                None => diags.push(Diagnostic::new(g.span, "server_signature needs yes or no")),
            },
            "disable_tcp" => match int_of(&g.value) {
                Some(n) => s.disable_tcp = n != 0,
                None => diags.push(Diagnostic::new(g.span, "disable_tcp needs yes or no")),
            },
            name @ ("enable_tls" | "disable_tls") => match int_of(&g.value) {
                Some(n) => s.enable_tls = (n != 0) == (name == "enable_tls"),
                None => diags.push(Diagnostic::new(g.span, format!("{name} needs yes or no"))),
            },
            "tcp_accept_no_cl" => match int_of(&g.value) {
                Some(n) => s.tcp.accept_no_cl = Some(n != 0),
                None => diags.push(Diagnostic::new(g.span, "tcp_accept_no_cl needs yes or no")),
            },
            name @ ("tcp_connection_lifetime"
            | "tcp_max_connections"
            | "tcp_connect_timeout"
            | "tcp_send_timeout"
            | "tcp_msg_read_timeout"
            | "tcp_conn_wq_max"
            | "tls_max_connections") => {
                let Some(n) = int_of(&g.value).and_then(|n| u32::try_from(n).ok()) else {
                    diags.push(Diagnostic::new(
                        g.span,
                        format!("{name} needs a non-negative number"),
                    ));
                    continue;
                };
                let slot = match name {
                    "tcp_connection_lifetime" => &mut s.tcp.connection_lifetime,
                    "tcp_max_connections" => &mut s.tcp.max_connections,
                    "tcp_connect_timeout" => &mut s.tcp.connect_timeout,
                    "tcp_send_timeout" => &mut s.tcp.send_timeout,
                    "tcp_msg_read_timeout" => &mut s.tcp.msg_read_timeout,
                    "tls_max_connections" => &mut s.tcp.tls_max_connections,
                    _ => &mut s.tcp.conn_wq_max,
                };
                *slot = Some(n);
            }
            // Read by the compiler into the program (corex's Via parameters).
            "advertised_address" => {
                s.advertised_address = value_text(&g.value).filter(|a| !a.is_empty())
            }
            "advertised_port" => match int_of(&g.value)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n > 0)
            {
                Some(n) => s.advertised_port = Some(n),
                None => diags.push(Diagnostic::new(
                    g.span,
                    "advertised_port needs a port number (1..65535)",
                )),
            },
            "force_rport" => match int_of(&g.value) {
                Some(n) => s.force_rport = n != 0,
                None => diags.push(Diagnostic::new(g.span, "force_rport needs yes or no")),
            },
            name @ ("dns_try_naptr"
            | "dns_srv_lb"
            | "use_dns_failover"
            | "dns_try_ipv6"
            | "use_dns_cache"
            | "dns_use_search_list") => match int_of(&g.value) {
                Some(n) => {
                    let slot = match name {
                        "dns_try_naptr" => &mut s.dns.try_naptr,
                        "dns_srv_lb" => &mut s.dns.srv_lb,
                        "use_dns_failover" => &mut s.dns.use_dns_failover,
                        "dns_try_ipv6" => &mut s.dns.try_ipv6,
                        "use_dns_cache" => &mut s.dns.use_dns_cache,
                        _ => &mut s.dns.use_search_list,
                    };
                    *slot = Some(n != 0);
                }
                None => diags.push(Diagnostic::new(g.span, format!("{name} needs yes or no"))),
            },
            name @ ("dns_udp_pref" | "dns_tcp_pref" | "dns_tls_pref") => {
                match int_of(&g.value).and_then(|n| i32::try_from(n).ok()) {
                    Some(n) => {
                        *match name {
                            "dns_udp_pref" => &mut s.dns.udp_pref,
                            "dns_tcp_pref" => &mut s.dns.tcp_pref,
                            _ => &mut s.dns.tls_pref,
                        } = Some(n)
                    }
                    None => diags.push(Diagnostic::new(g.span, format!("{name} needs a number"))),
                }
            }
            name @ ("dns_retr_time"
            | "dns_retr_no"
            | "dns_servers_no"
            | "dns_cache_min_ttl"
            | "dns_cache_max_ttl"
            | "dns_cache_negative_ttl") => {
                let Some(n) = int_of(&g.value).and_then(|n| u32::try_from(n).ok()) else {
                    diags.push(Diagnostic::new(
                        g.span,
                        format!("{name} needs a non-negative number"),
                    ));
                    continue;
                };
                *match name {
                    "dns_retr_time" => &mut s.dns.retr_time,
                    "dns_retr_no" => &mut s.dns.retr_no,
                    "dns_servers_no" => &mut s.dns.servers_no,
                    "dns_cache_min_ttl" => &mut s.dns.cache_min_ttl,
                    "dns_cache_max_ttl" => &mut s.dns.cache_max_ttl,
                    _ => &mut s.dns.cache_negative_ttl,
                } = Some(n);
            }
            "server_id" | "xavp_via_params" => {}
            name if ACCEPTED.contains(&name) => s.ignored.push((name.to_string(), g.span)),
            // The limit ringsip has anyway.
            "max_branches" if int_of(&g.value) == Some(12) => {
                s.ignored.push(("max_branches".to_string(), g.span))
            }
            name if NOT_FOLLOWED.iter().any(|(n, _)| *n == name) => {
                let what = NOT_FOLLOWED
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or("", |(_, w)| w);
                s.warnings.push(format!(
                    "{}: {name} is accepted but not followed by ringsip: {what}",
                    cfg.sources.location(g.span)
                ));
            }
            // cfg-group parameters (`pstn.gw_ip = "" desc "…"`) are the script's own.
            name if name.contains('.') => {}
            name => diags.push(Diagnostic::new(
                g.span,
                format!("unknown core parameter \"{name}\""),
            )),
        }
    }
    s
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Str(s) | Value::Word(s) => s.trim().parse().ok(),
        Value::Sockets(_) => None,
    }
}

/// The value of a whole header line Kamailio takes as a setting
/// (`Server: name` gives `name`); a value without the name is kept whole.
fn header_value(line: &str, name: &str) -> String {
    let trimmed = line.trim();
    match trimmed.split_once(':') {
        Some((n, v)) if n.trim().eq_ignore_ascii_case(name) => v.trim().to_string(),
        _ => trimmed.to_string(),
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) | Value::Word(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(_) => None,
        Value::Sockets(list) => list.first().and_then(|s| s.hosts.first().cloned()),
    }
}

fn listen_of(sock: &Socket) -> Result<Vec<ListenDef>, String> {
    let proto = match sock.proto.as_deref() {
        None => Proto::Udp,
        Some(p) => {
            Proto::from_name(p.as_bytes()).ok_or_else(|| format!("unknown transport \"{p}\""))?
        }
    };
    if sock.hosts.is_empty() {
        return Err("listen needs an address".into());
    }
    let advertise = sock.advertise.as_ref().map(|a| (a.host.clone(), a.port));
    Ok(sock
        .hosts
        .iter()
        .map(|h| ListenDef {
            proto,
            host: h.trim_start_matches('[').trim_end_matches(']').to_string(),
            port: sock.port,
            advertise: advertise.clone(),
            any_proto: sock.proto.is_none(),
            name: sock.name.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        let l = ListenDef::parse("udp:127.0.0.1:5070").unwrap();
        assert_eq!(
            (l.proto, l.host.as_str(), l.port),
            (Proto::Udp, "127.0.0.1", Some(5070))
        );
        let l = ListenDef::parse("tcp:[::1]:5080").unwrap();
        assert_eq!(
            (l.proto, l.host.as_str(), l.port),
            (Proto::Tcp, "::1", Some(5080))
        );
        let l = ListenDef::parse("10.0.0.1").unwrap();
        assert_eq!(
            (l.proto, l.host.as_str(), l.port, l.any_proto),
            (Proto::Udp, "10.0.0.1", None, true)
        );
        assert!(!ListenDef::parse("udp:10.0.0.1").unwrap().any_proto);
        let l = ListenDef::parse("::1").unwrap();
        assert_eq!((l.host.as_str(), l.port), ("::1", None));
        assert!(ListenDef::parse("udp:1.2.3.4:99999").is_err());
        assert!(ListenDef::parse("udp:").is_err());
    }
}

#[cfg(test)]
mod tcp_tests {
    use super::*;

    fn settings(text: &str) -> Settings {
        let cfg = crate::script::parse_str("t.cfg", text, &crate::script::Options::default())
            .expect("parses");
        let mut diags = Vec::new();
        let s = from_config(&cfg, &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        s
    }

    #[test]
    fn disable_tcp_and_tcp_params_are_read() {
        let s = settings(
            "listen=127.0.0.1:5060\nlisten=tcp:127.0.0.1:5070\ndisable_tcp=yes\n\
             tcp_connection_lifetime=30\ntcp_max_connections=100\ntcp_accept_no_cl=yes\n\
             tls_max_connections=7\n\
             request_route { exit; }\n",
        );
        assert!(s.disable_tcp);
        assert_eq!(
            s.listens.iter().map(|l| l.any_proto).collect::<Vec<_>>(),
            [true, false]
        );
        assert_eq!(s.tcp.connection_lifetime, Some(30));
        assert_eq!(s.tcp.max_connections, Some(100));
        assert_eq!(s.tcp.accept_no_cl, Some(true));
        assert_eq!(s.tcp.send_timeout, None);
        assert_eq!(s.tcp.tls_max_connections, Some(7));
        assert!(!s.enable_tls);
        let s = settings("enable_tls=yes\nrequest_route { exit; }\n");
        assert!(s.enable_tls);
        let s = settings("enable_tls=yes\ndisable_tls=yes\nrequest_route { exit; }\n");
        assert!(!s.enable_tls);
    }

    #[test]
    fn dns_params_are_read_and_the_unfollowed_one_warns() {
        let s = settings(
            "dns_try_naptr=yes\ndns_srv_lb=on\nuse_dns_failover=yes\ndns_try_ipv6=no\n\
             use_dns_cache=off\ndns_use_search_list=no\ndns_udp_pref=-1\ndns_tls_pref=40\n\
             dns_retr_time=1\ndns_retr_no=3\ndns_servers_no=1\ndns_cache_min_ttl=5\n\
             dns_cache_max_ttl=600\ndns_cache_negative_ttl=10\n\
             request_route { exit; }\n",
        );
        let d = &s.dns;
        assert_eq!(
            (d.try_naptr, d.srv_lb, d.use_dns_failover, d.try_ipv6),
            (Some(true), Some(true), Some(true), Some(false))
        );
        assert_eq!(
            (d.use_dns_cache, d.use_search_list),
            (Some(false), Some(false))
        );
        assert_eq!(
            (d.udp_pref, d.tcp_pref, d.tls_pref),
            (Some(-1), None, Some(40))
        );
        assert_eq!(
            (d.retr_time, d.retr_no, d.servers_no),
            (Some(1), Some(3), Some(1))
        );
        assert_eq!(
            (d.cache_min_ttl, d.cache_max_ttl, d.cache_negative_ttl),
            (Some(5), Some(600), Some(10))
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let s = settings("dns_cache_flags=1\nrequest_route { exit; }\n");
        assert!(
            s.warnings.iter().any(|w| w.contains("dns_cache_flags")),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn signature_headers_keep_their_values() {
        let s = settings(
            "server_header=\"Server: MyProxy 1.0\"\nuser_agent_header=\"user-agent:MyUA\"\n\
             request_route { exit; }\n",
        );
        assert_eq!(s.server_header.as_deref(), Some("MyProxy 1.0"));
        assert_eq!(s.user_agent_header.as_deref(), Some("MyUA"));
        assert!(!s.no_server_signature);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let s = settings("server_signature=no\nrequest_route { exit; }\n");
        assert!(s.no_server_signature);
        // A value without the header name is kept whole.
        let s = settings("server_header=\"Edge\"\nrequest_route { exit; }\n");
        assert_eq!(s.server_header.as_deref(), Some("Edge"));
    }

    #[test]
    fn tuning_knobs_are_ignored_and_behaviour_changes_warn_with_their_place() {
        let s = settings(
            "server_id=3\ntcp_crlf_ping=yes\npv_buffer_size=8192\nmax_branches=12\n\
             sip_warning=1\nreply_to_via=1\nmax_branches=4\n\
             request_route { exit; }\n",
        );
        let ignored: Vec<&str> = s.ignored.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(ignored, ["tcp_crlf_ping", "pv_buffer_size", "max_branches"]);
        assert_eq!(s.warnings.len(), 3, "{:?}", s.warnings);
        assert!(s.warnings[0].starts_with("t.cfg:5:1: sip_warning is accepted but not followed"));
        assert!(s.warnings[1].starts_with("t.cfg:6:1: reply_to_via "));
        assert!(s.warnings[2].starts_with("t.cfg:7:1: max_branches "));
        // Still unknown: a name Kamailio does not have either.
        let cfg = crate::script::parse_str(
            "t.cfg",
            "no_such_knob=1\nrequest_route { exit; }\n",
            &crate::script::Options::default(),
        )
        .expect("parses");
        let mut diags = Vec::new();
        from_config(&cfg, &mut diags);
        assert_eq!(diags.len(), 1);
    }
}
