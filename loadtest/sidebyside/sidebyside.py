#!/usr/bin/env python3
"""ringsip and Kamailio 5.6 side by side: the same raw SIP exchanges through
each proxy, running the same routing config; what the UAC and the UASs saw,
normalized (branches, generated tags, Server/User-Agent), and a diff.

    loadtest/sidebyside/sidebyside.py --suite            every config with its cases
    loadtest/sidebyside/sidebyside.py CONFIG [CASE...]   one config (a request_route
                                                         fragment, or a whole
                                                         #!KAMAILIO file)
Options: --loose  fold the known cosmetic differences (header order, Via
                  parameter order, ':5060' in our Via) to see the others
         --timeline  also print arrival times (timer cases)
Environment: RINGSIP (default target/release/ringsip), KAMAILIO (kamailio),
KAMAILIO_MPATH (the Debian package's module directory).

Loopback only: the proxy on 127.0.0.61:5060, the UAC on 127.0.0.62:5070,
UASs on 127.0.0.63:5080 and 127.0.0.64:5080. Each case starts each proxy
afresh. Exit status 1 when any case differs.
"""
import difflib, os, re, socket, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "loadtest", "out", "sidebyside")
PROXY = ("127.0.0.61", 5060)
UAC = ("127.0.0.62", 5070)
UAS = ("127.0.0.63", 5080)
UAS2 = ("127.0.0.64", 5080)
G = {}
MPATH = os.environ.get("KAMAILIO_MPATH", "/usr/lib/x86_64-linux-gnu/kamailio/modules/")
LOOSE = False
TIMELINE = False

def cfg_text(body):
    base = ("pv", "tm", "sl", "rr", "maxfwd", "textops", "siputils", "sanity", "xlog", "corex")
    modules = "\n".join(l for l in body.splitlines() if l.startswith(("loadmodule", "modparam")) and not any(f'"{b}.so"' in l for b in base))
    body = "\n".join(l for l in body.splitlines() if not l.startswith(("loadmodule", "modparam", "@")) and not re.match(r"^[a-z_]+\s*=", l))
    return f"""
debug=2
log_stderror=yes
children=1
disable_tcp=yes
auto_aliases=no
dns=no
rev_dns=no
listen=udp:{PROXY[0]}:{PROXY[1]}
mpath="{MPATH}"
loadmodule "pv.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "sanity.so"
loadmodule "xlog.so"
loadmodule "corex.so"
{modules}
{body}
"""

def start(kind, cfgfile):
    if kind == "kamailio":
        cmd = [os.environ.get("KAMAILIO", "kamailio"), "-f", cfgfile, "-DD", "-E", "-m", "64"]
    else:
        cmd = [os.environ.get("RINGSIP", os.path.join(ROOT, "target", "release", "ringsip")),
               "run", "-f", cfgfile, "--workers", "1", "--ctl", os.path.join(OUT, "ringsip.ctl")]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(OUT, f"{kind}.log"), "w"))
    time.sleep(0.7)
    if p.poll() is not None:
        raise SystemExit(f"{kind} did not start: see {OUT}/{kind}.log")
    return p

def sock(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr)
    s.settimeout(0.3)
    return s

def recv_all(s, wait=0.4):
    out = []
    end = time.time() + wait
    while time.time() < end:
        try:
            d, a = s.recvfrom(65535)
            out.append(d.decode(errors="replace"))
        except socket.timeout:
            pass
    return out

def hdrs(msg, name):
    r = []
    for line in msg.split("\r\n")[1:]:
        if not line: break
        n, _, v = line.partition(":")
        if n.strip().lower() == name.lower():
            r.append(v.strip())
    return r

def reply_to(req, code, reason, totag="uas-tag", extra="", body=""):
    lines = req.split("\r\n")
    out = [f"SIP/2.0 {code} {reason}"]
    for line in lines[1:]:
        if not line: break
        n = line.split(":")[0].strip().lower()
        if n in ("via", "v", "from", "f", "call-id", "i", "cseq", "record-route"):
            out.append(line)
        elif n in ("to", "t"):
            if totag and ";tag=" not in line and code > 100:
                line += ";tag=" + totag
            out.append(line)
    if code >= 200 and code < 300:
        out.append(f"Contact: <sip:uas@{UAS[0]}:{UAS[1]}>")
    out.append(extra) if extra else None
    out.append(f"Content-Length: {len(body)}")
    return "\r\n".join([l for l in out if l is not None]) + "\r\n\r\n" + body

