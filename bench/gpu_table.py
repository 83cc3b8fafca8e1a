#!/usr/bin/env python3
"""Merges bench_cuda's JSON (medians) and peers_gpu.py's into one Markdown table.

    python3 bench/gpu_table.py bench.json peers.json [--gpu gpu.txt]

Per layer, direction, dtype and shape: our GB/s, the copy baseline's GB/s from
the same binary and run, our ratio to copy, the best peer (name and GB/s) and
our speed-up over it. Bytes: forward x + y, backward x + dy + dx. For 1 and 32
rows, the kernel time next to an empty kernel's launch (also from bench_cuda).
"""
import argparse
import json
import os

TARGET = {"fwd": 0.90, "bwd": 0.85}


def load_bench(path):
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") not in (None, "median"):
            continue
        name = b.get("run_name", b["name"]).replace("/manual_time", "")
        secs = b["real_time"] * {"us": 1e-6, "ms": 1e-3, "ns": 1e-9, "s": 1.0}[b["time_unit"]]
        out[name] = dict(secs=secs, bytes=b.get("bytes", 0.0))
    return out, data.get("context", {})


RESIDUAL_TARGET = 0.85
SHAPES = ("1x4096", "32x4096", "4096x4096", "16384x4096", "16384x8192", "50432x768")


def measured(ours, layers, dirs):
    """Every (layer, dir, dtype, shape) bench_cuda measured, in table order:
    (layer, dir, dtype, shape, key, our row, m, n)."""
    for layer in layers:
        for d in dirs:
            for dt in ("f32", "bf16"):
                for shape in SHAPES:
                    key = f"{layer}/{d}/{dt}/{shape}"
                    if key in ours:
                        m, n = (int(v) for v in shape.split("x"))
                        yield layer, d, dt, shape, key, ours[key], m, n


def peer_rows(peers, layer, d, dt, m, n):
    return [r for r in peers["rows"] if r["layer"] == layer and r["dir"] == d and r["dtype"] == dt
            and r["m"] == m and r["n"] == n]


