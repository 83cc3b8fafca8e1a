#!/usr/bin/env python3
"""One table from several bench_cuda JSON files (scripts/gpu-variants.sh):
the median GB/s of every benchmark in each file, and its ratio to the copy
baseline of the same pass, type and shape (from whichever file has it)."""
import json
import os
import re
import sys


UNITS = {"": 1e-9, "k": 1e-6, "M": 1e-3, "G": 1.0, "T": 1e3}


def medians(path):
    """Median GB/s per benchmark; from the console log beside the JSON when the
    JSON is incomplete (a run cut short leaves it unterminated)."""
    out = {}
    try:
        with open(path) as f:
            data = json.load(f)
        for b in data.get("benchmarks", []):
            if b.get("aggregate_name") == "median":
                out[b["run_name"].split("/manual_time")[0]] = b["bytes_per_second"] / 1e9
        return out
    except (OSError, ValueError):
        pass
    log = path[: -len(".json")] + ".log"
    if os.path.exists(log):
        for line in open(log):
            m = re.match(r"(\S+)/manual_time_median .*bytes_per_second=([0-9.]+)([kMGT]?)/s", line)
            if m:
                out[m.group(1)] = float(m.group(2)) * UNITS[m.group(3)]
    return out


def main(paths):
    runs = [(os.path.basename(p)[len("variant-"):-len(".json")], medians(p)) for p in paths]
    copy = {}
    for _, m in runs:
        copy.update({k: v for k, v in m.items() if k.startswith("copy/")})
    names = sorted({k for _, m in runs for k in m if not k.startswith("copy/")})
    head = "| benchmark | copy GB/s | " + " | ".join(f"{v} GB/s (x copy)" for v, _ in runs) + " |"
    print(head)
    print("|" + "---|" * (2 + len(runs)))
    for n in names:
        parts = n.split("/")  # layer/pass/type/shape, or a name like empty_kernel
        # The fused residual passes (fwdres, bwdres, and their -unfused pairs) share
        # one baseline, copy/res (their 4 tensors' bytes).
        base = "res" if len(parts) == 4 and parts[1].startswith(("fwdres", "bwdres")) else parts[1] if len(parts) == 4 else ""
        c = copy.get("/".join(["copy", base] + parts[2:])) if len(parts) == 4 else None
        cells = []
        for _, m in runs:
            g = m.get(n)
            cells.append("" if g is None else (f"{g:.0f} ({g / c:.3f})" if c else f"{g:.0f}"))
        print(f"| {n} | {c:.0f} | " if c else f"| {n} | | ", end="")
        print(" | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
