#!/usr/bin/env python3
"""xhttp + jsonrpcs side by side: the same HTTP requests over TCP to Kamailio
5.6 and to ringsip, each running the same configuration; the replies,
normalized (client ports in `Sia:`, `Server:`, the server's name and version
in core.version, times in core.uptime), and a diff.

    unshare -n sh -c 'ip link set lo up && loadtest/sidebyside/xhttp_compare.py'

Configurations: Kamailio's stock /etc/kamailio/kamailio.cfg with
-A WITH_JSONRPC (the proxy on 127.0.0.1:5060, plus 127.0.0.71 as a source
that the stock route refuses), configs/xhttp.cfg (127.0.0.1:5080:
keep-alive, url_skip/url_match, a route that answers nothing, jsonrpc_exec),
and that one with tcp_accept_no_cl=no.
Environment: RINGSIP (default target/debug/ringsip), KAMAILIO (kamailio).
Each reply is read until the server closes or 0.8 s pass in silence.
Exit status 1 when any case differs (after normalizing).
"""
import os, re, socket, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
RINGSIP = os.environ.get("RINGSIP", os.path.join(ROOT, "target", "debug", "ringsip"))
KAMAILIO = os.environ.get("KAMAILIO", "kamailio")
OTHER = "127.0.0.71"


def post(path, body, extra=b"", ver=b"HTTP/1.1"):
    return (b"POST " + path + b" " + ver + b"\r\nHost: 127.0.0.1\r\n" + extra +
            b"Content-Type: application/json\r\nContent-Length: " +
            str(len(body)).encode() + b"\r\n\r\n" + body)