def invite(branch=None, callid="call-1@uac", cseq=1, ruri=None, extra="", mf=70, method="INVITE", totag=None, body="v=0\r\no=- 1 1 IN IP4 127.0.0.62\r\ns=-\r\nc=IN IP4 127.0.0.62\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"):
    ruri = ruri or f"sip:uas@{UAS[0]}:{UAS[1]}"
    branch = branch or "z9hG4bK-" + re.sub(r"[^a-z0-9]", "", callid)
    to = f"<sip:uas@{UAS[0]}>" + (f";tag={totag}" if totag else "")
    m = (f"{method} {ruri} SIP/2.0\r\n"
         f"Via: SIP/2.0/UDP {UAC[0]}:{UAC[1]};branch={branch};rport\r\n"
         f"Max-Forwards: {mf}\r\n"
         f"From: <sip:uac@{UAC[0]}>;tag=uac-tag\r\n"
         f"To: {to}\r\n"
         f"Call-ID: {callid}\r\n"
         f"CSeq: {cseq} {method}\r\n"
         f"Contact: <sip:uac@{UAC[0]}:{UAC[1]}>\r\n")
    if extra: m += extra + "\r\n"
    if body and method == "INVITE":
        m += "Content-Type: application/sdp\r\n"
    else:
        body = ""
    m += f"Content-Length: {len(body)}\r\n\r\n{body}"
    return m

def norm(msg):
    msg = re.sub(r"branch=z9hG4bK[^;,\s\r]*", "branch=<B>", msg)
    msg = re.sub(r";tag=([0-9a-f]{8,}[-.0-9a-f]*)", ";tag=<T>", msg)
    lines = msg.split("\r\n")
    keep = []
    for l in lines:
        n = l.split(":")[0].strip().lower()
        if n in ("server", "user-agent"): continue
        keep.append(l)
    if LOOSE:
        # Known cosmetic differences folded: header order, Via parameter order, :5060.
        head, _, body = "\r\n".join(keep).partition("\r\n\r\n")
        lines = head.split("\r\n")
        def fold(l):
            l = l.replace("127.0.0.61:5060;", "127.0.0.61;")
            if l.lower().startswith("via:"):
                first, *params = l.split(";")
                l = ";".join([first] + sorted(params))
            return l
        keep = [lines[0]] + sorted(fold(l) for l in lines[1:])
        return "\r\n".join(keep) + "\r\n\r\n" + body
    return "\r\n".join(keep)

