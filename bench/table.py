#!/usr/bin/env python3
"""Runs the CPU benchmark binary and prints dyt next to memcpy and its peers.

    bench/table.py BINARY [--json FILE] [google-benchmark flags...]
    bench/table.py --from FILE          (re-print a saved run)

For every layer, pass, type and shape: dyt's bandwidth on one thread and on
two (row-range API), memcpy's on the same bytes, the best peer's, and the
ratios; then each target of issue 3 with its measured value; then Derf and
DyISRU against DyT (issue 6 part 3). Bandwidth is
bytes that must move (forward x + y, backward x + dy + dx) over the median
wall-clock time of the repetitions. Peers: oneDNN, Eigen expressions, a
std::tanh loop (see bench/peers.hpp); `tanh_only` is dyt's tanh policy alone,
not a peer: it bounds DyT forward in cache.
"""
import json
import os
import re
import subprocess
import sys

NAME = re.compile(r"^(?P<op>[a-z_]+)/(?P<type>\w+)/(?P<impl>\w+)/rows:(?P<rows>\d+)/cols:(?P<cols>\d+)")
DRAM = {(4096, 4096), (2048, 8192)}
IN_CACHE = {(1024, 768), (16, 4096)}
NOT_PEERS = {"dyt", "dyt_2threads", "tanh_only", "std"}