SIP_OPTIONS = (b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKa1\r\n"
               b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: c1\r\n"
               b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")

# (name, source address, request parts sent 0.3 s apart)
STOCK = [
    ("core.version", None, [post(b"/RPC", b'{"jsonrpc":"2.0","method":"core.version","id":1}')]),
    ("ul.dump (empty)", None, [post(b"/RPC", b'{"jsonrpc":"2.0","method":"ul.dump","id":2}')]),
    ("no such method", None, [post(b"/RPC", b'{"jsonrpc":"2.0","method":"no.such","id":3}')]),
    ("not JSON", None, [post(b"/RPC", b'{"jsonrpc":')]),
    ("no jsonrpc member", None, [post(b"/RPC", b'{"method":"core.version","id":"s"}')]),
    ("params not a list", None, [post(b"/RPC", b'{"jsonrpc":"2.0","method":"core.version","params":5,"id":1}')]),
    ("batch", None, [post(b"/RPC", b'[{"jsonrpc":"2.0","method":"core.version","id":1}]')]),
    ("notification", None, [post(b"/RPC", b'{"jsonrpc":"2.0","method":"core.version"}')]),
    ("core.uptime HTTP/1.0", None, [post(b"/RPC", b'{"jsonrpc":"2.0","method":"core.uptime","id":4}', ver=b"HTTP/1.0")]),
    ("wrong URL", None, [b"GET /foo?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"]),
    ("wrong URL HTTP/1.0", None, [b"GET /foo HTTP/1.0\r\nHost: x\r\n\r\n"]),
    ("HEAD", None, [b"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n"]),
    ("from another address", OTHER, [post(b"/RPC", b'{"jsonrpc":"2.0","method":"core.version","id":1}')]),
    ("Expect: 100-continue", None, [
        b"POST /RPC HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 48\r\n\r\n",
        b'{"jsonrpc":"2.0","method":"core.version","id":1}']),
    ("SIP OPTIONS on the TCP port", None, [SIP_OPTIONS]),
]

CUSTOM = [
    ("keep-alive: two requests on one connection", None,
     [b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"]),
    ("a request without headers", None, [b"GET /a HTTP/1.0\r\n\r\n"]),
    ("route answers nothing", None, [b"GET /none HTTP/1.1\r\nHost: x\r\n\r\n"]),
    ("url_skip", None, [b"GET /skip HTTP/1.1\r\nHost: x\r\n\r\n"]),
    ("url_match fails", None, [b"GET /zzz HTTP/1.1\r\nHost: x\r\n\r\n"]),
    ("PVs, empty content type", None,
     [b"PUT /echo?q=1 HTTP/1.1\r\nX-A: hello\r\nContent-Length: 5\r\n\r\nabcde"]),
    ("jsonrpc_exec and $jsonrpl", None, [b"GET /exec HTTP/1.1\r\nHost: x\r\n\r\n"]),
    ("unformatted, object params", None,
     [post(b"/RPC", b'{"jsonrpc":"2.0","method":"jsonrpc.echo","params":{"a":"x"},"id":7}')]),
    ("core.echo", None,
     [post(b"/RPC", b'{"jsonrpc":"2.0","method":"core.echo","params":["a",1],"id":"e"}')]),
    ("HTTP over UDP", "udp", [b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"]),
]


# configs/xhttp.cfg without tcp_accept_no_cl: a request without
# Content-Length is a framing error that closes the connection.
NO_CL = [
    ("no Content-Length", None, [b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"]),
    ("Content-Length: 0", None, [b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"]),
]


def exchange(port, src, parts):
    if src == "udp":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(0.8)
        u.sendto(parts[0], ("127.0.0.1", port))
        try:
            return u.recv(65535) + b"<UDP>"
        except socket.timeout:
            return b"<TIMEOUT>"
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    out = b""
    for i, part in enumerate(parts):
        if i:
            out += read(s, 0.3)
        s.sendall(part)
    out += read(s, 0.8)
    s.close()
    return out


def read(s, quiet):
    s.settimeout(quiet)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return out + b"<EOF>"
            out += d
    except socket.timeout:
        return out + b"<TIMEOUT>" if quiet >= 0.8 else out


def normalize(b):
    t = b.decode("utf-8", "replace")
    t = re.sub(r"(Sia: SIP/2\.0/TCP [0-9.]+):\d+", r"\1:PORT", t)
    t = re.sub(r"rport=\d+", "rport=PORT", t)
    t = re.sub(r"Server: [^\r]*", "Server: SERVER", t)
    t = re.sub(r"(kamailio 5\.6\.\d+|ringsip \d+\.\d+\.\d+) \(x86_64/linux\) ?", "NAME", t)
    t = re.sub(r";tag=[0-9a-f]{32}\.[0-9a-f]{8}", ";tag=TAG", t)
    t = re.sub(r'("now":\t|"up_since":\t)"[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \d{4}"', r'\1"CTIME"', t)
    t = re.sub(r'"uptime":\t\d+', '"uptime":\tN', t)
    # Each server computes it from its own body; the bodies are compared.
    t = re.sub(r"Content-Length: \d+", "Content-Length: N", t)
    return t


def start(cmd, port):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        time.sleep(0.1)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            time.sleep(0.3)
            return p
        except OSError:
            pass
    p.kill()
    sys.exit(f"{cmd[0]} did not start")


def run(cfg, defines, port, cases):
    args = [x for d in defines for x in ("-A", d)]
    results = {}
    for name, cmd in [
        ("kamailio", [KAMAILIO, "-f", cfg, "-DD", "-E", "-m", "64", "-M", "8", "-n", "1"] + args),
        ("ringsip", [RINGSIP, "run", "-f", cfg, "--workers", "1", "--ctl", "/tmp/xhttp-compare.ctl"] + args),
    ]:
        p = start(cmd, port)
        try:
            results[name] = [exchange(port, src, parts) for _, src, parts in cases]
        finally:
            p.terminate()
            p.wait(5)
    differ = 0
    for i, (case, _, _) in enumerate(cases):
        k, r = results["kamailio"][i], results["ringsip"][i]
        same = normalize(k) == normalize(r)
        differ += not same
        print(f"== {case}: {'SAME' if same else 'DIFF'}")
        print(f"   kamailio: {k!r}")
        if not same or os.environ.get("SHOW_BOTH"):
            print(f"   ringsip:  {r!r}")
    return differ


def main():
    subprocess.run(["ip", "addr", "add", f"{OTHER}/8", "dev", "lo"], stderr=subprocess.DEVNULL)
    os.makedirs("/run/kamailio", exist_ok=True)
    differ = run("/etc/kamailio/kamailio.cfg", ["WITH_JSONRPC"], 5060, STOCK)
    custom = os.path.join(HERE, "configs", "xhttp.cfg")
    differ += run(custom, [], 5080, CUSTOM)
    no_cl = "/tmp/xhttp-compare-nocl.cfg"
    with open(custom) as src, open(no_cl, "w") as dst:
        dst.write(src.read().replace("tcp_accept_no_cl=yes", "tcp_accept_no_cl=no"))
    differ += run(no_cl, [], 5080, NO_CL)
    print(f"{differ} case(s) differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
