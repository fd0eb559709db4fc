//! The `exec` module: runs shell commands from the script, as Kamailio 5.6's
//! does (KAMAILIO-REFERENCE "exec").
//!
//! - `exec_msg(cmd)`: the received message goes to the command's stdin; its
//!   output is not read.
//! - `exec_dset(cmd)`: the command runs with the current Request-URI as one
//!   more argument, in single quotes; the lines it prints are the new
//!   Request-URI (first line) and extra branches (the others).
//! - `exec_avp(cmd[, avplist])`: each line it prints is stored in an AVP,
//!   named by `avplist` (`$avp(a), $avp(b)`); lines without a name there go
//!   to the AVPs named by their number (`$avp(i:1)`, `$avp(i:2)`…).
//! - `exec_cmd(cmd)`: just runs it.
//!
//! Each returns 1 when the command exited with status 0 (and, for
//! `exec_dset`, printed at least one URI), else -1. Output lines lose their
//! trailing CR, LF, tab and space; empty lines are skipped.
//!
//! With `setvars` (default 1) the command sees the message in environment
//! variables: `SIP_HF_<NAME>` per header (the values of a repeated header
//! joined by `,`, the first one first and the others last to first, as
//! Kamailio lists them; compact names under their full name), `SIP_SRCIP`,
//! `SIP_RURI`, `SIP_USER`, `SIP_ORUI` (Kamailio's spelling of the original
//! Request-URI), `SIP_OUSER`, `SIP_TID` (an MD5 that a retransmission, its
//! CANCEL and the ACK of a negative reply share) and `SIP_DID` (the To tag).
//!
//! The worker waits for the command, as Kamailio's process does; with
//! `time_to_kill` (seconds) a command still running then is killed and the
//! call fails. Running a process is IO: this module builds the [`Job`] and the
//! runtime's [`Shell`] runs it.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;

use crate::modules::corex::args::as_pv;
use crate::script::ctx::MsgCtx;
use crate::script::ir::FormatPart;
use crate::script::pvkind::{AvpKey, PvKind, PvRef};
use crate::script::registry::{
    func, Arg, Args, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};
use crate::script::value::Value;
use crate::sip::nameaddr::NameAddr;
use crate::sip::uri::Uri;
use crate::sip::HeaderName;

/// One command to run: `/bin/sh -c COMMAND` with these extra environment
/// variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub command: Vec<u8>,
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    /// Written to its stdin (then closed); `None`: stdin is empty.
    pub stdin: Option<Bytes>,
    /// Whether its stdout is read (else it is discarded).
    pub read_stdout: bool,
    /// Killed when still running after this long.
    pub time_limit: Option<Duration>,
}

/// How a [`Job`] ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished {
    /// It exited by itself with status 0.
    pub success: bool,
    /// What it printed, when read.
    pub stdout: Vec<u8>,
}

/// Runs commands (the runtime's process spawner; a fake in tests).
pub trait Shell: Send + Sync {
    fn run(&self, job: &Job) -> std::io::Result<Finished>;
}

/// The module's parameters and its shell.
pub struct Exec {
    setvars: bool,
    bash_safety: bool,
    time_to_kill: Option<Duration>,
    shell: Box<dyn Shell>,
}

impl Exec {
    pub fn from_modparams(mp: &ModParams, shell: Box<dyn Shell>) -> Result<Exec, String> {
        let time_to_kill = match mp.int("exec", "time_to_kill").unwrap_or(0) {
            0 => None,
            s if s > 0 => Some(Duration::from_secs(s as u64)),
            s => return Err(format!("exec: time_to_kill {s} must not be negative")),
        };
        Ok(Exec {
            setvars: mp.int("exec", "setvars").unwrap_or(1) != 0,
            bash_safety: mp.int("exec", "bash_safety").unwrap_or(1) != 0,
            time_to_kill,
            shell,
        })
    }

    fn run(&self, job: Job) -> Option<Finished> {
        match self.shell.run(&job) {
            Ok(done) => {
                if !done.success {
                    log::debug!(
                        "exec: command failed: {}",
                        String::from_utf8_lossy(&job.command)
                    );
                }
                Some(done)
            }
            Err(e) => {
                log::error!(
                    "exec: cannot run {}: {e}",
                    String::from_utf8_lossy(&job.command)
                );
                None
            }
        }
    }

