#!/usr/bin/env python3
"""SIP over WebSocket side by side: the same exchanges with Kamailio 5.6 and
with ringsip, each running configs/websocket.cfg (UDP 127.0.0.1:5060, the
WebSocket/HTTP listener tcp:127.0.0.1:8080); what each phone receives,
normalized (ports the kernel picks, branches, tags, Server, our Via's
`;i=`), and a diff. The WebSocket client is written here (raw RFC 6455
frames, masked as a browser masks them).

    unshare -n sh -c 'ip link set lo up && loadtest/sidebyside/ws_compare.py'

Environment: RINGSIP (default target/debug/ringsip), KAMAILIO (kamailio),
SHOW_BOTH=1 to print ringsip's side of equal cases too.
Exit status 1 when any case differs (after normalizing).
"""
import os, re, socket, struct, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
RINGSIP = os.environ.get("RINGSIP", os.path.join(ROOT, "target", "debug", "ringsip"))
KAMAILIO = os.environ.get("KAMAILIO", "kamailio")
CFG = os.path.join(HERE, "configs", "websocket.cfg")
WS = ("127.0.0.1", 8080)
PROXY = ("127.0.0.1", 5060)
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def upgrade(extra=b"", version=b"13", proto=b"sip", key=True):
    return (b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + (b"Sec-WebSocket-Key: " + KEY + b"\r\n" if key else b"")
            + b"Sec-WebSocket-Version: " + version + b"\r\nSec-WebSocket-Protocol: " + proto + b"\r\n"
            + extra + b"\r\n")


def frame(payload, opcode=1, fin=True, mask=True):
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = b"\x5a\x13\xc7\x81"
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


class Ws:
    def __init__(self, request=None):
        self.s = socket.create_connection(WS)
        self.s.settimeout(2)
        self.buf = b""
        self.s.sendall(request or upgrade())
        self.head = self.http()

    def http(self):
        while b"\r\n\r\n" not in self.buf:
            if not self.fill():
                out, self.buf = self.buf + b"<EOF>", b""
                return out
        i = self.buf.index(b"\r\n\r\n") + 4
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def fill(self):
        try:
            d = self.s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            return False
        self.buf += d
        return bool(d)

    def port(self):
        return self.s.getsockname()[1]

    def send(self, text, **kw):
        self.s.sendall(frame(text.encode() if isinstance(text, str) else text, **kw))

    def recv(self):
        """One frame as `op:payload` text; `<TIMEOUT>` or `<EOF>`."""
        while True:
            b = self.buf
            if len(b) >= 2:
                n, at = b[1] & 0x7f, 2
                if n == 126 and len(b) >= 4:
                    n, at = struct.unpack(">H", b[2:4])[0], 4
                elif n == 127 and len(b) >= 10:
                    n, at = struct.unpack(">Q", b[2:10])[0], 10
                if n < 126 or at > 2:
                    if b[1] & 0x80:
                        return "<MASKED FRAME>"
                    if len(b) >= at + n:
                        p, self.buf = b[at:at + n], b[at + n:]
                        return f"{b[0]:#x}:" + p.decode("utf-8", "replace")
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return "<TIMEOUT>"
            except ConnectionResetError:
                return "<RESET>"
            if not d:
                return "<EOF>"
            self.buf += d

    def recv_sip(self):
        """The next text frame's SIP message (provisional 100s skipped)."""
        while True:
            f = self.recv()
            if not f.startswith("0x81:SIP/2.0 100 "):
                return f


def udp(port):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", port))
    u.settimeout(1.5)
    return u


def urecv(u, skip100=True):
    while True:
        try:
            m = u.recv(65535).decode("utf-8", "replace")
        except socket.timeout:
            return "<TIMEOUT>"
        if not (skip100 and m.startswith("SIP/2.0 100 ")):
            return m


def ws_req(method, ruri, call, extra="", frm="wsalice@127.0.0.1", to=None):
    return (f"{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK{call}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{frm}>;tag=ws{call}\r\nTo: <{to or ruri}>\r\n"
            f"Call-ID: {call}\r\nCSeq: 1 {method}\r\n"
            f"Contact: <sip:wsalice@df7jal23ls0d.invalid;transport=ws>\r\n{extra}Content-Length: 0\r\n\r\n")


