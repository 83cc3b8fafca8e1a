// dyt/cuda/engine.cuh: how a CUDA warp or block sweeps one row.
//
// The row math in ops/ is written against an "engine" (see cpu/row_engine.hpp):
//   eng.for_each(f), eng.sum(f), eng.sum2(f), eng.max_abs(f), eng.first(p), eng.cols
// and, on the device only, eng.keep(f) (f's values held for a second sweep:
// ops::row_quantized's Hold), where f gets a cursor `at` with at.load(p),
// at.store(p, v), at.splat(c). On the device a *team* of `warps` consecutive
// warps of one block shares a row: a warp (warps == 1, shuffles only) for short
// rows, several warps or the whole block for long ones. Each thread owns fixed
// columns; sums reduce the thread's lanes in order, then the warp by an xor
// butterfly (commutative steps, so every lane ends with the same bits), then
// the team's warps in warp order through shared memory. Every reduction has a
// fixed association: bit-identical run after run.
//
// Two engines:
//  - staged_engine<S, N, K>: each thread holds K vectors of N columns (16-byte
//    accesses). stage(i, p) loads a whole input row (x; dy in backward, and dh
//    in the fused residual backward; or stage_ahead/take_ahead through shared memory) into
//    registers once, and ops/ gets staged_tag(i) in place of p, whose loads
//    read the registers, so ops/ may sweep a row three times while memory sees
//    it once. That is exact: ops/ reads every column before writing it (outputs
//    may alias inputs only as the same view), so the registers always hold what
//    memory holds at that point.
//  - loop_engine<S, N>: any column count, no staging; N = 1 is the path for any
//    alignment, N > 1 the aligned path for rows too long to stage.
#pragma once

#include <type_traits>

#include "../ops/lanes.hpp"
#include "types.cuh"