    /// A job for `command`, with the message's environment when `with_env`
    /// and `setvars` are on.
    fn job(&self, ctx: &MsgCtx<'_>, command: Vec<u8>, with_env: bool) -> Job {
        Job {
            command,
            env: if with_env && self.setvars {
                environment(ctx, self.bash_safety)
            } else {
                Vec::new()
            },
            stdin: None,
            read_stdout: false,
            time_limit: self.time_to_kill,
        }
    }
}

/// The non-empty lines of a command's output, right-trimmed.
fn output_lines(out: &[u8]) -> impl Iterator<Item = &[u8]> {
    out.split(|&b| b == b'\n').filter_map(|line| {
        let end = line
            .iter()
            .rposition(|b| !matches!(b, b'\r' | b'\n' | b'\t' | b' '))
            .map_or(0, |i| i + 1);
        (end > 0).then(|| &line[..end])
    })
}

/// A header's environment name: the full name of the headers that have a
/// compact form (whichever form was written), else the name upper-cased
/// with every other character made `_`.
fn env_name(id: HeaderName, name: &[u8]) -> Cow<'static, [u8]> {
    let known: Option<&'static [u8]> = match id {
        HeaderName::Via => Some(b"VIA"),
        HeaderName::ContentType => Some(b"CONTENT_TYPE"),
        HeaderName::From => Some(b"FROM"),
        HeaderName::CallId => Some(b"CALLID"),
        HeaderName::Supported => Some(b"SUPPORTED"),
        HeaderName::ContentLength => Some(b"CONTENT_LENGTH"),
        HeaderName::Contact => Some(b"CONTACT"),
        HeaderName::To => Some(b"TO"),
        HeaderName::Event => Some(b"EVENT"),
        _ => None,
    };
    if let Some(k) = known {
        return Cow::Borrowed(k);
    }
    Cow::Owned(
        name.iter()
            .map(|&c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    b'_'
                }
            })
            .collect(),
    )
}

/// A header value as it goes into the environment: with `bash_safety`, a
/// value that starts like a shell function definition loses its first two
/// characters (Kamailio's guard against Shellshock). NUL bytes cannot be in
/// the environment and are dropped.
fn env_value(value: &[u8], bash_safety: bool, out: &mut Vec<u8>) {
    let v = if bash_safety && value.starts_with(b"() {") {
        &value[2..]
    } else {
        value
    };
    out.extend(v.iter().copied().filter(|&b| b != 0));
}

/// The user part of a SIP URI, if it parses and has one.
fn uri_user(uri: &[u8]) -> Option<Vec<u8>> {
    Uri::parse(uri).ok()?.user().map(<[u8]>::to_vec)
}

/// The leading number of a CSeq value, as written.
fn cseq_number(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let rest = &v[start..];
    let end = rest
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    &rest[..end]
}

/// `SIP_TID`: the MD5 (hex) of the From tag, the To tag (not for INVITE, ACK
/// and CANCEL), Call-ID, the received Request-URI, the CSeq number and the
/// top Via's host, port and branch: the same for a request, its
/// retransmissions, its CANCEL and the ACK of a negative reply. Empty when
/// one of them cannot be read.
fn transaction_id(ctx: &MsgCtx<'_>) -> Vec<u8> {
    use md5::{Digest, Md5};
    let msg = ctx.msg;
    let from = msg
        .header_value(HeaderName::From)
        .and_then(|v| NameAddr::parse(v).ok());
    let to = msg
        .header_value(HeaderName::To)
        .and_then(|v| NameAddr::parse(v).ok());
    let (Some(from), Some(to), Some(call_id), Some(cseq), Some(ruri), Some((_, Ok(via)))) = (
        from,
        to,
        msg.header_value(HeaderName::CallId),
        msg.header_value(HeaderName::CSeq),
        msg.request_uri(),
        msg.top_via(),
    ) else {
        return Vec::new();
    };
    let mut h = Md5::new();
    h.update(from.tag().unwrap_or_default());
    if !matches!(msg.method_bytes(), b"INVITE" | b"ACK" | b"CANCEL") {
        h.update(to.tag().unwrap_or_default());
    }
    h.update(call_id);
    h.update(ruri);
    h.update(cseq_number(cseq));
    h.update(via.host_raw());
    if let Some(port) = via.port() {
        h.update(port.to_string().as_bytes());
    }
    if let Some(branch) = via.branch() {
        h.update(branch);
    }
    h.finalize()
        .iter()
        .flat_map(|b| {
            let hex = b"0123456789abcdef";
            [hex[usize::from(b >> 4)], hex[usize::from(b & 15)]]
        })
        .collect()
}

