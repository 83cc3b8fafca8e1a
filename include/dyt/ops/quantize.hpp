// dyt/ops/quantize.hpp: quantized output, int8 or fp8 (E4M3) codes with the
// scale they were made with, for every layer and every CPU backend.
//
// A layer's forward row ends with emit(eng, out, value): value(at) is y at a
// position of the row (a compute-type value or a vector of them), and `out`
// says where y goes:
//
//   T*                          y itself, stored as today (the same code and
//                               bits as before quantized output existed);
//   row_quantized<Q, C>         codes q = Q(y * qmax / absmax) with absmax =
//                               max |y| over the row, found by one reduction
//                               over the row before the store sweep (the row
//                               is in cache; memory still sees x once), and
//                               the row's scale absmax / qmax;
//   channel_quantized<Q, C>     codes q = Q(y / scale[j]) with the caller's
//                               per-channel scales: no reduction at all.
//
// y ~ q * scale. The dynamic path computes y twice (once for the maximum,
// once to store it; or once, held between the two, where the destination
// says Hold: the point-wise layers, on the CPU and in CUDA's staged
// kernels), the static one once: that and the reduction are what a static
// scale saves (bench/bench_cpu.cpp's *_forward_int8 / *_forward_e4m3
// rows, docs/quantize.md).
//
// Special values (docs/quantize.md):
//  - a row whose y are all zero gets scale 0 and every code 0 (+0);
//  - a NaN anywhere in a row's y makes its scale NaN (the maximum propagates
//    NaN) and every code of the row NaN (e4m3) or 0 (int8, which has no NaN);
//  - a row whose y holds +-Inf gets scale +Inf: its finite values have code
//    +-0 and its infinite ones NaN (e4m3) or 0 (int8): not representable;
//  - a row whose absmax is so small that qmax / absmax overflows is scaled
//    in two exact steps (y * 2^64, then qmax / (absmax * 2^64)), so its codes
//    are as for any other row; its scale absmax / qmax may be subnormal;
//  - with a static scale, a value beyond qmax * scale[j] saturates to +-qmax
//    (never wraps, never becomes NaN); a channel whose scale is not > 0
//    (0, negative, NaN) gets code 0.
// On the device (cuda/kernels.cuh) a team of threads shares a row: only its
// leader is handed the row's scale_out; the others get null and write none.
// Codes: int8 rounds to nearest even and saturates to [-127, 127] (-128 is
// never produced, so the range is symmetric); E4M3 as float8_e4m3 (types.hpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../types.hpp"
#include "../view.hpp"
#include "lanes.hpp"
#include "rescue.hpp"

