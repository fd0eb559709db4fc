//! The dialog module in the engine, sans-IO on virtual time: a call is
//! tracked from its INVITE to its BYE (states 1 → 2 → 3 → 4 → 5), the
//! `did` cookie goes out in Record-Route and comes back in Route, profiles
//! limit concurrent calls, and the event routes run.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::engine::{engine_with, inbound, sent_to};
use ringsip::modules::core::Engine;
use ringsip::modules::dialog::{Dialogs, DlgParams, State};
use ringsip::script::ctx::Epoch;

const CALLER: &str = "127.0.0.2:5070";
const CALLEE: &str = "127.0.0.3:5080";
const T0_UNIX_MS: u64 = 1_800_000_000_000;

const CONFIG: &str = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "dialog.so"
modparam("dialog", "profiles_with_value", "caller")
modparam("dialog", "default_timeout", 60)
request_route {
    if (has_totag()) {
        # Looking the dialog up first does not keep loose_route() from moving it on.
        if (!is_known_dlg()) {
            sl_send_reply("481", "No such dialog");
            exit;
        }
        if (loose_route()) {
            append_hf("X-Dlg: state=$dlg(state) started=$dlg_var(started) known=$dlg_ctx(set) dir=$dlg_ctx(dir) ended=$dlg_var(ended)\r\n");
            t_relay();
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("INVITE")) {
        get_profile_size("caller", "$fU", "$var(n)");
        if ($var(n) >= 1) {
            sl_send_reply("486", "Busy Here");
            exit;
        }
        dlg_manage();
        set_dlg_profile("caller", "$fU");
        $dlg_var(caller) = $fU;
        $dlg_ctx(timeout_route) = "DLGTIMEOUT";
        record_route();
    }
    $du = "sip:127.0.0.3:5080";
    t_relay();
}
route[DLGTIMEOUT] {
    $dlg_var(timeout_route) = $rm + " " + $dlg(callid);
}
event_route[dialog:start] {
    $dlg_var(started) = "yes";
}
event_route[dialog:end] {
    $dlg_var(ended) = $dlg(state);
}
"#;

struct Call {
    callid: String,
    ftag: String,
    user: String,
    cseq: u32,
}

impl Call {
    fn new(n: u32, user: &str) -> Call {
        Call {
            callid: format!("dlg-call-{n}"),
            ftag: format!("ft{n}"),
            user: user.to_string(),
            cseq: 1,
        }
    }

    fn invite(&self) -> String {
        format!(
            "INVITE sip:bob@127.0.0.1:5060 SIP/2.0\n\
             Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK{cid}-{cseq}\n\
             Max-Forwards: 70\n\
             From: <sip:{user}@127.0.0.2>;tag={ftag}\n\
             To: <sip:bob@127.0.0.1>\n\
             Call-ID: {cid}\n\
             CSeq: {cseq} INVITE\n\
             Contact: <sip:{user}@127.0.0.2:5070>\n\
             Content-Length: 0\n\n",
            cid = self.callid,
            cseq = self.cseq,
            user = self.user,
            ftag = self.ftag
        )
    }

    /// The callee's answer to the INVITE as it was relayed (`relayed`).
    fn answer(&self, relayed: &str, status: &str) -> String {
        let echoed: String = relayed
            .lines()
            .filter(|l| l.starts_with("Via:") || l.starts_with("Record-Route:"))
            .map(|l| format!("{l}\n"))
            .collect();
        format!(
            "SIP/2.0 {status}\n{echoed}From: <sip:{user}@127.0.0.2>;tag={ftag}\n\
             To: <sip:bob@127.0.0.1>;tag=callee-{cid}\nCall-ID: {cid}\nCSeq: {cseq} INVITE\n\
             Contact: <sip:bob@127.0.0.3:5080>\nContent-Length: 0\n\n",
            user = self.user,
            ftag = self.ftag,
            cid = self.callid,
            cseq = self.cseq
        )
    }

    /// An in-dialog request from the caller along the route set `rr`.
    fn in_dialog(&self, method: &str, cseq: u32, rr: &str) -> String {
        format!(
            "{method} sip:bob@127.0.0.3:5080 SIP/2.0\n\
             Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK{cid}-{method}-{cseq}\n\
             Max-Forwards: 70\n\
             Route: {rr}\n\
             From: <sip:{user}@127.0.0.2>;tag={ftag}\n\
             To: <sip:bob@127.0.0.1>;tag=callee-{cid}\n\
             Call-ID: {cid}\n\
             CSeq: {cseq} {method}\n\
             Content-Length: 0\n\n",
            cid = self.callid,
            user = self.user,
            ftag = self.ftag
        )
    }
}

fn dialog_engine(cfg: &str, t0: Instant) -> Engine {
    engine_with(cfg, |env, mp| {
        let d = Arc::new(Dialogs::new(DlgParams::from_modparams(mp).unwrap()));
        env.services.insert(d.clone());
        env.services.add_timer(d);
        env.epoch = Epoch {
            at: Some(t0),
            unix_ms: T0_UNIX_MS,
        };
    })
}

fn dialogs(e: &Engine) -> &Dialogs {
    e.env().services.get::<Dialogs>().expect("dialog loaded")
}

/// The Record-Route value of a relayed request.
fn record_route(relayed: &str) -> String {
    relayed
        .lines()
        .find_map(|l| l.strip_prefix("Record-Route: "))
        .expect("Record-Route")
        .to_string()
}

fn one_state(e: &Engine, callid: &str) -> State {
    let all: Vec<_> = dialogs(e)
        .list()
        .into_iter()
        .filter(|d| &*d.callid == callid.as_bytes())
        .collect();
    assert_eq!(all.len(), 1, "one dialog for {callid}");
    all[0].state
}

/// Sends `text` from `from` at `now`; what went out.
fn send(e: &mut Engine, from: &str, text: &str, now: Instant) -> Vec<ringsip::sip::Transmit> {
    let mut out = Vec::new();
    e.on_inbound(inbound(from, text), now, &mut out);
    out
}

#[test]
fn call_goes_through_every_state_and_the_cookie_comes_back() {
    let t0 = Instant::now();
    let mut e = dialog_engine(CONFIG, t0);
    let call = Call::new(1, "alice");
    let out = send(&mut e, CALLER, &call.invite(), t0);
    let relayed = sent_to(&out, CALLEE).pop().expect("INVITE relayed");
    let rr = record_route(&relayed);
    assert!(rr.contains(";did="), "did in Record-Route: {rr}");
    assert_eq!(one_state(&e, &call.callid), State::Unconfirmed);

    let ringing = call.answer(&relayed, "180 Ringing");
    let out = send(&mut e, CALLEE, &ringing, t0);
    assert!(sent_to(&out, CALLER)[0].starts_with("SIP/2.0 180"));
    assert_eq!(one_state(&e, &call.callid), State::Early);

    let ok = call.answer(&relayed, "200 OK");
    let out = send(&mut e, CALLEE, &ok, t0 + Duration::from_secs(1));
    assert!(sent_to(&out, CALLER)[0].starts_with("SIP/2.0 200"));
    assert_eq!(one_state(&e, &call.callid), State::ConfirmedNa);
    let dlg = dialogs(&e).list().pop().unwrap();
    assert_eq!(dlg.start_ts, T0_UNIX_MS / 1000 + 1);
    assert_eq!(&*dlg.to_tag, b"callee-dlg-call-1");

    let ack = call.in_dialog("ACK", 1, &rr);
    let out = send(&mut e, CALLER, &ack, t0 + Duration::from_secs(2));
    let acked = sent_to(&out, CALLEE).pop().expect("ACK relayed");
    assert!(
        acked.contains("X-Dlg: state=4 started=yes known=1 dir=0 ended=<null>\r\n"),
        "ACK confirmed the dialog, dialog:start ran: {acked}"
    );
    assert_eq!(one_state(&e, &call.callid), State::Confirmed);

    let bye = call.in_dialog("BYE", 2, &rr);
    let out = send(&mut e, CALLER, &bye, t0 + Duration::from_secs(3));
    let byed = sent_to(&out, CALLEE).pop().expect("BYE relayed");
    assert!(
        byed.contains("X-Dlg: state=5 started=yes known=1 dir=0 ended=5\r\n"),
        "BYE ended it, dialog:end ran: {byed}"
    );
    assert_eq!(one_state(&e, &call.callid), State::Deleted);
}

#[test]
fn a_second_call_of_the_same_caller_is_refused_until_the_first_ends() {
    let t0 = Instant::now();
    let mut e = dialog_engine(CONFIG, t0);
    let first = Call::new(2, "alice");
    let out = send(&mut e, CALLER, &first.invite(), t0);
    let relayed = sent_to(&out, CALLEE).pop().expect("first INVITE relayed");
    let rr = record_route(&relayed);
    send(&mut e, CALLEE, &first.answer(&relayed, "200 OK"), t0);
    send(&mut e, CALLER, &first.in_dialog("ACK", 1, &rr), t0);

    let second = Call::new(3, "alice");
    let out = send(&mut e, CALLER, &second.invite(), t0);
    assert!(sent_to(&out, CALLEE).is_empty(), "not relayed");
    assert!(
        sent_to(&out, CALLER)[0].starts_with("SIP/2.0 486 Busy Here"),
        "{out:?}"
    );
    // Another caller is not limited.
    let other = Call::new(4, "carol");
    let out = send(&mut e, CALLER, &other.invite(), t0);
    assert_eq!(sent_to(&out, CALLEE).len(), 1, "carol's call relayed");

    let bye = first.in_dialog("BYE", 2, &rr);
    send(&mut e, CALLER, &bye, t0);
    let third = Call::new(5, "alice");
    let out = send(&mut e, CALLER, &third.invite(), t0);
    assert_eq!(
        sent_to(&out, CALLEE).len(),
        1,
        "relayed after the BYE: {out:?}"
    );
}

#[test]
fn a_failed_call_leaves_its_profile() {
    let t0 = Instant::now();
    let mut e = dialog_engine(CONFIG, t0);
    let first = Call::new(6, "dave");
    let out = send(&mut e, CALLER, &first.invite(), t0);
    let relayed = sent_to(&out, CALLEE).pop().expect("relayed");
    let out = send(&mut e, CALLEE, &first.answer(&relayed, "486 Busy Here"), t0);
    assert!(sent_to(&out, CALLER)[0].starts_with("SIP/2.0 486"));
    assert_eq!(one_state(&e, &first.callid), State::Deleted);
    let p = dialogs(&e).profile("caller").unwrap();
    assert_eq!(dialogs(&e).profile_size(p, Some(b"dave")), 0);
    let again = Call::new(7, "dave");
    let out = send(&mut e, CALLER, &again.invite(), t0);
    assert_eq!(sent_to(&out, CALLEE).len(), 1, "relayed: {out:?}");
}

#[test]
fn an_unanswered_call_fails_when_tm_gives_up() {
    let t0 = Instant::now();
    let cfg = CONFIG.replace(
        "loadmodule \"dialog.so\"",
        "loadmodule \"dialog.so\"\nmodparam(\"tm\", \"fr_inv_timer\", 2000)\nmodparam(\"tm\", \"fr_timer\", 2000)",
    );
    let mut e = dialog_engine(&cfg, t0);
    let call = Call::new(8, "erin");
    let out = send(&mut e, CALLER, &call.invite(), t0);
    let relayed = sent_to(&out, CALLEE).pop().expect("relayed");
    send(&mut e, CALLEE, &call.answer(&relayed, "180 Ringing"), t0);
    assert_eq!(one_state(&e, &call.callid), State::Early);
    let mut now = t0;
    let mut upstream = Vec::new();
    while now < t0 + Duration::from_secs(5) {
        now += Duration::from_millis(100);
        let mut out = Vec::new();
        e.on_timer(now, &mut out);
        upstream.extend(sent_to(&out, CALLER));
    }
    assert!(
        upstream.iter().any(|m| m.starts_with("SIP/2.0 408")),
        "{upstream:?}"
    );
    assert_eq!(one_state(&e, &call.callid), State::Deleted);
}

#[test]
fn a_confirmed_call_ends_on_its_timeout() {
    let t0 = Instant::now();
    let mut e = dialog_engine(CONFIG, t0);
    let call = Call::new(9, "frank");
    let out = send(&mut e, CALLER, &call.invite(), t0);
    let relayed = sent_to(&out, CALLEE).pop().expect("relayed");
    send(&mut e, CALLEE, &call.answer(&relayed, "200 OK"), t0);
    send(
        &mut e,
        CALLER,
        &call.in_dialog("ACK", 1, &record_route(&relayed)),
        t0,
    );
    let mut out = Vec::new();
    e.on_timer(t0 + Duration::from_secs(59), &mut out);
    assert_eq!(one_state(&e, &call.callid), State::Confirmed);
    e.on_timer(t0 + Duration::from_secs(61), &mut out);
    assert_eq!(
        one_state(&e, &call.callid),
        State::Deleted,
        "default_timeout 60"
    );
    let p = dialogs(&e).profile("caller").unwrap();
    assert_eq!(dialogs(&e).profile_size(p, None), 0);
    // dialog:end ran for it, on a request made up for the timeout.
    let d = dialogs(&e).list().pop().unwrap();
    assert!(
        d.vars.iter().any(|(k, v)| &**k == b"ended" && &**v == b"5")
            && d.vars
                .iter()
                .any(|(k, v)| &**k == b"timeout_route" && &**v == b"BYE dlg-call-9"),
        "{:?}",
        d.vars
    );
}

#[test]
fn dlg_flag_makes_the_dialog_at_t_relay_with_pending_profiles() {
    let t0 = Instant::now();
    let cfg = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "textops.so"
loadmodule "dialog.so"
modparam("dialog", "dlg_flag", 4)
modparam("dialog", "profiles_no_value", "inbound")
modparam("dialog", "dlg_match_mode", 1)
request_route {
    if ($tt != $null) {
        if (loose_route()) { t_relay(); exit; }
        # No Route: matched by Call-ID and tags (dlg_match_mode 1).
        if (is_known_dlg() && dlg_get("$ci", "$tt", "$ft")) {
            append_hf("X-Dir: $dlg_ctx(dir) $dlg(state)\r\n");
            $du = "sip:127.0.0.3:5080";
            t_relay();
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    record_route();
    $dlg_var(account) = "acct-" + $fU;
    setflag(4);
    set_dlg_profile("inbound");
    dlg_setflag(3);
    $du = "sip:127.0.0.3:5080";
    t_relay();
}
"#;
    let mut e = dialog_engine(cfg, t0);
    let call = Call::new(10, "gina");
    let out = send(&mut e, CALLER, &call.invite(), t0);
    let relayed = sent_to(&out, CALLEE).pop().expect("relayed");
    assert!(record_route(&relayed).contains(";did="), "{relayed}");
    let d = dialogs(&e);
    let all = d.list();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].flags, 1 << 3, "dlg_setflag before the dialog kept");
    assert_eq!(
        all[0].vars,
        vec![(b"account".to_vec().into(), b"acct-gina".to_vec().into())],
        "$dlg_var before the dialog kept"
    );
    let p = d.profile("inbound").unwrap();
    assert_eq!(d.profile_size(p, None), 1, "pending profile attached");
    send(&mut e, CALLEE, &call.answer(&relayed, "200 OK"), t0);
    // An ACK without Route, matched by Call-ID and tags.
    let ack = call
        .in_dialog("ACK", 1, "x")
        .replace("Route: x\r\n", "")
        .replace("Route: x\n", "");
    let out = send(&mut e, CALLER, &ack, t0);
    let acked = sent_to(&out, CALLEE).pop().expect("ACK relayed");
    // dlg_get with the tags swapped: the upstream direction; is_known_dlg
    // does not move the dialog on.
    assert!(acked.contains("X-Dir: 2 3\r\n"), "{acked}");
}

#[test]
fn failed_event_route_runs_on_the_negative_final() {
    let t0 = Instant::now();
    let cfg = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "dialog.so"
request_route {
    dlg_manage();
    record_route();
    $du = "sip:127.0.0.3:5080";
    t_relay();
}
event_route[dialog:failed] {
    $dlg_var(failed) = $dlg(state);
}
"#;
    let mut e = dialog_engine(cfg, t0);
    let call = Call::new(11, "hank");
    let out = send(&mut e, CALLER, &call.invite(), t0);
    let relayed = sent_to(&out, CALLEE).pop().expect("relayed");
    let var = |e: &Engine| {
        let d = dialogs(e).list().pop().expect("the dialog");
        d.vars
            .iter()
            .find(|(k, _)| &**k == b"failed")
            .map(|(_, v)| v.to_vec())
    };
    assert_eq!(var(&e), None);
    send(&mut e, CALLEE, &call.answer(&relayed, "603 Decline"), t0);
    assert_eq!(
        var(&e).as_deref(),
        Some(&b"5"[..]),
        "dialog:failed ran with the ended dialog"
    );
}

/// The start-up errors of `cfg`, rendered.
fn compile_errors(cfg: &str) -> String {
    use ringsip::script::{self as script_lang, MemoryFiles, Options};
    let files = MemoryFiles::default();
    let config = script_lang::parse_str("test.cfg", cfg, &Options::with_files(&files))
        .unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    match ringsip::script::compile::compile(&config) {
        Ok(_) => String::new(),
        Err(d) => d.rendered().join("\n"),
    }
}

#[test]
fn profile_mistakes_are_start_up_errors_with_their_place() {
    let base = "loadmodule \"dialog.so\"\nmodparam(\"dialog\", \"profiles_no_value\", \"out\")\n";
    let err = compile_errors(&format!(
        "{base}request_route {{\n    set_dlg_profile(\"nope\");\n}}\n"
    ));
    assert!(err.contains("test.cfg:4:5"), "{err}");
    assert!(err.contains("no dialog profile \"nope\""), "{err}");
    let err = compile_errors(&format!(
        "{base}request_route {{\n    set_dlg_profile(\"out\", \"$fU\");\n}}\n"
    ));
    assert!(err.contains("has no value"), "{err}");
    let err = compile_errors(&format!(
        "{base}request_route {{\n    get_profile_size(\"out\", \"x\");\n}}\n"
    ));
    assert!(err.contains("writable variable"), "{err}");
    let err = compile_errors(&format!(
        "{base}request_route {{\n    $var(x) = $dlg(nope);\n}}\n"
    ));
    assert!(err.contains("unknown $dlg(nope)"), "{err}");
    assert_eq!(
        compile_errors(&format!(
            "{base}request_route {{\n    if (is_in_profile(\"out\")) {{ $dlg_var(a) = 1; }}\n}}\n"
        )),
        ""
    );
}

#[test]
fn a_dialog_whose_invite_is_answered_statelessly_goes_away() {
    let t0 = Instant::now();
    // Dialog first, then a stateless challenge: the INVITE comes again with
    // a new CSeq (same Call-ID and From-tag) and is tracked afresh.
    let cfg = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "dialog.so"
modparam("dialog", "profiles_no_value", "calls")
request_route {
    dlg_manage();
    set_dlg_profile("calls");
    if ($cs == 1) {
        sl_send_reply("407", "Proxy Authentication Required");
        exit;
    }
    record_route();
    $du = "sip:127.0.0.3:5080";
    t_relay();
}
"#;
    let mut e = dialog_engine(cfg, t0);
    let mut call = Call::new(12, "ivan");
    let out = send(&mut e, CALLER, &call.invite(), t0);
    assert!(sent_to(&out, CALLER)[0].starts_with("SIP/2.0 407"));
    assert!(dialogs(&e).list().is_empty(), "no transaction: dropped");
    let p = dialogs(&e).profile("calls").unwrap();
    assert_eq!(dialogs(&e).profile_size(p, None), 0);

    call.cseq = 2;
    let out = send(&mut e, CALLER, &call.invite(), t0);
    let relayed = sent_to(&out, CALLEE).pop().expect("relayed");
    send(&mut e, CALLEE, &call.answer(&relayed, "200 OK"), t0);
    assert_eq!(one_state(&e, &call.callid), State::ConfirmedNa);
    assert_eq!(dialogs(&e).profile_size(p, None), 1);
}

#[test]
fn dlg_count_lifetime_and_status_as_kamailio_prints_them() {
    // Kamailio 5.6.3 live, same flow: INVITE [0] [<null>] [<null>] before
    // and after dlg_manage(); ACK [1] null before loose_route(), [1] [0] [4]
    // after; the BYE 2 s later [1] null before, [0] [2] [5] after.
    let cfg = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "dialog.so"
request_route {
    append_hf("X-Start: [$DLG_count] [$DLG_lifetime] [$DLG_status]\r\n");
    if (has_totag()) {
        if (loose_route()) {
            append_hf("X-Routed: [$DLG_count] [$DLG_lifetime] [$DLG_status]\r\n");
            t_relay();
        }
        exit;
    }
    dlg_manage();
    record_route();
    append_hf("X-Managed: [$DLG_count] [$DLG_lifetime] [$DLG_status]\r\n");
    $du = "sip:127.0.0.3:5080";
    t_relay();
}
"#;
    let line = |msg: &str, name: &str| -> String {
        msg.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {msg}"))
            .to_string()
    };
    let t0 = Instant::now();
    let mut e = dialog_engine(cfg, t0);
    let call = Call::new(6, "alice");
    let out = send(&mut e, CALLER, &call.invite(), t0);
    let relayed = sent_to(&out, CALLEE).pop().expect("INVITE relayed");
    assert_eq!(line(&relayed, "X-Start: "), "[0] [<null>] [<null>]");
    assert_eq!(line(&relayed, "X-Managed: "), "[0] [<null>] [<null>]");
    let rr = record_route(&relayed);
    send(&mut e, CALLEE, &call.answer(&relayed, "200 OK"), t0);

    let out = send(&mut e, CALLER, &call.in_dialog("ACK", 1, &rr), t0);
    let ack = sent_to(&out, CALLEE).pop().expect("ACK relayed");
    assert_eq!(line(&ack, "X-Start: "), "[1] [<null>] [<null>]");
    assert_eq!(line(&ack, "X-Routed: "), "[1] [0] [4]");

    let later = t0 + Duration::from_secs(2);
    let out = send(&mut e, CALLER, &call.in_dialog("BYE", 2, &rr), later);
    let bye = sent_to(&out, CALLEE).pop().expect("BYE relayed");
    assert_eq!(line(&bye, "X-Start: "), "[1] [<null>] [<null>]");
    assert_eq!(line(&bye, "X-Routed: "), "[0] [2] [5]");
}