/// A header's environment name and its values, in Kamailio's order.
type HeaderGroup<'m> = (Cow<'static, [u8]>, Vec<&'m [u8]>);

/// The environment Kamailio gives a command for the message in `ctx`.
pub fn environment(ctx: &MsgCtx<'_>, bash_safety: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let msg = ctx.msg;
    let mut env: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    // Headers grouped by name; Kamailio lists a group's first value first,
    // then the others last to first.
    let mut groups: Vec<HeaderGroup<'_>> = Vec::new();
    for h in msg.headers() {
        let name = env_name(h.id, msg.name(h));
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.insert(1, msg.value(h)),
            None => groups.push((name, vec![msg.value(h)])),
        }
    }
    for (name, values) in groups {
        let mut key = b"SIP_HF_".to_vec();
        key.extend_from_slice(&name);
        let mut value = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                value.push(b',');
            }
            env_value(v, bash_safety, &mut value);
        }
        env.push((key, value));
    }
    env.push((b"SIP_SRCIP".to_vec(), ctx.src.ip().to_string().into_bytes()));
    let ruri = ctx.ruri().to_vec();
    if let Some(user) = uri_user(&ruri) {
        env.push((b"SIP_USER".to_vec(), user));
    }
    env.push((b"SIP_RURI".to_vec(), ruri));
    if let Some(original) = msg.request_uri() {
        if let Some(user) = uri_user(original) {
            env.push((b"SIP_OUSER".to_vec(), user));
        }
        env.push((b"SIP_ORUI".to_vec(), original.to_vec()));
    }
    env.push((b"SIP_TID".to_vec(), transaction_id(ctx)));
    let did = msg.to_tag().flatten().unwrap_or_default().to_vec();
    env.push((b"SIP_DID".to_vec(), did));
    for (_, v) in env.iter_mut() {
        v.retain(|&b| b != 0);
    }
    env
}

fn exec<'e>(ctx: &MsgCtx<'e>) -> Option<&'e Exec> {
    let e = ctx.env.services.get::<Exec>();
    if e.is_none() {
        log::error!("exec: the module is not set up");
    }
    e
}

fn code(ok: bool) -> i32 {
    if ok {
        1
    } else {
        -1
    }
}

/// `exec_msg(cmd)`: the received message on the command's stdin.
fn exec_msg(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(e) = exec(ctx) else { return -1 };
    let mut job = e.job(ctx, args.str(ctx, 0).into_owned(), true);
    job.stdin = Some(ctx.msg.buf().clone());
    code(e.run(job).is_some_and(|d| d.success))
}

/// `exec_cmd(cmd)`: runs the command.
fn exec_cmd(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(e) = exec(ctx) else { return -1 };
    let job = e.job(ctx, args.str(ctx, 0).into_owned(), false);
    code(e.run(job).is_some_and(|d| d.success))
}

