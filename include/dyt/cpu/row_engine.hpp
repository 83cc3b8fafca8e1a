// dyt/cpu/row_engine.hpp: how the CPU backends sweep one row.
//
// The row algorithms in ops/ are written against an "engine" offering
//   eng.for_each(f)   calls f(at) for every position of the row, in order;
//   eng.sum(f)        the same, returning the sum of what f returns;
//   eng.sum2(f)       the same for a sum_pair of two sums;
//   eng.first(p)      the row's first value, in C (what LayerNorm centres on);
//   eng.max_abs(f)    the largest |f(at)| over the row (the quantized
//                     forward's dynamic scale, ops/quantize.hpp), NaN if any
//                     f(at) is NaN;
//   eng.keep(f)       f's values over the row, computed once into a row
//                     buffer and read back from it (the quantized forward's
//                     Hold; only held_row_engine, below, offers it);
// where `at` is a position that loads, stores and broadcasts: a vector of
// simd::width<C> columns in the body of the row and single columns in the
// tail (any column count >= 1). Reductions use a fixed association order, so
// results are bit-identical run after run.
#pragma once

#include <cmath>
#include <cstdint>

#include "../ops/lanes.hpp"
#include "../types.hpp"
#include "../view.hpp"

#if DYT_USE_XSIMD
#include "convert.hpp"
#endif

namespace dyt {
namespace cpu_detail {

// One column, in compute type C (float, or double for the reference backend).
template <class C>
struct scalar_at {
  using value_type = C;
  index_t j;

  template <class T>
  DYT_INLINE C load(const T* p) const {
    return static_cast<C>(scalar_traits<T>::load(p[j]));
  }
  // Rounds once to T's format (the reference backend's double goes through
  // float first for 16-bit T; the tests' tolerances cover that double rounding).
  template <class T>
  DYT_INLINE void store(T* p, C v) const {
    p[j] = scalar_traits<T>::store(static_cast<compute_t<T>>(v));
  }
  DYT_INLINE static C splat(C c) { return c; }
};

#if DYT_USE_XSIMD
// simd::width<C> consecutive columns starting at j; loads and stores are
// unaligned. With Prefetch, each load also asks for the line DYT_PREFETCH_BYTES
// ahead (see row_engine).
template <class C, bool Prefetch>
struct vector_at {
  using value_type = simd::batch<C>;
  index_t j;

  template <class T>
  DYT_INLINE value_type load(const T* p) const {
    static_assert(std::is_same<compute_t<T>, C>::value, "vector lanes compute in T's own compute type");
#if DYT_PREFETCH_BYTES > 0 && (defined(__GNUC__) || defined(__clang__))
    // A prefetch never faults, so reaching past the row's end is harmless (the
    // address is formed as an integer: no out-of-bounds pointer arithmetic).
    if constexpr (Prefetch)
      __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(p + j) + DYT_PREFETCH_BYTES));
#endif
    return simd::load(p + j);
  }
  template <class T>
  DYT_INLINE void store(T* p, const value_type& v) const {
    simd::store(p + j, v);
  }
  DYT_INLINE static value_type splat(C c) { return value_type(c); }
};
#endif

// Prefetch: software prefetch on every vector load, for row sweeps that read
// rows from memory beside per-channel parameters L1 cannot keep next to a row
// (DyT): then the hardware prefetcher alone keeps too few DRAM reads in flight
// on one core. Sweeps over a row alone do better without it (bench/RESULTS.md).
template <class C, bool Vectorized, bool Prefetch = false>
struct row_engine {
  using compute_type = C;
  index_t cols;

  template <class F>
  DYT_INLINE void for_each(F&& f) const {
    index_t j = 0;
#if DYT_USE_XSIMD
    if constexpr (Vectorized) {
      constexpr index_t w = simd::width<C>;
      for (; j + w <= cols; j += w) f(vector_at<C, Prefetch>{j});
    }
#endif
    for (; j < cols; ++j) f(scalar_at<C>{j});
  }

  // Vector body with four accumulators (sum2: two pairs), so the adds are
  // bound by throughput, not latency; folded ((a0 + a1) + (a2 + a3)) summed
  // across lanes, plus the scalar tail, always in that order: results are
  // bit-identical run after run.
  template <class T>
  DYT_INLINE C first(const T* p) const {
    return C(scalar_traits<T>::load(p[0]));
  }

