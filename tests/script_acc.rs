//! acc with the log backend, driven through the engine sans-IO: a relayed
//! INVITE answered downstream, a local reply, `acc_log_request`, and the
//! start-up errors for what is not provided (database backend, malformed or
//! unsupported database URLs).

mod common;

use common::engine::{inbound, sent_to};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use ringsip::modules::core::Engine;
use ringsip::script::compile::compile;
use ringsip::script::ctx::Shared;
use ringsip::script::{self as script_lang, MemoryFiles, Options};

const CALLER: &str = "127.0.0.2:5070";
const CALLEE: &str = "127.0.0.3:5080";

thread_local! {
    /// The acc lines logged by this test's thread (tests run on their own threads).
    static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "acc"
    }
    fn log(&self, r: &log::Record<'_>) {
        if r.target() == "acc" {
            LINES.with(|l| l.borrow_mut().push(r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

fn take_lines() -> Vec<String> {
    LINES.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

fn compile_text(cfg: &str) -> Result<ringsip::script::compile::Compiled, Vec<String>> {
    let files = MemoryFiles::default();
    let config = script_lang::parse_str("acc.cfg", cfg, &Options::with_files(&files))
        .map_err(|d| d.rendered())?;
    compile(&config).map_err(|d| d.rendered())
}

fn engine(routes: &str) -> Engine {
    engine_with(routes, Shared::default())
}

fn engine_with(routes: &str, services: Shared) -> Engine {
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Debug);
    common::engine::engine_with(&format!("{HEAD}{routes}"), |env, _| env.services = services)
}

/// The stock configuration's acc settings.
const HEAD: &str = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "acc.so"
modparam("acc", "early_media", 0)
modparam("acc", "report_ack", 0)
modparam("acc", "report_cancels", 0)
modparam("acc", "detect_direction", 0)
modparam("acc", "log_flag", 1)
modparam("acc", "log_missed_flag", 2)
modparam("acc", "failed_transaction_flag", 3)
modparam("acc", "log_extra",
    "src_user=$fU;src_domain=$fd;src_ip=$si;dst_ouser=$tU;dst_user=$rU;dst_domain=$rd;none=$hdr(X-None)")
"#;

const INVITE: &str = "INVITE sip:bob@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKacc1
Max-Forwards: 70
From: <sip:alice@example.org>;tag=a1
To: <sip:bob@example.net>
Call-ID: acc-call-1
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.2:5070>
Content-Length: 0

";

/// The downstream answer to the relayed `req` (our Via on top kept).
fn answer(req: &str, code: u16, reason: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\n");
    for line in req.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        if line.starts_with("Via:")
            || line.starts_with("From:")
            || line.starts_with("Call-ID:")
            || line.starts_with("CSeq:")
        {
            out.push_str(line);
            out.push('\n');
        } else if let Some(to) = line.strip_prefix("To:") {
            out.push_str(&format!("To:{to};tag=b{code}\n"));
        }
    }
    out.push_str("Content-Length: 0\n\n");
    out
}

/// Relays INVITE to the callee, who answers `code`; the acc lines logged.
fn call(routes: &str, code: u16, reason: &str) -> Vec<String> {
    call_with(routes, code, reason, Shared::default())
}

fn call_with(routes: &str, code: u16, reason: &str, services: Shared) -> Vec<String> {
    let mut e = engine_with(routes, services);
    let now = Instant::now();
    let mut out = Vec::new();
    e.on_inbound(inbound(CALLER, INVITE), now, &mut out);
    let relayed = sent_to(&out, CALLEE);
    assert_eq!(relayed.len(), 1, "INVITE relayed: {out:?}");
    assert!(
        take_lines().is_empty(),
        "nothing accounted before the final"
    );
    let mut out = Vec::new();
    e.on_inbound(
        inbound(CALLEE, &answer(&relayed[0], 180, "Ringing")),
        now,
        &mut out,
    );
    assert!(take_lines().is_empty(), "a provisional is not accounted");
    let mut out = Vec::new();
    e.on_inbound(
        inbound(CALLEE, &answer(&relayed[0], code, reason)),
        now,
        &mut out,
    );
    assert!(
        sent_to(&out, CALLER)
            .iter()
            .any(|m| m.starts_with(&format!("SIP/2.0 {code}"))),
        "final relayed upstream: {out:?}"
    );
    take_lines()
}

const RELAY: &str = r#"
request_route {
    if (is_method("INVITE")) { FLAGS }
    $du = "sip:127.0.0.3:5080";
    t_relay();
}
"#;

fn relay_with(flags: &str) -> String {
    RELAY.replace("FLAGS", flags)
}

#[test]
fn answered_invite_with_log_flag_is_one_line_with_extras() {
    let lines = call(&relay_with("setflag(1);"), 200, "OK");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = &lines[0];
    let (head, ts_rest) = l.split_once("timestamp=").expect("timestamp");
    assert_eq!(head, "ACC: transaction answered: ");
    let (ts, rest) = ts_rest.split_once(';').expect("fields");
    assert!(ts.parse::<u64>().is_ok(), "unix seconds: {ts}");
    assert_eq!(
        rest,
        "method=INVITE;from_tag=a1;to_tag=b200;call_id=acc-call-1;code=200;reason=OK;\
         src_user=alice;src_domain=example.org;src_ip=127.0.0.2;dst_ouser=bob;\
         dst_user=bob;dst_domain=127.0.0.1;none=n/a"
    );
}

#[test]
fn unflagged_transactions_are_not_accounted() {
    assert!(call(&relay_with(""), 200, "OK").is_empty());
    // A negative final with only the log flag: not accounted.
    assert!(call(&relay_with("setflag(1);"), 486, "Busy Here").is_empty());
}

#[test]
fn failed_invite_with_missed_and_failed_flags() {
    let lines = call(
        &relay_with("setflag(1); setflag(2); setflag(3);"),
        486,
        "Busy Here",
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("ACC: call missed: timestamp="));
    assert!(lines[1].starts_with("ACC: transaction answered: timestamp="));
    for l in &lines {
        assert!(
            l.contains(";to_tag=b486;call_id=acc-call-1;code=486;reason=Busy Here;"),
            "{l}"
        );
    }
}

#[test]
fn failed_filter_skips_listed_codes() {
    let routes = format!(
        "modparam(\"acc\", \"failed_filter\", \"404,486\")\n{}",
        relay_with("setflag(3);")
    );
    assert!(call(&routes, 486, "Busy Here").is_empty());
    assert_eq!(call(&routes, 603, "Decline").len(), 1);
}

#[test]
fn local_tm_reply_and_acc_log_request() {
    let mut e = engine(
        r#"
request_route {
    setflag(1);
    acc_log_request("403 Forbidden here");
    acc_log_request("no code");
    t_newtran();
    t_reply("202", "Taken");
}
"#,
    );
    let mut out = Vec::new();
    let opts = INVITE
        .replace("INVITE sip:", "OPTIONS sip:")
        .replace("1 INVITE", "1 OPTIONS");
    e.on_inbound(inbound(CALLER, &opts), Instant::now(), &mut out);
    let lines = take_lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("ACC: request accounted: "));
    assert!(
        lines[0].contains(";method=OPTIONS;from_tag=a1;to_tag=;call_id=acc-call-1;code=403;reason=Forbidden here;src_user=alice"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains(";code=;reason=no code;"), "{}", lines[1]);
    assert!(lines[2].starts_with("ACC: transaction answered: "));
    assert!(lines[2].contains(";code=202;reason=Taken;"), "{}", lines[2]);
    // The local to-tag of tm's reply is reported.
    assert!(!lines[2].contains(";to_tag=;"), "{}", lines[2]);
}

#[test]
fn unsupported_backends_are_startup_errors_at_their_line() {
    let err = compile_text(&format!(
        "{HEAD}request_route {{\n  acc_db_request(\"x\", \"acc\");\n}}\n"
    ))
    .unwrap_err();
    assert!(
        err.iter()
            .any(|e| e.starts_with("acc.cfg:17:3:") && e.contains("needs acc's db_url")),
        "{err:?}"
    );
    let err = compile_text(&format!(
        "{HEAD}modparam(\"acc\", \"db_flag\", 1)\nrequest_route {{ }}\n"
    ))
    .unwrap_err();
    assert!(err.iter().any(|e| e.contains("need a db_url")), "{err:?}");
    let err = compile_text(&format!(
        "{HEAD}modparam(\"acc\", \"db_url\", \"mysql://k@h\")\n\
         modparam(\"acc\", \"db_extra\", \"1bad=$fU\")\nrequest_route {{ }}\n"
    ))
    .unwrap_err();
    assert!(
        err.iter()
            .any(|e| e.starts_with("acc.cfg:16:1: acc: db_url mysql://")
                && e.contains("no database name")),
        "{err:?}"
    );
    assert!(
        err.iter()
            .any(|e| e.starts_with("acc.cfg:17:1:") && e.contains("not a usable column")),
        "{err:?}"
    );
    let err = compile_text(
        "loadmodule \"db_mysql.so\"\nloadmodule \"auth.so\"\nloadmodule \"auth_db.so\"\n\
         modparam(\"auth_db\", \"db_url\", \"mysql://k:pw@localhost:port/k\")\n",
    )
    .unwrap_err();
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with("acc.cfg:4:1: auth_db: db_url mysql://k:pw@localhost:port/k: "),
        "{err:?}"
    );
    let err = compile_text(
        "loadmodule \"db_oracle.so\"\nloadmodule \"auth.so\"\nloadmodule \"auth_db.so\"\n\
         modparam(\"auth_db\", \"db_url\", \"oracle://k:pw@localhost/k\")\n",
    )
    .unwrap_err();
    assert!(
        err.iter()
            .any(|e| e.starts_with("acc.cfg:4:1: auth_db: db_url oracle://")
                && e.contains("oracle database is not supported")),
        "{err:?}"
    );
    let err = compile_text(
        "loadmodule \"db_text.so\"\nloadmodule \"usrloc.so\"\n\
         modparam(\"usrloc\", \"db_url\", \"text:///etc/kamailio/dbtext\")\n",
    )
    .unwrap_err();
    assert!(err[0].starts_with("acc.cfg:3:1:"), "{err:?}");
    let err = compile_text("loadmodule \"acc.so\"\nmodparam(\"acc\", \"log_extra\", \"a\")\n")
        .unwrap_err();
    assert!(err[0].starts_with("acc.cfg:2:1:"), "{err:?}");
    // sqlite and mysql URLs are fine (postgres too: tests/postgres_store.rs).
    compile_text(
        "loadmodule \"db_sqlite.so\"\nloadmodule \"usrloc.so\"\n\
         modparam(\"usrloc\", \"db_url\", \"sqlite:///tmp/x.db\")\n",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    #[cfg(feature = "mysql")]
    compile_text(
        "loadmodule \"db_mysql.so\"\nloadmodule \"auth.so\"\nloadmodule \"auth_db.so\"\n\
         modparam(\"auth_db\", \"db_url\", \"mysql://kamailio:kamailiorw@localhost/kamailio\")\n",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
}

/// A store thread on a fresh SQLite file, as start-up makes for acc's db_url.
fn sqlite_acc() -> (
    tempfile::TempDir,
    String,
    ringsip::store::StoreThread,
    Shared,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acc.db").to_string_lossy().into_owned();
    let url = format!("sqlite://{path}");
    let thread =
        ringsip::store::StoreThread::spawn(ringsip::store::open(&url).unwrap(), 64, &url).unwrap();
    let mut services = Shared::default();
    services.insert(Arc::new(ringsip::modules::acc::AccDb {
        store: thread.handle(),
    }));
    (dir, path, thread, services)
}

fn rows(path: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut st = conn.prepare(sql).unwrap();
    let n = st.column_count();
    st.query_map([], |r| {
        (0..n)
            .map(|i| r.get::<_, Option<String>>(i))
            .collect::<Result<Vec<_>, _>>()
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn texts(v: &[&str]) -> Vec<Option<String>> {
    v.iter().map(|s| Some(s.to_string())).collect()
}

const DB: &str = r#"
modparam("acc", "db_url", "sqlite:///unused-in-tests.db")
modparam("acc", "db_flag", 1)
modparam("acc", "db_missed_flag", 2)
modparam("acc", "db_extra", "src_user=$fU;src_ip=$si;nothing=$hdr(X-None)")
"#;

#[test]
fn database_backend_writes_acc_and_missed_calls_rows() {
    let (_dir, path, thread, services) = sqlite_acc();
    let routes = format!("{DB}{}", relay_with("setflag(1); setflag(2); setflag(3);"));
    // Lines are still logged; rows go to the store thread.
    assert_eq!(
        call_with(&routes, 486, "Busy Here", services.clone()).len(),
        2
    );
    let routes = format!("{DB}{}", relay_with("setflag(1);"));
    assert_eq!(call_with(&routes, 200, "OK", services).len(), 1);
    thread.finish();
    let mut failed = texts(&[
        "INVITE",
        "a1",
        "b486",
        "acc-call-1",
        "486",
        "Busy Here",
        "alice",
        "127.0.0.2",
    ]);
    failed.push(None);
    let mut answered = texts(&[
        "INVITE",
        "a1",
        "b200",
        "acc-call-1",
        "200",
        "OK",
        "alice",
        "127.0.0.2",
    ]);
    answered.push(None);
    assert_eq!(
        rows(
            &path,
            "SELECT method, from_tag, to_tag, callid, sip_code, sip_reason, src_user, src_ip, \
             \"nothing\" FROM acc ORDER BY id"
        ),
        [failed, answered]
    );
    assert_eq!(
        rows(
            &path,
            "SELECT sip_code, CAST(length(time) AS TEXT) FROM missed_calls"
        ),
        [texts(&["486", "19"])]
    );
}

#[test]
fn acc_db_request_writes_one_row_to_the_named_table() {
    let (_dir, path, thread, services) = sqlite_acc();
    let mut e = engine_with(
        &format!(
            "{DB}request_route {{\n  acc_db_request(\"404 Not Here\", \"my_acc\");\n  \
             sl_send_reply(\"404\", \"Not Here\");\n}}\n"
        ),
        services,
    );
    let mut out = Vec::new();
    e.on_inbound(inbound(CALLER, INVITE), Instant::now(), &mut out);
    drop(e);
    thread.finish();
    assert_eq!(
        rows(
            &path,
            "SELECT method, sip_code, sip_reason, to_tag FROM my_acc"
        ),
        [texts(&["INVITE", "404", "Not Here", ""])]
    );
}

#[test]
fn report_ack_logs_the_end_to_end_ack_of_an_accounted_invite() {
    let run = |report: u8, flags: &str| {
        let routes = format!(
            "modparam(\"acc\", \"report_ack\", {report})\n{}",
            relay_with(flags)
        );
        let mut e = engine(&routes);
        let now = Instant::now();
        let mut out = Vec::new();
        e.on_inbound(inbound(CALLER, INVITE), now, &mut out);
        let relayed = sent_to(&out, CALLEE);
        let mut out = Vec::new();
        e.on_inbound(
            inbound(CALLEE, &answer(&relayed[0], 200, "OK")),
            now,
            &mut out,
        );
        assert_eq!(take_lines().len(), usize::from(!flags.is_empty()));
        // tm matches an end-to-end ACK to its INVITE only when it reuses the
        // INVITE's branch today (see acc's module documentation).
        let ack = INVITE
            .replace("INVITE sip:", "ACK sip:")
            .replace("1 INVITE", "1 ACK")
            .replace(
                "To: <sip:bob@example.net>",
                "To: <sip:bob@example.net>;tag=b200",
            );
        let mut out = Vec::new();
        e.on_inbound(inbound(CALLER, &ack), now, &mut out);
        assert_eq!(sent_to(&out, CALLEE).len(), 1, "ACK forwarded: {out:?}");
        take_lines()
    };
    let lines = run(1, "setflag(1);");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("ACC: request acknowledged: timestamp="),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(";method=ACK;from_tag=a1;to_tag=b200;call_id=acc-call-1;code=200;reason=OK;src_user=alice"),
        "{}",
        lines[0]
    );
    assert!(run(0, "setflag(1);").is_empty());
    assert!(run(1, "").is_empty());
}
