// dyt/ops/tanh.hpp: the two accuracy policies for tanh, the one transcendental in DyT.
//
// A policy is a type with `static V apply(const V&)` for every lanes type V (float,
// double, xsimd batches, CUDA threads), picked per call site. Measured errors, speeds
// and the default policy per storage type are in docs/tanh.md.
#pragma once

#include "lanes.hpp"

namespace dyt {

// The platform's accurate tanh: glibc on scalars, xsimd::tanh on batches, CUDA's
// tanhf on the device. Within 2.2 float ulp (glibc) and 1.35 (xsimd), and monotone.
struct tanh_precise {
  template <class V>
  DYT_HOST_DEVICE DYT_INLINE static V apply(const V& x) {
    return lanes<V>::tanh(x);
  }
};

// A clamped odd rational R(x) = x * P(x^2) / Q(x^2), degree 9 over degree 8: no exp, no
// branch, no table, one division. Max error 5.2 float ulp where the compiler fuses
// multiply-adds, 5.7 where it does not (docs/tanh.md), about 0.4 of which is the fit.
// Unlike the precise policy it is not exactly monotone: its rounding noise exceeds the
// rise of tanh between neighbouring floats, so one float can come out up to 8 ulp below
// its predecessor. Rounded to bf16 from bf16 inputs it is monotone (tested).
//
// tools/fit_tanh.py derives the constants (minimax in relative error on
// [0, 9.0109], beyond which float tanh is 1) and checks what this code relies on:
//  * P(0) = Q(0) = 1, so R(x) == x exactly once x*x underflows: +-0 keeps its sign and
//    denormals come back unchanged.
//  * All coefficients are positive: Horner's rule never cancels.
//  * R increases on [0, 9.75], and R(9.75) exceeds 1 by more than the worst float
//    rounding error there. So clamping x to +-9.75 and the result to [-1, 1] gives
//    exactly +-1 from there to +-inf, in float and double, and |result| <= 1 always.
//    (Clamping x at 9.0109 would leave R a hair below 1 in double.)
//  * The constants are floats, so double lanes evaluate the same rational and their
//    error is the fit error: 2.8e-8 relative (0.5 float ulp).
// Oddness is exact: x enters through x*x, the symmetric clamps and the final x/q only.
// A NaN stays NaN: lanes<V>::clamp keeps it.
//
// Only + - *, lanes<V>::div (correctly rounded on every target: xsimd 8.1's AArch64
// float division is not) and clamp, so one formula serves every lanes type. Each
// multiply-add is split over two statements on purpose: a compiler that contracts a*b+c into an FMA
// only within one expression (clang's default) would otherwise fuse the scalar code but
// not xsimd's operators, and a row's scalar tail would round differently from its
// vector body. GCC contracts both alike; either way batches equal scalars bit for bit.
struct tanh_fast {
  template <class V>
  DYT_HOST_DEVICE DYT_INLINE static V apply(const V& x) {
    using S = typename lanes<V>::scalar_type;
    const V xc = lanes<V>::clamp(x, S(-9.75), S(9.75));
    const V s = xc * xc;

    // Horner's rule, highest degree first, constants as tools/fit_tanh.py prints them.
    V p = V(S(0x1.cca7f8p-27));
    p = p * s;
    p = p + V(S(0x1.5a71fap-16));
    p = p * s;
    p = p + V(S(0x1.ca83dap-9));
    p = p * s;
    p = p + V(S(0x1.1216e2p-3));
    p = p * s;
    p = p + V(S(1));

    V q = V(S(0x1.a2b212p-21));
    q = q * s;
    q = q + V(S(0x1.58f5d2p-12));
    q = q * s;
    q = q + V(S(0x1.a82222p-6));
    q = q * s;
    q = q + V(S(0x1.de60bep-2));
    q = q * s;
    q = q + V(S(1));

    return lanes<V>::clamp(lanes<V>::div(xc, q) * p, S(-1), S(1));
  }
};

}  // namespace dyt