namespace dyt {
namespace cuda_detail {

__device__ DYT_INLINE float warp_sum(float v) {
  _Pragma("unroll") for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The largest |v| (max_abs) is taken on the bits of |v| as unsigned integers:
// they order as the magnitudes do, and every NaN's bits exceed +Inf's, so the
// integer maximum is exact, commutative and propagates NaN, in one integer
// max an element (fmaxf would drop a NaN).
__device__ DYT_INLINE unsigned abs_bits(float v) { return __float_as_uint(v) & 0x7fffffffu; }
__device__ DYT_INLINE unsigned max_abs_into(unsigned m, float v) { return max(m, abs_bits(v)); }
template <int N>
__device__ DYT_INLINE unsigned max_abs_into(unsigned m, const fvec<N>& v) {
  _Pragma("unroll") for (int i = 0; i < N; ++i) m = max(m, abs_bits(v.v[i]));
  return m;
}
// Back to a float: the magnitude, or NaN.
__device__ DYT_INLINE float magnitude(unsigned bits) { return bits > 0x7f800000u ? __uint_as_float(0x7fffffffu) : __uint_as_float(bits); }

// `warps` consecutive warps of a block sweeping one row. `red` points to
// 4 * warps floats of shared memory owned by the team (unused for one warp).
// Its two halves alternate between successive reductions (`parity`, which the
// engine carries from row to row), so one barrier per reduction is enough: a
// thread can overwrite a half only after the next reduction's barrier, which
// every thread reaches after reading it.
struct team {
  int lane = 0;     // thread index in the team
  int size = 32;    // threads in the team
  int warps = 1;
  int warp = 0;     // warp index in the team
  int barrier = 0;  // named barrier; 0 is __syncthreads (the team is the block)
  float* red = nullptr;

  __device__ DYT_INLINE void sync() const {
    if (barrier == 0) __syncthreads();
    else asm volatile("bar.sync %0, %1;" ::"r"(barrier), "r"(size) : "memory");
  }

  __device__ DYT_INLINE float reduce(float v, int& parity) const {
    v = warp_sum(v);
    if (warps == 1) return v;
    float* half = red + parity * 2 * warps;
    parity ^= 1;
    if ((lane & 31) == 0) half[warp] = v;
    sync();
    float s = half[0];
    for (int w = 1; w < warps; ++w) s += half[w];
    return s;
  }

  // The team's largest magnitude from each thread's max_abs_into bits: a
  // float (NaN if any is NaN), in every thread.
  __device__ DYT_INLINE float reduce_max(unsigned bits, int& parity) const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    bits = __reduce_max_sync(0xffffffffu, bits);  // one instruction (sm_80+)
#else
    _Pragma("unroll") for (int o = 16; o > 0; o >>= 1) bits = max(bits, __shfl_xor_sync(0xffffffffu, bits, o));
#endif
    if (warps == 1) return magnitude(bits);
    unsigned* half = reinterpret_cast<unsigned*>(red + parity * 2 * warps);
    parity ^= 1;
    if ((lane & 31) == 0) half[warp] = bits;
    sync();
    unsigned m = half[0];
    for (int w = 1; w < warps; ++w) m = max(m, half[w]);
    return magnitude(m);
  }

  __device__ DYT_INLINE ops::sum_pair<float> reduce2(float a, float b, int& parity) const {
    a = warp_sum(a);
    b = warp_sum(b);
    if (warps == 1) return {a, b};
    float* half = red + parity * 2 * warps;
    parity ^= 1;
    if ((lane & 31) == 0) {
      half[warp] = a;
      half[warps + warp] = b;
    }
    sync();
    ops::sum_pair<float> s{half[0], half[warps]};
    for (int w = 1; w < warps; ++w) {
      s.first += half[w];
      s.second += half[warps + w];
    }
    return s;
  }
};

// ---- Any-width loads and stores --------------------------------------------------
// N consecutive values of U at p (aligned to 16 bytes when N > 1), in float.
template <int N, class U>
__device__ DYT_INLINE auto load_n(const U* p) {
  if constexpr (N == 1) {
    return load_one(p);
  } else {
    constexpr int per = 16 / int(sizeof(U));  // values per 16-byte access
    static_assert(N % per == 0, "whole 16-byte accesses");
    fvec<N> out;
    _Pragma("unroll") for (int c = 0; c < N / per; ++c) {
      const fvec<per> part = widen(load_raw<U, per>(p + c * per));
      _Pragma("unroll") for (int i = 0; i < per; ++i) out.v[c * per + i] = part.v[i];
    }
    return out;
  }
}

template <int N, class U, class V>
__device__ DYT_INLINE void store_n(U* p, const V& v) {
  if constexpr (N == 1) {
    store_one(p, v);
  } else {
    constexpr int per = 16 / int(sizeof(U));
    _Pragma("unroll") for (int c = 0; c < N / per; ++c) {
      fvec<per> part;
      _Pragma("unroll") for (int i = 0; i < per; ++i) part.v[i] = v.v[c * per + i];
      store_raw<U, per>(p + c * per, narrow<U, per>(part));
    }
  }
}

template <int N>
using lanes_t = std::conditional_t<N == 1, float, fvec<N>>;

template <int N>
__device__ DYT_INLINE lanes_t<N> splat_n(float c) {
  if constexpr (N == 1) return c;
  else return fvec<N>::splat(c);
}

// Stand-ins the kernels hand to the row math instead of the staged rows (x,
// dy). Never dereferenced, only compared, never equal to a real allocation;
// being constants, every comparison of one with another folds at compile time,
// so registers are only ever indexed by constants (a run-time choice between
// two staged rows would move them to local memory).
template <class S>
__device__ DYT_INLINE const S* staged_tag(int i) {
  return reinterpret_cast<const S*>(std::uintptr_t(64 + 16 * i));
}

// ---- Asynchronous copies to shared memory (cp.async, sm_80+) ------------------------
// 16 bytes from global p to shared s, of which the first `bytes` are read (the
// rest zero-filled; callers pass 16).
__device__ DYT_INLINE void copy_async_16(void* s, const void* p, unsigned bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(unsigned(__cvta_generic_to_shared(s))), "l"(p),
               "r"(bytes)
               : "memory");
#else
  (void)bytes;
  *static_cast<uint4*>(s) = *static_cast<const uint4*>(p);
#endif
}
// Closes the copies this thread issued so far into one group.
__device__ DYT_INLINE void commit_async() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
// Waits until every group this thread committed has landed in shared memory
// (visible to this thread only: each reads back just its own slots).
__device__ DYT_INLINE void wait_async() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group 0;" ::: "memory");
#endif
}
// 0, computed from v: an instruction that uses v only when v has arrived.
__device__ DYT_INLINE unsigned zero_after(unsigned v) {
  unsigned z;
  asm volatile("and.b32 %0, %1, 0;" : "=r"(z) : "r"(v));
  return z;
}