def udp_req(method, ruri, call, cseq=1, extra=""):
    return (f"{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{call}{cseq};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=b{call}\r\nTo: <sip:wsalice@127.0.0.1>{extra}\r\n"
            f"Call-ID: {call}\r\nCSeq: {cseq} {method}\r\nContact: <sip:bob@127.0.0.1:5070>\r\n"
            f"Content-Length: 0\r\n\r\n")


def reply(req, code, reason, contact):
    lines = req.split("\r\n")
    keep = [l for l in lines if l.split(":")[0].lower() in ("via", "record-route", "from", "call-id", "cseq")]
    to = [l for l in lines if l.startswith("To:")][0]
    return (f"SIP/2.0 {code} {reason}\r\n" + "\r\n".join(keep) + f"\r\n{to};tag=callee\r\n"
            f"Contact: <{contact}>\r\nContent-Length: 0\r\n\r\n")


CASES = []


def case(f):
    CASES.append(f)
    return f


@case
def handshakes():
    out = []
    for req in [upgrade(b"Origin: https://phone.example\r\n"), upgrade(version=b"8"),
                upgrade(proto=b"chat"), upgrade(key=False),
                b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"]:
        c = Ws(req)
        out.append(c.head.decode())
        out.append(c.recv())
    return out


@case
def frames_ping_fragments_close():
    c = Ws()
    out = []
    c.send(ws_req("OPTIONS", "sip:echo@127.0.0.1", "e1"))
    out.append(c.recv())
    c.send(b"are you there", opcode=9)
    out.append(c.recv())
    whole = ws_req("OPTIONS", "sip:echo@127.0.0.1", "e2").encode()
    c.s.sendall(frame(whole[:40], fin=False) + frame(b"ping", opcode=9) + frame(whole[40:], opcode=0))
    out += [c.recv(), c.recv()]
    c.send(struct.pack(">H", 1000) + b"bye", opcode=8)
    out += [c.recv(), c.recv()]
    return out


@case
def unmasked_frame():
    c = Ws()
    c.send(ws_req("OPTIONS", "sip:echo@127.0.0.1", "u1"), mask=False)
    return [c.recv(), c.recv()]


def closed_event(ev, port, wait):
    """The closed event for the connection from `port`, within `wait` s
    (others, from earlier connections, are skipped)."""
    deadline = time.time() + wait
    while time.time() < deadline:
        ev.settimeout(max(0.1, deadline - time.time()))
        try:
            m = ev.recv(1000).decode()
        except socket.timeout:
            break
        if f" {port} " in m:
            return m.replace(f" {port} ", " PORT ")
    return "<NO CLOSED EVENT>"


@case
def ws_close_and_closed_event():
    ev = udp(5071)
    c = Ws()
    c.send(ws_req("OPTIONS", "sip:close@127.0.0.1", "c1"))
    out = [c.recv()]
    # The server waits for the answer to its close frame.
    out.append(c.recv())
    c.send(struct.pack(">H", 4000), opcode=8)
    out.append(c.recv())
    # Kamailio runs the event from its timer (rm_delay_interval): wait.
    out.append(closed_event(ev, c.port(), 8))
    # The peer's close frame also runs the event.
    c = Ws()
    c.send(struct.pack(">H", 1001), opcode=8)
    out += [c.recv(), c.recv()]
    out.append(closed_event(ev, c.port(), 8))
    # A connection that just ends.
    c = Ws()
    port = c.port()
    c.s.close()
    out.append(closed_event(ev, port, 8))
    return out


@case
def register_and_calls_both_ways():
    out = []
    c = Ws()
    c.send(ws_req("REGISTER", "sip:127.0.0.1", "r1", "Expires: 600\r\n", to="sip:wsalice@127.0.0.1"))
    out.append(c.recv_sip())
    phone = udp(5070)
    # UDP caller to the ws phone.
    phone.sendto(udp_req("INVITE", "sip:wsalice@127.0.0.1", "in1").encode(), PROXY)
    inv = c.recv_sip()
    out.append(inv)
    sip = inv[5:]
    contact = "sip:wsalice@df7jal23ls0d.invalid;transport=ws"
    c.send(reply(sip, 180, "Ringing", contact))
    out.append(urecv(phone))
    c.send(reply(sip, 200, "OK", contact))
    ok = urecv(phone)
    out.append(ok)
    rr = [l.split(":", 1)[1].strip() for l in ok.split("\r\n") if l.startswith("Record-Route:")]
    cont = [l.split(":", 1)[1].strip() for l in ok.split("\r\n") if l.startswith("Contact:")]
    target = cont[0].strip("<>") if cont else contact
    route = "Route: " + ", ".join(reversed(rr)) + "\r\n"
    ack = udp_req("ACK", target, "in1", 1, ";tag=callee").replace("ACK " + target, "ACK " + target)
    ack = ack.replace("Max-Forwards: 70\r\n", "Max-Forwards: 70\r\n" + route)
    phone.sendto(ack.encode(), PROXY)
    out.append(c.recv_sip())
    bye = udp_req("BYE", target, "in1", 2, ";tag=callee").replace("Max-Forwards: 70\r\n", "Max-Forwards: 70\r\n" + route)
    phone.sendto(bye.encode(), PROXY)
    got = c.recv_sip()
    out.append(got)
    if got.startswith("0x81:BYE"):
        c.send(reply(got[5:], 200, "OK", contact))
    out.append(urecv(phone))
    # The ws phone calls the UDP phone.
    c.send(ws_req("INVITE", "sip:carol@127.0.0.1", "in2"))
    inv = urecv(phone)
    out.append(inv)
    if inv.startswith("INVITE"):
        phone.sendto(reply(inv, 200, "OK", "sip:carol@127.0.0.1:5070").encode(), PROXY)
    out.append(c.recv_sip())
    phone.close()
    return out


def normalize(t):
    t = re.sub(r"(Sia: SIP/2\.0/TCP [0-9.]+):\d+", r"\1:PORT", t)
    t = re.sub(r"rport=\d+", "rport=PORT", t)
    t = re.sub(r"127\.0\.0\.1~\d+~", "127.0.0.1~PORT~", t)
    t = re.sub(r"sip:127\.0\.0\.1:\d+;transport=ws", "sip:127.0.0.1:PORT;transport=ws", t)
    t = re.sub(r"Server: [^\r]*", "Server: SERVER", t)
    t = re.sub(r";tag=[0-9a-f]{32}\.[0-9a-f]{8}", ";tag=TAG", t)
    t = re.sub(r"branch=z9hG4bK[0-9a-zA-Z.]+(;i=[0-9a-f]+)?", "branch=BRANCH", t)
    t = re.sub(r"Content-Length: \d+", "Content-Length: N", t)
    return t


def start(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        time.sleep(0.1)
        try:
            socket.create_connection(WS, timeout=0.2).close()
            time.sleep(0.3)
            return p
        except OSError:
            pass
    p.kill()
    sys.exit(f"{cmd[0]} did not start")


def main():
    os.makedirs("/run/kamailio", exist_ok=True)
    results = {}
    for name, cmd in [
        ("kamailio", [KAMAILIO, "-f", CFG, "-DD", "-E", "-m", "64", "-M", "8"]),
        ("ringsip", [RINGSIP, "run", "-f", CFG, "--workers", "2", "--ctl", "/tmp/ws-compare.ctl"]),
    ]:
        p = start(cmd)
        try:
            results[name] = [f() for f in CASES]
        finally:
            p.terminate()
            p.wait(5)
    differ = 0
    for i, f in enumerate(CASES):
        ks, rs = results["kamailio"][i], results["ringsip"][i]
        for j, (k, r) in enumerate(zip(ks, rs)):
            same = normalize(k) == normalize(r)
            differ += not same
            print(f"== {f.__name__} #{j}: {'SAME' if same else 'DIFF'}")
            print(f"   kamailio: {k!r}")
            if not same or os.environ.get("SHOW_BOTH"):
                print(f"   ringsip:  {r!r}")
    print(f"{differ} exchange(s) differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
