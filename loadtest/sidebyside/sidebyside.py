#!/usr/bin/env python3
"""ringsip and Kamailio 5.6 side by side: the same raw SIP exchanges through
each proxy, running the same routing config; what the UAC and the UASs saw,
normalized (branches, generated tags, Server/User-Agent), and a diff.

    loadtest/sidebyside/sidebyside.py --suite            every config with its cases
    loadtest/sidebyside/sidebyside.py CONFIG [CASE...]   one config (its suite cases
                                                         when none are named; a request_route
                                                         fragment, or a whole
                                                         #!KAMAILIO file)
Options: --loose  fold the known cosmetic differences (header order, Via
                  parameter order, ':5060' in our Via) to see the others
         --timeline  also print arrival times (timer cases)
         --context N  lines of context around each difference (default 2)
Environment: RINGSIP (default target/release/ringsip), KAMAILIO (kamailio),
KAMAILIO_MPATH (the Debian package's module directory).

Loopback only: the proxy on 127.0.0.61:5060, the UAC on 127.0.0.62:5070,
UASs on 127.0.0.63:5080 and 127.0.0.64:5080. Each case starts each proxy
afresh. Exit status 1 when any case differs.
"""
import difflib, hashlib, os, re, socket, subprocess, sys, time

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
CONTEXT = 2

def cfg_text(body):
    base = ("pv", "tm", "sl", "rr", "maxfwd", "textops", "siputils", "sanity", "xlog", "corex")
    modules = "\n".join(l for l in body.splitlines() if l.startswith(("loadmodule", "modparam")) and not any(f'"{b}.so"' in l for b in base))
    # Core parameters of the fragment that the header does not set.
    extra = "\n".join(l for l in body.splitlines() if l.startswith("async_workers"))
    body = "\n".join(l for l in body.splitlines() if not l.startswith(("loadmodule", "modparam", "@")) and not re.match(r"^[a-z_]+\s*=", l))
    return f"""
{extra}
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

# Subscribers of the database cases (@DB@): user, password.
SUBSCRIBERS = [("alice", "alicepw"), ("bob", "bobpw")]
KAMAILIO_SQL = "/usr/share/kamailio/db_sqlite"

# Rows the sqlops and avpops configs read: a carrier's routes by prefix
# (integer, 64-bit, floating point, text and NULL columns) and preferences.
SQLOPS_FIXTURE = """
CREATE TABLE carrier_routes (id INTEGER PRIMARY KEY, prefix VARCHAR(16), gw VARCHAR(64),
    prio INTEGER, big BIGINT, cost REAL, note TEXT);
INSERT INTO carrier_routes (prefix, gw, prio, big, cost, note) VALUES
    ('49', 'sip:127.0.0.63:5080', 10, 5000000000, 0.5, NULL),
    ('49', 'sip:127.0.0.64:5080', 20, 7, 1.5, 'backup'),
    ('33', 'sip:127.0.0.64:5080', 5, -1, 2.0, '');
INSERT INTO usr_preferences (uuid, username, domain, attribute, type, value) VALUES
    ('', 'uas', '127.0.0.63', 'fwd', 0, 'sip:127.0.0.63:5080'),
    ('', 'uas', '127.0.0.63', 'limit', 1, '42'),
    ('', 'uas', '127.0.0.63', 'lang', 0, 'de'),
    ('', 'uas', '127.0.0.63', 'lang', 0, 'en'),
    ('', 'uas', 'other.net', 'fwd', 0, 'sip:nowhere');
"""

def fresh_db(path):
    """An SQLite database with Kamailio's own schema (the tables the stock
    config's modules read) and SUBSCRIBERS in `subscriber`."""
    import sqlite3
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    for t in ("standard", "auth_db", "usrloc", "permissions", "acc", "avpops", "dialplan", "domain", "alias_db",
              "speeddial", "presence", "drouting", "topos", "uac"):
        db.executescript(open(os.path.join(KAMAILIO_SQL, f"{t}-create.sql")).read())
    db.executescript(SQLOPS_FIXTURE)
    # The config's own rows: its `@sql STATEMENT` lines.
    for stmt in G.get("sql", []):
        db.execute(stmt)
    # WITH_IPAUTH: the second UAS is a trusted peer (group 1).
    db.execute("INSERT INTO address (grp, ip_addr, mask, port, tag) VALUES (1, ?, 32, 0, 'peer')", (UAS2[0],))
    for user, pw in SUBSCRIBERS:
        ha1 = hashlib.md5(f"{user}:{PROXY[0]}:{pw}".encode()).hexdigest()
        db.execute("INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES (?, ?, ?, ?, ?)",
                   (user, PROXY[0], pw, ha1, ha1))
    db.commit(); db.close()

# What the database cases compare once the proxy stopped (times, ids and
# generated tags vary and are left out).
DB_VIEWS = {
    "location": "SELECT username, domain, contact, received, path, q, callid, cseq, flags, cflags, user_agent, socket, methods FROM location ORDER BY username, contact",
    "acc": "SELECT method, from_tag, callid, sip_code, sip_reason FROM acc ORDER BY callid, method, sip_code",
    "missed_calls": "SELECT method, from_tag, callid, sip_code, sip_reason FROM missed_calls ORDER BY callid, method, sip_code",
    # (the uids differ: their prefixes only)
    "topos_d": "SELECT a_callid, substr(a_uuid, 1, 6), substr(b_uuid, 1, 6), a_contact, b_contact, a_tag, b_tag, a_rr, s_rr "
               "FROM topos_d ORDER BY a_callid",
    "presentity": "SELECT username, domain, event, sender, priority, body FROM presentity ORDER BY username, domain, event, body",
    "active_watchers": "SELECT presentity_uri, watcher_username, watcher_domain, to_user, to_domain, from_user, from_domain, event, "
                       "event_id, callid, local_cseq, remote_cseq, contact, record_route, status, reason, version, socket_info, "
                       "local_contact, flags, user_agent FROM active_watchers ORDER BY callid",
    "watchers": "SELECT presentity_uri, watcher_username, watcher_domain, event, status, reason FROM watchers ORDER BY presentity_uri, watcher_username",
}

def db_rows(path):
    """The DB_VIEWS of the database at `path`, one pseudo-message each."""
    import sqlite3
    db = sqlite3.connect(path)
    out = []
    for table, query in DB_VIEWS.items():
        try:
            rows = db.execute(query).fetchall()
        except sqlite3.Error as e:
            rows = [(f"error: {e}",)]
        out.append((f"db {table}", "".join(" | ".join(str(c) for c in r) + "\r\n" for r in rows) or "(none)\r\n"))
    db.close()
    return out

def udp_bound(addr):
    """Whether a UDP socket is bound to `addr` (IPv4) in this network namespace."""
    ip = "".join(f"{int(b):02X}" for b in reversed(addr[0].split(".")))
    want = f"{ip}:{addr[1]:04X}"
    try:
        return any(l.split()[1] == want for l in open("/proc/net/udp").read().splitlines()[1:])
    except OSError:
        return False

def start(kind, cfgfile):
    if G.get("db"):
        fresh_db(G["db"])
    # The last proxy's processes (Kamailio's children) may still hold the port.
    deadline = time.time() + 5
    while time.time() < deadline and udp_bound(PROXY):
        time.sleep(0.05)
    if kind == "kamailio":
        cmd = [os.environ.get("KAMAILIO", "kamailio"), "-f", cfgfile, "-DD", "-E", "-m", "64"]
    else:
        cmd = [os.environ.get("RINGSIP", os.path.join(ROOT, "target", "release", "ringsip")),
               "run", "-f", cfgfile, "--workers", "1", "--ctl", os.path.join(OUT, "ringsip.ctl")]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(OUT, f"{kind}.log"), "w"))
    # Up once the proxy's UDP socket is bound (a loaded machine can take
    # seconds; a fixed wait lost the first request), then a moment more.
    deadline = time.time() + 15
    while time.time() < deadline and p.poll() is None and not udp_bound(PROXY):
        time.sleep(0.05)
    time.sleep(0.3)
    if kind == "kamailio":
        # Ready once it stopped forking (children open their databases first).
        counts, deadline = [], time.time() + 10
        while time.time() < deadline and (len(counts) < 4 or len(set(counts[-4:])) > 1):
            counts.append(len(open(f"/proc/{p.pid}/task/{p.pid}/children").read().split())
                          if os.path.exists(f"/proc/{p.pid}") else 0)
            time.sleep(0.2)
        time.sleep(0.3)
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
    # topoh's masked Via (z9hG4bKsr-…) holds the Via it hides: compared as is.
    msg = re.sub(r"branch=z9hG4bK(?!sr-)[^;,\s\r]*", "branch=<B>", msg)
    msg = re.sub(r";tag=([0-9a-f]{8,}[-.0-9a-f]*)", ";tag=<T>", msg)
    msg = re.sub(r'nonce="[^"]*"', 'nonce="<N>"', msg)
    # dialog's Record-Route cookie: hash entry and id differ by nature.
    msg = re.sub(r";did=[0-9a-f]+\.[0-9a-f]+", ";did=<D>", msg)
    # topos's dialog uid (time, process, counter) in its Contacts.
    msg = re.sub(r"([ab])tpsh-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+", r"\1tpsh-<U>", msg)
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