// ---- The loop engine ---------------------------------------------------------------
template <class S, int N, bool LocalSum = false>
struct loop_engine {
  using compute_type = float;
  index_t cols;
  team tm;
  mutable int parity = 0;

  struct at {
    index_t j;
    template <class U>
    __device__ DYT_INLINE lanes_t<N> load(const U* p) const {
      return load_n<N>(p + j);
    }
    template <class U>
    __device__ DYT_INLINE void store(U* p, const lanes_t<N>& v) const {
      store_n<N>(p + j, v);
    }
    __device__ DYT_INLINE static lanes_t<N> splat(float c) { return splat_n<N>(c); }
  };

  // Thread `lane` owns columns [(lane + i * size) * N, ... + N), i = 0, 1, ...
  template <class F>
  __device__ DYT_INLINE void for_each(F&& f) const {
    const index_t step = index_t(tm.size) * N;
#pragma unroll 4
    for (index_t j = index_t(tm.lane) * N; j < cols; j += step) f(at{j});
  }

  // Read from memory by every thread: a row the team itself wrote must be
  // behind a team barrier first (the fused residual forward has one).
  template <class U>
  __device__ DYT_INLINE float first(const U* p) const {
    return load_one(p);
  }

  template <class F>
  __device__ DYT_INLINE float sum(F&& f) const {
    lanes_t<N> a = splat_n<N>(0.f);
    for_each([&](const at& c) { a = a + f(c); });
    float s;
    if constexpr (N == 1) s = a;
    else s = a.sum();
    return LocalSum ? s : tm.reduce(s, parity);
  }

  // The row's largest |f(at)| (NaN if any is NaN), over the whole team
  // whatever LocalSum says: a quantized row's scale needs it everywhere.
  template <class F>
  __device__ DYT_INLINE float max_abs(F&& f) const {
    unsigned m = 0;
    for_each([&](const at& c) { m = max_abs_into(m, f(c)); });
    return tm.reduce_max(m, parity);
  }

  // Nothing held: f computes again (the staged engine keeps values).
  template <class F>
  __device__ DYT_INLINE std::decay_t<F> keep(F&& f) const {
    return f;
  }

  template <class F>
  __device__ DYT_INLINE ops::sum_pair<float> sum2(F&& f) const {
    lanes_t<N> a = splat_n<N>(0.f), b = splat_n<N>(0.f);
    for_each([&](const at& c) {
      const ops::sum_pair<lanes_t<N>> p = f(c);
      a = a + p.first;
      b = b + p.second;
    });
    float sa, sb;
    if constexpr (N == 1) {
      sa = a;
      sb = b;
    } else {
      sa = a.sum();
      sb = b.sum();
    }
    if (LocalSum) return {sa, sb};
    return tm.reduce2(sa, sb, parity);
  }
};

// ---- The staged engine -------------------------------------------------------------
// Inputs: how many rows it stages (1: x for forward; 2: x and dy for backward;
// 3: x, dy and dh for the fused residual backward, and x and the residual for
// its forward, which adds them in slot 0).
template <class S, int N, int K, int Inputs, bool LocalSum = false>
struct staged_engine {
  using compute_type = float;
  index_t cols;
  team tm;
  mutable int parity = 0;  // the team's reduction parity (see team), across rows
  raw<S, N> buf[Inputs][K] = {};  // the row ops/ works on (zeros before the first)
  raw<S, N> next[Inputs][K];  // the team's next row, loads in flight meanwhile

