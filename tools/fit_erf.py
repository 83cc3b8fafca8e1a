#!/usr/bin/env python3
"""Derives the coefficients of ops::erf_tanh_squash (include/dyt/ops/squash.hpp),
the device's erf for 16-bit rows: erf(x) ~= tanh(x * P(x^2)) on |x| <= X_MAX.

How to run (numpy and mpmath are needed by this tool only, never by the library):

    python3 -m venv /tmp/fitenv && /tmp/fitenv/bin/pip install numpy mpmath
    /tmp/fitenv/bin/python tools/fit_erf.py             # a few seconds

It prints the C++ constants and the predicted errors; the result is deterministic.

What it fits. erf(x) = tanh(z(x)) with z(x) = atanh(erf(x)), an odd function
whose z(x) / x is smooth in s = x^2 (2/sqrt(pi) at 0, growing like x / 2). The
device has tanh as one instruction (tanh.approx.f32, relative error 2^-10.987),
so a polynomial P of low degree with x * P(x^2) ~= z(x) gives erf for the cost of
a few multiply-adds and that instruction. The storage (bf16, half) rounds to
2^-9 or 2^-11 relative, so the target is a fit error well below tanh.approx's:

* What matters is erf's relative error, (1 - t^2) z e / t for a relative error e
  of z (t = erf(x)): large where x is small, vanishing as erf nears 1. The fit
  minimises that weighted error (Lawson's iteratively reweighted least squares,
  the weights driving the solution to minimax), on a Chebyshev grid of [0, X_MAX].
* X_MAX = 3.92: erfc there is 5.2e-8, below a float ulp of 1, so clamping |x|
  to X_MAX changes nothing a float can hold and keeps s finite for every x
  (+-Inf included; a NaN stays NaN through the clamp).
* The coefficients are rounded to float one at a time, lowest degree first,
  refitting the free ones after each.
Then 200000 evenly spaced x in (0, X_MAX] and x = 2^-k down to 2^-20 (below,
x * P(x^2) is x * p0) are evaluated as the device does (float Horner with fused
multiply-adds, a float product) and erf's relative error is measured with a
double tanh in place of tanh.approx, whose own error the tests add on top
(with some slack for the floats between these points).
"""
import numpy as np
import mpmath

mpmath.mp.dps = 40
X_MAX = 3.92
DEGREE = 4  # P of degree 4 in s: five coefficients (degree 3: 1.9e-5, and x P(x^2) falls before X_MAX)


def z_exact(x):
    return float(mpmath.atanh(mpmath.erf(mpmath.mpf(x))))


def fit(xs, zs, w, fixed):
    """Weighted minimax (Lawson) of x * P(x^2) against z; fixed: {power: value}."""
    s = xs * xs
    cols = [xs * s**k for k in range(DEGREE + 1)]
    free = [k for k in range(DEGREE + 1) if k not in fixed]
    rhs = zs - sum(fixed[k] * cols[k] for k in fixed)
    A = np.stack([cols[k] for k in free], axis=1)
    lw = np.ones_like(xs)
    for _ in range(200):
        sw = np.sqrt(lw) * w
        coef, *_ = np.linalg.lstsq(A * sw[:, None], rhs * sw, rcond=None)
        err = np.abs((A @ coef - rhs) * w)
        lw = lw * err
        lw /= lw.sum()
    out = dict(fixed)
    out.update({k: c for k, c in zip(free, coef)})
    return [out[k] for k in range(DEGREE + 1)], err.max()


def erf_error(p, xs):
    """erf's relative error where x * P(x^2) runs in float, fused as the device does."""
    x = xs.astype(np.float32)
    s = (x * x).astype(np.float32)
    acc = np.float32(p[DEGREE])
    for k in range(DEGREE - 1, -1, -1):
        acc = (acc.astype(np.float64) * s + np.float64(np.float32(p[k]))).astype(np.float32)  # one rounding: an FMA
    z = (x * acc).astype(np.float32)
    t = np.tanh(z.astype(np.float64))
    ref = np.array([float(mpmath.erf(mpmath.mpf(float(v)))) for v in x])
    return np.abs(t - ref) / ref


def main():
    n = 4000
    xs = X_MAX * (1 - np.cos(np.linspace(0, np.pi, n))) / 2
    xs[0] = 1e-6
    zs = np.array([z_exact(x) for x in xs])
    t = np.tanh(zs)
    w = (1 - t * t) / t  # d(erf)/erf per unit of z's absolute error
    fixed = {}
    for k in range(DEGREE + 1):
        coef, _ = fit(xs, zs, w, fixed)
        best = None
        c = np.float32(coef[k])
        for cand in (np.nextafter(c, np.float32(-np.inf)), c, np.nextafter(c, np.float32(np.inf))):
            trial = dict(fixed)
            trial[k] = float(cand)
            if k < DEGREE:
                _, e = fit(xs, zs, w, trial)
            else:
                e = np.abs((sum(trial[j] * xs * (xs * xs) ** j for j in range(DEGREE + 1)) - zs) * w).max()
            if best is None or e < best[0]:
                best = (e, float(cand))
        fixed[k] = best[1]
    p = [fixed[k] for k in range(DEGREE + 1)]
    print("coefficients, P(s) = p0 + p1 s + ...:")
    for k, c in enumerate(p):
        m, e = float(np.float32(c)).hex().split("p")
        print(f"  p{k} = {m.rstrip('0')}p{e}f  ({c:.9g})")
    grid = np.concatenate([np.linspace(0, X_MAX, 200001)[1:], 2.0 ** -np.arange(1, 21, 0.25)])
    e = erf_error(p, grid)
    print(f"max relative error of erf (float evaluation, exact tanh): {e.max():.3g} at x = {grid[e.argmax()]:.6g}"
          f" ({e.max() / 2**-24:.1f} u)")
    xs = np.linspace(0, X_MAX, 100001)
    z = xs * sum(p[k] * (xs * xs) ** k for k in range(DEGREE + 1))
    print("x * P(x^2) increasing on [0, X_MAX]:", bool(np.all(np.diff(z) > 0)), f"(at X_MAX: {z[-1]:.4g})")


if __name__ == "__main__":
    main()
