#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz harnesses: fuzz/corpus/<harness>/*.

Each seed is one case in the byte layout decode() reads (fuzz/run_case.hpp):
every storage type and pass (plain and fused residual), aliasing modes (of the
output, and of the residual or dh), parameter and gradient combinations, every
injected argument error, values at the edges (NaN, infinities, signed zeros,
subnormals, the largest finite values, rows of 1e18, constant rows, eps = 0),
and for fuzz_dyt the same over Derf (erf, with its shift) and DyISRU (isru);
and the quantized output (quant_*): every type, int8 and E4M3, per-row scales
(the norms also saving statistics), the caller's per-channel scales and
static_scales()' (point-wise layers), where the codes lie, the injected
errors of codes and scales, and rows of NaN, infinities, zeros, tiny and huge
values. Deterministic: rerunning rewrites the same files. The seeds written
before the residual passes, the other squashes and quantized output are
unchanged byte for byte.

    python3 fuzz/make_corpus.py            # into fuzz/corpus/ next to this script
    python3 fuzz/make_corpus.py OUT_DIR    # elsewhere
"""
import os
import struct
import sys

HARNESSES = {"fuzz_dyt": "dyt", "fuzz_layer_norm": "layer_norm", "fuzz_rms_norm": "rms_norm"}
TYPES = {"float": 0, "double": 1, "bf16": 2, "half": 3}
PASSES = {"forward": 0, "forward_stats": 1, "backward": 2, "backward_saved": 3, "chunks": 4}
# Special-value kinds (fuzz_support.hpp special_value)
QNAN, SNAN, NAN_PAYLOAD, PINF, NINF, PZERO, NZERO, MIN_SUB, MAX_SUB, MIN_NORMAL, MAX_FINITE, E18, E30, RAW = range(14)
# Distributions (run_case.hpp draw)
MODEL, SCALED, CONSTANT, OFFSET, WILD, ZEROS, HUGE, GRID = range(8)
# Injected errors (driver.hpp inject_kind), by name
INJECT = [
    "none", "x_null", "out_null", "dy_null", "x_rows0", "x_rows_neg", "x_cols0", "x_stride_small", "out_rows",
    "out_cols", "layer_cols_more", "layer_cols0", "layer_cols_neg", "eps_nan", "eps_neg", "eps_inf", "param_null",
    "grad_without_param", "stats_half", "ws_small", "ws_misaligned", "ws_null", "plan_rows", "plan_chunks0",
    "plan_chunks_more", "range_reversed", "range_past", "huge_rows", "huge_stride", "huge_cols", "dy_shape",
    "eps_neg_zero", "shift_null", "res_null", "res_rows", "res_cols", "res_stride_small",
    # quantized output
    "codes_null", "codes_rows", "codes_cols", "codes_stride_small", "scale_null", "scale_over_x",
    "scale_over_param", "scale_over_codes", "scale_over_stats",
]
# Quantized output (byte 1 bit 4): the scale's kind and the format
QUANT_SCALES = {"per_row": 0, "static_scales": 8, "caller": 8 | 64}
QUANT_FORMATS = {"int8": 0, "e4m3": 32}
# Byte 0 bits 3-4 (fuzz_dyt): the squash
SQUASH = {"tanh": 0, "erf": 1, "isru": 2}
# Where residual / dh lies (byte 7 bits 3-5)
RES_ALIAS = ["own", "output", "x", "interleaved_x", "partial_x", "after_x", "x_other_stride", "dy_or_after_output"]


def case(type_="float", alt=False, pass_="forward", rows=3, cols=37, big_rows=False, big_cols=False, pads=0,
         mis=0, alias=0, params=0, grads=0, eps=0, eps_raw=None, eps_exp=None, alpha=0, alpha_extra=b"",
         chunks=0, inject="none", seed=1, dists=(0,) * 6, exps=(0,) * 6, specials=(), squash="tanh",
         residual=False, res_alias=0, res_pad=0, shift=0, quant=None, qformat="int8"):
    b = bytearray()
    b.append(TYPES[type_] | (4 if alt else 0) | (SQUASH[squash] << 3))
    if quant is None:
        b.append(PASSES[pass_] | (8 if residual else 0))
    else:
        b.append(PASSES[pass_] | 16 | QUANT_SCALES[quant] | QUANT_FORMATS[qformat])
    b.append((0x80 | (rows - 1)) if big_rows else (rows - 1) & 7)
    b += struct.pack("<H", (0x8000 | (cols - 1)) if big_cols else (cols - 1))
    b.append(pads)
    b.append(mis)
    b.append(alias | (res_alias << 3) | (res_pad << 6))
    b.append(params)
    b.append(grads)
    if eps_raw is not None:
        b.append(6)
        b += struct.pack("<d", eps_raw)
    elif eps_exp is not None:
        b.append(7)
        b.append(eps_exp & 0xFF)
    else:
        b.append(eps)
    b.append(alpha | (shift << 3))
    b += alpha_extra
    b.append(chunks)
    idx = INJECT.index(inject)
    b.append(0x80 | idx if idx else 0)
    b += struct.pack("<I", seed)
    b += bytes(d & 0xFF for d in dists)
    b += bytes(e & 0xFF for e in exps)
    b.append(len(specials))
    for target, pos, kind, raw in specials:
        b.append(target)
        b += struct.pack("<H", pos)
        b.append(kind)
        b += struct.pack("<Q", raw)
    return bytes(b)


def seeds(layer):
    s = {}
    # Every type and pass, at a width with a vector body and a tail.
    for t in TYPES:
        for p in PASSES:
            s[f"{t}_{p}"] = case(t, pass_=p, rows=5, cols=37, seed=len(s) + 1)
    # Shapes: one column, wide rows, many rows (several backward chunks), strides and misalignment.
    s["one_col"] = case(cols=1, rows=7, pass_="backward")
    s["wide_4096"] = case(cols=4096, big_cols=True, rows=2, pass_="forward_stats")
    s["rows_100_chunks"] = case("bf16", pass_="chunks", rows=100, big_rows=True, cols=33, chunks=0x3 | 0x20 | 0x40)
    s["strided_misaligned"] = case("half", pass_="backward", pads=0x3F, mis=0xFF, rows=6, cols=65)
    # Aliasing: in place, dx == x, interleaved rows, partial overlap, gradient over parameter, other stride, adjacent.
    for a in range(1, 8):
        s[f"alias_{a}_fwd"] = case(pass_="forward", alias=a, rows=4, cols=19, seed=100 + a)
        s[f"alias_{a}_bwd"] = case("bf16", pass_="backward", alias=a, rows=4, cols=19, seed=200 + a)
    # Parameters absent, gradients not asked, accumulate, RMSNorm's (1 + gamma).
    s["no_gamma_no_beta"] = case(pass_="backward", params=6)
    s["accumulate"] = case("half", pass_="backward", grads=8, dists=(0, 0, 0, 0, 0, SCALED))
    s["grads_subset"] = case(pass_="chunks", grads=5)
    s["one_plus"] = case("bf16", pass_="backward", params=8)
    s["saved_arbitrary"] = case(pass_="backward_saved", grads=64)
    # eps: 0, raw (1e-300 rounds to 0 in float; 1e39 does not fit a float), a power of two.
    s["eps_zero_constant_rows"] = case(pass_="forward_stats", eps=1, dists=(CONSTANT,) * 6, exps=(-3,) * 6)
    s["eps_tiny"] = case(pass_="backward", eps_raw=1e-300, dists=(CONSTANT,) + (0,) * 5)
    s["eps_huge"] = case(pass_="forward", eps_raw=1e39, dists=(HUGE,) + (0,) * 5, exps=(60,) + (0,) * 5)
    s["eps_pow2"] = case("double", pass_="forward", eps_exp=-60, dists=(SCALED,) * 6, exps=(-35,) * 6)
    # alpha: 0, negative, special (NaN), 2^k.
    s["alpha_zero"] = case(pass_="backward", alpha=1)
    s["alpha_negative"] = case("bf16", pass_="backward", alpha=2)
    s["alpha_nan"] = case(pass_="forward", alpha=3, alpha_extra=bytes([QNAN]) + struct.pack("<Q", 0))
    s["alpha_big"] = case(pass_="backward", alpha=4, alpha_extra=bytes([120]))
    # Values at the edges.
    nan_inf = [(0, 3, QNAN, 0), (0, 10 * 7 + 1, PINF, 0), (1, 2 * 7 + 2, NINF, 0), (0, 36 * 7 + 4, SNAN, 5)]
    for t in TYPES:
        s[f"nan_inf_{t}_fwd"] = case(t, pass_="forward_stats", specials=nan_inf)
        s[f"nan_inf_{t}_bwd"] = case(t, pass_="backward", specials=nan_inf)
    s["signed_zeros_subnormals"] = case(pass_="backward", specials=[(0, 1, NZERO, 0), (0, 9, MIN_SUB, 1),
                                                                     (1, 17, MAX_SUB, 0), (2, 3, MIN_NORMAL, 1)])
    s["max_finite_bf16"] = case("bf16", pass_="forward_stats", specials=[(0, 0, MAX_FINITE, 0), (0, 7, MAX_FINITE, 1)])
    s["rows_1e18_float"] = case(pass_="forward_stats", rows=1, cols=4096, big_cols=True,
                                specials=[(0, 0, E18, 0)] * 1, dists=(HUGE,) + (0,) * 5, exps=(20,) + (0,) * 5)
    s["wild_bf16"] = case("bf16", pass_="backward", dists=(WILD,) * 6)
    s["wild_double"] = case("double", pass_="backward_saved", dists=(WILD,) * 6)
    s["huge_float"] = case(pass_="backward", dists=(HUGE, 0, 0, 0, 0, 0), exps=(70, 0, 0, 0, 0, 0))
    s["offset_rows"] = case(pass_="backward", dists=(OFFSET,) * 6, exps=(10,) * 6)
    s["constant_rows"] = case("bf16", pass_="backward", dists=(CONSTANT,) * 6, exps=(2,) * 6)
    s["zeros"] = case("half", pass_="backward", dists=(ZEROS,) * 6)
    s["grid"] = case(pass_="chunks", dists=(GRID,) * 6, chunks=2)
    s["small_scaled"] = case(pass_="backward", dists=(SCALED,) * 6, exps=(-38,) * 6, eps=1)
    # Every injected argument error, on the pass it concerns.
    for i, name in enumerate(INJECT[1:], start=1):
        if name in QUANT_INJECT:
            continue
        p = "chunks" if ("ws" in name or "plan" in name or "range" in name) else \
            "backward" if name in ("dy_null", "grad_without_param", "dy_shape") else \
            "backward_saved" if name == "stats_half" else "forward"
        if name.startswith("res_") or name == "shift_null":
            continue
        s[f"inject_{name}"] = case(pass_=p, inject=name, rows=4, cols=9, seed=300 + i)
    s.update(residual_seeds())
    if layer == "dyt":
        for sq in ("erf", "isru"):
            s.update(squash_seeds(sq))
    s.update(quant_seeds(layer))
    if layer == "dyt":
        for sq in ("erf", "isru"):
            s.update(quant_seeds(layer, sq))
    return s


QUANT_INJECT = INJECT[INJECT.index("codes_null"):]


def quant_seeds(layer, squash="tanh"):
    """Quantized output: every type, format and scale kind, where the codes lie, the injected errors, edges."""
    s = {}
    pre = "quant_" if squash == "tanh" else f"{squash}_quant_"
    pointwise = layer == "dyt"
    kinds = ["per_row", "static_scales", "caller"] if pointwise else ["per_row"]
    passes = ["forward"] if pointwise else ["forward", "forward_stats"]
    for t in TYPES:
        for f in QUANT_FORMATS:
            for k in kinds:
                for p in passes:
                    s[f"{pre}{t}_{f}_{k}_{p}"] = case(t, pass_=p, rows=5, cols=37, seed=900 + len(s), squash=squash,
                                                      quant=k, qformat=f)
    if squash != "tanh":
        # Edges of the squash: huge and infinite x (the static scale must not clip), NaN.
        for k in kinds:
            s[f"{pre}huge_x_{k}"] = case(quant=k, qformat="e4m3", squash=squash, dists=(HUGE,) + (0,) * 5,
                                         exps=(100,) + (0,) * 5, specials=[(0, 3, PINF, 0), (0, 10, NINF, 0),
                                                                            (0, 17, QNAN, 0)])
            s[f"{pre}wild_{k}"] = case("double", quant=k, squash=squash, dists=(WILD,) * 6)
        return s
    stats = "forward_stats" if not pointwise else "forward"
    # Where the codes lie (byte 7): over x, between x's rows, partially over x, other stride, right after x.
    for a in range(1, 8):
        s[f"{pre}codes_alias_{a}"] = case("bf16", pass_=stats, alias=a, rows=4, cols=19, seed=1000 + a, quant="per_row")
        if pointwise:
            s[f"{pre}codes_alias_{a}_static"] = case(alias=a, rows=4, cols=19, seed=1100 + a, quant="static_scales",
                                                     qformat="e4m3")
    s[f"{pre}strided_misaligned"] = case("half", pass_=stats, pads=0x3F, mis=0xFF, rows=6, cols=65, quant="per_row",
                                         qformat="e4m3")
    s[f"{pre}wide_4096"] = case(pass_=stats, cols=4096, big_cols=True, rows=2, quant="per_row", qformat="e4m3")
    s[f"{pre}many_rows"] = case("bf16", pass_=stats, rows=100, big_rows=True, cols=9, quant="per_row")
    # The injected errors, on each scale kind (and saving statistics for the norms).
    for name in QUANT_INJECT + ["x_null", "x_rows0", "layer_cols_more", "param_null", "huge_cols", "huge_rows",
                                "stats_half", "eps_nan"]:
        for k in kinds:
            for p in passes:
                s[f"{pre}inject_{name}_{k}_{p}"] = case(pass_=p, inject=name, rows=4, cols=9, seed=1200 + len(s),
                                                        quant=k, qformat="e4m3" if len(s) % 2 else "int8")
    # Values: NaN, infinities, zero rows, tiny and huge rows, constant rows, the largest finite values.
    nan_inf = [(0, 3, QNAN, 0), (0, 10 * 7 + 1, PINF, 0), (0, 2 * 7 + 2, NINF, 0), (0, 36 * 7 + 4, SNAN, 5)]
    for t in TYPES:
        for k in kinds:
            s[f"{pre}nan_inf_{t}_{k}"] = case(t, pass_=stats, specials=nan_inf, quant=k, qformat="e4m3")
            s[f"{pre}nan_inf_{t}_{k}_int8"] = case(t, pass_=stats, specials=nan_inf, quant=k)
    for f in QUANT_FORMATS:
        for k in kinds:
            # x = 0 without beta: rows of zeros (scale 0, codes +0); RMSNorm: any zero row.
            s[f"{pre}zero_rows_{f}_{k}"] = case(pass_=stats, params=4, dists=(ZEROS,) * 6, quant=k, qformat=f)
            # gamma at every magnitude, no beta: tiny rows (qmax / absmax overflows), huge ones (y overflows).
            s[f"{pre}wild_gamma_{f}_{k}"] = case(pass_=stats, params=4, dists=(0, 0, WILD, 0, 0, 0), quant=k,
                                                 qformat=f)
            s[f"{pre}tiny_gamma_{f}_{k}"] = case(pass_=stats, params=4, dists=(0, 0, SCALED, 0, 0, 0),
                                                 exps=(0, 0, -40, 0, 0, 0), quant=k, qformat=f,
                                                 specials=[(2, 1, MIN_SUB, 0), (2, 2, MAX_SUB, 1)])
            s[f"{pre}huge_x_{f}_{k}"] = case(pass_=stats, dists=(HUGE,) + (0,) * 5, exps=(100,) + (0,) * 5, quant=k,
                                             qformat=f, specials=[(0, 0, MAX_FINITE, 0), (0, 8, PINF, 1)])
            s[f"{pre}max_gamma_{f}_{k}"] = case("bf16", pass_=stats, quant=k, qformat=f,
                                                specials=[(2, 0, MAX_FINITE, 0), (3, 1, MAX_FINITE, 1),
                                                          (2, 2, PINF, 0), (3, 3, QNAN, 0)])
            s[f"{pre}constant_rows_{f}_{k}"] = case("half", pass_=stats, dists=(CONSTANT,) * 6, exps=(2,) * 6,
                                                    quant=k, qformat=f)
            s[f"{pre}grid_{f}_{k}"] = case(pass_=stats, dists=(GRID,) * 6, quant=k, qformat=f)
            s[f"{pre}wild_double_{f}_{k}"] = case("double", pass_=stats, dists=(WILD,) * 6, quant=k, qformat=f)
            s[f"{pre}no_params_{f}_{k}"] = case(pass_=stats, params=6, quant=k, qformat=f)
    if not pointwise:
        s[f"{pre}eps_zero_constant_rows"] = case(pass_="forward_stats", eps=1, dists=(CONSTANT,) * 6, exps=(-3,) * 6,
                                                 quant="per_row")
        s[f"{pre}one_plus"] = case("bf16", pass_="forward_stats", params=8, quant="per_row", qformat="e4m3")
        s[f"{pre}stats_over_x"] = case(pass_="forward_stats", alias=5, quant="per_row")
    else:
        s[f"{pre}alpha_nan_static"] = case(alpha=3, alpha_extra=bytes([QNAN]) + struct.pack("<Q", 0),
                                           quant="static_scales")
        s[f"{pre}other_tanh_policy"] = case("bf16", alt=True, quant="static_scales", qformat="e4m3")
        s[f"{pre}other_tanh_policy_float"] = case(alt=True, quant="per_row")
    return s


def residual_seeds(squash="tanh"):
    """The fused residual passes: every type and pass, where residual / dh lies, their argument errors."""
    s = {}
    pre = "" if squash == "tanh" else squash + "_"
    for t in TYPES:
        for p in PASSES:
            s[f"{pre}residual_{t}_{p}"] = case(t, pass_=p, rows=5, cols=37, seed=400 + len(s), squash=squash,
                                               residual=True)
    if squash != "tanh":
        return s
    for m, name in enumerate(RES_ALIAS[1:], start=1):
        for out_alias in (0, 1, 2):
            s[f"residual_at_{name}_fwd_alias{out_alias}"] = case(pass_="forward", residual=True, res_alias=m,
                                                                 alias=out_alias, rows=4, cols=19, seed=500 + m)
            s[f"residual_at_{name}_bwd_alias{out_alias}"] = case("bf16", pass_="backward", residual=True,
                                                                 res_alias=m, alias=out_alias, rows=4, cols=19,
                                                                 seed=600 + m)
    s["residual_padded_chunks"] = case("half", pass_="chunks", residual=True, res_pad=3, rows=40, big_rows=True,
                                       cols=33, chunks=0x5 | 0x30)
    s["residual_accumulate"] = case(pass_="backward", residual=True, grads=8, dists=(0, 0, 0, 0, SCALED, SCALED),
                                    exps=(0, 0, 0, 0, 30, 0))
    # x + residual overflowing, cancelling, NaN and Inf in the residual / dh.
    s["residual_overflow_bf16"] = case("bf16", pass_="forward", residual=True, dists=(HUGE, 0, 0, 0, HUGE, 0),
                                       exps=(127, 0, 0, 0, 127, 0))
    s["residual_cancel_half"] = case("half", pass_="forward_stats", residual=True,
                                     specials=[(0, 3, MAX_FINITE, 0), (6, 3, MAX_FINITE, 1), (6, 8, PINF, 0),
                                               (6, 16, QNAN, 0)])
    s["residual_dh_specials"] = case(pass_="backward", residual=True,
                                     specials=[(6, 1, NINF, 0), (6, 9, SNAN, 3), (6, 17, MIN_SUB, 1),
                                               (6, 23, MAX_FINITE, 0)])
    s["residual_wild_double"] = case("double", pass_="backward_saved", residual=True, dists=(WILD,) * 6)
    for name in ("res_null", "res_rows", "res_cols", "res_stride_small", "out_rows", "x_null"):
        s[f"residual_inject_{name}_fwd"] = case(pass_="forward", residual=True, inject=name, rows=4, cols=9)
        s[f"residual_inject_{name}_bwd"] = case(pass_="backward", residual=True, inject=name, rows=4, cols=9)
    s["residual_inject_ws_small"] = case(pass_="chunks", residual=True, inject="ws_small", rows=4, cols=9)
    return s


def squash_seeds(sq):
    """fuzz_dyt's Derf (erf) and DyISRU (isru): every type and pass, plain and residual, and edges."""
    s = {}
    for t in TYPES:
        for p in PASSES:
            s[f"{sq}_{t}_{p}"] = case(t, pass_=p, rows=5, cols=37, seed=700 + len(s), squash=sq)
    s.update(residual_seeds(sq))
    s[f"{sq}_no_gamma_no_beta"] = case(pass_="backward", params=6, squash=sq)
    s[f"{sq}_chunks_grads_subset"] = case(pass_="chunks", grads=5 | 16, squash=sq, rows=9, chunks=3 | 0x10)
    s[f"{sq}_accumulate_half"] = case("half", pass_="chunks", grads=8, squash=sq, dists=(0, 0, 0, 0, 0, SCALED))
    s[f"{sq}_alpha_zero"] = case(pass_="backward", alpha=1, squash=sq)
    s[f"{sq}_alpha_big"] = case(pass_="backward", alpha=4, alpha_extra=bytes([120]), squash=sq)
    s[f"{sq}_alpha_nan"] = case(pass_="forward", alpha=3, alpha_extra=bytes([QNAN]) + struct.pack("<Q", 0), squash=sq)
    s[f"{sq}_wild_float"] = case(pass_="backward", dists=(WILD,) * 6, squash=sq)
    s[f"{sq}_wild_double"] = case("double", pass_="backward", dists=(WILD,) * 6, squash=sq)
    s[f"{sq}_huge_x"] = case(pass_="backward", dists=(HUGE, 0, 0, 0, 0, 0), exps=(70, 0, 0, 0, 0, 0), squash=sq)
    s[f"{sq}_tiny_x"] = case(pass_="backward", dists=(SCALED,) * 6, exps=(-38,) * 6, squash=sq)
    nan_inf = [(0, 3, QNAN, 0), (0, 10 * 7 + 1, PINF, 0), (1, 2 * 7 + 2, NINF, 0), (0, 36 * 7 + 4, SNAN, 5),
               (0, 5, MAX_FINITE, 1), (0, 6, MIN_SUB, 0)]
    for t in TYPES:
        s[f"{sq}_nan_inf_{t}_fwd"] = case(t, pass_="forward", specials=nan_inf, squash=sq)
        s[f"{sq}_nan_inf_{t}_bwd"] = case(t, pass_="backward", specials=nan_inf, squash=sq)
    s[f"{sq}_inject_param_null"] = case(pass_="forward", inject="param_null", squash=sq, rows=4, cols=9)
    if sq == "erf":
        for m in (1, 2, 3):
            s[f"erf_shift_mode{m}"] = case(pass_="backward", shift=m, squash=sq, seed=800 + m)
        for kind, name in ((QNAN, "nan"), (PINF, "inf"), (NINF, "ninf"), (MAX_FINITE, "max")):
            s[f"erf_shift_{name}"] = case(pass_="backward", squash=sq, specials=[(7, 0, kind, 1)])
            s[f"erf_shift_{name}_fwd"] = case("bf16", pass_="forward", squash=sq, specials=[(7, 0, kind, 1)])
        s["erf_shift_cancels_alpha_x"] = case(pass_="backward", squash=sq, alpha=4, alpha_extra=bytes([100]),
                                              specials=[(7, 0, E18, 1), (0, 0, E18, 0)])
        # alpha x overflowing float but not double, plus an infinite shift: NaN (Inf - Inf) in y, dx, the sums.
        s["erf_argument_overflow"] = case(pass_="backward", squash=sq, alpha=4, alpha_extra=bytes([44]),
                                          dists=(WILD,) * 6, specials=[(7, 0, PINF, 0)])
        s["erf_slope_underflow"] = case(pass_="backward", squash=sq, dists=(SCALED,) + (0,) * 5, exps=(4,) + (0,) * 5)
        for p in ("forward", "backward", "chunks"):
            s[f"erf_inject_shift_null_{p}"] = case(pass_=p, inject="shift_null", squash=sq, rows=4, cols=9)
            s[f"erf_inject_shift_null_{p}_residual"] = case(pass_=p, inject="shift_null", squash=sq, rows=4, cols=9,
                                                            residual=True)
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for harness, layer in HARNESSES.items():
        d = os.path.join(out, harness)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds(layer).items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print(f"{d}: {len(seeds(layer))} seeds")


if __name__ == "__main__":
    main()