def exchange(uac, uas, request, code, reason, each=False):
    """The UAC sends `request`; the UAS answers `code` to the first request
    that reaches it (to each one with `each`); what either side received."""
    uac.sendto(request.encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    for g in (got if each else got[:1]):
        uas.sendto(reply_to(g, code, reason).encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

CASES = {}
def case(f): CASES[f.__name__] = f; return f

@case
def invite_200_ack_bye(uac, uas):
    uac.sendto(invite().encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    if got:
        req = got[0]
        uas.sendto(reply_to(req, 180, "Ringing").encode(), PROXY)
        uas.sendto(reply_to(req, 200, "OK", body="").encode(), PROXY)
    r = recv_all(uac)
    log += [("uac", g) for g in r]
    rr = hdrs(r[-1], "Record-Route") if r else []
    route = "Route: " + ", ".join(reversed(rr)) if rr else ""
    ack = invite(branch="z9hG4bK-uac-ack", method="ACK", totag="uas-tag", ruri=f"sip:uas@{UAS[0]}:{UAS[1]}", extra=route).replace("CSeq: 1 ACK", "CSeq: 1 ACK")
    uac.sendto(ack.encode(), PROXY)
    bye = invite(branch="z9hG4bK-uac-bye", method="BYE", cseq=2, totag="uas-tag", extra=route)
    uac.sendto(bye.encode(), PROXY)
    got = recv_all(uas)
    log += [("uas", g) for g in got]
    for g in got:
        if g.startswith("BYE"):
            uas.sendto(reply_to(g, 200, "OK").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def invite_486_failure(uac, uas):
    uac.sendto(invite(callid="c486").encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    if got:
        uas.sendto(reply_to(got[0], 486, "Busy Here").encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    r = recv_all(uac)
    log += [("uac", g) for g in r]
    ack = invite(callid="c486", method="ACK", totag="uas-tag")
    uac.sendto(ack.encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    return log

@case
def cancel(uac, uas):
    uac.sendto(invite(callid="ccancel").encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    if got:
        uas.sendto(reply_to(got[0], 180, "Ringing").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    c = invite(callid="ccancel", method="CANCEL")
    uac.sendto(c.encode(), PROXY)
    got2 = recv_all(uas)
    log += [("uas", g) for g in got2]
    for g in got2:
        if g.startswith("CANCEL"):
            uas.sendto(reply_to(g, 200, "OK").encode(), PROXY)
            uas.sendto(reply_to(got[0], 487, "Request Terminated").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    log += [("uas", g) for g in recv_all(uas)]
    return log

@case
def max_forwards_zero(uac, uas):
    uac.sendto(invite(callid="cmf", mf=0).encode(), PROXY)
    log = [("uas", g) for g in recv_all(uas)]
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def options_no_mf(uac, uas):
    m = invite(callid="copt", method="OPTIONS").replace("Max-Forwards: 70\r\n", "")
    return exchange(uac, uas, m, 200, "OK", each=True)

@case
def indialog_no_route(uac, uas):
    bye = invite(branch="z9hG4bK-uac-bye2", callid="cnr", method="BYE", cseq=2, totag="uas-tag")
    uac.sendto(bye.encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def retransmitted_invite(uac, uas):
    m = invite(callid="cretr").encode()
    uac.sendto(m, PROXY)
    time.sleep(0.05)
    uac.sendto(m, PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    log += [("uac", g) for g in recv_all(uac)]
    if got:
        uas.sendto(reply_to(got[0], 404, "Not Found").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    log += [("uas", g) for g in recv_all(uas)]
    return log

@case
def compact_and_multi_via(uac, uas):
    m = (f"INVITE sip:uas@{UAS[0]}:{UAS[1]} SIP/2.0\r\n"
         f"v: SIP/2.0/UDP {UAC[0]}:{UAC[1]};branch=z9hG4bK-cmp1,SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bK-old\r\n"
         f"Max-Forwards: 70\r\n"
         f"f: <sip:uac@{UAC[0]}>;tag=uac-tag\r\n"
         f"t: <sip:uas@{UAS[0]}>\r\n"
         f"i: ccmp@uac\r\n"
         f"CSeq: 1 INVITE\r\n"
         f"m: <sip:uac@{UAC[0]}:{UAC[1]}>\r\n"
         f"l: 0\r\n\r\n")
    uac.sendto(m.encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    if got:
        uas.sendto(reply_to(got[0], 603, "Decline").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def stray_reply(uac, uas):
    r = (f"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {PROXY[0]}:{PROXY[1]};branch=z9hG4bKdeadbeef\r\n"
         f"Via: SIP/2.0/UDP {UAC[0]}:{UAC[1]};branch=z9hG4bK-x\r\n"
         f"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    uas.sendto(r.encode(), PROXY)
    log = [("uac", g) for g in recv_all(uac)]
    return log

@case
def preloaded_route_to_proxy(uac, uas):
    m = invite(callid="cpre", extra=f"Route: <sip:{PROXY[0]}:{PROXY[1]};lr>")
    return exchange(uac, uas, m, 480, "Temporarily Unavailable")


@case
def uas_100_and_503(uac, uas):
    uac.sendto(invite(callid="c503").encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    if got:
        uas.sendto(reply_to(got[0], 100, "Trying", totag=None).encode(), PROXY)
        uas.sendto(reply_to(got[0], 183, "Session Progress", body="v=0\r\n").replace("Content-Length: 5", "Content-Type: application/sdp\r\nContent-Length: 5").encode(), PROXY)
        uas.sendto(reply_to(got[0], 503, "Service Unavailable", extra="Retry-After: 5").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    log += [("uas", g) for g in recv_all(uas)]
    return log

@case
def retransmitted_200(uac, uas):
    uac.sendto(invite(callid="c2x").encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    if got:
        ok = reply_to(got[0], 200, "OK")
        uas.sendto(ok.encode(), PROXY)
        time.sleep(0.1)
        uas.sendto(ok.encode(), PROXY)
    r = recv_all(uac)
    log += [("uac", g) for g in r]
    log.append(("count", f"uac got {len(r)} messages"))
    return log

@case
def non_invite_408_like(uac, uas):
    m = invite(callid="cmsg", method="MESSAGE")
    return exchange(uac, uas, m, 202, "Accepted")

@case
def ack_for_unknown_2xx(uac, uas):
    ack = invite(branch="z9hG4bK-lonely", callid="clonely", method="ACK", totag="x1")
    uac.sendto(ack.encode(), PROXY)
    log = [("uas", g) for g in recv_all(uas)]
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def parallel_fork(uac, uas):
    uas2 = G['uas2']
    uac.sendto(invite(callid="cfork", ruri="sip:fork@127.0.0.61").encode(), PROXY)
    a = recv_all(uas); b = recv_all(uas2, 0.1)
    log = [("uas", g) for g in a] + [("uas2", g) for g in b]
    if a and b:
        uas2.sendto(reply_to(b[0], 180, "Ringing", totag="t2").encode(), PROXY)
        uas.sendto(reply_to(a[0], 180, "Ringing", totag="t1").encode(), PROXY)
        uas.sendto(reply_to(a[0], 200, "OK", totag="t1").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    c = recv_all(uas2)
    log += [("uas2", g) for g in c]
    for g in c:
        if g.startswith("CANCEL"):
            uas2.sendto(reply_to(g, 200, "OK", totag="t2").encode(), PROXY)
            uas2.sendto(reply_to(b[0], 487, "Request Terminated", totag="t2").encode(), PROXY)
    log += [("uas2", g) for g in recv_all(uas2)]
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def serial_fork(uac, uas):
    uas2 = G['uas2']
    uac.sendto(invite(callid="cser", ruri="sip:serial@127.0.0.61").encode(), PROXY)
    a = recv_all(uas)
    log = [("uas", g) for g in a]
    if a:
        uas.sendto(reply_to(a[0], 486, "Busy Here", totag="t1").encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    b = recv_all(uas2)
    log += [("uas2", g) for g in b]
    if b:
        uas2.sendto(reply_to(b[0], 200, "OK", totag="t2").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def serial_fork_all_fail(uac, uas):
    uas2 = G['uas2']
    uac.sendto(invite(callid="cser2", ruri="sip:serial@127.0.0.61").encode(), PROXY)
    a = recv_all(uas)
    log = [("uas", g) for g in a]
    if a:
        uas.sendto(reply_to(a[0], 503, "Service Unavailable", totag="t1").encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    b = recv_all(uas2)
    log += [("uas2", g) for g in b]
    if b:
        uas2.sendto(reply_to(b[0], 404, "Not Found", totag="t2").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    log += [("uas2", g) for g in recv_all(uas2)]
    return log

def register(contact, expires=None, callid="reg-1", cseq=1, branch="z9hG4bK-reg1", user="alice"):
    m = (f"REGISTER sip:127.0.0.61 SIP/2.0\r\n"
         f"Via: SIP/2.0/UDP {UAC[0]}:{UAC[1]};branch={branch};rport\r\n"
         f"Max-Forwards: 70\r\n"
         f"From: <sip:{user}@127.0.0.61>;tag=r1\r\n"
         f"To: <sip:{user}@127.0.0.61>\r\n"
         f"Call-ID: {callid}\r\n"
         f"CSeq: {cseq} REGISTER\r\n")
    if contact: m += f"Contact: {contact}\r\n"
    if expires is not None: m += f"Expires: {expires}\r\n"
    return m + "Content-Length: 0\r\n\r\n"

def strip_dates(m):
    return re.sub(r"expires=\d+", "expires=<N>", re.sub(r"Date: .*", "Date: <D>", m))

@case
def reg_flow(uac, uas):
    log = []
    for i, (c, e) in enumerate([
            (f"<sip:alice@{UAS[0]}:{UAS[1]}>", 600),
            (None, None),
            (f"<sip:alice@{UAS[0]}:{UAS[1]}>;expires=30, <sip:alice@127.0.0.65:5099>;q=0.5", None),
            (None, None),
            (f"<sip:alice@127.0.0.65:5099>", 0),
            ("*", 5),
            ("*", 0),
            (None, None),
            (f"<sip:alice@{UAS[0]}:{UAS[1]}>;expires=30", 10),
            ]):
        uac.sendto(register(c, e, cseq=i + 1, branch=f"z9hG4bK-reg{i}").encode(), PROXY)
        log += [("uac", strip_dates(g)) for g in recv_all(uac, 0.3)]
    uac.sendto(invite(callid="creg", ruri="sip:alice@127.0.0.61").encode(), PROXY)
    got = recv_all(uas)
    log += [("uas", g) for g in got]
    if got: uas.sendto(reply_to(got[0], 480, "Temporarily Unavailable").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    uac.sendto(invite(callid="creg2", ruri="sip:nobody@127.0.0.61").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def serial_contacts(uac, uas):
    """t_load_contacts / t_next_contacts: alice's q=1.0 contact is called
    first; its 486 moves the call to the q=0.5 one, which answers 200."""
    uas2 = G['uas2']
    contacts = f"<sip:alice@{UAS2[0]}:{UAS2[1]}>;q=0.5, <sip:alice@{UAS[0]}:{UAS[1]}>;q=1.0"
    uac.sendto(register(contacts, 600, callid="reg-serial").encode(), PROXY)
    log = [("uac", strip_dates(g)) for g in recv_all(uac, 0.3)]
    uac.sendto(invite(callid="cserial", ruri="sip:alice@127.0.0.61").encode(), PROXY)
    a = recv_all(uas)
    log += [("uas", g) for g in a] + [("uas2", g) for g in recv_all(uas2, 0.1)]
    if a:
        uas.sendto(reply_to(a[0], 486, "Busy Here", totag="t1").encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    b = recv_all(uas2)
    log += [("uas2", g) for g in b]
    if b:
        uas2.sendto(reply_to(b[0], 200, "OK", totag="t2").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def force_rport_t_reply(uac, uas):
    """force_rport() then a tm reply to a Via without rport."""
    m = invite(callid="crport", ruri="sip:rport@127.0.0.61").replace(";rport\r\n", "\r\n", 1)
    uac.sendto(m.encode(), PROXY)
    return [("uac", g) for g in recv_all(uac)]

@case
def grep_status_failure(uac, uas):
    """A 486 reaches failure_route: t_get_status_code, t_is_*_route, t_reply
    with append_to_reply."""
    return exchange(uac, uas, invite(callid="cgrep", ruri=f"sip:grep@{UAS[0]}:{UAS[1]}"), 486, "Busy Here")

@case
def fork_486_then_404(uac, uas):
    """Two branches: the first answers 486, then the second 404 ends the
    transaction (failure_route sees both, or not)."""
    uas2 = G['uas2']
    uac.sendto(invite(callid="cf2").encode(), PROXY)
    a = recv_all(uas); b = recv_all(uas2, 0.1)
    log = [("uas", g) for g in a] + [("uas2", g) for g in b]
    if a and b:
        uas.sendto(reply_to(a[0], 486, "Busy Here", totag="t1").encode(), PROXY)
        log += [("uas", g) for g in recv_all(uas)]
        uas2.sendto(reply_to(b[0], 404, "Not Found", totag="t2").encode(), PROXY)
        log += [("uas2", g) for g in recv_all(uas2)]
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def indialog_two_routes(uac, uas):
    bye = invite(callid="c2r", method="BYE", cseq=2, totag="uas-tag", ruri="sip:uas@127.0.0.99:5099",
                 extra=f"Route: <sip:127.0.0.61;lr;ftag=uac-tag>, <sip:{UAS[0]}:{UAS[1]};lr>")
    return exchange(uac, uas, bye, 200, "OK", each=True)

@case
def indialog_strict_previous_hop(uac, uas):
    bye = invite(callid="cstrict", method="BYE", cseq=2, totag="uas-tag", ruri="sip:127.0.0.61;lr;ftag=uac-tag",
                 extra=f"Route: <sip:uas@{UAS[0]}:{UAS[1]}>")
    return exchange(uac, uas, bye, 200, "OK", each=True)

@case
def indialog_next_hop_strict(uac, uas):
    bye = invite(callid="cnstrict", method="BYE", cseq=2, totag="uas-tag", ruri="sip:uas@127.0.0.99:5099",
                 extra=f"Route: <sip:127.0.0.61;lr;ftag=uac-tag>, <sip:{UAS[0]}:{UAS[1]}>, <sip:127.0.0.98;lr>")
    return exchange(uac, uas, bye, 200, "OK", each=True)

@case
def indialog_route_not_ours(uac, uas):
    bye = invite(callid="cnotours", method="BYE", cseq=2, totag="uas-tag", ruri="sip:uas@127.0.0.99:5099",
                 extra=f"Route: <sip:{UAS[0]}:{UAS[1]};lr>")
    return exchange(uac, uas, bye, 200, "OK", each=True)

@case
def reinvite_in_dialog(uac, uas):
    m = invite(callid="creinv", cseq=5, totag="uas-tag", extra="Route: <sip:127.0.0.61;lr;ftag=uac-tag>")
    return exchange(uac, uas, m, 200, "OK")

@case
def options_to_proxy_itself(uac, uas):
    m = invite(callid="cself", method="OPTIONS", ruri="sip:127.0.0.61")
    uac.sendto(m.encode(), PROXY)
    log = [("uac", g) for g in recv_all(uac, 1.0)]
    log += [("uas", g) for g in recv_all(uas, 0.1)]
    return log

@case
def stock_calls(uac, uas):
    log = []
    # alice at the UAC, bob at the UAS register; alice calls bob, then calls nobody.
    reg = lambda user, addr, cs, br: (f"REGISTER sip:127.0.0.61 SIP/2.0\r\nVia: SIP/2.0/UDP {addr[0]}:{addr[1]};branch={br};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.61>;tag=r{user}\r\nTo: <sip:{user}@127.0.0.61>\r\n"
        f"Call-ID: reg-{user}\r\nCSeq: {cs} REGISTER\r\nContact: <sip:{user}@{addr[0]}:{addr[1]}>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n")
    uac.sendto(reg("alice", UAC, 1, "z9hG4bK-ra").encode(), PROXY)
    log += [("uac", strip_dates(g)) for g in recv_all(uac, 0.3)]
    uas.sendto(reg("bob", UAS, 1, "z9hG4bK-rb").encode(), PROXY)
    log += [("uas", strip_dates(g)) for g in recv_all(uas, 0.3)]
    m = invite(callid="cstock", ruri="sip:bob@127.0.0.61").replace(f"To: <sip:uas@{UAS[0]}>", "To: <sip:bob@127.0.0.61>")
    uac.sendto(m.encode(), PROXY)
    got = recv_all(uas)
    log += [("uas", g) for g in got]
    if got:
        uas.sendto(reply_to(got[0], 180, "Ringing").encode(), PROXY)
        uas.sendto(reply_to(got[0], 200, "OK").encode(), PROXY)
    r = recv_all(uac)
    log += [("uac", g) for g in r]
    rr = hdrs(r[-1], "Record-Route") if r else []
    route = "Route: " + ", ".join(reversed(rr)) if rr else ""
    ack = invite(callid="cstock", method="ACK", totag="uas-tag", ruri=f"sip:uas@{UAS[0]}:{UAS[1]}", extra=route, branch="z9hG4bK-stack")
    uac.sendto(ack.encode(), PROXY)
    bye = invite(callid="cstock", method="BYE", cseq=2, totag="uas-tag", extra=route, branch="z9hG4bK-stbye")
    uac.sendto(bye.encode(), PROXY)
    got = recv_all(uas)
    log += [("uas", g) for g in got]
    for g in got:
        if g.startswith("BYE"):
            uas.sendto(reply_to(g, 200, "OK").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    m = invite(callid="cstock2", ruri="sip:nobody@127.0.0.61")
    uac.sendto(m.encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    m = invite(callid="cstock3", method="OPTIONS", ruri="sip:127.0.0.61")
    uac.sendto(m.encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    m = invite(callid="cstock4", mf=0)
    uac.sendto(m.encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

def timeline(sockets, seconds):
    """Everything that arrives within `seconds`, with the arrival second rounded to 0.5 s."""
    t0 = time.time(); out = []
    while time.time() - t0 < seconds:
        for name, s in sockets:
            s.settimeout(0.02)
            try:
                d, a = s.recvfrom(65535)
                out.append((name, f"@{round((time.time() - t0) * 2) / 2}s " + d.decode(errors="replace").split("\r\n")[0] + "\n" + d.decode(errors="replace")))
            except socket.timeout:
                pass
    return out

@case
def no_answer_invite(uac, uas):
    uac.sendto(invite(callid="cnoans").encode(), PROXY)
    log = timeline([("uac", uac), ("uas", uas)], 4.0)
    uac.sendto(invite(callid="cnoans", method="ACK", totag="x").encode(), PROXY)
    return [(w, m) for w, m in log]

@case
def ringing_then_silence(uac, uas):
    uac.sendto(invite(callid="cring").encode(), PROXY)
    got = recv_all(uas, 0.2)
    log = [("uas", g) for g in got]
    if got:
        uas.sendto(reply_to(got[0], 180, "Ringing").encode(), PROXY)
    log += timeline([("uac", uac), ("uas", uas)], 3.5)
    for w, m in log:
        if w == "uas" and "CANCEL sip" in m:
            c = m[m.index("CANCEL sip"):]
            uas.sendto(reply_to(c, 200, "OK").encode(), PROXY)
            uas.sendto(reply_to(got[0], 487, "Request Terminated").encode(), PROXY)
    log += timeline([("uac", uac), ("uas", uas)], 0.5)
    return log

@case
def no_answer_message(uac, uas):
    uac.sendto(invite(callid="cnoansm", method="MESSAGE").encode(), PROXY)
    return timeline([("uac", uac), ("uas", uas)], 3.0)

@case
def ds_round_robin_and_failover(uac, uas):
    uas2 = G['uas2']
    log = []
    for i in range(3):
        uac.sendto(invite(callid=f"cds{i}").encode(), PROXY)
        a = recv_all(uas, 0.3); b = recv_all(uas2, 0.1)
        log += [("uas", g) for g in a] + [("uas2", g) for g in b]
        for s, g in [(uas, x) for x in a] + [(uas2, x) for x in b]:
            if g.startswith("INVITE"):
                s.sendto(reply_to(g, 503 if i == 1 else 200, "X").encode(), PROXY)
        more_a = recv_all(uas, 0.3); more_b = recv_all(uas2, 0.1)
        log += [("uas", g) for g in more_a] + [("uas2", g) for g in more_b]
        for s, g in [(uas, x) for x in more_a] + [(uas2, x) for x in more_b]:
            if g.startswith("INVITE"):
                s.sendto(reply_to(g, 503, "X").encode(), PROXY)
        log += [("uas", g) for g in recv_all(uas, 0.2)] + [("uas2", g) for g in recv_all(uas2, 0.1)]
        log += [("uac", g) for g in recv_all(uac, 0.3)]
    return log

@case
def textops_edits(uac, uas):
    m = invite(callid="ctext", ruri="sip:0049123@127.0.0.61", extra="User-Agent: softphone 1.0\r\nSubject: hello there\r\nX-Custom: 1")
    uac.sendto(m.encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    if got:
        uas.sendto(reply_to(got[0], 486, "Busy").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    uac.sendto(invite(callid="ctextopt", method="OPTIONS").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    bad = invite(callid="cbad").replace("CSeq: 1 INVITE", "CSeq: x INVITE")
    uac.sendto(bad.encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)] + [("uas", g) for g in recv_all(uas, 0.1)]
    return log

@case
def nat_register_and_call(uac, uas):
    """A UAC behind NAT (private Contact) registers; a call to it from the
    UAS side, answered; the UAS's 200 with a private Contact too."""
    log = []
    m = register("<sip:alice@192.168.1.10:5062;transport=udp>", 300, cseq=1, branch="z9hG4bK-nreg")
    uac.sendto(m.encode(), PROXY)
    log += [("uac", strip_dates(g)) for g in recv_all(uac, 0.3)]
    inv = invite(callid="cnat", ruri="sip:alice@127.0.0.61").replace(
        f"Via: SIP/2.0/UDP {UAC[0]}:{UAC[1]}", f"Via: SIP/2.0/UDP {UAS[0]}:{UAS[1]}").replace(
        f"Contact: <sip:uac@{UAC[0]}:{UAC[1]}>", "Contact: <sip:bob@10.0.0.7:5060>")
    uas.sendto(inv.encode(), PROXY)
    got = recv_all(uac)
    log += [("uac", g) for g in got]
    if got:
        ok = reply_to(got[0], 200, "OK").replace(f"Contact: <sip:uas@{UAS[0]}:{UAS[1]}>", "Contact: <sip:alice@192.168.1.10:5062>")
        uac.sendto(ok.encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    return log


# Each config with the cases that exercise it.
SUITE = [
    ("stateful.cfg", ["invite_200_ack_bye", "invite_486_failure", "cancel", "max_forwards_zero",
                      "options_no_mf", "indialog_no_route", "retransmitted_invite",
                      "compact_and_multi_via", "stray_reply", "preloaded_route_to_proxy",
                      "uas_100_and_503", "retransmitted_200", "non_invite_408_like",
                      "ack_for_unknown_2xx", "indialog_two_routes", "indialog_strict_previous_hop",
                      "indialog_next_hop_strict", "indialog_route_not_ours", "reinvite_in_dialog",
                      "options_to_proxy_itself"]),
    ("stateless.cfg", ["invite_200_ack_bye", "options_to_proxy_itself", "max_forwards_zero",
                       "cancel", "compact_and_multi_via", "stray_reply", "uas_100_and_503"]),
    ("fork.cfg", ["parallel_fork", "serial_fork", "serial_fork_all_fail"]),
    ("reg.cfg", ["reg_flow"]),
    ("serial.cfg", ["serial_contacts"]),
    ("tmx.cfg", ["cancel", "force_rport_t_reply", "grep_status_failure"]),
    ("grep.cfg", ["fork_486_then_404"]),
    ("ds.cfg", ["ds_round_robin_and_failover"]),
    ("nat.cfg", ["nat_register_and_call"]),
    ("textops.cfg", ["textops_edits"]),
    ("timers.cfg", ["no_answer_invite", "ringing_then_silence", "no_answer_message"]),
    ("/etc/kamailio/kamailio.cfg", ["stock_calls"]),
]


def run(config, only):
    """Runs `only` (case names) through both proxies with `config`; True when all match."""
    path = config if os.path.isabs(config) or os.path.exists(config) else os.path.join(HERE, "configs", config)
    body = open(path).read().replace("@DIR@", os.path.dirname(os.path.abspath(path)))
    if not body.startswith("#!KAMAILIO"):
        body = body if "loadmodule" in body else body[body.index("request_route"):]
    cfgfile = os.path.join(OUT, "proxy.cfg")
    if body.startswith("#!KAMAILIO"):
        # A whole config: only the listen address and the log go in.
        body = body.replace("#!KAMAILIO", f"#!KAMAILIO\nlisten=udp:{PROXY[0]}:{PROXY[1]}\n", 1)
        body = body.replace("log_stderror=no", "log_stderror=yes").replace("children=8", "children=1")
        open(cfgfile, "w").write(body)
    else:
        open(cfgfile, "w").write(cfg_text(body))
    results = {}
    for kind in ("kamailio", "ringsip"):
        for name in only:
            p = start(kind, cfgfile)
            uac, uas = sock(UAC), sock(UAS)
            G["uas2"] = sock(UAS2)
            try:
                seen, out = set(), []
                for w, m in CASES[name](uac, uas):
                    m = norm(m)
                    if (w, m) in seen:
                        continue  # a retransmission
                    seen.add((w, m))
                    out.append((w, m))
                results[(kind, name)] = out
            finally:
                uac.close(); uas.close(); G["uas2"].close()
                p.terminate(); p.wait()
    same = True
    for name in only:
        k, r = results[("kamailio", name)], results[("ringsip", name)]
        a = "\n".join(f"--- {w}\n{m}" for w, m in k).splitlines()
        b = "\n".join(f"--- {w}\n{m}" for w, m in r).splitlines()
        d = list(difflib.unified_diff(a, b, "kamailio", "ringsip", lineterm="", n=2))
        if TIMELINE:
            for kind, res in (("kamailio", k), ("ringsip", r)):
                print(kind, [(w, m.split("\n")[0]) for w, m in res if m.startswith("@")])
        print(f"===== {os.path.basename(config)} {name}: {'SAME' if not d else 'DIFF'} ({len(k)} vs {len(r)} messages)")
        if d:
            same = False
            print("\n".join(d))
    return same


def main():
    global LOOSE, TIMELINE
    args = sys.argv[1:]
    LOOSE = "--loose" in args
    TIMELINE = "--timeline" in args
    args = [a for a in args if a not in ("--loose", "--timeline")]
    os.makedirs(OUT, exist_ok=True)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 2
    if args[0] == "--suite":
        ok = all([run(config, cases) for config, cases in SUITE])
    else:
        ok = run(args[0], args[1:] or list(CASES))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
