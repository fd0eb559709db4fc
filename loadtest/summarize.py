#!/usr/bin/env python3
"""Tables for loadtest/compare.sh from its raw results (standard library only).

    summarize.py compare RESULTS.tsv META.txt [--ringsip-ok 0|1] [--skipped "a b"]
    summarize.py maxrate RESULTS.tsv META.txt
    summarize.py soak GEN.log MEMORY.tsv --proxy NAME

Medians over repetitions (the machine is shared and noisy: a mean would carry
one bad run into the result); the spread (min-max) is shown next to CPU.
"""

import argparse
import statistics
import sys
from collections import OrderedDict


def read_tsv(path):
    with open(path) as f:
        lines = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
    head = lines[0].split("\t")
    return [dict(zip(head, l.split("\t"))) for l in lines[1:]]


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=0):
    if x is None:
        return "-"
    return f"{x:.{digits}f}"


def meta_lines(path):
    with open(path) as f:
        return [l.rstrip("\n") for l in f]


def cpu_per_call(r):
    ok, ns = num(r["ok"]), num(r["cpu_ns"])
    if not ok or not ns or ns <= 0:
        return None
    return ns / 1000.0 / ok


def compare(args):
    rows = read_tsv(args.results)
    groups = OrderedDict()
    for r in rows:
        groups.setdefault(r["proxy"], {}).setdefault(r["load"], []).append(r)
    loads = sorted({r["load"] for r in rows}, key=lambda l: ["sipp", "gen"].index(l))
    primary = loads[0] if loads else "sipp"

    stats = OrderedDict()
    for proxy, by_load in groups.items():
        s = {}
        for load, rs in by_load.items():
            cpus = [cpu_per_call(r) for r in rs]
            cpus_ok = [c for c in cpus if c is not None]
            s[load] = {
                "cpu": med(cpus),
                "lo": min(cpus_ok) if cpus_ok else None,
                "hi": max(cpus_ok) if cpus_ok else None,
                "failed": sum(int(num(r["failed"]) or 0) for r in rs),
                "calls": sum(int(num(r["calls"]) or 0) for r in rs),
                "p50": med([num(r["p50_us"]) for r in rs]),
                "p99": med([num(r["p99_us"]) for r in rs]),
                "p999": med([num(r["p999_us"]) for r in rs]),
                "pss": med([num(r["pss_kb"]) for r in rs]),
                "reps": len(rs),
            }
        stats[proxy] = s

    def base(proxy):
        s = stats.get(proxy, {}).get(primary)
        return s["cpu"] if s else None

    # Ratios: per repetition (runs of one repetition are minutes apart at
    # most, so they share the machine's state), then the median.
    per_rep = {}
    for r in rows:
        if r["load"] == primary:
            per_rep.setdefault(r["proxy"], {})[r["rep"]] = cpu_per_call(r)

    def ratio(proxy, ref):
        xs = []
        for rep, c in per_rep.get(proxy, {}).items():
            d = per_rep.get(ref, {}).get(rep)
            if c and d:
                xs.append(c / d)
        return med(xs)

    relay_name = "relay-uring" if base("relay-uring") else ("relay-plain" if base("relay-plain") else None)
    direct = stats.get("direct", {}).get("gen")

    out = []
    out += [f"<!-- {l.lstrip('# ')} -->" for l in meta_lines(args.meta)]
    out.append("")
    cols = ["proxy"]
    for l in loads:
        cols.append(f"CPU µs/call, {l} load (min–max)")
    # Kamailio's default allocator (qm) is its slow one: when a run has the
    # -x fm / -x tlsf variants, the cheapest of them is the fair reference.
    fast_kam = [k for k in ("kamailio-fm", "kamailio-tlsf") if base(k)]
    fast_kam = min(fast_kam, key=base) if fast_kam else None
    cols += ["× Kamailio"] + ([f"× {fast_kam}"] if fast_kam else []) + ([f"× {relay_name}"] if relay_name else []) + ["failed calls"]
    if "gen" in loads:
        cols += ["p50 µs (added)", "p99 µs (added)", "p99.9 µs"]
    cols.append("PSS MiB")
    out.append("| " + " | ".join(cols) + " |")
    out.append("|" + "---|" * len(cols))
    for proxy, s in stats.items():
        cells = [proxy]
        for l in loads:
            x = s.get(l)
            if not x or x["cpu"] is None:
                cells.append("-")
            else:
                cells.append(f"{x['cpu']:.1f} ({x['lo']:.1f}–{x['hi']:.1f})")
        cells.append(fmt(ratio(proxy, "kamailio"), 2))
        if fast_kam:
            cells.append(fmt(ratio(proxy, fast_kam), 2))
        if relay_name:
            cells.append(fmt(ratio(proxy, relay_name), 2))
        cells.append(" / ".join(f"{s[l]['failed']}/{s[l]['calls']}" for l in loads if l in s))
        if "gen" in loads:
            g = s.get("gen")
            if g and g["p50"] is not None:
                add50 = g["p50"] - direct["p50"] if direct and proxy != "direct" else None
                add99 = g["p99"] - direct["p99"] if direct and proxy != "direct" else None
                cells.append(f"{fmt(g['p50'])}" + (f" (+{fmt(add50)})" if add50 is not None else ""))
                cells.append(f"{fmt(g['p99'])}" + (f" (+{fmt(add99)})" if add99 is not None else ""))
                cells.append(fmt(g["p999"]))
            else:
                cells += ["-", "-", "-"]
        pss = s.get(primary, {}).get("pss") if proxy != "direct" else None
        cells.append(fmt(pss / 1024, 1) if pss else "-")
        out.append("| " + " | ".join(cells) + " |")
    if args.skipped.strip():
        why = {
            "ringsip": "ringsip cannot run this config yet (see ringsip-check.log)",
        }
        for p in args.skipped.split():
            reason = why.get(p.split("-")[0], "not applicable to this scenario")
            if p.startswith("ringsip") and args.ringsip_ok == "1":
                reason = "not applicable to this scenario"
            out.append(f"| {p} | {reason} |" + " |" * (len(cols) - 2))
    out.append("")
    out.append(
        f"CPU: on-CPU time of the proxy's processes and threads (schedstat) over the load, "
        f"divided by completed calls; median of {max((x['reps'] for s in stats.values() for x in s.values()), default=0)} "
        f"repetitions. Ratios: CPU per call over the reference's in the same repetition, median over repetitions, {primary} load. Latency: ringsip-gen, INVITE sent → 200 received, "
        f"median of per-run percentiles; (added) is over the direct UAC→UAS run."
    )
    print("\n".join(out))


