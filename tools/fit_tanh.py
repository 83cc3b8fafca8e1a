#!/usr/bin/env python3
"""Derives the coefficients of dyt::tanh_fast (include/dyt/ops/tanh.hpp).

How to run (numpy and mpmath are needed by this tool only, never by the library):

    python3 -m venv /tmp/fitenv && /tmp/fitenv/bin/pip install numpy mpmath
    /tmp/fitenv/bin/python tools/fit_tanh.py            # about 20 s

It prints the C++ constants to paste into tanh.hpp and the predicted errors. The
result is deterministic: same numbers on every run.

What it fits. tanh is odd, so tanh(x) = x * f(s) with s = x^2 and
f(s) = tanh(sqrt(s)) / sqrt(s). We approximate

    tanh(x) ~= R(x) = x * P(s) / Q(s),   P(s) = 1 + p1 s + ... + p4 s^4,
                                         Q(s) = 1 + q1 s + ... + q4 s^4,

a degree 9/8 odd rational, minimax in *relative* error on 0 <= x <= c_one, where
c_one is the smallest float whose tanh rounds to 1.0f (beyond it the float answer
is exactly 1, so there is nothing to approximate). Why these choices:

* P(0) = Q(0) = 1 exactly, so R(x) == x bit for bit once x*x underflows: tanh of
  a denormal or of +-0 is its argument, sign included, in float and double.
* Relative error, because tanh's float ulp shrinks with |tanh x| near 0.
* Degree 9/8: the smallest (m, n) whose minimax error (2.2e-8, ~0.4 ulp of a float
  near 1) is well below the float rounding noise of evaluating it; the degree
  9/6 and 11/6 fits are worse (5.9e-7 and 6.2e-8) and need negative coefficients,
  the 7/8 fit reaches only 4e-7. All eight coefficients come out positive, so
  Horner's rule adds positive terms only: no cancellation, small rounding error.
* The coefficients are float numbers, so that float and double lanes evaluate the
  same rational; on double lanes the error is this fit error.

Method.
1. Lawson's iteratively reweighted least squares on a Chebyshev grid, with Loeb's
   linearisation of the rational: each pass solves the linear weighted problem
   min sum w_i ((P_i - f_i Q_i) / (f_i Q_prev_i))^2 and multiplies w_i by the
   current |relative error|, which drives the solution to the minimax one.
2. The coefficients are rounded to float one at a time (lowest degree first);
   after each rounding the still-free ones are refitted, and of the two or three
   floats nearest the exact value the one with the smallest refitted error wins.
3. The rounded rational is checked in high precision (mpmath, 50 digits): its max
   relative error, that R is increasing on [0, clamp] (no positive real root of
   the numerator of R' below clamp^2), and where R crosses 1.
4. The input clamp point is the first "short" float past c_one where R exceeds 1
   by more than the first-order bound on float rounding error at that point,
   computed here for Horner's rule without FMA (the larger one). tanh_fast then
   clamps its result to [-1, 1], so +-inf (and everything past the clamp) gives
   exactly +-1 in float *and* double, and |tanh_fast| <= 1 always.
"""

import mpmath as mp
import numpy as np

mp.mp.dps = 50
M = 5  # terms of P, in s
N = 5  # terms of Q, in s
F32 = np.float32


def next_float(v, toward):
    return float(np.nextafter(F32(v), F32(toward)))


def find_c_one():
    """Smallest float x with float(tanh(x)) == 1: tanh(x) >= 1 - 2^-25.

    1 - 2^-25 is the midpoint between 1 and the float below it; the tie rounds to
    1 (even mantissa), hence >=. tanh(x0) = 1 - 2^-25 at x0 = ln(2^26 - 1) / 2.
    """
    x0 = mp.log(mp.mpf(2) ** 26 - 1) / 2
    c = float(F32(float(x0)))
    half = 1 - mp.mpf(2) ** -25
    while mp.tanh(c) < half:
        c = next_float(c, 100)
    while mp.tanh(next_float(c, 0)) >= half:
        c = next_float(c, 0)
    return c, x0


C_ONE, X0 = find_c_one()

# Fitting grid: Chebyshev points in x (they cluster at both ends, where the
# minimax error extrema crowd) plus the end point itself.
GRID_N = 4000
_k = np.arange(GRID_N)
XG = np.concatenate([C_ONE * (1 - np.cos(np.pi * (_k + 0.5) / GRID_N)) / 2, [C_ONE]])
FG = np.array([float(mp.tanh(mp.mpf(x)) / x) for x in XG])  # f = tanh(x)/x
SG = XG**2
UG = SG / C_ONE**2  # the least-squares basis uses s scaled to [0, 1]: well conditioned