namespace dyt {

// Where the dynamic quantized forward writes each row's scale: `out` holds
// x.rows values, in the layer's compute type.
template <class C>
struct per_row_scale {
  C* out = nullptr;
};

// The per-channel scales a static quantized forward divides by: `in` holds
// cols values in the layer's compute type, each finite and >= 0 (a point-wise
// layer's static_scales() gives ones that never clip).
template <class C>
struct per_channel_scale {
  const C* in = nullptr;
};

namespace ops {

// The output formats: the largest code magnitude and the scalar encoder.
template <class Q>
struct quant_format;

template <>
struct quant_format<std::int8_t> {
  static constexpr double qmax = 127;
  // Round to nearest even, saturating to [-127, 127]; NaN -> 0. Truncation
  // and the exact remainder v - t (both exact for |v| <= 127) decide the
  // rounding, so the FP rounding mode plays no part.
  template <class C>
  DYT_HOST_DEVICE DYT_INLINE static std::int8_t encode(C v) {
    if (!(v == v)) return 0;
    v = v < C(-127) ? C(-127) : (v > C(127) ? C(127) : v);
    const int t = static_cast<int>(v);
    const C rest = v - C(t);
    const int odd = t & 1;
    const int up = rest > C(0.5) || (rest == C(0.5) && odd);
    const int down = rest < C(-0.5) || (rest == C(-0.5) && odd);
    return static_cast<std::int8_t>(t + up - down);
  }
};

template <>
struct quant_format<float8_e4m3> {
  static constexpr double qmax = 448;
  template <class C>
  DYT_HOST_DEVICE DYT_INLINE static float8_e4m3 encode(C v) {
    if constexpr (std::is_same<C, double>::value) return float8_e4m3::from_bits(detail::double_to_e4m3_bits(v));
    else return float8_e4m3::from_bits(detail::float_to_e4m3_bits(v));
  }
};

template <class Q>
constexpr bool is_quantized_format_v = std::is_same<Q, std::int8_t>::value || std::is_same<Q, float8_e4m3>::value;

// A vectorized encoder for lanes type V, where one exists (cpu/convert.hpp:
// float batches, both formats): `available` and store(Q* p, const V& v),
// which writes V's width codes, bit for bit what the scalar encoder gives.
template <class Q, class V, class Enable = void>
struct vector_codes {
  static constexpr bool available = false;
};

// Writes the codes of v's lanes at the position `at` of the row p. A vector
// without a vectorized encoder goes through a small aligned buffer and the
// scalar encoder, so the body of a row and its scalar tail agree bit for bit.
template <class Q, class At, class V>
DYT_HOST_DEVICE DYT_INLINE void store_codes(const At& at, Q* p, const V& v) {
  if constexpr (std::is_floating_point<V>::value) {
    p[at.j] = quant_format<Q>::encode(v);
  } else if constexpr (vector_codes<Q, V>::available) {
    vector_codes<Q, V>::store(p + at.j, v);
  } else {
    using S = typename lanes<V>::scalar_type;
    constexpr int width = lanes<V>::width;
    alignas(64) S values[width];
    v.store_aligned(values);
    Q codes[width];
    for (int i = 0; i < width; ++i) codes[i] = quant_format<Q>::encode(values[i]);
    for (int i = 0; i < width; ++i) p[at.j + i] = codes[i];
  }
}

// v / s where s > 0, else 0 (a channel of scale 0), lane by lane.
template <class V, class S>
DYT_HOST_DEVICE DYT_INLINE V divide_or_zero(const V& v, const S& s) {
  if constexpr (std::is_floating_point<V>::value) return s > V(0) ? V(v / s) : V(0);
  else return lanes<V>::divide_or_zero(v, s);
}

// The per-channel scale with which a point-wise layer's static quantized
// forward never clips (layers/pointwise.hpp's static_scales() derives it):
// (|g| + |b|) (1 + 2^-(p - 6)) / qmax formed in double (within 3 * 2^-53
// relative, far inside the margin's slack), rounded up to C. The same bits
// on the host and the device (IEEE double arithmetic).
template <class Q, class C>
DYT_HOST_DEVICE DYT_INLINE C static_scale(double g, double b) {
  constexpr int precision = sizeof(C) == 8 ? 53 : 24;
  constexpr double margin = 1 + 1.0 / double(1ull << (precision - 6));
#if defined(__CUDA_ARCH__)
  const double bound = (::fabs(g) + ::fabs(b)) * margin / quant_format<Q>::qmax;
#else
  const double bound = (std::fabs(g) + std::fabs(b)) * margin / quant_format<Q>::qmax;
#endif
  C s = C(bound);
  if (double(s) < bound) {
#if defined(__CUDA_ARCH__)
    if constexpr (sizeof(C) == 8) s = ::nextafter(s, C(INFINITY));
    else s = ::nextafterf(s, C(INFINITY));
#else
    s = std::nextafter(s, C(INFINITY));
#endif
  }
  return s;
}

// One row's destinations (see the top of this file). Hold: y is held
// between the dynamic path's two sweeps (eng.keep: in registers on CUDA's
// staged engine, in a row buffer on the CPU's) rather than computed twice;
// worth it where y is dear (a squashing function an element: DyT 19-32%
// faster on an H200), not for the norms' affine y (held, RMSNorm and 16-bit
// LayerNorm measured 10-15% slower; bench/RESULTS.md, GPU session 8).
template <class Q, class C, bool Hold = false>
struct row_quantized {
  Q* codes;
  C* scale_out;  // null: the scale is not written (see the top of this file)
};
template <class Q, class C>
struct channel_quantized {
  Q* codes;
  const C* scales;
};

// The same for a whole tensor: the layers' forward loops ask each for row r.
template <class Q, class C, bool Hold = false>
struct row_quantized_rows {
  rows_view<Q> codes;
  C* scales;
  row_quantized<Q, C, Hold> row(index_t r) const { return {codes.row(r), scales + r}; }
};
template <class Q, class C>
struct channel_quantized_rows {
  rows_view<Q> codes;
  const C* scales;
  channel_quantized<Q, C> row(index_t r) const { return {codes.row(r), scales}; }
};

template <class Engine, class T, class F>
DYT_HOST_DEVICE DYT_INLINE void emit(const Engine& eng, T* y, F&& value) {
  eng.for_each([&](const auto& at) { at.store(y, value(at)); });
}

// y(at) for the dynamic path's two sweeps: held by the engine, or value
// itself (a reference to it: value may be a lambda holding the row's state).
template <bool Hold, class Engine, class F>
DYT_HOST_DEVICE DYT_INLINE auto held(const Engine& eng, F& value) {
  if constexpr (Hold) return eng.keep(value);
  else return [&value](const auto& at) { return value(at); };
}

template <class Engine, class Q, class C, bool Hold, class F>
DYT_HOST_DEVICE DYT_INLINE void emit(const Engine& eng, const row_quantized<Q, C, Hold>& out, F&& value) {
  static_assert(std::is_same<typename Engine::compute_type, C>::value, "scales are in the compute type");
  const C qmax = C(quant_format<Q>::qmax);
  const auto y = held<Hold>(eng, value);
  const C absmax = eng.max_abs(y);
  if (out.scale_out) *out.scale_out = absmax / qmax;
  if (absmax == C(0)) {
    eng.for_each([&](const auto& at) { store_codes(at, out.codes, at.splat(C(0))); });
    return;
  }
  // pre * inv = qmax / absmax, pre = 1 unless that overflows (a tiny absmax;
  // then y * 2^64 is exact and cannot overflow, being below 2^64 qmax / max).
  C pre = C(1), inv = qmax / absmax;
  if (absmax < qmax / largest<C>()) {
    pre = C(18446744073709551616.0);  // 2^64
    inv = qmax / (absmax * pre);
  }
  eng.for_each([&](const auto& at) {
    using V = decltype(y(at));
    store_codes(at, out.codes, V(V(y(at) * pre) * inv));
  });
}

template <class Engine, class Q, class C, class F>
DYT_HOST_DEVICE DYT_INLINE void emit(const Engine& eng, const channel_quantized<Q, C>& out, F&& value) {
  static_assert(std::is_same<typename Engine::compute_type, C>::value, "scales are in the compute type");
  eng.for_each([&](const auto& at) { store_codes(at, out.codes, divide_or_zero(value(at), at.load(out.scales))); });
}

}  // namespace ops
}  // namespace dyt