  // One engine serves all the rows a team runs: stage() each row, then hand it to ops/.
  __device__ DYT_INLINE staged_engine(index_t cols_, const team& tm_) : cols(cols_), tm(tm_) {}

  // Slot k of this thread covers columns col(k) .. col(k) + N - 1.
  __device__ DYT_INLINE index_t col(int k) const { return (index_t(k) * tm.size + tm.lane) * N; }
  __device__ DYT_INLINE bool valid(int k) const { return col(k) < cols; }

  // Issues the loads of row p into input slot i; ops/ then reads it through
  // staged_tag<S>(i) in place of p.
  __device__ DYT_INLINE void stage(int i, const S* p) {
    _Pragma("unroll") for (int k = 0; k < K; ++k) if (valid(k)) buf[i][k] = load_raw<S, N>(p + col(k));
  }
  // Software pipelining: prefetch(i, p) issues the loads of the next row while
  // ops/ still works on this one; advance() then makes it the current row
  // (register moves, constant indices).
  __device__ DYT_INLINE void prefetch(int i, const S* p) {
    _Pragma("unroll") for (int k = 0; k < K; ++k) if (valid(k)) next[i][k] = load_raw<S, N>(p + col(k));
  }
  __device__ DYT_INLINE void advance() {
    _Pragma("unroll") for (int i = 0; i < Inputs; ++i) {
      _Pragma("unroll") for (int k = 0; k < K; ++k) buf[i][k] = next[i][k];
    }
  }

  // Staging ahead through shared memory (backward, sm_80+): stage_ahead()
  // starts copies of a row into this thread's own slots of `ahead` (Inputs * K
  // slots of 16 bytes a thread, sized by the launcher), with no register held
  // while they fly; take_ahead() waits for them and moves them into buf. A
  // thread reads only slots it filled itself, so no barrier is needed.
  __device__ DYT_INLINE raw<S, N>* ahead_slot(raw<S, N>* ahead, int i, int k) const {
    return ahead + (index_t(i) * K + k) * blockDim.x + threadIdx.x;  // consecutive threads, consecutive 16 bytes
  }
  __device__ DYT_INLINE void stage_ahead(raw<S, N>* ahead, int i, const S* p) {
    _Pragma("unroll") for (int k = 0; k < K; ++k) if (valid(k)) {
      // The slot was last read into buf[i][k]; the copy's size depends on that
      // register (always 16), so the copy cannot start before the read is done.
      copy_async_16(ahead_slot(ahead, i, k), p + col(k), 16u + zero_after(buf[i][k].bits.x));
    }
  }
  __device__ DYT_INLINE void take_ahead(raw<S, N>* ahead) {
    wait_async();
    _Pragma("unroll") for (int i = 0; i < Inputs; ++i) {
      _Pragma("unroll") for (int k = 0; k < K; ++k) if (valid(k)) buf[i][k] = *ahead_slot(ahead, i, k);
    }
  }

  // The fused residual forward: input slot 0 (x) becomes h = x + slot 1 (the
  // residual), rounded to S as a store rounds it, and h is written to p (the
  // residual row); ops/ then reads h through staged_tag<S>(0).
  __device__ DYT_INLINE void add_staged(S* p) {
    static_assert(Inputs == 2, "x and the residual staged");
    _Pragma("unroll") for (int k = 0; k < K; ++k) if (valid(k)) {
      fvec<N> h = widen(buf[0][k]);
      h += widen(buf[1][k]);
      buf[0][k] = narrow<S, N>(h);
      store_raw<S, N>(p + col(k), buf[0][k]);
    }
  }

  struct at {
    const staged_engine* e;
    int k;
    index_t j;  // the slot's first column, col(k)

