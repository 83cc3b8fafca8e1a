#!/usr/bin/env python3
"""GPU peers of bench/bench_cuda.cu, measured in the same device call.

PyTorch's F.layer_norm and F.rms_norm, an eager DyT (gamma * tanh(alpha x) + beta),
the same DyT through torch.compile, and Liger-Kernel's LayerNorm, RMSNorm and DyT
where the package imports. f32 and bf16, the shapes of bench_cuda.cu; forward
under torch.no_grad(), backward as torch.autograd.grad of a graph built once
(gradients of x and of every parameter). Times are triton.testing.do_bench
medians; bytes are counted as in bench_cuda.cu (forward: x + y; backward:
x + dy + dx). A `copy` row (x.clone(), forward's bytes) gives PyTorch's own roofline.
At >= 4096 rows, also PyTorch's unfused residual pair (h = x + r, then the layer;
eager and torch.compile), the peer of our fused residual add
(DYT_PEERS_RESIDUAL=0 skips it).

    python3 bench/peers_gpu.py --out peers.json
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from triton.testing import do_bench

SHAPES = [(1, 4096), (32, 4096), (4096, 4096), (16384, 4096), (16384, 8192), (50432, 768)]
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16}


def median_ms(fn):
    return do_bench(fn, warmup=25, rep=100, return_mode="median")


def liger():
    try:
        from liger_kernel.transformers.layer_norm import LigerLayerNorm
        from liger_kernel.transformers.rms_norm import LigerRMSNorm
    except Exception as e:  # not carried, or does not import here
        print(f"liger-kernel: not used ({type(e).__name__}: {e})", file=sys.stderr)
        return None
    try:
        from liger_kernel.transformers.dyt import LigerDyT
    except Exception:
        LigerDyT = None
    return LigerLayerNorm, LigerRMSNorm, LigerDyT


def dyt_eager(x, alpha, gamma, beta):
    return gamma * torch.tanh(alpha * x) + beta


def ln_pair(t, res, w, b):
    h = t + res
    return h, F.layer_norm(h, (h.shape[-1],), w, b, 1e-5)


def rms_pair(t, res, w, b):
    h = t + res
    return h, F.rms_norm(h, (h.shape[-1],), w, 1e-6)


def dyt_pair(t, res, w, b, alpha):
    h = t + res
    return h, dyt_eager(h, alpha, w, b)


# Timing a backward many times over one graph (retain_graph=True) needs
# compiled backwards that keep their saved buffers.
import torch._functorch.config  # noqa: E402
torch._functorch.config.donated_buffer = False
# Every shape and dtype (and grad mode) is a recompile; past the default limit
# of 8 torch.compile silently runs the function eagerly, which would time
# eager code under the name "compile".
for _limit, _value in (("recompile_limit", 256), ("accumulated_recompile_limit", 4096)):
    if hasattr(torch._dynamo.config, _limit):
        setattr(torch._dynamo.config, _limit, _value)

# Compiled once each (shapes may go dynamic after the first recompile, as
# torch.compile does by default: its compile time stays bounded).
RESIDUAL_PAIRS = {
    "LayerNorm": (ln_pair, torch.compile(ln_pair)),
    "RMSNorm": (rms_pair, torch.compile(rms_pair)),
    "DyT": (dyt_pair, torch.compile(dyt_pair)),
}


def residual_pairs(dev, dname, dt, m, n, record):
    """PyTorch's unfused residual pair, h = x + r then the layer on h, eager and
    through torch.compile (which may fuse the two), forward and backward
    (gradient of x, dh + the layer's dx, and of every parameter, given dy on y
    and dh on h). Layers as in the main loop; bytes as bench_cuda counts the
    fused call's (4 tensors)."""
    torch.manual_seed(m * 11 + n)
    x = torch.randn(m, n, device=dev, dtype=dt, requires_grad=True)
    r = torch.randn(m, n, device=dev, dtype=dt)
    dy = torch.randn(m, n, device=dev, dtype=dt)
    dh = torch.randn(m, n, device=dev, dtype=dt)
    w = (1 + 0.1 * torch.randn(n, device=dev, dtype=dt)).requires_grad_()
    b = (0.1 * torch.randn(n, device=dev, dtype=dt)).requires_grad_()
    alpha = torch.tensor(0.5, device=dev, dtype=dt, requires_grad=True)
    nbytes = 4 * m * n * x.element_size()
    for layer, (eager, compiled) in RESIDUAL_PAIRS.items():
        extra = (alpha,) if layer == "DyT" else ()
        params = {"LayerNorm": (w, b), "RMSNorm": (w,), "DyT": (alpha, w, b)}[layer]
        for peer, fn in (("eager", eager), ("compile", compiled)):
            with torch.no_grad():
                record(peer, layer, "fwdres", dname, m, n, median_ms(lambda: fn(x, r, w, b, *extra)), nbytes)
            h, y = fn(x, r, w, b, *extra)
            inputs = (x,) + tuple(params)
            record(peer, layer, "bwdres", dname, m, n,
                   median_ms(lambda: torch.autograd.grad((y, h), inputs, (dy, dh), retain_graph=True)), nbytes)
            del h, y
    del x, r, dy, dh, w, b, alpha
    torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--residual-only", action="store_true", help="only the residual pairs (>= 4096 rows)")
    args = ap.parse_args()
    dev = "cuda"
    lig = liger()
    dyt_compiled = torch.compile(dyt_eager, dynamic=False)
    rows = []

    def record(peer, layer, direction, dtype, m, n, ms, nbytes):
        gbs = nbytes / (ms * 1e-3) / 1e9
        rows.append(dict(peer=peer, layer=layer, dir=direction, dtype=dtype, m=m, n=n, ms=ms, gbs=gbs))
        print(f"{peer:>16} {layer:>9} {direction} {dtype:>4} {m}x{n}: {ms * 1e3:9.1f} us {gbs:8.0f} GB/s", flush=True)

    for dname, dt in DTYPES.items():
        for m, n in SHAPES:
            torch.manual_seed(m * 7 + n)
            x = torch.randn(m, n, device=dev, dtype=dt, requires_grad=True)
            dy = torch.randn(m, n, device=dev, dtype=dt)
            w = (1 + 0.1 * torch.randn(n, device=dev, dtype=dt)).requires_grad_()
            b = (0.1 * torch.randn(n, device=dev, dtype=dt)).requires_grad_()
            alpha = torch.tensor(0.5, device=dev, dtype=dt, requires_grad=True)
            esz = x.element_size()
            fwd_bytes, bwd_bytes = 2 * m * n * esz, 3 * m * n * esz

            def fwd_bwd(peer, layer, f, params):
                with torch.no_grad():
                    record(peer, layer, "fwd", dname, m, n, median_ms(lambda: f(x)), fwd_bytes)
                y = f(x)
                inputs = (x,) + tuple(params)
                record(peer, layer, "bwd", dname, m, n,
                       median_ms(lambda: torch.autograd.grad(y, inputs, dy, retain_graph=True)), bwd_bytes)
                del y

            if args.residual_only:
                if m >= 4096:
                    residual_pairs(dev, dname, dt, m, n, record)
                continue
            with torch.no_grad():
                record("torch", "copy", "fwd", dname, m, n, median_ms(lambda: x.clone()), fwd_bytes)
            fwd_bwd("torch", "LayerNorm", lambda t: F.layer_norm(t, (n,), w, b, 1e-5), (w, b))
            fwd_bwd("torch", "RMSNorm", lambda t: F.rms_norm(t, (n,), w, 1e-6), (w,))
            fwd_bwd("eager", "DyT", lambda t: dyt_eager(t, alpha, w, b), (alpha, w, b))
            fwd_bwd("compile", "DyT", lambda t: dyt_compiled(t, alpha, w, b), (alpha, w, b))
            if lig:
                LLN, LRMS, LDyT = lig
                ln = LLN(n, eps=1e-5, bias=True).to(dev, dt)
                fwd_bwd("liger", "LayerNorm", ln, tuple(ln.parameters()))
                rms = LRMS(n, eps=1e-6, in_place=False).to(dev, dt)
                fwd_bwd("liger", "RMSNorm", rms, tuple(rms.parameters()))
                if LDyT is not None:
                    d = LDyT(n).to(dev, dt)
                    fwd_bwd("liger", "DyT", d, tuple(d.parameters()))
            del x, dy, w, b, alpha
            torch.cuda.empty_cache()
            if m >= 4096 and os.environ.get("DYT_PEERS_RESIDUAL", "1") != "0":
                residual_pairs(dev, dname, dt, m, n, record)

    with open(args.out, "w") as f:
        json.dump(dict(device=torch.cuda.get_device_name(), torch=torch.__version__, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