/// `exec_dset(cmd)`: `cmd 'RURI'`; its output lines are the new
/// Request-URI and branches.
fn exec_dset(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(e) = exec(ctx) else { return -1 };
    let mut command = args.str(ctx, 0).into_owned();
    let ruri = ctx.ruri().to_vec();
    if !ruri.is_empty() {
        command.extend_from_slice(b" '");
        command.extend_from_slice(&ruri);
        command.push(b'\'');
    }
    let mut job = e.job(ctx, command, true);
    job.read_stdout = true;
    let Some(done) = e.run(job) else { return -1 };
    let mut count = 0;
    for line in output_lines(&done.stdout) {
        if count == 0 {
            ctx.new_uri = Some(Bytes::copy_from_slice(line));
        } else {
            let branch = Args(vec![Arg::Str(Bytes::copy_from_slice(line))]);
            if crate::modules::corex::branch::append_branch(ctx, &branch) < 0 {
                return -1;
            }
        }
        count += 1;
    }
    if count == 0 {
        log::error!(
            "exec_dset: no URI from {}",
            String::from_utf8_lossy(&args.str(ctx, 0))
        );
        return -1;
    }
    code(done.success)
}

/// The AVPs named by `exec_avp`'s second argument.
struct AvpList(Vec<PvRef>);

/// `exec_avp`'s second argument: AVPs separated by commas.
fn fixup_exec_avp(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if args.len() < 2 {
        return Ok(());
    }
    as_pv(args, 1);
    let avps = match args.0.get(1) {
        Some(Arg::Pv(pv)) => vec![pv.clone()],
        Some(Arg::Fmt(f)) => {
            let mut avps = Vec::new();
            for part in &f.parts {
                match part {
                    FormatPart::Pv(pv) => avps.push(pv.clone()),
                    FormatPart::Lit(l)
                        if l.iter().all(|b| b.is_ascii_whitespace() || *b == b',') => {}
                    _ => return Err("the second argument must be AVPs separated by commas, such as \"$avp(a), $avp(b)\"".into()),
                }
            }
            avps
        }
        _ => return Err(
            "the second argument must be AVPs separated by commas, such as \"$avp(a), $avp(b)\""
                .into(),
        ),
    };
    if avps.is_empty()
        || !avps
            .iter()
            .all(|pv| matches!(pv.kind, PvKind::Avp(_) | PvKind::AvpDyn(_)))
    {
        return Err("the second argument must name AVPs only, such as \"$avp(a), $avp(b)\"".into());
    }
    args.0[1] = Arg::Custom(Box::new(AvpList(avps)));
    Ok(())
}

/// `exec_avp(cmd[, avplist])`: each output line in an AVP.
fn exec_avp(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(e) = exec(ctx) else { return -1 };
    let mut job = e.job(ctx, args.str(ctx, 0).into_owned(), true);
    job.read_stdout = true;
    let Some(done) = e.run(job) else { return -1 };
    let names = match args.get(1) {
        Some(Arg::Custom(c)) => c.downcast_ref::<AvpList>().map(|l| l.0.as_slice()),
        _ => None,
    };
    for (i, line) in output_lines(&done.stdout).enumerate() {
        let value = Value::Str(Cow::Owned(line.to_vec()));
        // Lines beyond the list go to AVPs named by their number, as in
        // Kamailio.
        match names.and_then(|n| n.get(i)) {
            Some(pv) => {
                if ctx.write_pv(pv, value).is_err() {
                    return -1;
                }
            }
            None => ctx.attrs.avp_push(AvpKey::Int(i as i64 + 1), value),
        }
    }
    code(done.success)
}

const REQ_FAIL: RouteMask = RouteMask::REQUEST.or(RouteMask::FAILURE);

pub static MODULE: ModuleDef = ModuleDef {
    name: "exec",
    aliases: &[],
    functions: &[
        func("exec_msg", 1, 1, REQ_FAIL, None, exec_msg),
        func("exec_dset", 1, 1, REQ_FAIL, None, exec_dset),
        func("exec_avp", 1, 2, REQ_FAIL, Some(fixup_exec_avp), exec_avp),
        func("exec_cmd", 1, 1, RouteMask::ANY, None, exec_cmd),
    ],
    params: &[
        ParamDef {
            name: "setvars",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "time_to_kill",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "bash_safety",
            kind: ParamKind::Int,
        },
    ],
    always: false,
};

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::modules::testutil::{run, Harness};

    /// Answers every job with `out` and `success`, and keeps the jobs.
    struct Fake {
        out: Vec<u8>,
        success: bool,
        jobs: Arc<Mutex<Vec<Job>>>,
    }

    impl Shell for Fake {
        fn run(&self, job: &Job) -> std::io::Result<Finished> {
            self.jobs.lock().unwrap().push(job.clone());
            Ok(Finished {
                success: self.success,
                stdout: if job.read_stdout {
                    self.out.clone()
                } else {
                    Vec::new()
                },
            })
        }
    }

    const INVITE: &str = "INVITE sip:+4930123@proxy.example.net SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK-1;rport