    template <class U>
    __device__ DYT_INLINE fvec<N> load(const U* p) const {
      using B = std::remove_cv_t<U>;
      if constexpr (std::is_same<B, S>::value) {
        // Spelled out, not a loop with a return inside: that form put buf in
        // local memory (ptxas: a 300-byte stack frame, backward 30% slower).
        if (p == staged_tag<S>(0)) return widen(e->buf[0][k]);
        if (Inputs >= 2 && p == staged_tag<S>(1)) return widen(e->buf[Inputs >= 2 ? 1 : 0][k]);
        if (Inputs >= 3 && p == staged_tag<S>(2)) return widen(e->buf[Inputs >= 3 ? 2 : 0][k]);
      }
      return load_n<N>(p + j);
    }
    template <class U>
    __device__ DYT_INLINE void store(U* p, const fvec<N>& v) const {
      store_n<N>(p + j, v);
    }
    __device__ DYT_INLINE static fvec<N> splat(float c) { return fvec<N>::splat(c); }
  };

  template <class F>
  __device__ DYT_INLINE void for_each(F&& f) const {
    _Pragma("unroll") for (int k = 0; k < K; ++k) if (valid(k)) f(at{this, k, col(k)});
  }

  // A staged row's column 0 is in team lane 0's registers (slot 0, element 0):
  // a team sum of it and zeros hands it to every thread exactly (a collective:
  // every thread of the team calls it, as ops/ does, on a uniform branch).
  template <class U>
  __device__ DYT_INLINE float first(const U* p) const {
    using B = std::remove_cv_t<U>;
    if constexpr (std::is_same<B, S>::value) {
      _Pragma("unroll") for (int i = 0; i < Inputs; ++i) if (p == staged_tag<S>(i)) {
        const float v = tm.lane == 0 ? widen(buf[i][0]).v[0] : 0.f;
        return tm.reduce(v, parity);
      }
    }
    return load_one(p);
  }

  template <class F>
  __device__ DYT_INLINE float sum(F&& f) const {
    fvec<N> a = fvec<N>::splat(0.f);
    _Pragma("unroll") for (int k = 0; k < K; ++k) if (valid(k)) a += f(at{this, k, col(k)});
    const float s = a.sum();
    return LocalSum ? s : tm.reduce(s, parity);
  }

  // As loop_engine::max_abs.
  template <class F>
  __device__ DYT_INLINE float max_abs(F&& f) const {
    unsigned m = 0;
    _Pragma("unroll") for (int k = 0; k < K; ++k) if (valid(k)) m = max_abs_into(m, f(at{this, k, col(k)}));
    return tm.reduce_max(m, parity);
  }

  // f's values at this thread's slots, computed once and held in registers
  // (indexed by the slot, a constant once the sweeps unroll): the dynamic
  // quantized forward of the point-wise layers sweeps y twice, for the row's
  // maximum and to encode (ops::row_quantized's Hold).
  struct kept {
    fvec<N> v[K];
    __device__ DYT_INLINE fvec<N> operator()(const at& c) const { return v[c.k]; }
  };
  template <class F>
  __device__ DYT_INLINE kept keep(F&& f) const {
    kept out;
    _Pragma("unroll") for (int k = 0; k < K; ++k) out.v[k] = valid(k) ? f(at{this, k, col(k)}) : fvec<N>::splat(0.f);
    return out;
  }

  template <class F>
  __device__ DYT_INLINE ops::sum_pair<float> sum2(F&& f) const {
    fvec<N> a = fvec<N>::splat(0.f), b = fvec<N>::splat(0.f);
    _Pragma("unroll") for (int k = 0; k < K; ++k) if (valid(k)) {
      const ops::sum_pair<fvec<N>> p = f(at{this, k, col(k)});
      a += p.first;
      b += p.second;
    }
    if (LocalSum) return {a.sum(), b.sum()};
    return tm.reduce2(a.sum(), b.sum(), parity);
  }
};

}  // namespace cuda_detail
}  // namespace dyt