def lawson(fixed_p, fixed_q, iters=400):
    """Minimax fit of the coefficients not in fixed_p / fixed_q (degree -> value).

    Returns (max relative error on the grid, p, q) with p, q dicts degree -> coef
    in the unscaled variable s.
    """
    free_p = [k for k in range(1, M) if k not in fixed_p]
    free_q = [k for k in range(1, N) if k not in fixed_q]
    base_p = 1 + sum(v * SG**k for k, v in fixed_p.items())
    base_q = 1 + sum(v * SG**k for k, v in fixed_q.items())
    # P - f Q = 0 is linear in the free coefficients.
    cols = [UG**k for k in free_p] + [-FG * UG**k for k in free_q]
    a = np.stack(cols, axis=1) if cols else np.zeros((len(UG), 0))
    rhs = FG * base_q - base_p
    w = np.full(len(UG), 1.0 / len(UG))
    q_prev = np.ones_like(UG)
    best = None
    for _ in range(iters if cols else 1):
        if cols:
            row = np.sqrt(w) / (FG * q_prev)
            sol = np.linalg.lstsq(a * row[:, None], rhs * row, rcond=None)[0]
        else:
            sol = np.zeros(0)
        p, q = dict(fixed_p), dict(fixed_q)
        for i, k in enumerate(free_p):
            p[k] = sol[i] / C_ONE ** (2 * k)
        for i, k in enumerate(free_q):
            q[k] = sol[len(free_p) + i] / C_ONE ** (2 * k)
        pv = 1 + sum(v * SG**k for k, v in p.items())
        qv = 1 + sum(v * SG**k for k, v in q.items())
        err = pv / (qv * FG) - 1
        emax = np.abs(err).max()
        if best is None or emax < best[0]:
            best = (emax, p, q)
        q_prev = qv
        w = w * np.abs(err)
        w /= w.sum()
    return best


def round_to_float(p, q):
    """Rounds the coefficients to float one at a time, refitting the rest."""
    fixed_p, fixed_q = {}, {}
    order = sorted([("p", k) for k in range(1, M)] + [("q", k) for k in range(1, N)],
                   key=lambda t: (t[1], t[0]))
    for which, k in order:
        exact = (p if which == "p" else q)[k]
        near = F32(exact)
        cands = sorted({float(near), next_float(near, np.inf), next_float(near, -np.inf)})
        best = None
        for cand in cands:
            fp, fq = dict(fixed_p), dict(fixed_q)
            (fp if which == "p" else fq)[k] = cand
            res = lawson(fp, fq, 200)
            if best is None or res[0] < best[0][0]:
                best = (res, cand)
        (fixed_p if which == "p" else fixed_q)[k] = best[1]
        _, p, q = best[0]
    return fixed_p, fixed_q


def poly_mp(c, s):
    return 1 + sum(mp.mpf(c[k]) * s**k for k in c)


def r_mp(p, q, x):
    x = mp.mpf(x)
    s = x * x
    return x * poly_mp(p, s) / poly_mp(q, s)


def max_rel_error(p, q, hi):
    """Max |R/tanh - 1| on [0, hi]: dense double scan, extrema refined in mpmath."""
    xs = np.linspace(hi / 2e6, hi, 2_000_000)
    s = xs * xs
    pv = 1 + sum(v * s**k for k, v in p.items())
    qv = 1 + sum(v * s**k for k, v in q.items())
    err = xs * pv / qv / np.tanh(xs) - 1
    worst = 0.0
    for i in np.argsort(-np.abs(err))[:40]:
        lo, up = xs[max(i - 1, 0)], xs[min(i + 1, len(xs) - 1)]
        for x in np.linspace(lo, up, 41):
            e = abs(r_mp(p, q, x) / mp.tanh(x) - 1)
            worst = max(worst, float(e))
    return worst


def increasing_up_to(p, q, hi):
    """True if R'(x) > 0 on (0, hi]: the numerator of dR/dx, a polynomial in s,
    (P + 2 s P') Q - 2 s P Q', has no real root in [0, hi^2]."""
    pc = [1.0] + [p[k] for k in range(1, M)]
    qc = [1.0] + [q[k] for k in range(1, N)]
    pp = np.polynomial.Polynomial(pc)
    qq = np.polynomial.Polynomial(qc)
    s = np.polynomial.Polynomial([0.0, 1.0])
    num = (pp + 2 * s * pp.deriv()) * qq - 2 * s * pp * qq.deriv()
    roots = num.roots()
    bad = [r for r in roots if abs(r.imag) < 1e-9 * max(1, abs(r)) and 0 <= r.real <= hi * hi]
    return num(0.0) > 0 and not bad