  template <class F>
  DYT_INLINE C sum(F&& f) const {
    index_t j = 0;
    C body = C(0);
#if DYT_USE_XSIMD
    if constexpr (Vectorized) {
      using V = simd::batch<C>;
      constexpr index_t w = simd::width<C>;
      V a0(C(0)), a1(C(0)), a2(C(0)), a3(C(0));
      for (; j + 4 * w <= cols; j += 4 * w) {
        a0 += f(vector_at<C, Prefetch>{j});
        a1 += f(vector_at<C, Prefetch>{j + w});
        a2 += f(vector_at<C, Prefetch>{j + 2 * w});
        a3 += f(vector_at<C, Prefetch>{j + 3 * w});
      }
      for (; j + w <= cols; j += w) a0 += f(vector_at<C, Prefetch>{j});
      body = simd::reduce_add((a0 + a1) + (a2 + a3));
    }
#endif
    C tail = C(0);
    for (; j < cols; ++j) tail += f(scalar_at<C>{j});
    return body + tail;
  }

  // The maximum is exact and the same in any order; NaN is tracked apart
  // from it (x86's max returns one operand or the other when either is NaN,
  // depending on their order), so the vector body and the scalar loop give
  // the same bits: a NaN anywhere makes the result the quiet NaN.
  template <class F>
  DYT_INLINE C max_abs(F&& f) const {
    index_t j = 0;
    C largest = C(0);
    bool saw_nan = false;
#if DYT_USE_XSIMD
    if constexpr (Vectorized) {
      using V = simd::batch<C>;
      constexpr index_t w = simd::width<C>;
      V m(C(0));
      auto nan = xsimd::isnan(m);
      for (; j + w <= cols; j += w) {
        const V a = xsimd::abs(V(f(vector_at<C, Prefetch>{j})));
        nan = nan || xsimd::isnan(a);
        m = xsimd::max(m, a);
      }
      saw_nan = xsimd::any(nan);
      alignas(64) C lanes_of_m[w];
      m.store_aligned(lanes_of_m);
      for (index_t i = 0; i < w; ++i) largest = lanes_of_m[i] > largest ? lanes_of_m[i] : largest;
    }
#endif
    for (; j < cols; ++j) {
      const C v = f(scalar_at<C>{j});
      const C a = v < C(0) ? -v : v;
      saw_nan = saw_nan || !(a == a);
      largest = a > largest ? a : largest;
    }
    return saw_nan ? C(NAN) : largest;
  }

  template <class F>
  DYT_INLINE ops::sum_pair<C> sum2(F&& f) const {
    index_t j = 0;
    ops::sum_pair<C> body{C(0), C(0)};
#if DYT_USE_XSIMD
    if constexpr (Vectorized) {
      using V = simd::batch<C>;
      constexpr index_t w = simd::width<C>;
      V a0(C(0)), b0(C(0)), a1(C(0)), b1(C(0));
      for (; j + 2 * w <= cols; j += 2 * w) {
        const ops::sum_pair<V> s0 = f(vector_at<C, Prefetch>{j});
        const ops::sum_pair<V> s1 = f(vector_at<C, Prefetch>{j + w});
        a0 += s0.first;
        b0 += s0.second;
        a1 += s1.first;
        b1 += s1.second;
      }
      if (j + w <= cols) {
        const ops::sum_pair<V> s0 = f(vector_at<C, Prefetch>{j});
        a0 += s0.first;
        b0 += s0.second;
        j += w;
      }
      body = {simd::reduce_add(a0 + a1), simd::reduce_add(b0 + b1)};
    }
#endif
    ops::sum_pair<C> tail{C(0), C(0)};
    for (; j < cols; ++j) {
      ops::sum_pair<C> s = f(scalar_at<C>{j});
      tail.first += s.first;
      tail.second += s.second;
    }
    return {body.first + tail.first, body.second + tail.second};
  }
};

// A row_engine with a buffer of cols values of C, for keep(). A type of its
// own, so that every other instantiation, and the code the compiler makes of
// it, stays as it was.
template <class C, bool Vectorized, bool Prefetch = false>
struct held_row_engine : row_engine<C, Vectorized, Prefetch> {
  C* row_buffer;

  // Stores and loads of C are exact, so what keep's reader returns is what f
  // returned, bit for bit: holding changes the cost, never the result.
  struct kept {
    const C* row;
    template <class At>
    DYT_INLINE auto operator()(const At& at) const {
      return at.load(row);
    }
  };
  template <class F>
  DYT_INLINE kept keep(F&& f) const {
    this->for_each([&](const auto& at) { at.store(row_buffer, f(at)); });
    return {row_buffer};
  }
};

}  // namespace cpu_detail
}  // namespace dyt