def maxrate(args):
    rows = read_tsv(args.results)
    out = [f"<!-- {l.lstrip('# ')} -->" for l in meta_lines(args.meta)]
    out += ["", "| proxy | rate/s | completed | failed | CPU µs/call | p50 µs | p99 µs | generator CPU % |", "|---|---|---|---|---|---|---|---|"]
    best = OrderedDict()
    for r in rows:
        rate, calls = num(r["rate"]), num(r["calls"])
        ok, failed = int(num(r["ok"]) or 0), int(num(r["failed"]) or 0)
        seconds = calls / rate if rate else None
        gen_cpu = num(r["gen_cpu_s"])
        gpct = 100 * gen_cpu / seconds if gen_cpu and seconds else None
        c = cpu_per_call(r)
        out.append(
            f"| {r['proxy']} | {fmt(rate)} | {ok} | {failed} | {fmt(c, 1)} | {r['p50_us']} | {r['p99_us']} | {fmt(gpct)} |"
        )
        best.setdefault(r["proxy"], 0)
        if failed == 0 and ok == int(calls):
            best[r["proxy"]] = max(best[r["proxy"]], int(rate))
    out.append("")
    for p, b in best.items():
        out.append(f"- **{p}**: max {b} calls/s with no failed call")
    out.append(
        "\nA generator CPU near 100 % means the load core, not the proxy, was the limit at that step."
    )
    print("\n".join(out))


def soak(args):
    windows = []
    with open(args.gen_log) as f:
        for line in f:
            if line.startswith("INTERVAL "):
                kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
                windows.append(kv)
    mem = read_tsv(args.memory)
    mem = [(num(m["t_s"]), num(m["pss_kb"]), num(m["cpu_ns"])) for m in mem]

    def nearest(t):
        return min(mem, key=lambda m: abs(m[0] - t)) if mem else (t, None, None)

    out = [f"\n### soak: {args.proxy}\n", "| t s | calls/s | failed | p50 µs | p99 µs | max µs | PSS MiB | CPU µs/call |", "|---|---|---|---|---|---|---|---|"]
    prev = nearest(0.0)
    for w in windows:
        t = num(w["t_s"])
        m = nearest(t)
        done = num(w["done"]) or 0
        cpu = (m[2] - prev[2]) / 1000.0 / done if done and m[2] and prev[2] and m[2] > prev[2] else None
        out.append(
            f"| {fmt(t)} | {w['rate']} | {w['failed']} | {w['setup_p50_us']} | {w['setup_p99_us']} | {w['setup_max_us']} | {fmt(m[1] / 1024 if m[1] else None, 1)} | {fmt(cpu, 1)} |"
        )
        prev = m
    if len(windows) >= 2:
        first, last = windows[0], windows[-1]
        m0, m1 = nearest(num(first["t_s"])), nearest(num(last["t_s"]))
        out.append("")
        out.append(
            f"Drift, first → last window: p50 {first['setup_p50_us']} → {last['setup_p50_us']} µs, "
            f"p99 {first['setup_p99_us']} → {last['setup_p99_us']} µs, "
            f"PSS {fmt(m0[1] / 1024 if m0[1] else None, 1)} → {fmt(m1[1] / 1024 if m1[1] else None, 1)} MiB."
        )
    with open(args.gen_log) as f:
        final = [l.rstrip() for l in f if not l.startswith(("INTERVAL", "RESULT"))]
    out.append("")
    out += ["    " + l for l in final]
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare")
    c.add_argument("results")
    c.add_argument("meta")
    c.add_argument("--ringsip-ok", default="1")
    c.add_argument("--skipped", default="")
    m = sub.add_parser("maxrate")
    m.add_argument("results")
    m.add_argument("meta")
    s = sub.add_parser("soak")
    s.add_argument("gen_log")
    s.add_argument("memory")
    s.add_argument("--proxy", required=True)
    args = ap.parse_args()
    {"compare": compare, "maxrate": maxrate, "soak": soak}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