def residual_table(ours, peers, misses):
    """The fused residual add (issue 6): ours fused against the copy of the
    same 4 tensors' bytes, our own unfused pair (add kernel, then the layer)
    and PyTorch's pair (eager, and through torch.compile), all as times."""
    rows = []
    for layer, d, dt, shape, key, o, m, n in measured(ours, ("DyT", "LayerNorm", "RMSNorm"), ("fwdres", "bwdres")):
        c = ours.get(f"copy/res/{dt}/{shape}")
        u = ours.get(f"{layer}/{d}-unfused/{dt}/{shape}")
        gbs = o["bytes"] / o["secs"] / 1e9
        ratio = gbs / (c["bytes"] / c["secs"] / 1e9) if c else float("nan")
        cands = {r["peer"]: r for r in peer_rows(peers, layer, d, dt, m, n)}
        big = m >= 4096
        if big and ratio < RESIDUAL_TARGET:
            misses.append(f"{key}: {ratio:.3f} of copy < {RESIDUAL_TARGET}")
        for peer, r in cands.items():
            if r["ms"] * 1e-3 < o["secs"]:
                misses.append(f"{key}: slower than {peer}'s pair ({o['secs'] * 1e6:.1f} > {r['ms'] * 1e3:.1f} us)")

        def vs(secs):
            return f"{secs * 1e6:.1f} ({secs / o['secs']:.2f}x)" if secs else "-"

        rows.append(f"| {layer} | {d} | {dt} | {shape} | {o['secs'] * 1e6:.1f} | {ratio:.3f} | "
                    f"{'>= %.2f' % RESIDUAL_TARGET if big else 'report'} | {vs(u['secs'] if u else None)} | "
                    f"{vs(cands['eager']['ms'] * 1e-3 if 'eager' in cands else None)} | "
                    f"{vs(cands['compile']['ms'] * 1e-3 if 'compile' in cands else None)} |")
    if not rows:
        return
    print()
    print("Fused residual add + layer (bytes of one pass: 4 tensors; other columns: time in us, and "
          "its ratio to ours fused)")
    print()
    print("| layer | dir | dtype | M x N | ours fused us | ours/copy | target | ours unfused | torch eager pair | "
          "torch.compile pair |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)


QUANT_DIRS = ("fwd-int8", "fwd-int8-static", "fwd-e4m3", "fwd-e4m3-static")


def quantized_table(ours):
    """The quantized forward (issue 6 part 2): x in, one-byte codes out, against
    the copy of those bytes, and its time against our plain forward's (which
    writes y in the input type: more bytes)."""
    rows = []
    for layer, d, dt, shape, key, o, m, n in measured(ours, ("DyT", "LayerNorm", "RMSNorm"), QUANT_DIRS):
        c = ours.get(f"copy/q/{dt}/{shape}")
        plain = ours.get(f"{layer}/fwd/{dt}/{shape}")
        gbs = o["bytes"] / o["secs"] / 1e9
        ratio = gbs / (c["bytes"] / c["secs"] / 1e9) if c else float("nan")
        vs_plain = f"{plain['secs'] * 1e6:.1f} ({plain['secs'] / o['secs']:.2f}x)" if plain else "-"
        rows.append(f"| {layer} | {d} | {dt} | {shape} | {o['secs'] * 1e6:.1f} | {gbs:.0f} | {ratio:.3f} | {vs_plain} |")
    if not rows:
        return
    print()
    print("Quantized forward (bytes: x + one-byte codes; last column: our plain forward's time, and its ratio to "
          "the quantized one's)")
    print()
    print("| layer | dir | dtype | M x N | ours us | ours GB/s | ours/copy | plain fwd us |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bench")
    ap.add_argument("peers")
    ap.add_argument("--gpu")
    a = ap.parse_args()
    ours, ctx = load_bench(a.bench)
    peers = {"rows": []}
    if os.path.exists(a.peers):
        with open(a.peers) as f:
            peers = json.load(f)
    if a.gpu and os.path.exists(a.gpu):
        print("GPU: " + open(a.gpu).read().strip().splitlines()[-1])
    if peers.get("device"):
        print(f"peers: torch {peers.get('torch')} on {peers['device']}")
    empty = ours.get("empty_kernel", {}).get("secs")
    if empty:
        print(f"empty kernel launch (event-timed): {empty * 1e6:.2f} us")
    print()
    print("| layer | dir | dtype | M x N | ours GB/s | copy GB/s | ours/copy | target | best peer GB/s | ours/peer | ours us |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    misses = []
    # Derf and DyISRU (issue 6 part 3) have no peer; they share DyT's kernels and targets.
    for layer, d, dt, shape, key, o, m, n in measured(ours, ("DyT", "Derf", "DyISRU", "LayerNorm", "RMSNorm"),
                                                      ("fwd", "bwd")):
        c = ours.get(f"copy/{d}/{dt}/{shape}")
        gbs = o["bytes"] / o["secs"] / 1e9
        cgbs = c["bytes"] / c["secs"] / 1e9 if c else float("nan")
        ratio = gbs / cgbs if c else float("nan")
        cands = peer_rows(peers, layer, d, dt, m, n)
        best = max(cands, key=lambda r: r["gbs"]) if cands else None
        big = m >= 4096
        target = TARGET[d] if big else None
        if big and ratio < TARGET[d]:
            misses.append(f"{key}: {ratio:.3f} < {TARGET[d]}")
        if best and gbs < best["gbs"]:
            misses.append(f"{key}: slower than {best['peer']} ({gbs:.0f} < {best['gbs']:.0f} GB/s)")
        extra = "" if big or not empty else f" (empty {empty * 1e6:.1f})"
        print(f"| {layer} | {d} | {dt} | {shape} | {gbs:.0f} | {cgbs:.0f} | {ratio:.3f} | "
              f"{'>= %.2f' % target if target else 'report'} | "
              f"{('%s %.0f' % (best['peer'], best['gbs'])) if best else '-'} | "
              f"{('%.2fx' % (gbs / best['gbs'])) if best else '-'} | {o['secs'] * 1e6:.1f}{extra} |")
    residual_table(ours, peers, misses)
    quantized_table(ours)
    print()
    if misses:
        print("Targets missed:")
        for s in misses:
            print("- " + s)
    else:
        print("Every target met (ratios >= 0.90 fwd / 0.85 bwd at >= 4096 rows; faster than every peer measured).")


if __name__ == "__main__":
    main()