def serial(uac, uas, callid, first, second):
    """A call the config forks serially: the UAS answers `first` (code,
    reason), then the second UAS `second`."""
    uas2 = G['uas2']
    uac.sendto(invite(callid=callid, ruri="sip:serial@127.0.0.61").encode(), PROXY)
    a = recv_all(uas)
    log = [("uas", g) for g in a]
    if a:
        uas.sendto(reply_to(a[0], *first, totag="t1").encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    b = recv_all(uas2)
    log += [("uas2", g) for g in b]
    if b:
        uas2.sendto(reply_to(b[0], *second, totag="t2").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def serial_fork(uac, uas):
    return serial(uac, uas, "cser", (486, "Busy Here"), (200, "OK"))

@case
def serial_fork_all_fail(uac, uas):
    return serial(uac, uas, "cser2", (503, "Service Unavailable"), (404, "Not Found")) \
        + [("uas2", g) for g in recv_all(G['uas2'])]

def register(contact, expires=None, callid="reg-1", cseq=1, branch="z9hG4bK-reg1", user="alice",
             addr=None, tag="r1", extra=""):
    """A REGISTER of `user` from `addr` (the UAC's by default); `extra`:
    header lines (with their CRLF) after the Contact."""
    addr = addr or UAC
    m = (f"REGISTER sip:{PROXY[0]} SIP/2.0\r\n"
         f"Via: SIP/2.0/UDP {addr[0]}:{addr[1]};branch={branch};rport\r\n"
         f"Max-Forwards: 70\r\n"
         f"From: <sip:{user}@{PROXY[0]}>;tag={tag}\r\n"
         f"To: <sip:{user}@{PROXY[0]}>\r\n"
         f"Call-ID: {callid}\r\n"
         f"CSeq: {cseq} REGISTER\r\n")
    if contact: m += f"Contact: {contact}\r\n"
    m += extra
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

def uas_request(method, cseq, route, body=""):
    """An in-dialog request from the UAS (callee) to the UAC: its Route is the
    Record-Route it received, in that order."""
    m = (f"{method} sip:uac@{UAC[0]}:{UAC[1]} SIP/2.0\r\n"
         f"Via: SIP/2.0/UDP {UAS[0]}:{UAS[1]};branch=z9hG4bK-uas-{method.lower()}{cseq};rport\r\n"
         f"Max-Forwards: 70\r\n"
         f"From: <sip:uas@{UAS[0]}>;tag=uas-tag\r\n"
         f"To: <sip:uac@{UAC[0]}>;tag=uac-tag\r\n"
         f"Call-ID: cearly\r\n"
         f"CSeq: {cseq} {method}\r\n")
    if route: m += route + "\r\n"
    return m + f"Content-Length: {len(body)}\r\n\r\n{body}"

@case
def early_dialog_prack_update(uac, uas):
    """An early dialog (RFC 3262, RFC 3311): the callee's 183 with 100rel and
    a Record-Route; PRACK and UPDATE from the caller along it; then 200, ACK,
    INFO from the caller, and BYE from the callee back along the route set."""
    log = []
    uac.sendto(invite(callid="cearly", extra="Supported: 100rel").encode(), PROXY)
    got = recv_all(uas)
    log += [("uas", g) for g in got]
    if not got:
        return log
    inv = got[0]
    rr = hdrs(inv, "Record-Route")
    uas_route = "Route: " + ", ".join(rr) if rr else ""
    sdp = "v=0\r\no=- 2 2 IN IP4 127.0.0.63\r\ns=-\r\nc=IN IP4 127.0.0.63\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"
    p183 = reply_to(inv, 183, "Session Progress",
                    extra=f"Require: 100rel\r\nRSeq: 1\r\nContact: <sip:uas@{UAS[0]}:{UAS[1]}>\r\nContent-Type: application/sdp",
                    body=sdp)
    uas.sendto(p183.encode(), PROXY)
    r = recv_all(uac)
    log += [("uac", g) for g in r]
    early = [g for g in r if g.startswith("SIP/2.0 183")]
    rr = hdrs(early[0], "Record-Route") if early else []
    route = "Route: " + ", ".join(reversed(rr)) if rr else ""
    for method, cseq, extra in (("PRACK", 2, route + "\r\nRAck: 1 1 INVITE"), ("UPDATE", 3, route)):
        m = invite(branch=f"z9hG4bK-uac-{method.lower()}", method=method, cseq=cseq, totag="uas-tag",
                   callid="cearly", extra=extra)
        log += exchange(uac, uas, m, 200, "OK")
    uas.sendto(reply_to(inv, 200, "OK").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    ack = invite(branch="z9hG4bK-uac-ack", method="ACK", totag="uas-tag", callid="cearly", extra=route)
    uac.sendto(ack.encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    info = invite(branch="z9hG4bK-uac-info", method="INFO", cseq=4, totag="uas-tag", callid="cearly", extra=route)
    log += exchange(uac, uas, info, 200, "OK")
    uas.sendto(uas_request("BYE", 1, uas_route).encode(), PROXY)
    got = recv_all(uac)
    log += [("uac", g) for g in got]
    for g in got:
        if g.startswith("BYE"):
            uac.sendto(reply_to(g, 200, "OK", totag=None).encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    return log

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
    reg = lambda user, addr, cs, br: register(f"<sip:{user}@{addr[0]}:{addr[1]}>", 300, callid=f"reg-{user}",
                                              cseq=cs, branch=br, user=user, addr=addr, tag=f"r{user}")
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

def same_instant_sorted(log):
    """`log` with each run of messages that arrived in the same half second
    at different UAs in one order: which socket the poll loop read first
    says nothing about the proxy."""
    out, i = [], 0
    while i < len(log):
        at = log[i][1].split(" ", 1)[0] if log[i][1].startswith("@") else None
        j = i + 1
        while at and j < len(log) and log[j][1].startswith(at + " "):
            j += 1
        out += sorted(log[i:j])
        i = j
    return out

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


@case
def path_register_and_route(uac, uas):
    """A REGISTER through the path proxy (add_path_received, then add_path);
    then a request from the registrar's side whose Route carries the
    received parameter (path use_received)."""
    log = exchange(uac, uas, register(f"<sip:alice@{UAC[0]}:{UAC[1]}>", 300, branch="z9hG4bK-preg"), 200, "OK")
    inv = invite(callid="cpath", ruri="sip:alice@127.0.0.99:5099",
                 extra=f"Route: <sip:edge@127.0.0.61;lr;received=sip:{UAC[0]}:{UAC[1]};x=1>").replace(
        f"Via: SIP/2.0/UDP {UAC[0]}:{UAC[1]}", f"Via: SIP/2.0/UDP {UAS[0]}:{UAS[1]}")
    uas.sendto(inv.encode(), PROXY)
    got = recv_all(uac)
    log += [("uac", g) for g in got]
    if got:
        uac.sendto(reply_to(got[0], 486, "Busy").encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    return log


@case
def module_values(uac, uas):
    """An INVITE relayed to the UAS with header lines holding what module
    functions answered (ipops, cfgutils): compares their results."""
    return exchange(uac, uas, invite(callid="cvalues"), 486, "Busy")


@case
def pv_values(uac, uas):
    """An INVITE with Vias several to a line and two Contact lines: what
    pseudo-variables read (pvcore.cfg prints them into X- headers of the
    relayed request, of the relayed 486 and of the failure_route's reply)."""
    # (The UAC's own Via alone on its line: Kamailio adds received= at the
    # end of the whole line when its Via has others after it.)
    vias = (";rport\r\nVia: SIP/2.0/TCP 10.0.0.9:5070;branch=z9hG4bK-x;received=10.1.1.1;rport=7 , SIP/2.0/UDP 10.0.0.8\r\n"
            "Via: SIP/2.0/TLS [2001:db8::1];branch=z9hG4bK-y;i=abc ,SIP/2.0/SCTP a.b:1 , SIP/2.0/WS c.d;branch=z\r\n")
    req = invite(callid="cpv", extra="X-In: in-value\r\nX-Multi: one, two\r\nContact: <sip:c@h>, <sip:d@h>")
    req = req.replace(";rport\r\n", vias, 1)
    uac.sendto(req.encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    if got:
        uas.sendto(reply_to(got[0], 486, "Busy Here", extra="X-Up: up-value").encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    log += [("uac", g) for g in recv_all(uac)]
    return log


@case
def advertised(uac, uas):
    """set_advertised_address() (cadv1, cadv3: a name) and with
    set_advertised_port() (cadv2): the Via and Record-Route the proxy writes."""
    log = []
    for cid in ("cadv1", "cadv2", "cadv3"):
        log += exchange(uac, uas, invite(callid=cid), 486, "Busy Here")
    return log


SDP_MANY = ("v=0\r\no=- 1 1 IN IP4 127.0.0.62\r\ns=-\r\nc=IN IP4 127.0.0.62\r\nt=0 0\r\n"
            "m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n"
            "m=video 6002 RTP/SAVP 96 97\r\na=rtpmap:96 H264/90000\r\na=rtpmap:97 VP8/90000\r\na=inactive\r\n")

@case
def sdp_edits(uac, uas):
    """INVITEs with a two-stream SDP through sdpops tests (their answers in
    an X-Sdp header) and edits chosen by the R-URI user."""
    log = []
    for i, user in enumerate(["codecs", "media", "keep", "transport"]):
        m = invite(callid=f"csdp{i}", ruri=f"sip:{user}@127.0.0.61", body=SDP_MANY)
        log += exchange(uac, uas, m, 486, "Busy")
    return log


@case
def path_r2_register_and_route(uac, uas):
    """As path_register_and_route with enable_r2, received_format 1 and
    received_name rcv: the Route names the received address as IP~PORT~PROTO."""
    log = exchange(uac, uas, register(f"<sip:alice@{UAC[0]}:{UAC[1]}>", 300, branch="z9hG4bK-preg2"), 200, "OK")
    inv = invite(callid="cpath2", ruri="sip:alice@127.0.0.99:5099",
                 extra=f"Route: <sip:edge@127.0.0.61;lr;rcv={UAC[0]}~{UAC[1]}~1;x=1;r2=on>").replace(
        f"Via: SIP/2.0/UDP {UAC[0]}:{UAC[1]}", f"Via: SIP/2.0/UDP {UAS[0]}:{UAS[1]}")
    uas.sendto(inv.encode(), PROXY)
    got = recv_all(uac)
    log += [("uac", g) for g in got]
    if got:
        uac.sendto(reply_to(got[0], 486, "Busy").encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    return log


@case
def dialog_call_limit(uac, uas):
    """Two calls of one caller: the second gets 486 while the first is up
    (dialog profile), a new one goes through after the BYE; its failure
    frees the profile again."""
    log = []
    uac.sendto(invite(callid="cdlg1").encode(), PROXY)
    got = recv_all(uas)
    log += [("uas", g) for g in got]
    if got:
        uas.sendto(reply_to(got[0], 200, "OK").encode(), PROXY)
    r = recv_all(uac)
    log += [("uac", g) for g in r]
    rr = hdrs(r[-1], "Record-Route") if r else []
    route = "Route: " + ", ".join(reversed(rr)) if rr else ""
    ack = invite(branch="z9hG4bK-dlg-ack", callid="cdlg1", method="ACK", totag="uas-tag", extra=route)
    uac.sendto(ack.encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    uac.sendto(invite(callid="cdlg2").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)] + [("uas", g) for g in recv_all(uas, 0.1)]
    bye = invite(branch="z9hG4bK-dlg-bye", callid="cdlg1", method="BYE", cseq=2, totag="uas-tag", extra=route)
    uac.sendto(bye.encode(), PROXY)
    got = recv_all(uas)
    log += [("uas", g) for g in got]
    for g in got:
        if g.startswith("BYE"):
            uas.sendto(reply_to(g, 200, "OK").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    for callid in ("cdlg3", "cdlg4"):
        uac.sendto(invite(callid=callid).encode(), PROXY)
        got = recv_all(uas)
        log += [("uas", g) for g in got]
        if got:
            uas.sendto(reply_to(got[0], 486, "Busy Here").encode(), PROXY)
        log += [("uac", g) for g in recv_all(uac)] + [("uas", g) for g in recv_all(uas, 0.1)]
        uac.sendto(invite(callid=callid, method="ACK", totag="uas-tag").encode(), PROXY)
    return log


# Each config with the cases that exercise it.
def digest(challenge, method, uri, user, pw):
    """The Authorization / Proxy-Authorization value answering `challenge`
    (a WWW- or Proxy-Authenticate value; MD5, with qop=auth when offered)."""
    f = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    ha1 = hashlib.md5(f"{user}:{f['realm']}:{pw}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    v = f'Digest username="{user}", realm="{f["realm"]}", nonce="{f["nonce"]}", uri="{uri}"'
    if "qop" in f:
        nc, cnonce = "00000001", "0a4f113b"
        resp = hashlib.md5(f"{ha1}:{f['nonce']}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
        return v + f', response="{resp}", qop=auth, nc={nc}, cnonce="{cnonce}", algorithm=MD5'
    resp = hashlib.md5(f"{ha1}:{f['nonce']}:{ha2}".encode()).hexdigest()
    return v + f', response="{resp}", algorithm=MD5'

@case
def stock_auth_calls(uac, uas):
    """Stock config with WITH_AUTH: alice (UAC) and bob (UAS) register through
    the 401 challenge; alice's INVITE to bob is challenged (407), ACKed, sent
    again with credentials and answered; then a wrong password, and a call
    to a user that is not registered."""
    log = []
    def sign_in(sock_, addr, user, pw, n):
        base = lambda cs, br, extra: register(f"<sip:{user}@{addr[0]}:{addr[1]}>", 300, callid=f"reg-{user}-{n}",
                                              cseq=cs, branch=br, user=user, addr=addr, tag=f"r{user}{n}", extra=extra)
        who = "uac" if sock_ is uac else "uas"
        sock_.sendto(base(1, f"z9hG4bK-r{user}{n}a", "").encode(), PROXY)
        got = recv_all(sock_, 0.3)
        out = [(who, strip_dates(g)) for g in got]
        ch = [h for g in got for h in hdrs(g, "WWW-Authenticate")]
        if ch:
            cred = digest(ch[0], "REGISTER", f"sip:{PROXY[0]}", user, pw)
            sock_.sendto(base(2, f"z9hG4bK-r{user}{n}b", f"Authorization: {cred}\r\n").encode(), PROXY)
            out += [(who, strip_dates(g)) for g in recv_all(sock_, 0.3)]
        return out
    log += sign_in(uac, UAC, "alice", "alicepw", 1)
    log += sign_in(uas, UAS, "bob", "bobpw", 1)
    log += sign_in(uac, UAC, "alice", "wrong", 2)
    to_bob = lambda m: m.replace(f"To: <sip:uas@{UAS[0]}>", f"To: <sip:bob@{PROXY[0]}>").replace("From: <sip:uac@127.0.0.62>", f"From: <sip:alice@{PROXY[0]}>")
    m = to_bob(invite(callid="cauth", ruri=f"sip:bob@{PROXY[0]}", branch="z9hG4bK-ai1"))
    uac.sendto(m.encode(), PROXY)
    got = recv_all(uac)
    log += [("uac", g) for g in got]
    ch = [h for g in got for h in hdrs(g, "Proxy-Authenticate")]
    if not ch:
        return log
    ack = to_bob(invite(callid="cauth", method="ACK", ruri=f"sip:bob@{PROXY[0]}", branch="z9hG4bK-ai1",
                        totag=re.search(r"To:.*;tag=([^;\r]+)", got[-1]).group(1)))
    uac.sendto(ack.encode(), PROXY)
    cred = digest(ch[0], "INVITE", f"sip:bob@{PROXY[0]}", "alice", "alicepw")
    m = to_bob(invite(callid="cauth", cseq=2, ruri=f"sip:bob@{PROXY[0]}", branch="z9hG4bK-ai2",
                      extra=f"Proxy-Authorization: {cred}"))
    uac.sendto(m.encode(), PROXY)
    got = recv_all(uas)
    log += [("uas", g) for g in got]
    invites = [g for g in got if g.startswith("INVITE")]
    if invites:
        uas.sendto(reply_to(invites[0], 180, "Ringing").encode(), PROXY)
        uas.sendto(reply_to(invites[0], 200, "OK").encode(), PROXY)
    r = recv_all(uac)
    log += [("uac", g) for g in r]
    rr = hdrs(r[-1], "Record-Route") if r else []
    route = "Route: " + ", ".join(reversed(rr)) if rr else ""
    bye = to_bob(invite(callid="cauth", method="BYE", cseq=3, totag="uas-tag", ruri=f"sip:bob@{UAS[0]}:{UAS[1]}",
                        extra=route, branch="z9hG4bK-aibye"))
    uac.sendto(bye.encode(), PROXY)
    got = recv_all(uas)
    log += [("uas", g) for g in got]
    for g in got:
        if g.startswith("BYE"):
            uas.sendto(reply_to(g, 200, "OK").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    # A call with a wrong password is challenged again.
    m = to_bob(invite(callid="cauth2", cseq=2, ruri=f"sip:bob@{PROXY[0]}", branch="z9hG4bK-ai3",
                      extra=f"Proxy-Authorization: {digest(ch[0], 'INVITE', f'sip:bob@{PROXY[0]}', 'alice', 'nope')}"))
    uac.sendto(m.encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

def db_req(method, ruri, frm, to, callid, cseq, branch, extra="", totag=None, addr=UAC):
    """A request from `frm` to `to` (user@domain each) sent from `addr`."""
    return (f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {addr[0]}:{addr[1]};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{frm}>;tag=t-{callid}\r\n"
            f"To: <sip:{to}>" + (f";tag={totag}" if totag else "") + "\r\n"
            f"Call-ID: {callid}\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: <sip:{frm.split('@')[0]}@{addr[0]}:{addr[1]}>\r\n"
            + (extra + "\r\n" if extra else "")
            + ("Expires: 300\r\n" if method == "REGISTER" else "")
            + "Content-Length: 0\r\n\r\n")

def db_sign_in(sock_, addr, user, domain, pw, n, auth_user=None):
    """`user`@`domain` registers from `addr` through the 401 challenge
    (with `auth_user` as the digest user name, `user` by default)."""
    who = "uac" if addr == UAC else "uas"
    aor, log = f"{user}@{domain}", []
    m = lambda cs, extra: db_req("REGISTER", f"sip:{domain}", aor, aor, f"reg-{user}-{n}", cs,
                                 f"z9hG4bK-reg{user}{n}{cs}", extra, addr=addr)
    sock_.sendto(m(1, "").encode(), PROXY)
    got = recv_all(sock_, 0.3)
    log += [(who, strip_dates(g)) for g in got]
    ch = [h for g in got for h in hdrs(g, "WWW-Authenticate")]
    if ch:
        sock_.sendto(m(2, "Authorization: " + digest(ch[0], "REGISTER", f"sip:{domain}", auth_user or user, pw)).encode(), PROXY)
        log += [(who, strip_dates(g)) for g in recv_all(sock_, 0.3)]
    return log

def db_call(uac, uas, frm, pw, ruri, callid, callee=None):
    """`frm` (user@domain, at the UAC) calls `ruri` through the 407
    challenge; a reached callee (the UAS, or `callee`) answers 486 Busy
    Here; every final reply is ACKed."""
    callee = callee or uas
    who = "uas" if callee is uas else "uas2"
    to, user, log = ruri[4:], frm.split("@")[0], []
    m = lambda cs, extra: db_req("INVITE", ruri, frm, to, callid, cs, f"z9hG4bK-{callid}-{cs}", extra)
    def ack(cs, reply):
        tag = re.search(r"\r\nTo:[^\r]*;tag=([^;\r]+)", reply)
        uac.sendto(db_req("ACK", ruri, frm, to, callid, cs, f"z9hG4bK-{callid}-{cs}",
                          totag=tag.group(1) if tag else None).encode(), PROXY)
    uac.sendto(m(1, "").encode(), PROXY)
    got = recv_all(uac)
    log += [("uac", g) for g in got]
    ch = [h for g in got for h in hdrs(g, "Proxy-Authenticate")]
    if not ch:
        return log
    ack(1, got[-1])
    uac.sendto(m(2, "Proxy-Authorization: " + digest(ch[0], "INVITE", ruri, user, pw)).encode(), PROXY)
    got = recv_all(callee)
    log += [(who, g) for g in got]
    invites = [g for g in got if g.startswith("INVITE")]
    if invites:
        callee.sendto(reply_to(invites[0], 486, "Busy Here").encode(), PROXY)
        log += [(who, g) for g in recv_all(callee, 0.3)]
    r = recv_all(uac)
    log += [("uac", g) for g in r]
    finals = [g for g in r if re.match(r"SIP/2.0 [3-6]", g)]
    if finals:
        ack(2, finals[-1])
    return log

@case
def stock_alias_calls(uac, uas):
    """WITH_ALIASDB (dbaliases rows of the config): bob registers; alice's
    calls to alias `sales` reach bob, to `ext` the second UAS (a foreign
    URI, relayed by route[SIPOUT]), to an unknown user 404."""
    log = db_sign_in(uas, UAS, "bob", PROXY[0], "bobpw", 1)
    me = f"alice@{PROXY[0]}"
    log += db_call(uac, uas, me, "alicepw", f"sip:sales@{PROXY[0]}", "al-sales")
    log += db_call(uac, uas, me, "alicepw", f"sip:ext@{PROXY[0]}", "al-ext", callee=G["uas2"])
    log += db_call(uac, uas, me, "alicepw", f"sip:nobody@{PROXY[0]}", "al-nobody")
    return log

@case
def stock_speeddial_calls(uac, uas):
    """WITH_SPEEDDIAL (speed_dial rows of the config): alice's 21 reaches the
    registered bob, 22 and 23 (a new_uri without `sip:`) the second UAS,
    24 is nobody's (404); bob's own 21 is another number."""
    log = db_sign_in(uas, UAS, "bob", PROXY[0], "bobpw", 1)
    me = f"alice@{PROXY[0]}"
    log += db_call(uac, uas, me, "alicepw", f"sip:21@{PROXY[0]}", "sd-21")
    log += db_call(uac, uas, me, "alicepw", f"sip:22@{PROXY[0]}", "sd-22", callee=G["uas2"])
    log += db_call(uac, uas, me, "alicepw", f"sip:23@{PROXY[0]}", "sd-23", callee=G["uas2"])
    log += db_call(uac, uas, me, "alicepw", f"sip:24@{PROXY[0]}", "sd-24")
    return log

@case
def stock_multidomain_calls(uac, uas):
    """WITH_MULTIDOMAIN (domain rows a.example and b.example, subscribers
    bob@a.example and alice@b.example): `myself` matches the table's
    domains (OPTIONS keepalive, calls delivered, from_uri challenged);
    bob registered in a.example is not bob of b.example; alice is no
    subscriber of a.example; a foreign caller to a foreign domain gets 403."""
    log = db_sign_in(uas, UAS, "bob", "a.example", "bobpw", 1)
    log += db_sign_in(uac, UAC, "alice", "a.example", "alicepw", 2)
    me = "alice@b.example"
    log += db_call(uac, uas, me, "alicepw", "sip:bob@a.example", "md-a")
    log += db_call(uac, uas, me, "alicepw", "sip:bob@b.example", "md-b")
    log += db_call(uac, uas, me, "alicepw", f"sip:bob@{PROXY[0]}", "md-ip")
    uac.sendto(db_req("OPTIONS", "sip:a.example", "alice@b.example", "a.example", "md-opt", 1, "z9hG4bK-mdopt").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    uac.sendto(db_req("INVITE", "sip:bob@c.example", "dave@c.example", "bob@c.example", "md-c", 1, "z9hG4bK-mdc").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def stock_multidomain_digest_users(uac, uas):
    """WITH_MULTIDOMAIN (auth_db use_domain 1): a digest user name with
    @domain is looked up in that domain (alice@b.example registers; as
    alice@a.example she is unknown and challenged again); user names are
    case sensitive (Alice is unknown); the From and To hosts of a REGISTER
    must be the same (bob@a.example registering bob@b.example: -8,
    challenged again)."""
    log = db_sign_in(uac, UAC, "alice", "b.example", "alicepw", 1, auth_user="alice@b.example")
    log += db_sign_in(uac, UAC, "alice", "b.example", "alicepw", 2, auth_user="alice@a.example")
    log += db_sign_in(uac, UAC, "alice", "b.example", "alicepw", 3, auth_user="Alice")
    # bob of a.example (realm a.example, From's host) registering To b.example.
    m = lambda cs, extra: db_req("REGISTER", "sip:b.example", "bob@a.example", "bob@b.example", "reg-bob-4", cs,
                                 f"z9hG4bK-regbob4{cs}", extra)
    uac.sendto(m(1, "").encode(), PROXY)
    got = recv_all(uac, 0.3)
    log += [("uac", strip_dates(g)) for g in got]
    ch = [h for g in got for h in hdrs(g, "WWW-Authenticate")]
    if ch:
        uac.sendto(m(2, "Authorization: " + digest(ch[0], "REGISTER", "sip:b.example", "bob", "bobpw")).encode(), PROXY)
        log += [("uac", strip_dates(g)) for g in recv_all(uac, 0.3)]
    return log

@case
def stock_alldb_calls(uac, uas):
    """All three with WITH_MULTIDOMAIN (use_domain 1 everywhere): an alias
    of a.example and alice@b.example's speed dial reach bob@a.example; the
    alias asked in b.example and a number of another domain do not (404)."""
    log = db_sign_in(uas, UAS, "bob", "a.example", "bobpw", 1)
    me = "alice@b.example"
    log += db_call(uac, uas, me, "alicepw", "sip:sales@a.example", "all-sales-a")
    log += db_call(uac, uas, me, "alicepw", "sip:sales@b.example", "all-sales-b")
    log += db_call(uac, uas, me, "alicepw", "sip:21@b.example", "all-21")
    log += db_call(uac, uas, me, "alicepw", "sip:22@b.example", "all-22")
    return log

PIDF = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@127.0.0.61">\n'
        '  <tuple id="t1">\n'
        '    <status>\n'
        '      <basic>{}</basic>\n'
        '    </status>\n'
        '  </tuple>\n'
        '</presence>\n')

def fold_presence(m):
    """What a presence server generates afresh: the SIP-ETag, Expires counted
    down by the clock."""
    if os.environ.get("SHOW_ETAGS"):
        sys.stderr.write("".join(f"etag {e}\n" for e in re.findall(r"SIP-ETag: (\S+)", m)))
    m = re.sub(r"SIP-ETag: \S+", "SIP-ETag: <E>", m)
    # Expires as the clock counts it down, rounded up to a multiple of 30 s:
    # the cases ask for multiples of 30 and last less than 30 s, so both
    # proxies read as what was asked, wherever the countdown stands (rounding
    # to the nearest ten flipped between 590 and 600 around 595 s).
    m = re.sub(r";expires=(\d+)", lambda e: f";expires~{-(-int(e.group(1)) // 30) * 30}", m)
    return m

def presence_req(method, user, addr, ruri_user, callid, cseq, branch, tag, extra="", body="", totag=None):
    to = f"<sip:{ruri_user}@{PROXY[0]}>" + (f";tag={totag}" if totag else "")
    m = (f"{method} sip:{ruri_user}@{PROXY[0]} SIP/2.0\r\n"
         f"Via: SIP/2.0/UDP {addr[0]}:{addr[1]};branch={branch};rport\r\n"
         f"Max-Forwards: 70\r\n"
         f"From: <sip:{user}@{PROXY[0]}>;tag={tag}\r\n"
         f"To: {to}\r\n"
         f"Call-ID: {callid}\r\n"
         f"CSeq: {cseq} {method}\r\n"
         f"Contact: <sip:{user}@{addr[0]}:{addr[1]}>\r\n" + extra)
    if body:
        m += "Content-Type: application/pidf+xml\r\n"
    return m + f"Content-Length: {len(body)}\r\n\r\n{body}"

def presence_recv(sock_, who, finals=0, notifies=0, timeout=3.0, settle=0.15):
    """What `sock_` receives until `finals` final replies and `notifies`
    NOTIFYs came (each NOTIFY answered 200 at once), then `settle` seconds
    more: folded, and the raw messages."""
    raw, nf, nn = [], 0, 0
    end = time.time() + timeout
    def take(got):
        nonlocal nf, nn
        for g in got:
            raw.append(g)
            if g.startswith("NOTIFY"):
                nn += 1
                sock_.sendto(reply_to(g, 200, "OK", totag=None).encode(), PROXY)
            elif re.match(r"SIP/2\.0 [2-6]", g):
                nf += 1
    while time.time() < end and (nf < finals or nn < notifies):
        take(recv_all(sock_, 0.05))
    take(recv_all(sock_, settle))
    return [(who, fold_presence(g)) for g in raw], raw

def presence_signed(state, sock_, who, method, user, pw, addr, ruri_user, callid, extra="", body="", totag=None,
                    cseq=1, raw_body=None, notifies=0):
    """`method` (a presence request) through the 407 challenge, then
    `notifies` NOTIFYs awaited on the same socket: what came back (folded),
    and the last batch as received."""
    state["n"] += 1
    n = state["n"]
    def make(cs, br, ex):
        m = presence_req(method, user, addr, ruri_user, callid, cs, br, f"t{user}", ex, body, totag)
        if raw_body is not None:
            m = m.replace("Content-Length: 0\r\n\r\n", f"Content-Type: text/plain\r\nContent-Length: {len(raw_body)}\r\n\r\n{raw_body}")
        return m
    sock_.sendto(make(cseq, f"z9hG4bK-q{n}a", extra).encode(), PROXY)
    out, got = presence_recv(sock_, who, finals=1, settle=0.05)
    ch = [h for g in got for h in hdrs(g, "Proxy-Authenticate")]
    if ch:
        cred = digest(ch[0], method, f"sip:{ruri_user}@{PROXY[0]}", user, pw)
        sock_.sendto(make(cseq + 1, f"z9hG4bK-q{n}b", extra + f"Proxy-Authorization: {cred}\r\n").encode(), PROXY)
        more, got = presence_recv(sock_, who, finals=1, notifies=notifies)
        out += more
    return out, got

def etag_in(got, old):
    return ([h for g in got for h in hdrs(g, "SIP-ETag")] or [old])[0]

def totag_in(got):
    return ([re.search(r";tag=([^;>\s]+)", h).group(1) for g in got if g.startswith("SIP/2.0 2") for h in hdrs(g, "To")]
            or ["none"])[0]

@case
def stock_presence(uac, uas):
    """Stock config WITH_PRESENCE: alice (UAC) PUBLISHes her status through
    the 407 challenge; bob (UAS) SUBSCRIBEs to it and gets the NOTIFY with
    her PIDF; alice's second PUBLISH (SIP-If-Match) notifies bob again; a
    PUBLISH with an unknown ETag (412), an unknown event (489); a refresh
    without body; bob refreshes in the dialog, then unsubscribes (NOTIFY
    terminated); alice removes her publication; bob watches carol, who
    never published (a NOTIFY without body)."""
    log, st = [], {"n": 0}
    S = lambda *a, **k: presence_signed(st, *a, **k)
    out, got = S(uac, "uac", "PUBLISH", "alice", "alicepw", UAC, "alice", "pub-1",
                 "Event: presence\r\nExpires: 600\r\n", PIDF.format("open"))
    log += out
    etag = etag_in(got, "none")
    out, got = S(uas, "uas", "SUBSCRIBE", "bob", "bobpw", UAS, "alice", "sub-1",
                 "Event: presence\r\nAccept: application/pidf+xml\r\nExpires: 600\r\n", notifies=1)
    log += out
    totag = totag_in(got)
    # A second PUBLISH: bob hears of it.
    out, got = S(uac, "uac", "PUBLISH", "alice", "alicepw", UAC, "alice", "pub-2",
                 f"Event: presence\r\nSIP-If-Match: {etag}\r\nExpires: 600\r\n", PIDF.format("closed"))
    log += out + presence_recv(uas, "uas", notifies=1)[0]
    etag = etag_in(got, etag)
    # An ETag the server never gave; an event it does not know.
    log += S(uac, "uac", "PUBLISH", "alice", "alicepw", UAC, "alice", "pub-3",
             "Event: presence\r\nSIP-If-Match: a.1.2.3.4\r\nExpires: 600\r\n", PIDF.format("open"))[0]
    log += S(uac, "uac", "PUBLISH", "alice", "alicepw", UAC, "alice", "pub-4",
             "Event: dialog\r\nExpires: 600\r\n", PIDF.format("open"))[0]
    # A refresh without a body (SIP-If-Match only).
    out, got = S(uac, "uac", "PUBLISH", "alice", "alicepw", UAC, "alice", "pub-5",
                 f"Event: presence\r\nSIP-If-Match: {etag}\r\nExpires: 300\r\n")
    log += out + presence_recv(uas, "uas", notifies=1)[0]
    etag = etag_in(got, etag)
    # bob refreshes in the dialog (no challenge there), then unsubscribes.
    for i, exp in ((1, 300), (2, 0)):
        m = presence_req("SUBSCRIBE", "bob", UAS, "alice", "sub-1", 10 + i, f"z9hG4bK-sr{i}", "tbob",
                         f"Event: presence\r\nExpires: {exp}\r\n", totag=totag)
        uas.sendto(m.encode(), PROXY)
        log += presence_recv(uas, "uas", finals=1, notifies=1)[0]
    # alice takes her publication away (nobody left to tell).
    log += S(uac, "uac", "PUBLISH", "alice", "alicepw", UAC, "alice", "pub-6",
             f"Event: presence\r\nSIP-If-Match: {etag}\r\nExpires: 0\r\n")[0]
    log += presence_recv(uas, "uas", settle=0.3)[0]
    # A watcher of someone who never published.
    log += S(uas, "uas", "SUBSCRIBE", "bob", "bobpw", UAS, "carol", "sub-2",
             "Event: presence\r\nExpires: 60\r\n", cseq=7, notifies=1)[0]
    return log

@case
def presence_edges(uac, uas):
    """What the presence server refuses and how it words things: no Event,
    an initial PUBLISH without body, a body that is not XML, two
    publications of one presentity (the watcher gets them merged), an
    unknown event to SUBSCRIBE, an in-dialog SUBSCRIBE of no subscription,
    Expires missing / too long / 0, an Event with a parameter, and a
    SUBSCRIBE that came through another proxy (its Record-Route: in the
    200, and the NOTIFY goes that way); a SUBSCRIBE without Contact."""
    log, st = [], {"n": 0}
    peer = G["uas2"]
    S = lambda *a, **k: presence_signed(st, *a, **k)
    log += S(uac, "uac", "PUBLISH", "alice", "alicepw", UAC, "alice", "e-1", "Expires: 600\r\n", PIDF.format("open"))[0]
    log += S(uac, "uac", "PUBLISH", "alice", "alicepw", UAC, "alice", "e-2", "Event: presence\r\nExpires: 600\r\n")[0]
    log += S(uac, "uac", "PUBLISH", "alice", "alicepw", UAC, "alice", "e-3", "Event: presence\r\nExpires: 600\r\n",
             raw_body="just text")[0]
    # Two devices of alice's publish.
    log += S(uac, "uac", "PUBLISH", "alice", "alicepw", UAC, "alice", "e-4", "Event: presence\r\nExpires: 600\r\n", PIDF.format("open"))[0]
    second = PIDF.format("closed").replace('id="t1"', 'id="t2"')
    log += S(uac, "uac", "PUBLISH", "alice", "alicepw", UAC, "alice", "e-5", "Event: presence\r\n", second)[0]
    # Watchers.
    log += S(uas, "uas", "SUBSCRIBE", "bob", "bobpw", UAS, "alice", "e-6", "Event: dialog\r\nExpires: 60\r\n")[0]
    m = presence_req("SUBSCRIBE", "bob", UAS, "alice", "e-7", 5, "z9hG4bK-e7", "tbob", "Event: presence\r\nExpires: 60\r\n", totag="nosuchtag")
    uas.sendto(m.encode(), PROXY)
    log += presence_recv(uas, "uas", finals=1)[0]
    log += S(uas, "uas", "SUBSCRIBE", "bob", "bobpw", UAS, "alice", "e-8", "Event: presence\r\nAccept: application/pidf+xml\r\n",
             notifies=1)[0]
    log += S(uas, "uas", "SUBSCRIBE", "bob", "bobpw", UAS, "alice", "e-9", "Event: presence;id=x7\r\nExpires: 7200\r\n")[0]
    log += S(uas, "uas", "SUBSCRIBE", "bob", "bobpw", UAS, "alice", "e-10", "Event: presence\r\nExpires: 7200\r\n", notifies=1)[0]
    log += S(uas, "uas", "SUBSCRIBE", "bob", "bobpw", UAS, "alice", "e-11", "Event: presence\r\nExpires: 0\r\n", notifies=1)[0]
    # Through another proxy (the second UAS plays it): its Record-Route.
    rr = f"Record-Route: <sip:{UAS2[0]}:{UAS2[1]};lr;ftag=tbob>\r\n"
    log += S(uas, "uas", "SUBSCRIBE", "bob", "bobpw", UAS, "alice", "e-12", rr + "Event: presence\r\nExpires: 120\r\n")[0]
    log += presence_recv(peer, "uas2", notifies=1)[0]
    # No Contact.
    m = presence_req("SUBSCRIBE", "bob", UAS, "alice", "e-13", 1, "z9hG4bK-e13", "tbob", "Event: presence\r\n")
    m = re.sub(r"Contact: [^\r]*\r\n", "", m)
    uas.sendto(m.encode(), PROXY)
    out, got = presence_recv(uas, "uas", finals=1)
    log += out
    ch = [h for g in got for h in hdrs(g, "Proxy-Authenticate")]
    if ch:
        cred = digest(ch[0], "SUBSCRIBE", f"sip:alice@{PROXY[0]}", "bob", "bobpw")
        uas.sendto(m.replace("CSeq: 1 ", "CSeq: 2 ").replace("z9hG4bK-e13", "z9hG4bK-e13b")
                   .replace("Content-Length: 0", f"Proxy-Authorization: {cred}\r\nContent-Length: 0").encode(), PROXY)
        log += presence_recv(uas, "uas", finals=1)[0]
    return log

@case
def presence_winfo(uac, uas):
    """presence.winfo (RFC 3857): bob (UAS) watches alice; alice (UAC)
    subscribes to her watcher list (full state: bob); carol (the second
    UAS) starts watching (partial: carol subscribed); bob leaves (full
    state again); alice ends her winfo subscription. The version counts
    the NOTIFYs."""
    log, st = [], {"n": 0}
    carol = G["uas2"]
    S = lambda *a, **k: presence_signed(st, *a, **k)
    out, got = S(uas, "uas", "SUBSCRIBE", "bob", "bobpw", UAS, "alice", "w-2", "Event: presence\r\nExpires: 600\r\n", notifies=1)
    log += out
    btag = totag_in(got)
    out, got = S(uac, "uac", "SUBSCRIBE", "alice", "alicepw", UAC, "alice", "w-1",
                 "Event: presence.winfo\r\nAccept: application/watcherinfo+xml\r\nExpires: 600\r\n", notifies=1)
    log += out
    wtag = totag_in(got)
    carol_addr = UAS2
    out, got = S(carol, "uas2", "SUBSCRIBE", "bob", "bobpw", carol_addr, "alice", "w-3", "Event: presence\r\nExpires: 300\r\n",
                 notifies=1)
    log += out + presence_recv(uac, "uac", notifies=1)[0]
    m = presence_req("SUBSCRIBE", "bob", UAS, "alice", "w-2", 9, "z9hG4bK-w2x", "tbob", "Event: presence\r\nExpires: 0\r\n", totag=btag)
    uas.sendto(m.encode(), PROXY)
    log += presence_recv(uas, "uas", finals=1, notifies=1)[0] + presence_recv(uac, "uac", notifies=1)[0]
    m = presence_req("SUBSCRIBE", "alice", UAC, "alice", "w-1", 9, "z9hG4bK-w1x", "talice", "Event: presence.winfo\r\nExpires: 0\r\n", totag=wtag)
    uac.sendto(m.encode(), PROXY)
    log += presence_recv(uac, "uac", finals=1, notifies=1)[0]
    return log

@case
def presence_params(uac, uas):
    """presence with min_expires, max_expires and server_address set: a
    SUBSCRIBE too brief (423, Min-Expires), one too long (cut), one without
    Expires (the default cut to max_expires, for PUBLISH too), the Contact
    is server_address."""
    log, st = [], {"n": 0}
    S = lambda *a, **k: presence_signed(st, *a, **k)
    log += S(uac, "uac", "PUBLISH", "alice", "alicepw", UAC, "alice", "pp-1", "Event: presence\r\n", PIDF.format("open"))[0]
    log += S(uac, "uac", "PUBLISH", "alice", "alicepw", UAC, "alice", "pp-2", "Event: presence\r\nExpires: 30\r\n", PIDF.format("open"))[0]
    log += S(uas, "uas", "SUBSCRIBE", "bob", "bobpw", UAS, "alice", "ps-1", "Event: presence\r\nExpires: 60\r\n")[0]
    log += S(uas, "uas", "SUBSCRIBE", "bob", "bobpw", UAS, "alice", "ps-2", "Event: presence\r\nExpires: 7200\r\n", notifies=1)[0]
    log += S(uas, "uas", "SUBSCRIBE", "bob", "bobpw", UAS, "alice", "ps-3", "Event: presence\r\n", notifies=1)[0]
    return log

@case
def trusted_peer_and_flood(uac, uas):
    """WITH_ANTIFLOOD: 40 OPTIONS keepalives in a burst from the UAC are
    answered until pike says flood, then banned (dropped). WITH_IPAUTH: a
    call from the trusted address goes through without a challenge."""
    log = []
    for i in range(40):
        uac.sendto(invite(callid=f"cflood{i}", method="OPTIONS", ruri=f"sip:{PROXY[0]}", branch=f"z9hG4bK-fl{i}").encode(), PROXY)
    got = recv_all(uac, 1.0)
    log.append(("uac", f"{len(got)} answers to 40 OPTIONS in a burst\r\n"))
    log += [("uac", g) for g in got[:1]]
    peer = G["uas2"]
    m = (invite(callid="cpeer", ruri=f"sip:uas@{UAS[0]}:{UAS[1]}")
         .replace(f"Via: SIP/2.0/UDP {UAC[0]}:{UAC[1]}", f"Via: SIP/2.0/UDP {UAS2[0]}:{UAS2[1]}")
         .replace(f"Contact: <sip:uac@{UAC[0]}:{UAC[1]}>", f"Contact: <sip:peer@{UAS2[0]}:{UAS2[1]}>"))
    peer.sendto(m.encode(), PROXY)
    got = recv_all(uas)
    log += [("uas", g) for g in got]
    if got:
        uas.sendto(reply_to(got[0], 486, "Busy Here").encode(), PROXY)
    log += [("uas2", g) for g in recv_all(peer)]
    return log

def tcp_messages(conn, wait=0.4):
    """The SIP messages that arrive on the TCP connection within `wait`."""
    buf, out, end = b"", [], time.time() + wait
    conn.settimeout(0.05)
    while time.time() < end:
        try:
            d = conn.recv(65535)
            if not d:
                break
            buf += d
        except socket.timeout:
            pass
        while b"\r\n\r\n" in buf:
            head, _, rest = buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
            n = int(m.group(1)) if m else 0
            if len(rest) < n:
                break
            out.append((head + b"\r\n\r\n" + rest[:n]).decode(errors="replace"))
            buf = rest[n:]
    return out

@case
def tcp_caller_udp_callee(uac, uas):
    """The caller on TCP, the callee on UDP: INVITE/180/200, then ACK and
    BYE on the caller's connection along the recorded route (the proxy
    records two routes, one per transport)."""
    port = {"kamailio": 5071, "ringsip": 5072}[G["kind"]]
    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    conn.bind((UAC[0], port))
    conn.connect(PROXY)
    tcp = lambda m: (m.replace(f"SIP/2.0/UDP {UAC[0]}:{UAC[1]}", f"SIP/2.0/TCP {UAC[0]}:{port}")
                      .replace(f"<sip:uac@{UAC[0]}:{UAC[1]}>", f"<sip:uac@{UAC[0]}:{port};transport=tcp>"))
    # The caller's port differs per proxy; the connection id in the proxy's
    # Via (`;i=`) is each proxy's own.
    fold = lambda m: re.sub(r";i=[0-9a-f]+", ";i=<C>", m.replace(f":{port}", ":<TCP>").replace(f"rport={port}", "rport=<TCP>"))
    conn.sendall(tcp(invite(callid="ctcp")).encode())
    got = recv_all(uas)
    log = [("uas", fold(g)) for g in got]
    if got:
        uas.sendto(reply_to(got[0], 180, "Ringing").encode(), PROXY)
        uas.sendto(reply_to(got[0], 200, "OK").encode(), PROXY)
    r = tcp_messages(conn)
    log += [("uac", fold(g)) for g in r]
    rr = [v for g in r[-1:] for h in hdrs(g, "Record-Route") for v in h.split(",")]
    route = "Route: " + ", ".join(v.strip() for v in reversed(rr)) if rr else ""
    conn.sendall(tcp(invite(callid="ctcp", method="ACK", totag="uas-tag", extra=route, branch="z9hG4bK-tcpack")).encode())
    conn.sendall(tcp(invite(callid="ctcp", method="BYE", cseq=2, totag="uas-tag", extra=route, branch="z9hG4bK-tcpbye")).encode())
    got = recv_all(uas)
    log += [("uas", fold(g)) for g in got]
    for g in got:
        if g.startswith("BYE"):
            uas.sendto(reply_to(g, 200, "OK").encode(), PROXY)
    log += [("uac", fold(g)) for g in tcp_messages(conn)]
    conn.close()
    return log

@case
def udp_caller_tcp_callee(uac, uas):
    """The caller on UDP, the callee on TCP (`;transport=tcp` in the R-URI):
    the proxy connects to it; INVITE/180/200 on that connection, then ACK
    and BYE along the recorded route."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(UAS)
    lsock.listen(4)
    lsock.settimeout(1.0)
    fold = lambda m: re.sub(r"(127\.0\.0\.61):\d+", r"\1:<EPH>", m) if "SIP/2.0/TCP 127.0.0.61:" in m else m
    uac.sendto(invite(callid="ctcpb", ruri=f"sip:uas@{UAS[0]}:{UAS[1]};transport=tcp").encode(), PROXY)
    log, conns = [], []
    try:
        c, _ = lsock.accept()
        conns.append(c)
    except socket.timeout:
        lsock.close()
        return log + [("uas", "no TCP connection\r\n")]
    got = tcp_messages(c)
    log += [("uas", fold(g)) for g in got]
    if got:
        c.sendall(reply_to(got[0], 180, "Ringing").encode())
        c.sendall(reply_to(got[0], 200, "OK").encode())
    r = recv_all(uac)
    log += [("uac", g) for g in r]
    rr = [v for g in r[-1:] for h in hdrs(g, "Record-Route") for v in h.split(",")]
    route = "Route: " + ", ".join(v.strip() for v in reversed(rr)) if rr else ""
    target = f"sip:uas@{UAS[0]}:{UAS[1]};transport=tcp"
    uac.sendto(invite(callid="ctcpb", method="ACK", ruri=target, totag="uas-tag", extra=route, branch="z9hG4bK-tcpback").encode(), PROXY)
    uac.sendto(invite(callid="ctcpb", method="BYE", ruri=target, cseq=2, totag="uas-tag", extra=route, branch="z9hG4bK-tcpbbye").encode(), PROXY)
    # On the same connection (ringsip), or a new one (Kamailio 5.6 connects
    # again for requests it sends along the route set).
    lsock.settimeout(0.3)
    try:
        conns.append(lsock.accept()[0])
    except socket.timeout:
        pass
    for conn in conns:
        got = tcp_messages(conn)
        log += [("uas", fold(g)) for g in got]
        for g in got:
            if g.startswith("BYE"):
                conn.sendall(reply_to(g, 200, "OK").encode())
    log += [("uac", g) for g in recv_all(uac)]
    for conn in conns:
        conn.close()
    lsock.close()
    return log


def ask(uac, rows, wait=0.25):
    """One MESSAGE per row (user of the R-URI, extra header lines, Call-ID,
    From user), each answered by the config itself; the replies."""
    log = []
    for i, (user, extra, callid, fuser) in enumerate(rows):
        m = invite(method="MESSAGE", ruri=f"sip:{user}@{PROXY[0]}", callid=callid or f"ask-{i}",
                   branch=f"z9hG4bK-ask{i}", extra=extra)
        if fuser:
            m = m.replace("From: <sip:uac@", f"From: <sip:{fuser}@")
        uac.sendto(m.encode(), PROXY)
        log += [("uac", brief(g)) for g in recv_all(uac, wait)]
    return log

def brief(m):
    """A reply cut to one line: its code, Call-ID and the X- headers the config added."""
    lines = m.split("\r\n")
    keep = [l.split(" ", 1)[1] for l in lines[:1]] + [l.split(": ", 1)[-1] for l in lines[1:] if l.startswith("Call-ID:")]
    keep += [l[2:].replace(": ", "=", 1) for l in lines[1:] if l.startswith("X-")]
    keep += [l for l in lines[1:] if l.startswith("Unsupported:")]
    return " | ".join(keep) + "\r\n"

def sel(set_, alg, lim=None, user="sel", callid=None, fuser=None, extra=""):
    h = f"X-Set: {set_}\r\nX-Alg: {alg}" + (f"\r\nX-Lim: {lim}" if lim is not None else "") + (f"\r\n{extra}" if extra else "")
    return (user, h, callid, fuser)

@case
def ds_hash_algs(uac, uas):
    """Algorithms 0-3 and 5, 7 (hash of Call-ID, From, To, R-URI, auth user,
    a variable) on set 1: the pick and the failover order."""
    rows = []
    for cid in ("a84b4c76e66710@pc33", "abc", "zz-call"):
        rows.append(sel(1, 0, callid=cid))
    for fu in ("alice", "bob", "carol"):
        rows.append(sel(1, 1, fuser=fu))
        rows.append(sel(1, 2, fuser=fu))
    for ru in ("sel", "sel2", "sel3x"):
        rows.append(sel(1, 3, user=ru))
    rows.append(sel(1, 5))
    for k in ("key1", "key2", "other"):
        rows.append(sel(1, 7, extra=f"X-Key: {k}"))
    rows.append(sel(1, 7))
    return ask(uac, rows)

@case
def ds_turn_algs(uac, uas):
    """Round-robin (4), priority (8), weight (9), relative weight (11),
    parallel (12) and an unknown number, each several times, some limited."""
    rows = [sel(1, 4) for _ in range(4)] + [sel(1, 8), sel(1, 8, lim=2)]
    rows += [sel(1, 12), sel(1, 99), sel(1, 4, lim=1), sel(9, 4), sel(1, 4, lim=0)]
    return ask(uac, rows)

@case
def ds_weight_shares(uac, uas):
    """100 selections each by weight (9, set 1) and relative weight (11, set
    2): how many went to each destination (Kamailio shuffles the slots
    randomly, so only the shares compare)."""
    counts = {}
    for alg, set_ in ((9, 1), (11, 2)):
        for i in range(100):
            m = invite(method="MESSAGE", ruri=f"sip:sel@{PROXY[0]}", callid=f"w{alg}-{i}",
                       branch=f"z9hG4bK-w{alg}x{i}", extra=f"X-Set: {set_}\r\nX-Alg: {alg}")
            uac.sendto(m.encode(), PROXY)
            if i % 20 == 19:
                time.sleep(0.05)
        for g in recv_all(uac, 1.0):
            du = re.search(r"X-Du: (\S+)", g)
            key = (alg, du.group(1) if du else None)
            counts[key] = counts.get(key, 0) + 1
    return [("uac", "".join(f"alg {a} {d}: {n}\r\n" for (a, d), n in sorted(counts.items(), key=str)))]

@case
def ds_states_and_domain(uac, uas):
    """Set 3 holds inactive, disabled and probing destinations from the list
    file; ds_is_active, marking one, and ds_select_domain / ds_next_domain."""
    rows = [sel(3, 4), sel(3, 8), sel(3, 0), ("active", "X-Set: 3", None, None),
            ("active", "X-Set: 3\r\nX-Uri: sip:127.0.0.73:5080", None, None),
            ("active", "X-Set: 3\r\nX-Uri: sip:127.0.0.72:5080", None, None),
            ("active", "X-Set: 7", None, None),
            sel(1, 8, user="dom"), sel(1, 12), ("skip", "", None, None), sel(1, 8),
            sel(1, 4, user="mark"), sel(1, 4), sel(1, 4, user="mark", extra="X-State: ip"), sel(1, 8),
            sel(1, 4, user="mark", extra="X-State: a"), sel(1, 8),
            sel(1, 4, user="mark", extra="X-State: d"), sel(1, 8), sel(1, 8),
            sel(1, 8, user="dom"), sel(2, 4, user="dom", lim=2)]
    return ask(uac, rows)

@case
def ds_from_list(uac, uas):
    """ds_is_from_list with no arguments, a group, each mode bit, and a URI."""
    rows = [("from", "", None, None)]
    for g in (4, 5, 1, -1):
        rows.append(("from", f"X-Set: {g}", None, None))
        for mode in (0, 1, 2, 3, 4, 8):
            rows.append(("from", f"X-Set: {g}\r\nX-Alg: {mode}", None, None))
    for uri in ("sip:127.0.0.62:5099;transport=tcp", "sip:127.0.0.62:5099", "sip:127.0.0.62", "sip:127.0.0.62;transport=tcp",
                "sip:127.0.0.63:5080", "sip:host.invalid", "sips:127.0.0.62"):
        for mode in (0, 1, 2, 3):
            rows.append(("from", f"X-Set: -1\r\nX-Alg: {mode}\r\nX-Uri: {uri}", None, None))
    return ask(uac, rows, wait=0.15)

def reg_seq(uac, steps, user="alice"):
    """REGISTERs of `user` from the UAC, one per step (contact, Expires
    header, extra header lines); the replies with Date folded and expires
    values rounded to 5 s (they count down)."""
    log = []
    for i, (c, e, extra) in enumerate(steps):
        uac.sendto(register(c, e, cseq=i + 1, branch=f"z9hG4bK-hr{i}", user=user, callid=f"hreg-{user}",
                            extra=extra).encode(), PROXY)
        for g in recv_all(uac, 0.3):
            g = re.sub(r"Date: .*", "Date: <D>", g)
            g = re.sub(r"expires=(\d+)", lambda m: f"expires={5 * round(int(m.group(1)) / 5)}", g)
            log.append(("uac", g))
    return log

A1 = f"<sip:alice@{UAS[0]}:{UAS[1]}>"
A2 = f"<sip:a2@{UAS[0]}:{UAS[1]}>"
A3 = f"<sip:a3@{UAS[0]}:{UAS[1]}>"
A4 = f"<sip:a4@{UAS[0]}:{UAS[1]}>"

@case
def reg_expires_limits(uac, uas):
    """min_expires 60, max_expires 3600, default_expires 1800: a header below,
    above, none; a Contact parameter against the header; expires=0 in the
    Contact; an Expires header that is not a number."""
    return reg_seq(uac, [(A1, 30, ""), (A1, 7200, ""), (A1, None, ""), (f"{A2};expires=100", 7200, ""),
                         (f"{A3};expires=5000", 100, ""), (f"{A2};expires=0", 600, ""), (A3, 0, ""),
                         (A1, "abc", ""), (f"{A1};expires=xyz", 600, ""), (f"{A2};q=7", 600, ""),
                         (f"{A2};q=abc", 600, ""), (f"{A2};expires=-5", 600, ""), (None, None, "")])

@case
def reg_max_contacts(uac, uas):
    """max_contacts 3: four in one REGISTER, then one at a time up to the
    limit and past it, a refresh of one already there, a removal then an add."""
    return reg_seq(uac, [(", ".join([A1, A2, A3, A4]), 600, ""), (A1, 600, ""), (A2, 600, ""),
                         (A3, 600, ""), (A4, 600, ""), (A1, 300, ""), (f"{A1};expires=0, {A4}", 600, ""),
                         (None, None, "")])

@case
def reg_star(uac, uas):
    """`*`: with Expires 0 it removes all; with another Expires, with another
    contact beside it, or without an Expires header it is refused."""
    return reg_seq(uac, [(f"{A1}, {A2}", 600, ""), ("*", 5, ""), ("*", None, ""), (f"*, {A3}", 0, ""),
                         ("*;expires=0", None, ""), (None, None, ""), ("*", 0, ""), (None, None, ""),
                         ("*", 0, "")])

@case
def reg_save_flags(uac, uas):
    """save flags 0x02 (no reply: the config answers itself) and 0x04 (one
    contact only: the new one replaces the others)."""
    return reg_seq(uac, [(f"{A1}, {A2}", 600, ""), (A3, 600, "X-Save: 2\r\n"), (None, None, ""),
                         (A4, 600, "X-Save: 4\r\n"), (f"{A1};q=0.5, {A2};q=0.9", 600, "X-Save: 4\r\n"),
                         (None, None, "")])

@case
def reg_lookup_fork(uac, uas):
    """Three contacts, two with an equal q, one without: lookup and append_branches
    fork to all; the order the UAS sees the INVITEs and their R-URIs; each
    answers 486 and the UAC gets one final reply."""
    log = reg_seq(uac, [(f"{A1};q=0.5, {A2}, {A4};q=0.5", 600, "")])
    uac.sendto(invite(callid="chlook", ruri=f"sip:alice@{PROXY[0]}").encode(), PROXY)
    got = recv_all(uas, 0.5)
    log += [("uas", g) for g in got]
    for g in got:
        if g.startswith("INVITE"):
            uas.sendto(reply_to(g, 486, "Busy Here", totag="b-" + g.split(" ")[1][4:6]).encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas, 0.3)]
    log += [("uac", g) for g in recv_all(uac, 0.5)]
    return log

# hunt_text*.cfg: each request runs many textops/siputils/pv tests; the
# results come back as X- headers on the forwarded request or the reply.
def relayed(uac, uas, m, code=404, reason="Not Found"):
    """`m` from the UAC; what the UAS got (answered `code`) and the UAC got."""
    return exchange(uac, uas, m, code, reason)

@case
def hunt_headers_odd(uac, uas):
    """Compact names, case differences, a folded Subject, repeated and
    multi-value headers, an SDP body."""
    extra = ("x-custom: 1\r\ns: hello\r\n  there\r\nX-Multi: a, b\r\nX-Multi: c\r\n"
             "X-Del: 1\r\nx-del: 2\r\nX-Re1: 1\r\nX-Re22: 2\r\nX-Ex-A: 1\r\nX-Ex-Keep: 2\r\n"
             "User-Agent: softphone 1.0")
    m = invite(callid="chunt1", ruri="sip:0049123@127.0.0.61", extra=extra)
    return relayed(uac, uas, m)

@case
def hunt_headers_plain(uac, uas):
    """The same tests on a plain MESSAGE without body and without most headers."""
    m = invite(callid="chunt2", ruri="sip:bob@127.0.0.61", method="MESSAGE", extra="Subject: hello")
    return relayed(uac, uas, m, 202, "Accepted")


def hunt_tr_request(callid, s, u, p, n, na, body=True):
    """An INVITE (a MESSAGE without body) carrying the transformation inputs in X-S/X-U/X-P/X-N/X-NA."""
    extra = f"X-S: {s}\r\nX-U: {u}\r\nX-P: {p}\r\nX-N: {n}\r\nX-NA: {na}"
    return invite(callid=callid, extra=extra, method="INVITE" if body else "MESSAGE")

@case
def hunt_tr_plain(uac, uas):
    """Ordinary values through the string, uri, param, nameaddr, tobody, line and re transformations."""
    m = hunt_tr_request("ctr1", "abc,def,gha", "sip:al%20ice:pw@example.com:5071;transport=TCP;lr;maddr=10.0.0.1;ttl=5;x=y?subject=hi&h=2",
                        "a=1;b=2;c", "123456", '"Alice Smith" <sip:alice@example.org;p=1>;tag=abc;x=1')
    return exchange(uac, uas, m, 0, "")

@case
def hunt_tr_odd(uac, uas):
    """Odd values: blanks, quoted params, an IPv6 URI, a tel URI, no body."""
    m = hunt_tr_request("ctr2", "  A b%c  ", "sips:[2001:db8::1]:5061;transport=tls",
                        '"q;x"=1; b = "two" ;c=', "-17abc", "sip:bob@[::1]:5070;tag=t2", body=False)
    return exchange(uac, uas, m, 0, "")

@case
def hunt_tr_empty(uac, uas):
    """Empty and absent values (no X-S header at all)."""
    m = invite(callid="ctr3", method="MESSAGE", extra="X-U: tel:+1-555-0100;phone-context=x\r\nX-P: \r\nX-N: 0\r\nX-NA: <sip:x@y>")
    return exchange(uac, uas, m, 0, "")


@case
def hunt_pv_ops(uac, uas):
    """Operators, coercions, $null and AVP stacks: the results in X- headers of the reply."""
    m = invite(callid="cpv1", method="MESSAGE", ruri=f"sip:UAS@{UAS[0]}:{UAS[1]}", extra="X-Num: 12\r\nX-Zero: 0")
    return exchange(uac, uas, m, 0, "")


@case
def hunt_cmp_matrix(uac, uas):
    """== and < between ints, numeric and other strings, empty strings and $null; truth values."""
    m = invite(callid="ccmp1", method="MESSAGE", extra="X-Five: 5")
    return exchange(uac, uas, m, 0, "")


@case
def hunt_lang_switch_while_routes(uac, uas):
    """switch on a string and an int, while with break, route return codes (results in the reply)."""
    return exchange(uac, uas, invite(callid="clang1", method="MESSAGE", ruri="sip:lang@127.0.0.61", extra="X-Sw: a"), 0, "")

@case
def hunt_lang_switch_default(uac, uas):
    """The same routes with a switch value no case names."""
    return exchange(uac, uas, invite(callid="clang2", method="MESSAGE", ruri="sip:LANG@127.0.0.61", extra="X-Sw: zz"), 0, "")

@case
def hunt_lang_drop_in_branch(uac, uas):
    """drop in branch_route: the only branch is not sent; what the caller hears."""
    return exchange(uac, uas, invite(callid="clang3", ruri="sip:drop@127.0.0.61"), 404, "Not Found")

@case
def hunt_lang_return0(uac, uas):
    """return 0 in a sub-route ends the script: no reply is sent after it."""
    return exchange(uac, uas, invite(callid="clang4", method="MESSAGE", ruri="sip:ret0@127.0.0.61"), 0, "")

@case
def hunt_lang_exit_in_subroute(uac, uas):
    """exit in a sub-route after a reply: nothing runs after route(EXIT)."""
    return exchange(uac, uas, invite(callid="clang5", method="MESSAGE", ruri="sip:exitsub@127.0.0.61"), 0, "")


@case
def hunt_sip_e164_params(uac, uas):
    """siputils on an E.164 R-URI with parameters and a Supported list (results in the reply)."""
    m = invite(callid="csip1", method="MESSAGE", ruri="sip:+4930123456@127.0.0.61;transport=udp;lr;user=phone",
               extra="Supported: 100rel, Path\r\nk: timer")
    return exchange(uac, uas, m, 0, "")

@case
def hunt_sip_ipv6_totag(uac, uas):
    """siputils on an in-dialog request to an IPv6 GRUU without parameters."""
    m = invite(callid="csip2", method="MESSAGE", ruri="sip:bob@[2001:db8::5]:5070;gr=urn:uuid:1", totag="x1",
               extra="Route: <sip:127.0.0.61;lr>")
    return exchange(uac, uas, m, 0, "")


@case
def hunt_sip_phone_user_params(uac, uas):
    """siputils on a user=phone R-URI whose number carries its own parameter."""
    m = invite(callid="csip3", method="MESSAGE", ruri="sip:+4930;isub=7@127.0.0.61;transport=udp;user=phone")
    return exchange(uac, uas, m, 0, "")


@case
def hunt_core_formats(uac, uas):
    """Pseudo-variables of a message with compact, repeated, empty and folded headers, printed into the reply."""
    extra = ("X-Multi: a, b\r\nX-Multi: c\r\ns: sub\r\n  folded\r\nX-Empty:\r\nUser-Agent: ua/1.0 (test)")
    m = invite(callid="ccore1", ruri="sip:fmt@127.0.0.61;x=1", extra=extra).replace("From: <sip:uac@", 'f: "Al Ice" <sip:uac@')
    return exchange(uac, uas, m, 0, "")

@case
def hunt_core_branches(uac, uas):
    """append_branch without arguments (a copy of the R-URI) and with a q value, then t_relay."""
    uas2 = G['uas2']
    uac.sendto(invite(callid="ccore2", ruri="sip:branches@127.0.0.61").encode(), PROXY)
    a = recv_all(uas); b = recv_all(uas2, 0.1)
    log = [("uas", g) for g in a] + [("uas2", g) for g in b]
    for s_, got in ((uas, a), (uas2, b)):
        for g in got:
            if g.startswith("INVITE"):
                s_.sendto(reply_to(g, 486, "Busy Here").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    log += [("uas", g) for g in recv_all(uas, 0.1)] + [("uas2", g) for g in recv_all(uas2, 0.1)]
    return log

@case
def hunt_core_send(uac, uas):
    """send_udp() a copy to the second UAS, then forward() statelessly."""
    m = invite(callid="ccore3", method="MESSAGE", ruri="sip:send@127.0.0.61")
    uac.sendto(m.encode(), PROXY)
    return [("uas", g) for g in recv_all(uas)] + [("uas2", g) for g in recv_all(G['uas2'], 0.2)]


def hunt_text2_call(uac, uas, ruri, callid, extra, body=None, uas_extra="X-Uas: 1"):
    """An INVITE through hunt_text2.cfg, answered 486 with `uas_extra` by the UAS."""
    kw = {} if body is None else {"body": body}
    m = invite(callid=callid, ruri=ruri, extra=extra, **kw)
    uac.sendto(m.encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    if got:
        uas.sendto(reply_to(got[0], 486, "Busy Here", extra=uas_extra).encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def reg_queries(uac, uas):
    """registered(), lookup() and lookup_branches()
    answered by the config, then unregister() and the same again."""
    log = reg_seq(uac, [(f"{A1};q=0.5, {A2};q=0.9", 600, "User-Agent: hunt\r\n")])
    rows = [("isreg", "", None, None), ("look", "", None, None),
            ("brs", "", None, None), ("unreg", "", None, None), ("isreg", "", None, None),
            ("look", "", None, None), ("nobody", "", None, None)]
    return log + ask(uac, rows)

def raw_msgs(uac, msgs, wait=0.2):
    """Each raw request (LF line ends made CRLF) sent as it is; the replies, cut to one line each."""
    log = []
    for i, m in enumerate(msgs):
        uac.sendto(m.replace("\r\n", "\n").replace("\n", "\r\n").encode(), PROXY)
        got = recv_all(uac, wait)
        log += [("uac", f"#{i} " + brief(g)) for g in got] or [("uac", f"#{i} (nothing)\r\n")]
    return log

def malformed(mode):
    base = invite(callid="csan", extra=f"X-Mode: {mode}")
    body = "v=0\r\n"
    def sub(a, b): return base.replace(a, b, 1)
    return [
        base,
        sub("INVITE sip:uas@127.0.0.63:5080 SIP/2.0", "INVITE sip:uas@127.0.0.63:5080 SIP/3.0"),
        sub("INVITE sip:uas@127.0.0.63:5080 SIP/2.0", "INVITE foo:uas@127.0.0.63:5080 SIP/2.0"),
        sub("INVITE sip:uas@127.0.0.63:5080 SIP/2.0", "INVITE sip:@ SIP/2.0"),
        sub("INVITE sip:uas@127.0.0.63:5080 SIP/2.0", "INVITE sip:uas@127.0.0.63:99999 SIP/2.0"),
        sub("Call-ID: csan\r\n", ""),
        sub("CSeq: 1 INVITE\r\n", ""),
        sub("Via: SIP/2.0/UDP", "Via: SIP/3.0/UDP"),
        sub("Via: SIP/2.0/UDP", "Via: SIP/2.0/XYZ"),
        sub("CSeq: 1 INVITE", "CSeq: 1 BYE"),
        sub("CSeq: 1 INVITE", "CSeq: 99999999999 INVITE"),
        sub("CSeq: 1 INVITE", "CSeq: -1 INVITE"),
        sub("Content-Length: ", "Expires: abc\r\nContent-Length: "),
        sub("Content-Length: ", "Expires: -5\r\nContent-Length: "),
        sub("Content-Length: ", "Proxy-Require: foo\r\nContent-Length: "),
        sub("From: <sip:uac@127.0.0.62>", "From: <sip:@@>"),
        sub("To: <sip:uas@127.0.0.63>", "To: <sip:uas@[::1>"),
        sub("Contact: <sip:uac@127.0.0.62:5070>", "Contact: <sip:uac@127.0.0.62:99999>"),
        sub("Contact: <sip:uac@127.0.0.62:5070>", "Contact: garbage"),
        sub("Content-Length: ", "Authorization: Digest username=\"a\", realm=\"r\"\r\nContent-Length: "),
        sub("Content-Length: ", "Proxy-Authorization: Digest nonsense\r\nContent-Length: "),
        sub("From: <sip:uac@127.0.0.62>;tag=uac-tag", "From: <sip:uac@127.0.0.62>;tag=a;tag=b"),
        sub("To: <sip:uas@127.0.0.63>", "To: <sip:uas@127.0.0.63>;tag=x;tag=y"),
        re.sub(r"Content-Length: \d+", "Content-Length: 2", base),
        re.sub(r"Content-Length: \d+", "Content-Length: 9999", base),
        sub("Content-Type: application/sdp\r\n", ""),
        base.replace("INVITE", "OPTIONS").split("Content-Type")[0] + "Content-Length: 0\r\n\r\n",
    ]

@case
def sanity_default_checks(uac, uas):
    """sanity_check() with the default checks on malformed requests (autodrop 0)."""
    return raw_msgs(uac, malformed("default"))

@case
def sanity_all_checks(uac, uas):
    """sanity_check("65535", "15"): every check bit on the same malformed requests."""
    return raw_msgs(uac, malformed("all"))

@case
def sanity_over_max(uac, uas):
    """Check masks at and past what Kamailio 5.6 knows: 65535, 32767, 16383
    with all URI checks, and 8191 with URI mask 16."""
    return raw_msgs(uac, [m for mode in ("over", "over3", "over2", "over4") for m in malformed(mode)[:3:2]])

@case
def sanity_stock_checks(uac, uas):
    """sanity_check("17895", "7") as the stock config calls it."""
    return raw_msgs(uac, malformed("stock"))

@case
def maxfwd_values(uac, uas):
    """mf_process_maxfwd_header("10") on odd Max-Forwards values."""
    base = invite(callid="cmfv", extra="X-Mode: mf")
    msgs = [base.replace("Max-Forwards: 70", f"Max-Forwards: {v}") for v in
            ("0", "1", "10", "11", "255", "256", "-1", "abc", " 5 ", "", "00007", "99999999999", "5, 6")]
    msgs.append(base.replace("Max-Forwards: 70\r\n", ""))
    msgs.append(base.replace("Max-Forwards: 70\r\n", "Max-Forwards: 3\r\nMax-Forwards: 40\r\n"))
    return raw_msgs(uac, msgs)

SDP_PRIV = "v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtcp:6001\r\n"

def nat_req(op, i, via=None, contact=None, sdp=None, ruri=None, method="INVITE"):
    """An INVITE from the UAC with X-Op `op`; `via` (host:port) as the
    sent-by, `contact` as the Contact URI, `sdp` as the body."""
    m = invite(callid=f"cnat-{op}-{i}", branch=f"z9hG4bK-nat{op}{i}", extra=f"X-Op: {op}", ruri=ruri,
               method=method, body=sdp if sdp is not None else SDP_PRIV)
    if via:
        m = m.replace(f"Via: SIP/2.0/UDP {UAC[0]}:{UAC[1]}", f"Via: SIP/2.0/UDP {via}")
    if contact:
        m = m.replace(f"Contact: <sip:uac@{UAC[0]}:{UAC[1]}>", f"Contact: {contact}")
    return m

def nat_run(uac, uas, reqs):
    log = []
    for m in reqs:
        uac.sendto(m.encode(), PROXY)
        got = recv_all(uas, 0.3)
        log += [("uas", g) for g in got]
        for g in got:
            if g.startswith("INVITE"):
                uas.sendto(reply_to(g, 486, "Busy Here").encode(), PROXY)
        log += [("uac", brief(g) if "tested" in g else g) for g in recv_all(uac, 0.3)]
    return log

NAT_SHAPES = [
    dict(),
    dict(via="192.168.1.10:5062", contact="<sip:alice@192.168.1.10:5062>"),
    dict(via="127.0.0.62:5099", contact="<sip:alice@127.0.0.62:5070>"),
    dict(via="10.0.0.1", contact="<sip:alice@172.16.0.9;transport=udp>"),
    dict(contact="<sip:alice@127.0.0.62:5099>", sdp=SDP_PRIV.replace("192.168.1.10", "127.0.0.62")),
    dict(contact="<sip:alice@100.64.0.1:5070>"),
    dict(contact="\"Al\" <sip:alice@192.168.1.10;ob>;+sip.instance=\"<urn:x>\";expires=60"),
]

@case
def nat_uac_tests(uac, uas):
    """nat_uac_test with each flag (1..64) and all of them, on requests with
    private or public Via, Contact and SDP addresses and mismatched ports."""
    return nat_run(uac, uas, [nat_req("test", i, **kw) for i, kw in enumerate(NAT_SHAPES)])

@case
def nat_fix_contact(uac, uas):
    """fix_nated_contact on each shape, relayed: the Contact the UAS sees."""
    return nat_run(uac, uas, [nat_req("fnc", i, **kw) for i, kw in enumerate(NAT_SHAPES)])

@case
def nat_aliases(uac, uas):
    """add_contact_alias (no arguments and with three), set_contact_alias on
    each shape; then handle_ruri_alias on R-URIs carrying an alias."""
    reqs = [nat_req(op, i, **kw) for op in ("alias", "alias3", "setalias") for i, kw in enumerate(NAT_SHAPES[:4])]
    for i, r in enumerate(["sip:bob@127.0.0.99;alias=127.0.0.63~5080~1", "sip:bob@127.0.0.99;x=1;alias=127.0.0.63~5080~1;y=2",
                           "sip:bob@127.0.0.99", "sip:bob@127.0.0.99;alias=bad", "sip:bob@127.0.0.99;alias=127.0.0.63~5080~2"]):
        reqs.append(nat_req("handle", i, ruri=r))
    return nat_run(uac, uas, reqs)

@case
def nat_fix_sdp(uac, uas):
    """fix_nated_sdp with flags 1, 2, 3, 8 and an address."""
    return nat_run(uac, uas, [nat_req(op, 0) for op in ("sdp1", "sdp2", "sdp3", "sdp8", "sdpip")]
                   + [nat_req("sdp3", 1, sdp="v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\nc=IN IP4 192.168.1.10\r\n")])

@case
def hunt_text2_multi(uac, uas):
    """subst_hf/search_hf flags over repeated headers; a reply edited in onreply_route."""
    return hunt_text2_call(uac, uas, "sip:multi@127.0.0.61", "ct2a",
                           "X-M: x1\r\nX-M: x2\r\nx-m: x3\r\nX-Rep: old value")

@case
def hunt_text2_keep(uac, uas):
    """keep_hf keeps matching headers and the ones a request cannot lose."""
    return hunt_text2_call(uac, uas, "sip:keep@127.0.0.61", "ct2b",
                           "X-Keep-A: 1\r\nX-Drop: 2\r\nSubject: s\r\nRecord-Route: <sip:10.0.0.1;lr>\r\nX-Keeper: 3")

@case
def hunt_text2_remove_body(uac, uas):
    """remove_body on an INVITE with SDP."""
    return hunt_text2_call(uac, uas, "sip:nobody@127.0.0.61", "ct2c", "X-M: x\r\nX-M: x")

@case
def hunt_text2_set_body(uac, uas):
    """set_body, then msg_apply_changes, then tests on the changed message."""
    return hunt_text2_call(uac, uas, "sip:setbody@127.0.0.61", "ct2d", "X-M: x\r\nX-M: x")

@case
def hunt_text2_empty_body(uac, uas):
    """An INVITE with Content-Type but an empty body."""
    return hunt_text2_call(uac, uas, "sip:empty@127.0.0.61", "ct2e", "X-M: x\r\nX-M: x\r\nContent-Type: application/sdp", body="")


# hunt_known.cfg (case hunt_cmp_matrix) shows differences left alone on
# purpose, so it is not in the suite: Kamailio 5.6 leaves a variable
# unassigned after a division by zero and wraps script integers at 32 bits.
@case
def uac_call(uac, uas, frm='"Alice" <sip:uac@127.0.0.62>', to=None, callid="uac-call"):
    """uac_replace_from/to on an INVITE: the callee sees the carrier's From
    and To and the vsf/vst Record-Route parameters, the caller its own values
    in every reply; ACK and BYE from the caller are restored on loose_route."""
    m = invite(callid=callid)
    m = m.replace("From: <sip:uac@127.0.0.62>", "From: " + frm)
    if to: m = m.replace("To: <sip:uas@127.0.0.63>", "To: " + to)
    uac.sendto(m.encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    if not got: return log
    req = got[0]
    uas.sendto(reply_to(req, 180, "Ringing").encode(), PROXY)
    uas.sendto(reply_to(req, 200, "OK", body="").encode(), PROXY)
    r = recv_all(uac)
    log += [("uac", g) for g in r]
    rr = hdrs(r[-1], "Record-Route") if r else []
    route = "Route: " + ", ".join(reversed(rr)) if rr else ""
    def indlg(method, cseq, branch):
        x = invite(branch=branch, callid=callid, method=method, cseq=cseq, totag="uas-tag", extra=route)
        x = x.replace("From: <sip:uac@127.0.0.62>", "From: " + frm)
        if to: x = x.replace("To: <sip:uas@127.0.0.63>", "To: " + to)
        return x
    uac.sendto(indlg("ACK", 1, "z9hG4bK-ack").encode(), PROXY)
    uac.sendto(indlg("BYE", 2, "z9hG4bK-bye").encode(), PROXY)
    got = recv_all(uas)
    log += [("uas", g) for g in got]
    for g in got:
        if g.startswith("BYE"):
            uas.sendto(reply_to(g, 200, "OK").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log
@case
def uac_bye_from_callee(uac, uas, callid="uac-up"):
    """As uac_call, then the callee hangs up: its BYE gets the caller's
    From/To URIs back, the caller's 200 the callee's values."""
    m = invite(callid=callid).replace("From: <sip:uac@127.0.0.62>", 'From: "Alice" <sip:uac@127.0.0.62>')
    uac.sendto(m.encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    if not got: return log
    req = got[0]
    uas.sendto(reply_to(req, 200, "OK", body="").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    rr = hdrs(req, "Record-Route")
    f = hdrs(req, "From")[0]; t = hdrs(req, "To")[0]
    bye = (f"BYE sip:uac@{UAC[0]}:{UAC[1]} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP {UAS[0]}:{UAS[1]};branch=z9hG4bK-uasbye;rport\r\n"
           f"Max-Forwards: 70\r\nFrom: {t};tag=uas-tag\r\nTo: {f}\r\nCall-ID: {callid}\r\nCSeq: 7 BYE\r\n"
           + (f"Route: {', '.join(rr)}\r\n" if rr else "") + "Content-Length: 0\r\n\r\n")
    uas.sendto(bye.encode(), PROXY)
    got = recv_all(uac)
    log += [("uac", g) for g in got]
    for g in got:
        if g.startswith("BYE"):
            uac.sendto(reply_to(g, 200, "OK", totag=None).encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    return log
def topoh_call(uac, uas, callid, extra_rr=""):
    """A call through topoh: the INVITE (with a second Via and, with
    `extra_rr`, a Record-Route of a proxy before us), 180 and 200 from the
    callee (with a Record-Route of a proxy after us), then the caller's ACK to
    the Contact it was given (masked) along the Route it learned.
    Returns (log, INVITE as the callee saw it, 200 as the caller saw it)."""
    m = invite(callid=callid).replace(
        "Max-Forwards: 70\r\n",
        "Via: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bK-old;received=192.0.2.1\r\nMax-Forwards: 70\r\n")
    if extra_rr:
        m = m.replace("Max-Forwards: 70\r\n", f"Record-Route: {extra_rr}\r\nMax-Forwards: 70\r\n")
    uac.sendto(m.encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    if not got:
        return log, None, None
    req = got[0]
    # A proxy after us: the second UAS stands for it (in-dialog requests reach it).
    rr_down = f"Record-Route: <sip:{UAS2[0]}:{UAS2[1]};lr;did=down>"
    uas.sendto(reply_to(req, 180, "Ringing").replace("Record-Route:", rr_down + "\r\nRecord-Route:", 1).encode(), PROXY)
    uas.sendto(reply_to(req, 200, "OK").replace("Record-Route:", rr_down + "\r\nRecord-Route:", 1).encode(), PROXY)
    r = recv_all(uac)
    log += [("uac", g) for g in r]
    ok = [g for g in r if g.startswith("SIP/2.0 200")]
    if not ok:
        return log, req, None
    ok = ok[-1]
    # The proxy before us took its own entry off.
    route = ", ".join(r for r in reversed(hdrs(ok, "Record-Route")) if "did=up" not in r)
    contact = re.sub(r"^<|>.*$", "", hdrs(ok, "Contact")[0])
    ack = (f"ACK {contact} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP {UAC[0]}:{UAC[1]};branch=z9hG4bK-th-ack;rport\r\n"
           f"Route: {route}\r\nMax-Forwards: 70\r\nFrom: <sip:uac@{UAC[0]}>;tag=uac-tag\r\n"
           f"To: <sip:uas@{UAS[0]}>;tag=uas-tag\r\nCall-ID: {callid}\r\nCSeq: 1 ACK\r\n"
           f"Contact: <sip:uac@{UAC[0]}:{UAC[1]}>\r\nContent-Length: 0\r\n\r\n")
    uac.sendto(ack.encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    log += [("uas2", g) for g in recv_all(G["uas2"])]
    return log, req, ok

@case
def topoh_caller_hangs_up(uac, uas):
    """The caller's BYE goes to the masked Contact along the Route it
    learned; topoh decodes the R-URI, the callee sees its own Call-ID."""
    log, req, ok = topoh_call(uac, uas, "th-1@uac", extra_rr="<sip:192.0.2.50;lr;did=up>")
    if not ok:
        return log
    route = ", ".join(r for r in reversed(hdrs(ok, "Record-Route")) if "did=up" not in r)
    contact = re.sub(r"^<|>.*$", "", hdrs(ok, "Contact")[0])
    bye = (f"BYE {contact} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP {UAC[0]}:{UAC[1]};branch=z9hG4bK-th-bye;rport\r\n"
           f"Route: {route}\r\nMax-Forwards: 70\r\nFrom: <sip:uac@{UAC[0]}>;tag=uac-tag\r\n"
           f"To: <sip:uas@{UAS[0]}>;tag=uas-tag\r\nCall-ID: th-1@uac\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
    uac.sendto(bye.encode(), PROXY)
    got = recv_all(G["uas2"])
    log += [("uas2", g) for g in got]
    for g in got[:1]:
        G["uas2"].sendto(reply_to(g, 200, "OK").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def topoh_callee_hangs_up(uac, uas):
    """The callee's BYE goes to the caller's masked Contact with the masked
    Call-ID it was given; the caller sees its own values back, the callee's
    200 the masked ones."""
    log, req, ok = topoh_call(uac, uas, "th-2@uac")
    if not req:
        return log
    rr = hdrs(req, "Record-Route")
    contact = re.sub(r"^<|>.*$", "", hdrs(req, "Contact")[0])
    f = hdrs(req, "From")[0]; t = hdrs(req, "To")[0]; cid = hdrs(req, "Call-ID")[0]
    bye = (f"BYE {contact} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP {UAS[0]}:{UAS[1]};branch=z9hG4bK-uasbye;rport\r\n"
           f"Max-Forwards: 70\r\nFrom: {t};tag=uas-tag\r\nTo: {f}\r\nCall-ID: {cid}\r\nCSeq: 7 BYE\r\n"
           f"Contact: <sip:uas@{UAS[0]}:{UAS[1]}>\r\n"
           + (f"Route: {', '.join(rr)}\r\n" if rr else "") + "Content-Length: 0\r\n\r\n")
    uas.sendto(bye.encode(), PROXY)
    got = recv_all(uac)
    log += [("uac", g) for g in got]
    for g in got:
        if g.startswith("BYE"):
            uac.sendto(reply_to(g, 200, "OK", totag=None).encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    return log

@case
def topoh_local_replies(uac, uas):
    """Replies made here: to an initial request (404 from the script after
    a stray in-dialog request) and to an upstream in-dialog request with a
    masked Call-ID, which gets its mask back."""
    log = []
    m = invite(callid="th-3@uac", method="OPTIONS", totag="x1")
    uac.sendto(m.encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    log += [("uas", g) for g in recv_all(uas)]
    up = (f"INFO sip:10.10.10.10;line=sr-Nq9TUMyWBwdPcVNgci8T4VBbUVSTYsd* SIP/2.0\r\n"
          f"Via: SIP/2.0/UDP {UAS[0]}:{UAS[1]};branch=z9hG4bK-uasinfo;rport\r\n"
          f"Max-Forwards: 70\r\nFrom: <sip:uas@{UAS[0]}>;tag=uas-tag\r\nTo: <sip:uac@{UAC[0]}>;tag=uac-tag\r\n"
          f"Call-ID: !!:BqJeHiwPpCyWBT**\r\nCSeq: 9 INFO\r\nContent-Length: 0\r\n\r\n")
    uas.sendto(up.encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def topoh_redirect(uac, uas):
    """A 302 and a 486, each with a Contact (masked: 5.6 has no mask_mode)."""
    log = []
    for callid, code, reason in (("th-r1@uac", 302, "Moved Temporarily"), ("th-r2@uac", 486, "Busy Here")):
        uac.sendto(invite(callid=callid).encode(), PROXY)
        got = recv_all(uas)
        log += [("uas", g) for g in got]
        if got:
            r = reply_to(got[0], code, reason, extra=f"Contact: <sip:elsewhere@{UAS2[0]}:5090;transport=udp>")
            uas.sendto(r.encode(), PROXY)
        log += [("uac", g) for g in recv_all(uac)]
        log += [("uas", g) for g in recv_all(uas)]
    return log

def topos_in_dialog(uac, uas, method, cseq, target, frm, to, callid, sender, me, contact):
    """An in-dialog request from `sender` (at `me`) to the Contact topos gave it."""
    m = (f"{method} {target} SIP/2.0\r\n"
         f"Via: SIP/2.0/UDP {me[0]}:{me[1]};branch=z9hG4bK-tps-{method.lower()}{cseq};rport\r\n"
         f"Max-Forwards: 70\r\nFrom: {frm}\r\nTo: {to}\r\nCall-ID: {callid}\r\nCSeq: {cseq} {method}\r\n"
         f"Contact: <{contact}>\r\nContent-Length: 0\r\n\r\n")
    sender.sendto(m.encode(), PROXY)

def topos_call(uac, uas, callid, before=""):
    """A call through topos: the INVITE (with a second Via of a proxy before
    us and, with `before`, its Record-Route), 180 and 200 from the callee
    (with a Record-Route of a proxy after us, which topos neither shows nor
    follows), the caller's ACK to the atpsh- Contact it was given.
    Returns (log, INVITE as the callee saw it, 200 as the caller saw it)."""
    extra = "Via: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bK-old;received=192.0.2.1\r\n"
    if before:
        extra += f"Record-Route: {before}\r\n"
    uac.sendto(invite(callid=callid).replace("Max-Forwards: 70\r\n", extra + "Max-Forwards: 70\r\n").encode(), PROXY)
    got = recv_all(uas)
    log = [("uas", g) for g in got]
    if not got:
        return log, None, None
    req = got[0]
    rr_down = f"Record-Route: <sip:{UAS2[0]}:{UAS2[1]};lr;did=down>"
    for code, reason in ((180, "Ringing"), (200, "OK")):
        r = reply_to(req, code, reason)
        r = r.replace("Content-Length:", rr_down + "\r\nContent-Length:", 1)
        uas.sendto(r.encode(), PROXY)
    r = recv_all(uac)
    log += [("uac", g) for g in r]
    ok = [g for g in r if g.startswith("SIP/2.0 200")]
    if not ok:
        return log, req, None
    ok = ok[-1]
    target = re.sub(r"^<|>.*$", "", hdrs(ok, "Contact")[0])
    topos_in_dialog(uac, uas, "ACK", 1, target, hdrs(ok, "From")[0], hdrs(ok, "To")[0], callid, uac, UAC,
                    f"sip:uac@{UAC[0]}:{UAC[1]}")
    log += [("uas", g) for g in recv_all(uas)]
    log += [("uas2", g) for g in recv_all(G["uas2"])]
    return log, req, ok

@case
def topos_call_both_ways(uac, uas):
    """After the call is set up: INFO from the caller, a re-INVITE (200,
    ACK) and the BYE from the callee, each to the Contact topos gave;
    each side sees its own Via back and only the proxy otherwise."""
    log, req, ok = topos_call(uac, uas, "tps-1@uac")
    if not ok:
        return log
    caller_target = re.sub(r"^<|>.*$", "", hdrs(ok, "Contact")[0])
    callee_target = re.sub(r"^<|>.*$", "", hdrs(req, "Contact")[0])
    a_from, a_to = hdrs(ok, "From")[0], hdrs(ok, "To")[0]
    topos_in_dialog(uac, uas, "INFO", 2, caller_target, a_from, a_to, "tps-1@uac", uac, UAC, f"sip:uac@{UAC[0]}:{UAC[1]}")
    got = recv_all(uas)
    log += [("uas", g) for g in got]
    for g in got[:1]:
        uas.sendto(reply_to(g, 200, "OK").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    b_from, b_to = a_to, a_from
    for method, cseq in (("INVITE", 10), ("ACK", 10), ("BYE", 11)):
        topos_in_dialog(uac, uas, method, cseq, callee_target, b_from, b_to, "tps-1@uac", uas, UAS,
                        f"sip:uas@{UAS[0]}:{UAS[1]}")
        got = recv_all(uac)
        log += [("uac", g) for g in got]
        for g in got[:1]:
            if method != "ACK":
                uac.sendto(reply_to(g, 200, "OK", totag=None).replace(f"sip:uas@{UAS[0]}:{UAS[1]}", f"sip:uac@{UAC[0]}:{UAC[1]}").encode(), PROXY)
        log += [("uas", g) for g in recv_all(uas)]
    return log

@case
def topos_upstream_record_route(uac, uas):
    """A proxy before us record-routed (the second UAS stands for it): the
    caller sees its entry, and the callee's BYE is routed through it."""
    log, req, ok = topos_call(uac, uas, "tps-2@uac", before=f"<sip:{UAS2[0]}:{UAS2[1]};lr;did=up>")
    if not ok:
        return log
    callee_target = re.sub(r"^<|>.*$", "", hdrs(req, "Contact")[0])
    topos_in_dialog(uac, uas, "BYE", 7, callee_target, hdrs(ok, "To")[0], hdrs(ok, "From")[0], "tps-2@uac", uas, UAS,
                    f"sip:uas@{UAS[0]}:{UAS[1]}")
    got = recv_all(G["uas2"])
    log += [("uas2", g) for g in got]
    for g in got[:1]:
        G["uas2"].sendto(reply_to(g, 200, "OK", totag=None).encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    return log

@case
def uac_variants(uac, uas):
    """One MESSAGE per way of writing From and per display-name argument
    (quoted, bare, none, removed, URI only, display only, twice)."""
    log = []
    variants = [
        ("v1", '"Alice" <sip:uac@127.0.0.62>;tag=uac-tag'),
        ("v2", '<sip:uac@127.0.0.62>;tag=uac-tag'),
        ("v3", 'sip:uac@127.0.0.62;tag=uac-tag'),
        ("v4", 'Alice Smith <sip:uac@127.0.0.62;user=phone>;tag=uac-tag'),
        ("v5", '"Alice" <sip:uac@127.0.0.62>;tag=uac-tag'),
        ("v6", '"Alice" <sip:uac@127.0.0.62>;tag=uac-tag'),
        ("v7", 'sip:uac@127.0.0.62;tag=uac-tag'),
        ("v8", '"Alice"<sip:uac@127.0.0.62>;tag=uac-tag'),
        
    ]
    for cid, frm in variants:
        m = invite(callid=cid, method="MESSAGE").replace("From: <sip:uac@127.0.0.62>;tag=uac-tag", "From: " + frm)
        uac.sendto(m.encode(), PROXY)
        got = recv_all(uas, 0.4)
        log += [("uas", "\r\n".join(l for l in g.split("\r\n") if l.startswith(("MESSAGE", "From", "To", "Record-Route", "X-")))) for g in got[:1]]
        if got:
            uas.sendto(reply_to(got[0], 202, "Accepted").encode(), PROXY)
        log += [("uac", "\r\n".join(l for l in g.split("\r\n") if l.startswith(("SIP", "From", "To")))) for g in recv_all(uac, 0.4)]
    return log

@case
def uac_auth_challenges(uac, uas):
    """The UAS challenges each INVITE once (407 with qop and opaque, 401
    without qop, a realm with no credential, a HA1 credential); failure_route
    answers with uac_auth() and relays again, the UAS then declines."""
    log = []
    challenges = [
        ("auth-407", 407, 'Proxy-Authenticate: Digest realm="pbx.example", nonce="n0nce-1", qop="auth", opaque="op1"'),
        ("auth-401", 401, 'WWW-Authenticate: Digest realm="pbx.example", nonce="n0nce-2"'),
        ("auth-unknown", 407, 'Proxy-Authenticate: Digest realm="other.example", nonce="n0nce-3"'),
        ("auth-ha1", 401, 'WWW-Authenticate: Digest realm="ha1.example", nonce="n0nce-4", qop="auth,auth-int"'),
    ]
    for cid, code, challenge in challenges:
        uac.sendto(invite(callid=cid).encode(), PROXY)
        got = recv_all(uas)
        log += [("uas", g) for g in got]
        if not got:
            continue
        uas.sendto(reply_to(got[0], code, "Unauthorized" if code == 401 else "Proxy Authentication Required", extra=challenge).encode(), PROXY)
        again = recv_all(uas)
        # Nonces are normalized away: keep the Authorization lines whole.
        log += [("uas", g.replace('nonce="', 'nonce_="')) for g in again]
        for g in again:
            if g.startswith("INVITE"):
                uas.sendto(reply_to(g, 486, "Busy Here", totag="uas-tag2").encode(), PROXY)
        r = recv_all(uac)
        log += [("uac", g) for g in r]
        if r:
            uac.sendto(invite(callid=cid, method="ACK", totag=("uas-tag2" if "486" in r[-1] else "uas-tag")).encode(), PROXY)
        log += [("uas", g) for g in recv_all(uas)]
    return log

@case
def uac_send(uac, uas):
    """uac_req_send(): a MESSAGE makes the proxy send an OPTIONS of its own;
    the UAS's 200 runs event_route[uac:reply], which reports the code in a
    MESSAGE; a $uac_req without Request-URI is refused."""
    uac.sendto(invite(callid="send-1", method="MESSAGE").encode(), PROXY)
    log = [("uac", g) for g in recv_all(uac)]
    got = recv_all(uas)
    log += [("uas", g) for g in got]
    for g in got[:1]:
        uas.sendto(reply_to(g, 200, "OK", totag="opt-tag").encode(), PROXY)
    got = recv_all(uas)
    log += [("uas", g) for g in got]
    for g in got[:1]:
        uas.sendto(reply_to(g, 202, "Accepted", totag="m-tag").encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    uac.sendto(invite(callid="send-2", method="MESSAGE").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def uac_reg_register(uac, uas):
    """uac remote registration: the uacreg row (reg_delay 3 s, so that the
    UAS listens) is registered at the UAS, which challenges the first
    REGISTER and accepts the second; a call to the account is then routed
    to the local user by uac_reg_lookup() with uac_reg_status() 1."""
    log = []
    got = [g for g in recv_all(uas, wait=6) if g.startswith("REGISTER")]
    # Call-IDs are generated (different makers): the host part is compared.
    callid = lambda m: re.sub(r"(?m)^Call-ID: [^@\r]*@", "Call-ID: <C>@", m)
    log += [("uas", callid(g)) for g in got[:1]]
    if not got:
        return log
    challenge = 'WWW-Authenticate: Digest realm="provider.test", nonce="reg-n0nce", qop="auth", opaque="op"'
    uas.sendto(reply_to(got[0], 401, "Unauthorized", totag="reg-tag", extra=challenge).encode(), PROXY)
    again = [g for g in recv_all(uas, wait=1) if g.startswith("REGISTER")]
    # The nonce is ours: keep the Authorization whole.
    log += [("uas", callid(g).replace('nonce="', 'nonce_="')) for g in again[:1]]
    for g in again[:1]:
        ok = reply_to(g, 200, "OK", totag="reg-tag").replace(
            f"Contact: <sip:uas@{UAS[0]}:{UAS[1]}>", "Contact: <sip:acc1@127.0.0.61:5060>;expires=3600")
        uas.sendto(ok.encode(), PROXY)
    time.sleep(0.5)
    uac.sendto(invite(callid="reg-call", ruri="sip:acc1@127.0.0.61").encode(), PROXY)
    got = recv_all(uas)
    log += [("uas", g) for g in got if not g.startswith("REGISTER")]
    for g in got:
        if g.startswith("INVITE"):
            uas.sendto(reply_to(g, 486, "Busy Here").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    uac.sendto(invite(callid="reg-call", method="ACK", totag="uas-tag", ruri="sip:acc1@127.0.0.61").encode(), PROXY)
    uac.sendto(invite(callid="reg-none", ruri="sip:nobody@127.0.0.61").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def uac_reg_outbound(uac, uas):
    """A call out through the trunk: uac_reg_request_to() sets the Request-URI,
    the outbound proxy and the auth AVPs; the provider's 407 is answered by
    uac_auth() in failure_route with the account's credentials."""
    log = []
    uac.sendto(invite(callid="out-1", ruri="sip:out@127.0.0.61").encode(), PROXY)
    got = [g for g in recv_all(uas) if not g.startswith("REGISTER")]
    log += [("uas", g) for g in got]
    challenge = 'Proxy-Authenticate: Digest realm="provider.test", nonce="out-n0nce", qop="auth"'
    for g in got[:1]:
        uas.sendto(reply_to(g, 407, "Proxy Authentication Required", extra=challenge).encode(), PROXY)
    again = [g for g in recv_all(uas) if not g.startswith("REGISTER")]
    log += [("uas", g.replace('nonce="', 'nonce_="')) for g in again]
    for g in again:
        if g.startswith("INVITE"):
            uas.sendto(reply_to(g, 486, "Busy Here", totag="uas-tag2").encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas) if not g.startswith("REGISTER")]
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def uac_reg_functions(uac, uas):
    """uac_reg_lookup(_uri), uac_reg_status, uac_reg_request_to,
    uac_reg_enable/disable and uac_reg_refresh on the uacreg rows (none
    registered yet: reg_delay), their results in the reply's headers."""
    log = []
    for i, ruri in enumerate(("sip:acc1@127.0.0.61", "sip:nobody@127.0.0.61")):
        uac.sendto(invite(callid=f"probe-{i}", ruri=ruri, method="OPTIONS").encode(), PROXY)
        log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def dialplan_numbers(uac, uas):
    """One OPTIONS per R-URI user; the config answers with what its
    functions made of it (dialplan.cfg)."""
    log = []
    users = ["030123", "0049301", "110", "91", "912", "8x", "7000", "6000", "55123", "4123",
             "4223", "3abc", "alice", "ALICE", "+4930", "zzz", "1234", "5777"]
    for i, user in enumerate(users):
        req = invite(callid=f"dp-{i}", method="OPTIONS", ruri=f"sip:{user}@{PROXY[0]}")
        uac.sendto(req.encode(), PROXY)
        log += [("uac", g) for g in recv_all(uac, wait=0.2)]
    return log

@case
def dr_numbers(uac, uas):
    """One OPTIONS per (R-URI user, group, sender); the config answers with
    what drouting made of it (drouting.cfg). The UASs' sockets send as the
    gateways 1 and 2."""
    senders = {"uac": uac, "gw1": uas, "gw2": G["uas2"]}
    rows = [("4912", None, "uac"), ("4930123", None, "uac"), ("49301", None, "uac"), ("3312", None, "uac"),
            ("3x1", None, "uac"), ("123", None, "uac"), ("7712", None, "uac"), ("7712", "3", "uac"),
            ("7812", None, "uac"), ("512", "3", "uac"), ("512", "2", "uac"), ("612", None, "uac"),
            ("8123", None, "uac"), ("*+1", "3", "uac"), ("+49", None, "uac"), ("9", None, "uac"),
            ("4", None, "uac"), ("alice", None, "uac"), ("4912", "9", "uac"), ("4912", "-1", "uac"),
            ("4930123", None, "gw1"), ("4930123", None, "gw2"), ("4930123", "1", "gw2")]
    log = []
    for i, (user, grp, who) in enumerate(rows):
        ua = senders[who]
        extra = f"X-Group: {grp}" if grp else ""
        m = invite(callid=f"dr-{i}", method="OPTIONS", ruri=f"sip:{user}@{PROXY[0]}", extra=extra,
                   branch=f"z9hG4bK-dr{i}")
        ua.sendto(m.encode(), PROXY)
        for w, s in senders.items():
            log += [(w, brief(g)) for g in recv_all(s, 0.15)]
    return log

@case
def dr_sorted(uac, uas):
    """Numbers whose gateway lists sort_order 2 orders the same whatever the
    random numbers (drouting_sort.cfg), each asked three times."""
    log = []
    for i, user in enumerate(["8123", "7123", "6123"] * 3):
        m = invite(callid=f"drs-{i}", method="OPTIONS", ruri=f"sip:{user}@{PROXY[0]}", branch=f"z9hG4bK-drs{i}")
        uac.sendto(m.encode(), PROXY)
        log += [("uac", brief(g)) for g in recv_all(uac, 0.15)]
    return log

@case
def gaps_reg_fetch(uac, uas):
    """reg_fetch_contacts / $ulc(p=>attr)[i] / reg_free_contacts (gaps.cfg):
    alice has three contacts (path, user agent, q); the config prints each
    attribute; a profile lasts across messages until freed."""
    log = reg_seq(uac, [(f"{A1};q=0.5, {A2};q=0.9", 600, "User-Agent: hunt\r\nPath: <sip:127.0.0.99;lr>\r\nSupported: path\r\n"),
                        (f"{A3};+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>\";reg-id=1", 300, "")])
    rows = [("fetch", "X-Aor: sip:alice@127.0.0.61", None, None),
            ("again", "", None, None),
            ("fetch", "X-Aor: sip:nobody@127.0.0.61", None, None),
            ("again", "", None, None),
            ("fetch", "X-Aor: sip:alice@127.0.0.61\r\nX-Free: 1", None, None),
            ("again", "", None, None),
            ("fetch", "X-Aor: nonsense", None, None),
            ("isreg", "", None, None),
            ("pvs", "Refer-To: \"Carol\" <sip:carol@example.com;transport=tcp>", None, None),
            ("pvs", "", None, None)]
    return log + ask(uac, rows)

def async_call(uac, uas, ruri, callid, code=200):
    """An INVITE the config parks (async); while it waits, an OPTIONS is
    answered; then the INVITE reaches the UAS, which answers `code`."""
    uac.sendto(invite(callid=callid, ruri=ruri).encode(), PROXY)
    log = [("uac", g) for g in recv_all(uac, 0.15)]
    uac.sendto(invite(callid=callid + "-opt", method="OPTIONS", ruri="sip:opt@127.0.0.61").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac, 0.15)]
    log.append(("uas", "early: %d" % len(recv_all(uas, 0.05))))
    got = recv_all(uas, 1.5)
    log += [("uas", g) for g in got]
    if got:
        uas.sendto(reply_to(got[0], code, "OK" if code == 200 else "Busy Here").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    if code >= 300:
        log += [("uas", g) for g in recv_all(uas)]
    return log

@case
def async_route_relay(uac, uas):
    """async_route(RELAY, 1): the INVITE waits a second; an OPTIONS sent
    meanwhile is answered at once; then route RELAY relays it."""
    return async_call(uac, uas, f"sip:uas@{UAS[0]}:{UAS[1]}", "async-1")

@case
def async_route_failure(uac, uas):
    """async_route then t_relay with a failure_route armed in the resumed route."""
    return async_call(uac, uas, f"sip:uas@{UAS[0]}:{UAS[1]}", "async-f", code=486)

@case
def async_ms_and_task(uac, uas):
    """async_ms_route(RELAY, 300) and async_task_route(RELAY)."""
    return (async_call(uac, uas, f"sip:ms@{UAS[0]}:{UAS[1]}", "async-ms")
            + async_call(uac, uas, f"sip:task@{UAS[0]}:{UAS[1]}", "async-task"))

@case
def async_sleep_relay(uac, uas):
    """async_sleep(1): the statements after it run a second later."""
    return async_call(uac, uas, f"sip:sleep@{UAS[0]}:{UAS[1]}", "async-sleep")

@case
def async_cancelled(uac, uas):
    """The caller cancels an INVITE that async_route parked; the route then
    runs on a cancelled transaction."""
    uac.sendto(invite(callid="async-c").encode(), PROXY)
    log = [("uac", g) for g in recv_all(uac, 0.2)]
    uac.sendto(invite(callid="async-c", method="CANCEL").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac, 0.3)]
    got = recv_all(uas, 1.5)
    log += [("uas", g) for g in got]
    for g in got:
        if g.startswith("INVITE"):
            uas.sendto(reply_to(g, 180, "Ringing").encode(), PROXY)
        if g.startswith("CANCEL"):
            uas.sendto(reply_to(g, 200, "OK").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    log += [("uas", g) for g in recv_all(uas)]
    uac.sendto(invite(callid="async-c", method="ACK", totag="x").encode(), PROXY)
    log += [("uas", g) for g in recv_all(uas)]
    return log

@case
def t_suspend_continue(uac, uas):
    """t_newtran + t_suspend park an INVITE; a MESSAGE then runs
    t_continue(index, label, RELAY) on it (twice: the second finds nothing)."""
    uac.sendto(invite(callid="tsus-1", ruri=f"sip:tsus@{UAS[0]}:{UAS[1]}").encode(), PROXY)
    log = [("uac", g) for g in recv_all(uac, 0.3)]
    log.append(("uas", "early: %d" % len(recv_all(uas, 0.05))))
    uac.sendto(invite(callid="tcont-1", method="MESSAGE", ruri="sip:tcont@127.0.0.61").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac, 0.3)]
    got = recv_all(uas, 0.3)
    log += [("uas", g) for g in got]
    for g in got[:1]:
        uas.sendto(reply_to(g, 200, "OK").encode(), PROXY)
    log += [("uac", g) for g in recv_all(uac)]
    return log

@case
def ul_contact_expired(uac, uas):
    """event_route[usrloc:contact-expired] runs for each contact the usrloc
    timer removes, with $ulc(exp=>...) holding it (ul_expired.cfg)."""
    log = reg_seq(uac, [(f"{A1}", 2, "")])
    log += reg_seq(uac, [(f"{A2}", 600, "")], user="bob")
    log += ask(uac, [("exp", "", None, None)])
    time.sleep(4)
    log += ask(uac, [("exp", "", None, None)])
    return log

def parity_raw(uac, uas, msgs):
    """Each raw request sent as it is; the replies cut to one line (with the
    X- headers), the first line of what reached the UAS (answered 404)."""
    log = []
    for i, m in enumerate(msgs):
        uac.sendto(m.encode(), PROXY)
        got = recv_all(uas, 0.25)
        for g in got:
            uas.sendto(reply_to(g, 404, "Not Here").encode(), PROXY)
        seen = [("uas", f"#{i} " + g.split("\r\n", 1)[0] + "\r\n") for g in got]
        seen += [("uac", f"#{i} " + brief(g)) for g in recv_all(uac, 0.25)]
        log += seen or [("uac", f"#{i} (nothing)\r\n")]
    return log

def parity_base(user, callid, extra="X-After: yes"):
    return invite(callid=callid, method="OPTIONS", ruri=f"sip:{user}@{UAS[0]}:{UAS[1]}", extra=extra)

@case
def parity_cseq(uac, uas):
    """A CSeq Kamailio's parser reads but sanity refuses reaches the script
    ($cs is its number token); one it cannot read drops the request."""
    msgs = []
    for user in ("plain", "sanity"):
        for i, cseq in enumerate(("x OPTIONS", "1", "", "1 OPTIONS x", "99999999999 OPTIONS", "-1 OPTIONS",
                                  "1 OPT/IONS", "1.5 OPTIONS", "1  OPTIONS  ")):
            msgs.append(parity_base(user, f"pcs-{user}-{i}").replace("CSeq: 1 OPTIONS", "CSeq: " + cseq))
    for i, cseq in enumerate(("x OPTIONS", "99999999999 OPTIONS", "-1 OPTIONS")):
        msgs.append(parity_base("relay", f"pcs-relay-{i}").replace("CSeq: 1 OPTIONS", "CSeq: " + cseq))
    return parity_raw(uac, uas, msgs)

@case
def parity_required(uac, uas):
    """Kamailio drops a request without From, To, Call-ID or CSeq, or whose
    To it cannot read, before the script; it routes a To it can."""
    msgs = []
    for user in ("plain", "sanity"):
        b = parity_base(user, f"preq-{user}")
        for h in (f"Call-ID: preq-{user}\r\n", "CSeq: 1 OPTIONS\r\n",
                  "From: <sip:uac@127.0.0.62>;tag=uac-tag\r\n", "To: <sip:uas@127.0.0.63>\r\n"):
            msgs.append(b.replace(h, ""))
    for i, to in enumerate(("<sip:uas@127.0.0.63", "\"open <sip:uas@127.0.0.63>", "<sip:uas@[::1>", "garbage", "")):
        msgs.append(parity_base("plain", f"pto-{i}").replace("To: <sip:uas@127.0.0.63>", "To: " + to))
    return parity_raw(uac, uas, msgs)

@case
def parity_via_version(uac, uas):
    """Only SIP/2.0 in the top Via (any case, any transport token)."""
    msgs = []
    for i, via in enumerate(("SIP/3.0/UDP", "SIP/2.1/UDP", "sip/2.0/udp", "SIP/2.0/XYZ")):
        msgs.append(parity_base("plain", f"pvv-{i}").replace("Via: SIP/2.0/UDP", "Via: " + via))
    return parity_raw(uac, uas, msgs)

@case
def parity_content_length(uac, uas):
    """A datagram shorter or longer than its Content-Length reaches the
    script; sanity answers 400 Content-Length mis-match."""
    msgs = []
    for user in ("plain", "sanityall", "relay"):
        msgs.append(parity_base(user, f"pcl-{user}").replace("Content-Length: 0", "Content-Length: 20"))
        msgs.append(parity_base(user, f"pcl2-{user}").replace("Content-Length: 0\r\n\r\n", "Content-Length: 2\r\n\r\nabcdef"))
    return parity_raw(uac, uas, msgs)

@case
def parity_duplicates(uac, uas):
    """A second From, To, Call-ID, CSeq, Max-Forwards or Content-Length,
    or a Via it cannot read: before the required headers the request is
    dropped; after them the script runs but no reply can be built, $hdr
    is null and t_relay fails (-400); forward() still sends it."""
    msgs = [parity_base("plain", "pdup-mf").replace("Max-Forwards: 70", "Max-Forwards: 70\r\nMax-Forwards: 3")]
    for user in ("plain", "relay", "sanity"):
        for i, dup in enumerate(("From: <sip:a@b>;tag=2", "To: <sip:c@d>", "Call-ID: other", "CSeq: 2 OPTIONS",
                                 "Max-Forwards: 5", "Content-Length: 0", "Via: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx;;",
                                 "Via: garbage @@", "Expires: 5\r\nExpires: 6", "Route: <sip:a>\r\nRoute: <sip:b>")):
            msgs.append(parity_base(user, f"pdup-{user}-{i}").replace("X-After: yes", "X-After: yes\r\n" + dup))
    return parity_raw(uac, uas, msgs)

@case
def parity_tm(uac, uas):
    """t_relay to a destination with no socket (IPv6, TCP) or an
    unresolvable one; then nothing, t_reply, sl_send_reply, drop or a
    t_relay that works. tm answers at the end of the script, only when the
    transaction is still unanswered."""
    msgs = []
    for u in ("nosock", "tcp", "unres"):
        for s in ("", "-treply", "-slreply", "-drop", "-again"):
            msgs.append(invite(callid=f"ptm-{u}{s}", method="OPTIONS", ruri=f"sip:{u}{s}@{UAS[0]}:{UAS[1]}"))
    return parity_raw(uac, uas, msgs)

@case
def parity_script(uac, uas):
    """Integer arithmetic at and past 32 bits, string to int conversions,
    division and modulo by a variable 0; $bR with and without q, $du."""
    msgs = [invite(callid=f"pscr-{u}", method="OPTIONS", ruri=f"sip:{u}@{UAS[0]}:{UAS[1]}")
            for u in ("int1", "int2", "q", "one", "none", "ruriq")]
    return parity_raw(uac, uas, msgs)

COLLECTOR = ("127.0.0.65", 9060)

def hep_text(d):
    """A HEPv3 packet as text: its chunks in order (type and value; the
    timestamps left out), then the payload, normalized as a message."""
    if d[:4] != b"HEP3":
        return "not HEP3: " + d[:40].hex()
    parts, i, payload = [f"HEP3 len-ok={int.from_bytes(d[4:6], 'big') == len(d)}"], 6, b""
    while i + 6 <= len(d):
        vendor, kind, ln = int.from_bytes(d[i:i+2], "big"), int.from_bytes(d[i+2:i+4], "big"), int.from_bytes(d[i+4:i+6], "big")
        v = d[i+6:i+ln]
        if kind == 0x0f:
            payload = v; parts.append(f"{vendor}/payload")
        elif kind in (9, 10):
            parts.append(f"{vendor}/{kind}(len {ln})")
        elif kind in (3, 4):
            parts.append(f"{vendor}/{kind}=" + ".".join(str(b) for b in v))
        elif kind in (0x0e, 0x11):
            parts.append(f"{vendor}/{kind}={v.decode(errors='replace')}")
        else:
            parts.append(f"{vendor}/{kind}={int.from_bytes(v, 'big')}")
        i += max(ln, 6)
    return " ".join(parts) + "\r\n" + payload.decode(errors="replace")

@case
def siptrace_hep(uac, uas):
    """A call traced in transaction mode, its ACK and BYE as messages, an
    OPTIONS with hlog: what the HEP collector received, in order."""
    col = sock(COLLECTOR)
    try:
        log = invite_200_ack_bye(uac, uas)
        uac.sendto(invite(branch="z9hG4bK-uac-opt", method="OPTIONS", callid="opt-1@uac", ruri=f"sip:{PROXY[0]}:{PROXY[1]}").encode(), PROXY)
        log += [("uac", g) for g in recv_all(uac)]
        log += [("collector", hep_text(d)) for d in recv_raw(col)]
    finally:
        col.close()
    return log

def recv_raw(s, wait=0.6):
    out, end = [], time.time() + wait
    while time.time() < end:
        try:
            out.append(s.recvfrom(65535)[0])
        except socket.timeout:
            pass
    return out

def options_steps(uac, steps):
    """One OPTIONS to the proxy per step (R-URI user, extra header lines),
    each waited for: what the UAC got back, in order."""
    log = []
    for i, (user, extra) in enumerate(steps):
        uac.sendto(invite(method="OPTIONS", callid=f"step-{i}-{user}", ruri=f"sip:{user}@{PROXY[0]}",
                          extra=extra).encode(), PROXY)
        log += [("uac", g) for g in recv_all(uac, 0.3)]
    return log

@case
def mqueue_ops(uac, uas):
    """mqueue (mqueue.cfg): adds, sizes, fetches by name and by variable,
    the add modes, empty keys and values, mq_pv_free, an unknown queue."""
    steps = [(u, "") for u in ("add", "fill", "sizes", "one", "peek")]
    steps += [("fetch", f"X-Q: {q}") for q in ("q1", "q3", "uk", "un", "q2")]
    steps += [(u, "") for u in ("peek", "add", "free", "unknown", "sizes")]
    return options_steps(uac, steps)

@case
def trusted_checks(uac, uas):
    """allow_trusted (trusted.cfg, trusted_cache.cfg): the message's own
    source, transport and From; given IPs and transports (any, upper case,
    unknown, empty); From patterns as POSIX basic expressions; an R-URI
    pattern; a `none` row; a subnet written as src_ip."""
    def args(ip, proto, uri=""):
        return f"X-IP: {ip}\r\nX-P: {proto}\r\nX-F: {uri}"
    steps = [("zero", ""),
             ("two", args(UAC[0], "udp")), ("two", args(UAC[0], "any")), ("two", args(UAC[0], "tcp")),
             ("two", args(UAC[0], "UDP")), ("two", args(UAC[0], "tls")),
             ("three", args(UAC[0], "udp", "sip:bob@x")), ("three", args(UAC[0], "udp", "sip:carol@x")),
             ("three", args("10.0.0.2", "udp", "sip:a+b@x")), ("three", args("10.0.0.2", "udp", "sip:aab@x")),
             ("three", args("10.0.0.2", "udp", "sip:xzw@x")), ("three", args("10.0.0.2", "udp", "sip:x(y|z)w@x")),
             ("three", args("10.0.0.3", "udp", "sip:q@x")), ("gw", args("10.0.0.3", "udp", "sip:q@x")),
             ("three", args("10.0.0.4", "any", "sip:q@x")), ("three", args("10.0.0.4", "udp", "sip:q@x")),
             ("three", args("10.1.2.3", "any", "sip:q@x")), ("three", args("10.0.0.0/8", "any", "sip:q@x")),
             ("three", args(UAC[0], "bogus", "sip:q@x")), ("three", args(UAC[0], "", "sip:q@x")),
             ("three", args("", "udp", "sip:q@x"))]
    return options_steps(uac, steps)

SUITE = [
    ("stateful.cfg", ["invite_200_ack_bye", "invite_486_failure", "cancel", "max_forwards_zero",
                      "options_no_mf", "indialog_no_route", "retransmitted_invite",
                      "compact_and_multi_via", "stray_reply", "preloaded_route_to_proxy",
                      "uas_100_and_503", "retransmitted_200", "non_invite_408_like",
                      "ack_for_unknown_2xx", "indialog_two_routes", "indialog_strict_previous_hop",
                      "indialog_next_hop_strict", "indialog_route_not_ours", "reinvite_in_dialog",
                      "options_to_proxy_itself", "early_dialog_prack_update"]),
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
    ("parity.cfg", ["parity_cseq", "parity_required", "parity_via_version", "parity_content_length",
                    "parity_duplicates"]),
    ("parity_tm.cfg", ["parity_tm"]),
    ("parity_script.cfg", ["parity_script"]),
    ("hunt_text1.cfg", ["hunt_headers_odd", "hunt_headers_plain"]),
    ("hunt_tr.cfg", ["hunt_tr_plain", "hunt_tr_odd", "hunt_tr_empty"]),
    ("hunt_pv.cfg", ["hunt_pv_ops"]),
    ("hunt_cmp.cfg", ["hunt_cmp_matrix"]),
    ("hunt_cmp2.cfg", ["hunt_cmp_matrix"]),
    ("hunt_rc.cfg", ["hunt_cmp_matrix"]),
    ("hunt_sip.cfg", ["hunt_sip_e164_params", "hunt_sip_ipv6_totag", "hunt_sip_phone_user_params"]),
    ("hunt_core.cfg", ["hunt_core_formats", "hunt_core_branches", "hunt_core_send"]),
    ("hunt_text2.cfg", ["hunt_text2_multi", "hunt_text2_keep", "hunt_text2_remove_body", "hunt_text2_set_body",
                        "hunt_text2_empty_body"]),
    ("hunt_lang.cfg", ["hunt_lang_switch_while_routes", "hunt_lang_switch_default", "hunt_lang_drop_in_branch",
                       "hunt_lang_return0", "hunt_lang_exit_in_subroute"]),
    ("path.cfg", ["path_register_and_route"]),
    ("path_r2.cfg", ["path_r2_register_and_route"]),
    ("ipops_cfgutils.cfg", ["module_values"]),
    ("tmrec.cfg", ["module_values"]),
    ("tm_state.cfg", ["serial_fork", "serial_fork_all_fail"]),
    ("sdpops.cfg", ["sdp_edits"]),
    ("pvcore.cfg", ["pv_values", "cancel", "advertised"]),
    ("timers.cfg", ["no_answer_invite", "ringing_then_silence", "no_answer_message"]),
    ("dialog.cfg", ["dialog_call_limit"]),
    ("sqlops.cfg", ["module_values"]),
    ("avpops.cfg", ["module_values"]),
    ("dialog_flag.cfg", ["invite_200_ack_bye"]),
    ("/etc/kamailio/kamailio.cfg", ["stock_calls"]),
    ("stock-auth.cfg", ["stock_auth_calls"]),
    ("stock-presence.cfg", ["stock_presence", "presence_edges", "presence_winfo"]),
    ("stock-presence-params.cfg", ["presence_params"]),
    ("stock-full.cfg", ["stock_auth_calls", "trusted_peer_and_flood", "stock_calls"]),
    ("stock-nat.cfg", ["stock_auth_calls", "nat_register_and_call"]),
    ("stock-aliasdb.cfg", ["stock_alias_calls", "stock_auth_calls"]),
    ("stock-speeddial.cfg", ["stock_speeddial_calls"]),
    ("stock-multidomain.cfg", ["stock_multidomain_calls", "stock_auth_calls", "stock_multidomain_digest_users"]),
    ("stock-alldb.cfg", ["stock_alldb_calls", "stock_multidomain_calls"]),
    ("stockdb_values.cfg", ["module_values"]),
    ("aliasdb_fork.cfg", ["parallel_fork", "serial_fork"]),
    ("hunt_route_ds.cfg", ["ds_hash_algs", "ds_turn_algs", "ds_weight_shares", "ds_states_and_domain",
                           "ds_from_list", "ds_round_robin_and_failover"]),
    ("hunt_route_reg.cfg", ["reg_expires_limits", "reg_max_contacts", "reg_star", "reg_save_flags",
                            "reg_lookup_fork", "reg_queries"]),
    ("hunt_route_sanity.cfg", ["sanity_default_checks", "sanity_all_checks", "sanity_over_max", "sanity_stock_checks",
                               "maxfwd_values"]),
    ("hunt_route_nat.cfg", ["nat_uac_tests", "nat_fix_contact", "nat_aliases", "nat_fix_sdp"]),
    ("uac.cfg", ["uac_call", "uac_bye_from_callee", "uac_variants", "cancel", "invite_486_failure"]),
    ("uac_auth.cfg", ["uac_auth_challenges"]),
    ("uac_branch.cfg", ["uac_call", "uac_bye_from_callee"]),
    ("uac_send.cfg", ["uac_send"]),
    ("uac_reg.cfg", ["uac_reg_register", "uac_reg_outbound"]),
    ("uac_reg_functions.cfg", ["uac_reg_functions"]),
    ("stateful-tcp.cfg", ["tcp_caller_udp_callee", "udp_caller_tcp_callee", "invite_200_ack_bye"]),
    ("dialplan.cfg", ["dialplan_numbers"]),
    ("dialplan_nofile.cfg", ["dialplan_numbers"]),
    ("dialplan_failure.cfg", ["serial_fork"]),
    ("drouting.cfg", ["dr_numbers", "serial_fork", "serial_fork_all_fail"]),
    ("drouting_sort.cfg", ["dr_sorted"]),
    ("topoh.cfg", ["invite_200_ack_bye", "invite_486_failure", "cancel", "topoh_caller_hangs_up",
                   "topoh_callee_hangs_up", "topoh_local_replies", "retransmitted_invite", "topoh_redirect"]),
    ("topoh_params.cfg", ["topoh_caller_hangs_up", "topoh_callee_hangs_up", "topoh_redirect", "cancel"]),
    # tcp_caller_udp_callee differs only by the caller's port (5071 for
    # Kamailio, 5072 for ringsip), which the masked Via and Contact encode.
    ("topoh_tcp.cfg", ["udp_caller_tcp_callee", "invite_200_ack_bye"]),
    ("topoh_events.cfg", ["invite_200_ack_bye", "options_no_mf", "topoh_caller_hangs_up"]),
    ("topoh_noftag.cfg", ["topoh_callee_hangs_up"]),
    ("topos.cfg", ["topos_call_both_ways", "topos_upstream_record_route", "invite_486_failure", "cancel",
                   "retransmitted_invite"]),
    ("gaps.cfg", ["gaps_reg_fetch"]),
    ("ul_expired.cfg", ["ul_contact_expired"]),
    ("async.cfg", ["async_route_relay", "async_route_failure", "async_ms_and_task", "async_sleep_relay", "async_cancelled", "t_suspend_continue"]),
    ("siptrace.cfg", ["siptrace_hep"]),
    ("mqueue.cfg", ["mqueue_ops"]),
    ("trusted.cfg", ["trusted_checks"]),
    ("trusted_cache.cfg", ["trusted_checks"]),
]


def run(config, only):
    """Runs `only` (case names) through both proxies with `config`; True when all match."""
    path = config if os.path.isabs(config) or os.path.exists(config) else os.path.join(HERE, "configs", config)
    body = open(path).read().replace("@DIR@", os.path.dirname(os.path.abspath(path)))
    G["db"] = os.path.join(OUT, "proxy.db") if "@DB@" in body else None
    body = body.replace("@DB@", G["db"] or "")
    G["sql"] = [l[5:] for l in body.splitlines() if l.startswith("@sql ")]
    if not body.startswith("#!KAMAILIO"):
        body = body if "loadmodule" in body else body[body.index("request_route"):]
    cfgfile = os.path.join(OUT, "proxy.cfg")
    if body.startswith("#!KAMAILIO"):
        # A whole config: only the listen address and the log go in.
        body = body.replace("#!KAMAILIO", f"#!KAMAILIO\nlisten=udp:{PROXY[0]}:{PROXY[1]}\n", 1)
        body = "\n".join(l for l in body.splitlines() if not l.startswith("@sql ")) + "\n"
        body = body.replace("log_stderror=no", "log_stderror=yes").replace("children=8", "children=1")
        open(cfgfile, "w").write(body)
    else:
        open(cfgfile, "w").write(cfg_text(body))
    results = {}
    kinds = os.environ.get("KINDS", "kamailio ringsip").split()
    for kind in kinds:
        G["kind"] = kind
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
                results[(kind, name)] = same_instant_sorted(out)
            finally:
                uac.close(); uas.close(); G["uas2"].close()
                p.terminate(); p.wait()
            if G.get("db"):
                results[(kind, name)] += db_rows(G["db"])
    same = True
    for name in only:
        if len(kinds) == 1:
            # One proxy only (KINDS=kamailio): what it did, no comparison.
            print(f"===== {os.path.basename(config)} {name}: {kinds[0]} only")
            print("\n".join(f"--- {w}\n{m}" for w, m in results[(kinds[0], name)]))
            continue
        k, r = results[("kamailio", name)], results[("ringsip", name)]
        a = "\n".join(f"--- {w}\n{m}" for w, m in k).splitlines()
        b = "\n".join(f"--- {w}\n{m}" for w, m in r).splitlines()
        d = list(difflib.unified_diff(a, b, "kamailio", "ringsip", lineterm="", n=CONTEXT))
        if TIMELINE:
            for kind, res in (("kamailio", k), ("ringsip", r)):
                print(kind, [(w, m.split("\n")[0]) for w, m in res if m.startswith("@")])
        print(f"===== {os.path.basename(config)} {name}: {'SAME' if not d else 'DIFF'} ({len(k)} vs {len(r)} messages)")
        if d:
            same = False
            print("\n".join(d))
        if os.environ.get("SHOW"):
            print("\n".join(a))
    return same


def main():
    global LOOSE, TIMELINE, CONTEXT
    args = sys.argv[1:]
    if "--context" in args:
        i = args.index("--context")
        CONTEXT = int(args[i + 1])
        del args[i:i + 2]
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
        # No cases named: the suite's cases for that config, else every case.
        suite = [cases for config, cases in SUITE if config == args[0]]
        ok = run(args[0], args[1:] or (suite[0] if suite else list(CASES)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