def run(binary, extra, json_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")  # oneDNN on one thread, like dyt's default
    flags = ["--benchmark_repetitions=3", "--benchmark_report_aggregates_only=true",
             "--benchmark_min_time=0.1", f"--benchmark_out={json_path}", "--benchmark_out_format=json"]
    subprocess.run([binary] + flags + extra, env=env, check=True, stdout=sys.stderr)
    with open(json_path) as f:
        return json.load(f)


def collect(report):
    """{(op, type, rows, cols): {impl: bytes_per_second}} from the medians (or plain runs)."""
    rates = {}
    medians = any(b.get("aggregate_name") == "median" for b in report["benchmarks"])
    for b in report["benchmarks"]:
        if medians and b.get("aggregate_name") != "median":
            continue
        m = NAME.match(b["run_name"] if "run_name" in b else b["name"])
        if not m or "bytes_per_second" not in b:
            continue
        key = (m["op"], m["type"], int(m["rows"]), int(m["cols"]))
        rates.setdefault(key, {})[m["impl"]] = b["bytes_per_second"]
    return rates


def gb(v):
    return f"{v / 1e9:.1f}" if v else "-"


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"


def main(argv):
    if len(argv) >= 2 and argv[0] == "--from":
        with open(argv[1]) as f:
            report = json.load(f)
    else:
        if not argv:
            sys.exit(__doc__)
        binary, extra = argv[0], argv[1:]
        json_path = "bench-cpu.json"
        if "--json" in extra:
            i = extra.index("--json")
            json_path = extra[i + 1]
            del extra[i:i + 2]
        report = run(binary, extra, json_path)
    rates = collect(report)
    ctx = report.get("context", {})
    print(f"{ctx.get('date', '')}, {ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz, "
          f"caches {[c['size'] for c in ctx.get('caches', [])]}; GB/s = 1e9 bytes/s, median of repetitions\n")

    print("| op | type | M x N | dyt GB/s | x memcpy | dyt 2 threads | memcpy GB/s | best peer | peer GB/s | dyt / peer |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    order = ["dyt_forward", "dyt_backward", "derf_forward", "derf_backward", "dyisru_forward", "dyisru_backward",
             "layer_norm_forward", "layer_norm_backward", "rms_norm_forward", "rms_norm_backward"]
    keys = sorted((k for k in rates if k[0] in order),
                  key=lambda k: (order.index(k[0]), ["f32", "bf16", "f16"].index(k[1]), k[2] * k[3], k[2]))
    for key in keys:
        op, typ, rows, cols = key
        r = rates[key]
        ours = r.get("dyt")
        memcpy = rates.get(("memcpy", typ, rows, cols), {}).get("std")
        peers = {k: v for k, v in r.items() if k not in NOT_PEERS}
        best = max(peers, key=peers.get) if peers else None
        print(f"| {op} | {typ} | {rows}x{cols} | {gb(ours)} | {ratio(ours, memcpy)} | {gb(r.get('dyt_2threads'))} "
              f"| {gb(memcpy)} | {best or '-'} | {gb(peers.get(best))} | {ratio(ours, peers.get(best))} |")

    # The targets of issue 3.
    print("\n| target | op | type | M x N | needed | measured | met |")
    print("|---|---|---|---|---|---|---|")

    def target(name, key, needed, measured):
        if measured is None:
            return
        print(f"| {name} | {key[0]} | {key[1]} | {key[2]}x{key[3]} | >= {needed:.2f} | {measured:.2f} | "
              f"{'yes' if measured >= needed else '**no**'} |")

    for key in keys:
        op, typ, rows, cols = key
        r = rates[key]
        ours = r.get("dyt")
        if not ours:
            continue
        memcpy = rates.get(("memcpy", typ, rows, cols), {}).get("std")
        forward = op.endswith("forward")
        if "_residual_" in op:
            continue  # issue 6's, below
        if (rows, cols) in DRAM and memcpy:
            target("x memcpy at DRAM size", key, 0.85 if forward else 0.7, ours / memcpy)
            if forward and typ == "bf16":
                target("bf16 forward x memcpy", key, 0.8, ours / memcpy)
        if op.startswith("layer_norm") and typ in ("f32", "bf16") and r.get("onednn"):
            target("x oneDNN", key, 1.3 if forward else 2.0, ours / r["onednn"])
        if (rows, cols) in IN_CACHE and op == "dyt_forward" and r.get("tanh_only"):
            # time(tanh alone) / time(DyT) >= 1 / 1.2
            target("tanh alone time / DyT time", key, 1 / 1.2, ours / r["tanh_only"])
        if (rows, cols) in IN_CACHE and op == "rms_norm_forward" and typ in ("f32", "bf16"):
            ln = rates.get(("layer_norm_forward", typ, rows, cols), {}).get("onednn")
            if ln:
                target("x oneDNN LayerNorm", key, 1.3, ours / ln)

    # Issue 6 part 3: Derf and DyISRU beside DyT (the same implementation with
    # another squashing function), one thread.
    print("\n| point-wise | type | M x N | GB/s | DyT GB/s | / DyT | x memcpy |")
    print("|---|---|---|---|---|---|---|")
    for key in keys:
        op, typ, rows, cols = key
        layer, _, pass_ = op.partition("_")
        if layer not in ("derf", "dyisru"):
            continue
        ours = rates[key].get("dyt")
        dyt = rates.get(("dyt_" + pass_, typ, rows, cols), {}).get("dyt")
        memcpy = rates.get(("memcpy", typ, rows, cols), {}).get("std")
        print(f"| {op} | {typ} | {rows}x{cols} | {gb(ours)} | {gb(dyt)} | {ratio(ours, dyt)} | {ratio(ours, memcpy)} |")

    # Issue 6: the fused residual add against the unfused pair (add, then the
    # layer), and against memcpy for the bytes it must move (4 tensors).
    print("\n| fused residual | type | M x N | fused GB/s | unfused GB/s | fused / unfused | fused x memcpy |")
    print("|---|---|---|---|---|---|---|")
    residual_order = ["{0}_residual_{1}".format(*op.rsplit("_", 1)) for op in order]
    residual_keys = sorted((k for k in rates if k[0] in residual_order),
                           key=lambda k: (residual_order.index(k[0]), ["f32", "bf16", "f16"].index(k[1]), k[2] * k[3]))
    for key in residual_keys:
        op, typ, rows, cols = key
        r = rates[key]
        memcpy = rates.get(("memcpy", typ, rows, cols), {}).get("std")
        print(f"| {op} | {typ} | {rows}x{cols} | {gb(r.get('dyt'))} | {gb(r.get('unfused'))} "
              f"| {ratio(r.get('dyt'), r.get('unfused'))} | {ratio(r.get('dyt'), memcpy)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