v: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-0
Via: SIP/2.0/UDP 192.0.2.8;branch=z9hG4bK-00
Max-Forwards: 70
f: <sip:alice@example.com>;tag=a1
To: <sip:+4930123@example.net>
i: call-1
CSeq: 7 INVITE
X-Shell: () { :; }; echo pwned
k: 100rel
Supported: timer
Content-Length: 0

";

    /// `exec` set up with a fake shell answering `out`; the jobs it saw.
    fn harness(
        text: &str,
        out: &str,
        success: bool,
        setvars: bool,
    ) -> (Harness, Arc<Mutex<Vec<Job>>>) {
        let mut h = Harness::new(text);
        let jobs = Arc::new(Mutex::new(Vec::new()));
        h.env.services.insert(Arc::new(Exec {
            setvars,
            bash_safety: true,
            time_to_kill: None,
            shell: Box::new(Fake {
                out: out.as_bytes().to_vec(),
                success,
                jobs: jobs.clone(),
            }),
        }));
        (h, jobs)
    }

    fn var<'j>(job: &'j Job, name: &str) -> Option<&'j str> {
        job.env
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn exec_msg_feeds_the_received_message_with_its_environment() {
        let (mut h, jobs) = harness(INVITE, "", true, true);
        let mut ctx = h.ctx();
        ctx.new_uri = Some(Bytes::from_static(b"sip:bob@192.0.2.50"));
        assert_eq!(run(&mut ctx, &MODULE, "exec_msg", &["logger -t sip"]), 1);
        let jobs = jobs.lock().unwrap();
        let job = &jobs[0];
        assert_eq!(job.command, b"logger -t sip");
        assert_eq!(job.stdin.as_deref(), Some(ctx.msg.buf().as_ref()));
        assert!(!job.read_stdout);
        // A repeated header: the first value, then the others last to first.
        assert_eq!(
            var(job, "SIP_HF_VIA"),
            Some(
                "SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK-1;rport,\
                 SIP/2.0/UDP 192.0.2.8;branch=z9hG4bK-00,\
                 SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-0"
            )
        );
        // Compact forms under their full names; other names upper-cased, `-` → `_`.
        assert_eq!(
            var(job, "SIP_HF_FROM"),
            Some("<sip:alice@example.com>;tag=a1")
        );
        assert_eq!(var(job, "SIP_HF_CALLID"), Some("call-1"));
        assert_eq!(var(job, "SIP_HF_SUPPORTED"), Some("100rel,timer"));
        assert_eq!(var(job, "SIP_HF_MAX_FORWARDS"), Some("70"));
        assert_eq!(var(job, "SIP_HF_CONTENT_LENGTH"), Some("0"));
        // A function definition loses its "()".
        assert_eq!(var(job, "SIP_HF_X_SHELL"), Some(" { :; }; echo pwned"));
        assert_eq!(
            var(job, "SIP_SRCIP"),
            Some(ctx.src.ip().to_string().as_str())
        );
        assert_eq!(var(job, "SIP_RURI"), Some("sip:bob@192.0.2.50"));
        assert_eq!(var(job, "SIP_USER"), Some("bob"));
        assert_eq!(var(job, "SIP_ORUI"), Some("sip:+4930123@proxy.example.net"));
        assert_eq!(var(job, "SIP_OUSER"), Some("+4930123"));
        assert_eq!(var(job, "SIP_DID"), Some(""));
        let tid = var(job, "SIP_TID").unwrap();
        assert!(
            tid.len() == 32 && tid.bytes().all(|b| b.is_ascii_hexdigit()),
            "{tid}"
        );
    }

    #[test]
    fn the_transaction_id_is_shared_by_a_cancel_and_differs_for_another_request() {
        let tid = |text: &str| {
            let (mut h, jobs) = harness(text, "", true, true);
            run(&mut h.ctx(), &MODULE, "exec_msg", &["true"]);
            let jobs = jobs.lock().unwrap();
            var(&jobs[0], "SIP_TID").unwrap().to_string()
        };
        let cancel = INVITE
            .replace("INVITE sip:", "CANCEL sip:")
            .replace("CSeq: 7 INVITE", "CSeq: 7 CANCEL");
        let other = INVITE.replace("branch=z9hG4bK-1;", "branch=z9hG4bK-2;");
        assert_eq!(tid(INVITE), tid(&cancel));
        assert_ne!(tid(INVITE), tid(&other));
    }

    #[test]
    fn without_setvars_or_for_exec_cmd_no_variables_are_set() {
        let (mut h, jobs) = harness(INVITE, "", true, false);
        run(&mut h.ctx(), &MODULE, "exec_msg", &["cat"]);
        let (mut h2, jobs2) = harness(INVITE, "", true, true);
        assert_eq!(run(&mut h2.ctx(), &MODULE, "exec_cmd", &["true"]), 1);
        assert!(jobs.lock().unwrap()[0].env.is_empty());
        let jobs2 = jobs2.lock().unwrap();
        assert!(jobs2[0].env.is_empty() && jobs2[0].stdin.is_none());
    }

    #[test]
    fn a_failing_command_returns_minus_one() {
        let (mut h, _) = harness(INVITE, "", false, true);
        assert_eq!(run(&mut h.ctx(), &MODULE, "exec_msg", &["false"]), -1);
        assert_eq!(run(&mut h.ctx(), &MODULE, "exec_cmd", &["false"]), -1);
    }

    #[test]
    fn exec_dset_passes_the_uri_and_takes_the_lines_as_uri_and_branches() {
        let out = "sip:a@192.0.2.61 \r\n\n\tsip:b@192.0.2.62\t\nsip:c@192.0.2.63";
        let (mut h, jobs) = harness(INVITE, out, true, true);
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "exec_dset", &["route.sh"]), 1);
        assert_eq!(ctx.new_uri.as_deref(), Some(&b"sip:a@192.0.2.61"[..]));
        let branches: Vec<&[u8]> = ctx.branches.iter().map(|b| b.uri.as_ref()).collect();
        assert_eq!(branches, [&b"\tsip:b@192.0.2.62"[..], b"sip:c@192.0.2.63"]);
        assert_eq!(
            jobs.lock().unwrap()[0].command,
            b"route.sh 'sip:+4930123@proxy.example.net'"
        );
    }

    #[test]
    fn exec_dset_without_output_fails_and_keeps_the_uri() {
        let (mut h, _) = harness(INVITE, "\n \n", true, true);
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "exec_dset", &["true"]), -1);
        assert_eq!(ctx.new_uri, None);
        // Output taken, but the command failed: the URIs stay, the call fails.
        let (mut h, _) = harness(INVITE, "sip:x@192.0.2.1\n", false, true);
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "exec_dset", &["false"]), -1);
        assert_eq!(ctx.new_uri.as_deref(), Some(&b"sip:x@192.0.2.1"[..]));
    }

    #[test]
    fn exec_avp_without_names_numbers_the_lines() {
        let (mut h, _) = harness(INVITE, "first\n\nsecond  \n", true, true);
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "exec_avp", &["lookup.sh"]), 1);
        let get = |ctx: &MsgCtx<'_>, n| {
            ctx.attrs
                .avp(&AvpKey::Int(n), 0)
                .map(|v| v.to_bytes().into_owned())
        };
        assert_eq!(get(&ctx, 1).as_deref(), Some(&b"first"[..]));
        assert_eq!(get(&ctx, 2).as_deref(), Some(&b"second"[..]));
        assert_eq!(get(&ctx, 3), None);
    }

    #[test]
    fn exec_avp_refuses_a_list_that_is_not_avps() {
        let params = ModParams::default();
        let err = crate::modules::testutil::fixed(&MODULE, "exec_avp", &["x", "a,b"], &params)
            .unwrap_err();
        assert!(err.contains("AVPs"), "{err}");
    }
}