def rounding_bound(p, q, x):
    """First-order bound, in units of u = 2^-24 (relative), on the float rounding
    error of fl(x * fl(P(s)) / fl(Q(s))) with Horner's rule *without* FMA (two
    roundings per step); with FMA the bound is smaller."""
    x = mp.mpf(x)
    s = x * x

    def horner_shares(c, n):
        coef = [mp.mpf(1)] + [mp.mpf(c[k]) for k in range(1, n)]
        val = poly_mp(c, s)
        total = mp.mpf(0)
        h = coef[n - 1]
        for k in range(n - 2, -1, -1):
            prod = h * s
            total += abs(prod * s**k) / val  # rounding of the product
            h = prod + coef[k]
            total += abs(h * s**k) / val  # rounding of the sum
        return total

    p_val, q_val = poly_mp(p, s), poly_mp(q, s)
    dps = s * mp.diff(lambda t: poly_mp(p, t), s) / p_val
    dqs = s * mp.diff(lambda t: poly_mp(q, t), s) / q_val
    # s = x*x (its error reaches R through dlnR/dlns), P, Q, the product, the quotient.
    return abs(dps - dqs) + horner_shares(p, M) + horner_shares(q, N) + 2


def pick_clamp(p, q):
    """First float of the form k/8 past c_one where R - 1 > the rounding bound."""
    u = mp.mpf(2) ** -24
    x = mp.mpf(np.ceil(C_ONE * 8) / 8)
    while r_mp(p, q, x) - 1 < rounding_bound(p, q, x) * u:
        x += mp.mpf(1) / 8
    return float(x)


def cxx(v):
    f = F32(v)
    assert float(f) == v
    mant, exp = float(f).hex().split("p")
    return mant.rstrip("0").rstrip(".") + "p" + exp  # 0x1.cca7f80000000p-27 -> 0x1.cca7f8p-27


def main():
    print(f"tanh(x) rounds to 1.0f for x >= c_one = {C_ONE!r} = {C_ONE.hex()} "
          f"(exact threshold ln(2^26-1)/2 = {mp.nstr(X0, 12)})")
    e_real, p_real, q_real = lawson({}, {})
    print(f"minimax fit with real coefficients:   max rel error {e_real:.4g} "
          f"(2^{np.log2(e_real):.2f})")
    p, q = round_to_float(p_real, q_real)
    assert all(v > 0 for v in list(p.values()) + list(q.values())), "expected positive coefs"
    e_fit = max_rel_error(p, q, C_ONE)
    print(f"with float coefficients (mpmath):    max rel error {e_fit:.4g} "
          f"(2^{np.log2(e_fit):.2f}) = {e_fit * 2**24:.3f} float ulp near 1 (worst case)")
    clamp = pick_clamp(p, q)
    print(f"input clamp: {clamp}   R(clamp) - 1 = {mp.nstr(r_mp(p, q, clamp) - 1, 4)}, "
          f"rounding bound there {mp.nstr(rounding_bound(p, q, clamp), 3)} u")
    print(f"R(c_one) - 1 = {mp.nstr(r_mp(p, q, C_ONE) - 1, 4)}  "
          f"(float(R) is 1 where R > 1 - 2^-25 = 1 - 2.98e-8)")
    tail = max(abs(min(r_mp(p, q, x), 1) / mp.tanh(x) - 1)
               for x in np.linspace(C_ONE, clamp, 4001))
    print(f"past c_one, min(R, 1) is within {float(tail):.4g} of tanh: so double lanes "
          f"are within {max(e_fit, float(tail)):.4g} everywhere")
    assert increasing_up_to(p, q, clamp), "R must be increasing up to the clamp"
    print(f"R is increasing on [0, {clamp}] (in exact arithmetic)")
    worst_b = max(float(rounding_bound(p, q, x)) for x in np.linspace(0.05, C_ONE, 200))
    print(f"first-order float rounding bound, no FMA: up to {worst_b:.2f} u; "
          f"expect a measured max of ~5-6 float ulp (fit + rounding)")
    print()
    print("// C++ (paste into include/dyt/ops/tanh.hpp), Horner order, highest degree first:")
    print("P: " + ", ".join(f"S({cxx(p[k])})" for k in range(M - 1, 0, -1)) + ", S(1)")
    print("Q: " + ", ".join(f"S({cxx(q[k])})" for k in range(N - 1, 0, -1)) + ", S(1)")
    for name, c in (("p", p), ("q", q)):
        for k in range(1, M if name == "p" else N):
            print(f"  {name}{k} = {cxx(c[k]):>16} = {c[k]:.9g}")
    print(f"clamp: S({clamp!r})")


if __name__ == "__main__":
    main()
