// dyt/cuda/kernels.cuh: whole-tensor kernels. Each layer's row glue (below)
// calls its ops/ row math with a device engine; four kernel templates run any
// glue over all rows:
//   forward_staged / backward_staged   rows that fit in registers (16-byte vectors)
//   forward_loop   / backward_loop     any other row (any width, any alignment)
// and reduce_partials sums the parameter-gradient partials. The quantized
// forward runs the forward kernels with a glue wrapped in quantized_rows.
//
// Rows go to teams round-robin over a persistent grid (some forwards launch a
// team for every row instead: launcher::plan). In backward each team
// keeps dgamma/dbeta sums (each thread at its own columns: in shared memory on
// the staged path, in the block's workspace slot on the loop path) and each
// thread its share of dalpha, across all the team's rows; at the end each block
// leaves one slot of partial sums in the workspace, the block's teams added in
// team order, and reduce_partials adds the slots in slot order. No atomics: the result depends only on the inputs and the grid, which
// depends only on the shape and the device.
#pragma once

#include "../backward_plan.hpp"
#include "../ops/affine.hpp"
#include "../ops/dyt.hpp"
#include "../ops/layer_norm.hpp"
#include "../ops/quantize.hpp"
#include "../ops/rms_norm.hpp"
#include "engine.cuh"
#include "tanh.cuh"

namespace dyt {
namespace cuda_detail {

// Everything a kernel needs, for every layer and pass (unused fields stay null).
template <class S>
struct row_args {
  index_t rows = 0, cols = 0;
  const S* x = nullptr;
  index_t x_stride = 0;
  S* y = nullptr;  // forward output (null in the quantized forward)
  index_t y_stride = 0;
  void* codes = nullptr;  // quantized forward (quantized_rows): the codes' rows, of Q
  index_t codes_stride = 0;
  float* scales_out = nullptr;       // dynamic: one scale a row
  const float* scales_in = nullptr;  // static: cols scales
  S* residual = nullptr;  // forward_residual: residual <- x + residual, then the layer on it
  index_t residual_stride = 0;
  const S* dh = nullptr;  // backward_residual: dx <- dh + the layer's dx
  index_t dh_stride = 0;
  const S* dy = nullptr;
  index_t dy_stride = 0;
  S* dx = nullptr;
  index_t dx_stride = 0;
  const S* alpha = nullptr;
  const S* shift = nullptr;  // Derf's (null for the layers without one)
  const S* gamma = nullptr;
  const S* beta = nullptr;
  float eps = 0.f;
  gamma_form form = gamma_form::plain;
  float* mean = nullptr;  // forward: statistics to save (null: not saved)
  float* rstd = nullptr;
  const float* saved_mean = nullptr;  // backward: saved statistics (null: recompute)
  const float* saved_rstd = nullptr;
  float* partials = nullptr;  // backward: gridDim.x slots of slot_stride floats
  index_t slot_stride = 0;
  int col_grads = 0;     // dgamma, dbeta present: partial vectors per slot
  int scalar_grads = 0;  // dalpha (and Derf's dshift): scalars after them
};

// ---- Row glue: what each layer's CPU row_forward / row_backward lambda does ----------
// LayerNorm and RMSNorm take the CPU layers' robust statistics (ops/, Robust =
// true; docs/numerics.md): rows of tiny spread next to their mean, and rows
// whose sums overflow float, are swept again, on a branch the whole team takes.
// backward() gets the dgamma and dbeta accumulators (null where the layer lacks
// the parameter) and returns the row's shares of the scalar gradients: dalpha
// and dshift for the point-wise layers, {0, 0} for the norms.
// The point-wise layers (DyT, Derf, DyISRU): Squash is the device's squash
// (ops/squash.hpp, mapped by device_squash in layers.cuh), Shift whether u
// has Derf's shift.
template <class Squash, bool Shift>
struct pointwise_rows {
  using math = ops::pointwise_math<Squash>;
  static constexpr bool local_sum = true;  // dalpha and dshift need only their grand totals
  static constexpr int k_fwd_16bit = 2;    // long 16-bit rows: vectors a thread in forward (measured best, DyT)
  static constexpr int k_warp_16bit = 3;   // 16-bit rows of one warp: up to 32 * 3 vectors (launcher::K_warp)
  static constexpr bool team_per_row_fwd_16bit = false, team_per_row_fwd_f32 = true;  // see launcher::plan
  static constexpr bool hold_quantized_y = true;  // y costs a squashing function: held (ops::row_quantized)

  template <class S>
  __device__ DYT_INLINE static auto map(const row_args<S>& a) {
    if constexpr (Shift) return ops::scale_shift<float>{load_one(a.alpha), load_one(a.shift)};
    else return load_one(a.alpha);
  }

  template <class E, class S, class Y>
  __device__ DYT_INLINE static void forward(const E& eng, const row_args<S>& a, index_t, const S* x, Y y, bool) {
    math::forward_row(eng, map(a), x, y, a.gamma, a.beta);
  }
  template <class E, class S, class DX>
  __device__ DYT_INLINE static ops::sum_pair<float> backward(const E& eng, const row_args<S>& a, index_t, const S* x,
                                                             const S* dy, DX dx, float* dgamma_acc, float* dbeta_acc) {
    if constexpr (Shift) {
      return math::backward_row(eng, map(a), x, dy, dx, a.gamma, dgamma_acc, dbeta_acc);
    } else {
      return {math::backward_row(eng, map(a), x, dy, dx, a.gamma, dgamma_acc, dbeta_acc), 0.f};
    }
  }
};

struct layer_norm_rows {
  using math = ops::layer_norm_math;
  static constexpr bool local_sum = false;
  static constexpr int k_fwd_16bit = 4, k_warp_16bit = 3;
  static constexpr bool team_per_row_fwd_16bit = true, team_per_row_fwd_f32 = false;
  static constexpr bool hold_quantized_y = false;  // y is cheap to compute again

  template <class E, class S, class Y>
  __device__ DYT_INLINE static void forward(const E& eng, const row_args<S>& a, index_t r, const S* x, Y y,
                                            bool leader) {
    math::forward_row<true>(eng, x, y, a.gamma, a.beta, a.eps, leader && a.mean ? a.mean + r : nullptr,
                      leader && a.rstd ? a.rstd + r : nullptr);
  }
  template <class E, class S, class DX>
  __device__ DYT_INLINE static ops::sum_pair<float> backward(const E& eng, const row_args<S>& a, index_t r,
                                                             const S* x, const S* dy, DX dx, float* dgamma_acc,
                                                             float* dbeta_acc) {
    float mean, rstd;
    if (a.saved_rstd) {
      mean = a.saved_mean[r];
      rstd = a.saved_rstd[r];
    } else {
      math::moments<true>(eng, x, a.eps, mean, rstd);
    }
    math::backward_row<true>(eng, x, dy, dx, a.gamma, mean, rstd, dgamma_acc, dbeta_acc);
    return {0.f, 0.f};
  }
};

struct rms_norm_rows {
  using math = ops::rms_norm_math;
  static constexpr bool local_sum = false;
  static constexpr int k_fwd_16bit = 4, k_warp_16bit = 3;
  static constexpr bool team_per_row_fwd_16bit = true, team_per_row_fwd_f32 = true;
  static constexpr bool hold_quantized_y = false;

  template <class E, class S, class Y>
  __device__ DYT_INLINE static void forward(const E& eng, const row_args<S>& a, index_t r, const S* x, Y y,
                                            bool leader) {
    math::forward_row<true>(eng, x, y, a.gamma, a.form, a.eps, leader && a.rstd ? a.rstd + r : nullptr);
  }
  template <class E, class S, class DX>
  __device__ DYT_INLINE static ops::sum_pair<float> backward(const E& eng, const row_args<S>& a, index_t r,
                                                             const S* x, const S* dy, DX dx, float* dgamma_acc,
                                                             float*) {
    const float rstd = a.saved_rstd ? a.saved_rstd[r] : math::rstd<true>(eng, x, a.eps);
    math::backward_row(eng, x, dy, dx, a.gamma, a.form, rstd, dgamma_acc);
    return {0.f, 0.f};
  }
};

// The quantized forward (ops/quantize.hpp): Glue's forward row with row r's
// codes as its destination in place of y (the kernels' y argument, null, is
// ignored). Static: the caller's per-channel scales; dynamic: the row's scale,
// written by the team's leader alone.
template <class Glue, class Q, bool Static>
struct quantized_rows : Glue {
  // Where the dynamic path holds y (Glue::hold_quantized_y), the staged
  // engine keeps it in registers beside x: 16-bit rows then take at most 2
  // vectors of 16 bytes a thread (3 or 4 spill at the forward's 64-register
  // cap; launcher::K_warp, K_fwd).
  static constexpr bool holds_y = Glue::hold_quantized_y && !Static;
  static constexpr int k_fwd_16bit = holds_y ? 2 : Glue::k_fwd_16bit;
  static constexpr int k_warp_16bit = holds_y ? 2 : Glue::k_warp_16bit;
  template <class E, class S>
  __device__ DYT_INLINE static void forward(const E& eng, const row_args<S>& a, index_t r, const S* x, S*,
                                            bool leader) {
    Q* const codes = static_cast<Q*>(a.codes) + r * a.codes_stride;
    if constexpr (Static)
      Glue::forward(eng, a, r, x, ops::channel_quantized<Q, float>{codes, a.scales_in}, leader);
    else
      Glue::forward(eng, a, r, x, ops::row_quantized<Q, float, holds_y>{codes, leader ? a.scales_out + r : nullptr},
                    leader);
  }
};

// A point-wise layer's never-clipping static scales (ops::static_scale), a
// thread a channel; a null gamma is 1, a null beta 0.
template <class Q, class S>
__global__ void __launch_bounds__(256) static_scales(const S* gamma, const S* beta, index_t cols, float* out) {
  const index_t j = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  const double g = gamma ? double(load_one(gamma + j)) : 1.0;
  const double b = beta ? double(load_one(beta + j)) : 0.0;
  out[j] = ops::static_scale<Q, float>(g, b);
}

// ---- Teams ---------------------------------------------------------------------------
// The block holds blockDim.x / (32 * team_warps) teams; red: 4 floats per warp.
__device__ DYT_INLINE team make_team(int team_warps, float* red) {
  team t;
  const int size = 32 * team_warps;
  const int index = int(threadIdx.x) / size;
  t.lane = int(threadIdx.x) % size;
  t.size = size;
  t.warps = team_warps;
  t.warp = t.lane / 32;
  t.barrier = int(blockDim.x) == size ? 0 : 1 + index;
  t.red = red + 4 * team_warps * index;
  return t;
}

constexpr int max_block = 512;  // threads; the launchers never ask for more

// Asks the copy engine to bring `bytes` (a multiple of 16, 16-byte aligned: the
// staged paths guarantee both) at p into L2, without waiting (sm_90's bulk
// prefetch; nothing on older devices).
__device__ DYT_INLINE void prefetch_l2(const void* p, std::size_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(unsigned(bytes)) : "memory");
#else
  (void)p;
  (void)bytes;
#endif
}

// ---- Forward ---------------------------------------------------------------------------
// Each team stages a row (x; dy too in backward) in registers. In forward it
// issues the loads of its next row before the row math starts on this one, so
// the memory system stays busy across the team's reductions and stores. The row math gets
// staged_tag(0) for x (and staged_tag(1) for dy), so every load of them
// resolves to registers at compile time.
// At most 64 registers a thread (two 512-thread blocks an SM): occupancy is what
// keeps enough rows in flight. Measured faster than uncapped, though a few
// instantiations spill a few dozen bytes.
// Pipelined = false: a team per row (launcher::plan), so there is no next row
// to load ahead, and no registers are spent on one.
template <class Glue, class S, int N, int K, bool Residual, bool Pipelined>
__global__ void __launch_bounds__(max_block, 1024 / max_block) forward_staged(row_args<S> a, int team_warps) {
  __shared__ float red[4 * max_block / 32];
  const team tm = make_team(team_warps, red);
  const index_t per_block = blockDim.x / tm.size;
  const index_t teams = index_t(gridDim.x) * per_block;
  const bool lead = tm.lane == 0;
  index_t r = blockIdx.x * per_block + threadIdx.x / tm.size;
  if constexpr (Residual) {
    // x and the residual staged, added in registers (h, rounded to S) and h
    // written back; the layer then runs on the staged h. Holding the next
    // rows as well would cost the registers occupancy needs (tried: spills),
    // so this kernel runs a team per row (launcher::plan) and the blocks
    // overlap each other's loads instead.
    staged_engine<S, N, K, 2> eng(a.cols, tm);
    for (; r < a.rows; r += teams) {
      eng.stage(0, a.x + r * a.x_stride);
      eng.stage(1, a.residual + r * a.residual_stride);
      eng.add_staged(a.residual + r * a.residual_stride);
      Glue::forward(eng, a, r, staged_tag<S>(0), a.y + r * a.y_stride, lead);
    }
  } else if constexpr (!Pipelined) {
    staged_engine<S, N, K, 1> eng(a.cols, tm);
    for (; r < a.rows; r += teams) {
      eng.stage(0, a.x + r * a.x_stride);
      Glue::forward(eng, a, r, staged_tag<S>(0), a.y + r * a.y_stride, lead);
    }
  } else {
    staged_engine<S, N, K, 1> eng(a.cols, tm);
    if (r < a.rows) eng.stage(0, a.x + r * a.x_stride);
    for (; r < a.rows; r += teams) {
      const bool more = r + teams < a.rows;
      if (more) eng.prefetch(0, a.x + (r + teams) * a.x_stride);
      Glue::forward(eng, a, r, staged_tag<S>(0), a.y + r * a.y_stride, lead);
      if (more) eng.advance();
    }
  }
}

// Residual: each thread adds its own columns of x into the residual row and
// the layer then reads that row back; every sweep gives a thread the same
// columns, so it only reads what it wrote itself (no barrier needed).
template <class Glue, class S, int N, bool Residual>
__global__ void __launch_bounds__(max_block) forward_loop(row_args<S> a, int team_warps) {
  __shared__ float red[4 * max_block / 32];
  const team tm = make_team(team_warps, red);
  const loop_engine<S, N> eng{a.cols, tm};
  for (index_t r = blockIdx.x; r < a.rows; r += gridDim.x) {
    const S* in = a.x + r * a.x_stride;
    if constexpr (Residual) {
      S* h = a.residual + r * a.residual_stride;
      eng.for_each([&](const auto& at) { at.store(h, at.load(in) + at.load(h)); });
      tm.sync();  // h[0] may be read by every thread (eng.first)
      in = h;
    }
    Glue::forward(eng, a, r, in, a.y + r * a.y_stride, tm.lane == 0);
  }
}

// ---- Backward --------------------------------------------------------------------------
// Block-wide sum of one value per thread, in warp then thread-block order; the
// result is valid in thread 0.
__device__ DYT_INLINE float block_sum(float v, float* scratch32) {
  v = warp_sum(v);
  __syncthreads();  // scratch32 may still be in use
  if ((threadIdx.x & 31) == 0) scratch32[threadIdx.x / 32] = v;
  __syncthreads();
  float s = scratch32[0];
  for (unsigned w = 1; w < blockDim.x / 32; ++w) s += scratch32[w];
  return s;
}

__device__ DYT_INLINE void add_to(ops::sum_pair<float>& acc, const ops::sum_pair<float>& v) {
  acc.first += v.first;
  acc.second += v.second;
}

// The block's scalar gradient sums (dalpha, then dshift) into its slot, after
// the column sums.
template <class S>
__device__ DYT_INLINE void store_scalars(const row_args<S>& a, const ops::sum_pair<float>& scalar, float* slot,
                                         float* scratch32) {
  for (int g = 0; g < a.scalar_grads; ++g) {
    const float s = block_sum(g == 0 ? scalar.first : scalar.second, scratch32);
    if (threadIdx.x == 0) slot[index_t(a.col_grads) * a.cols + g] = s;
  }
}

// dgamma/dbeta sums: each team keeps 2 * cols floats of shared memory (every
// thread only ever touches its own columns there, so no barrier is needed until
// the end), across all its rows; at the end the block adds its teams' sums in
// team order into its workspace slot.
// Where row r's dx goes: dx itself, or dh + dx (the fused residual backward).
// dh: the row of a.dh, or the staged row standing for it.
template <bool Residual, class S>
__device__ DYT_INLINE auto dx_row(const row_args<S>& a, index_t r, const S* dh) {
  if constexpr (Residual) return ops::plus<S>{dh, a.dx + r * a.dx_stride};
  else return a.dx + r * a.dx_stride;
}

// The rows a backward team stages: x, dy, and dh in the fused residual backward.
template <bool Residual, class S>
__device__ DYT_INLINE const S* backward_input(const row_args<S>& a, int i, index_t r) {
  if (i == 0) return a.x + r * a.x_stride;
  if (i == 1) return a.dy + r * a.dy_stride;
  return a.dh + r * a.dh_stride;
}

// ahead (the fused residual backward only): the launcher gave each thread
// Inputs * K slots of 16 bytes of shared memory after the dgamma/dbeta sums
// (launcher::plan), and the team copies its next row there (cp.async) while it
// works on this one. Otherwise it loads each row when it starts it, and the
// copy engine brings the next into L2. Measured on an H200 (bench/RESULTS.md,
// session 7): ahead takes the fused backward from 0.53-0.79 of copy to
// 0.52-0.94, but costs the plain backward of LayerNorm and RMSNorm 0.02-0.07,
// so the plain backward never compiles it.
template <class Glue, class S, int N, int K, bool Residual>
__global__ void __launch_bounds__(max_block) backward_staged(row_args<S> a, int team_warps, bool ahead) {
  constexpr int Inputs = Residual ? 3 : 2;  // x, dy (, dh): all staged before the row math starts
  extern __shared__ float4 dynamic_smem[];  // 2 * cols floats per team when the layer has gamma or beta
  __shared__ float red[4 * max_block / 32];
  __shared__ float scratch[32];
  const team tm = make_team(team_warps, red);
  const int per_block = int(blockDim.x) / tm.size;
  const int my_team = int(threadIdx.x) / tm.size;
  const index_t teams = index_t(gridDim.x) * per_block;

  staged_engine<S, N, K, Inputs, Glue::local_sum> eng(a.cols, tm);
  float* const sums = reinterpret_cast<float*>(dynamic_smem);
  float* const mine = sums + index_t(my_team) * 2 * a.cols;
  raw<S, N>* const ahead_slots = reinterpret_cast<raw<S, N>*>(sums + (a.col_grads ? index_t(per_block) * 2 * a.cols : 0));
  if (a.col_grads) {
    _Pragma("unroll") for (int k = 0; k < K; ++k) if (eng.valid(k)) {
      store_n<N>(mine + eng.col(k), fvec<N>::splat(0.f));
      store_n<N>(mine + a.cols + eng.col(k), fvec<N>::splat(0.f));
    }
  }
  float* const dgamma_acc = a.gamma ? mine : nullptr;
  float* const dbeta_acc = a.beta ? mine + a.cols : nullptr;
  ops::sum_pair<float> scalar{0.f, 0.f};  // dalpha's and dshift's shares
  ahead = Residual && ahead;
  index_t r = blockIdx.x * per_block + my_team;
  if (ahead && r < a.rows) {
    _Pragma("unroll") for (int i = 0; i < Inputs; ++i) eng.stage_ahead(ahead_slots, i, backward_input<Residual>(a, i, r));
    commit_async();
  }
  for (; r < a.rows; r += teams) {
    const bool more = r + teams < a.rows;
    if (ahead) {
      eng.take_ahead(ahead_slots);
      if (more) {
        _Pragma("unroll") for (int i = 0; i < Inputs; ++i)
          eng.stage_ahead(ahead_slots, i, backward_input<Residual>(a, i, r + teams));
        commit_async();
      }
    } else {
      if (tm.lane == 0 && more) {
        _Pragma("unroll") for (int i = 0; i < Inputs; ++i)
          prefetch_l2(backward_input<Residual>(a, i, r + teams), a.cols * sizeof(S));
      }
      _Pragma("unroll") for (int i = 0; i < Inputs; ++i) eng.stage(i, backward_input<Residual>(a, i, r));
    }
    add_to(scalar, Glue::backward(eng, a, r, staged_tag<S>(0), staged_tag<S>(1), dx_row<Residual>(a, r, staged_tag<S>(2)),
                                  dgamma_acc, dbeta_acc));
  }

  float* slot = a.partials + index_t(blockIdx.x) * a.slot_stride;
  __syncthreads();  // every team's sums complete
  if (a.col_grads) {
    // Slot vector 0 is dgamma (or dbeta without gamma), vector 1 dbeta.
    for (int g = 0; g < 2; ++g) {
      if (!(g == 0 ? a.gamma : a.beta)) continue;
      float* out = slot + (g == 1 && a.gamma ? a.cols : 0);
      for (index_t j = threadIdx.x; j < a.cols; j += blockDim.x) {
        float v = sums[g * a.cols + j];
        for (int t = 1; t < per_block; ++t) v += sums[index_t(t) * 2 * a.cols + g * a.cols + j];
        out[j] = v;
      }
    }
  }
  store_scalars(a, scalar, slot, scratch);
}

// One team per block; the block's partial sums accumulate in its workspace slot.
template <class Glue, class S, int N, bool Residual>
__global__ void __launch_bounds__(max_block) backward_loop(row_args<S> a, int team_warps, bool /*ahead: staged only*/) {
  __shared__ float red[4 * max_block / 32];
  __shared__ float scratch[32];
  const team tm = make_team(team_warps, red);
  const loop_engine<S, N, Glue::local_sum> eng{a.cols, tm};
  float* slot = a.partials + index_t(blockIdx.x) * a.slot_stride;
  float* dgamma_acc = a.gamma ? slot : nullptr;
  float* dbeta_acc = a.beta ? slot + (a.gamma ? a.cols : 0) : nullptr;
  // Each thread zeroes the columns it will accumulate into (the engine's own split).
  for (int g = 0; g < a.col_grads; ++g)
    eng.for_each([&](const auto& at) { at.store(slot + g * a.cols, at.splat(0.f)); });
  ops::sum_pair<float> scalar{0.f, 0.f};  // dalpha's and dshift's shares
  for (index_t r = blockIdx.x; r < a.rows; r += gridDim.x)
    add_to(scalar, Glue::backward(eng, a, r, a.x + r * a.x_stride, a.dy + r * a.dy_stride,
                                  dx_row<Residual>(a, r, a.dh + r * a.dh_stride),
                                  dgamma_acc, dbeta_acc));
  store_scalars(a, scalar, slot, scratch);
}

// Adds `slots` partial-sum slots in slot order and writes (or adds to) the
// gradients. Entry i of a slot is column i of dgamma, then dbeta, then dalpha
// (then Derf's dshift).
// Block (32, 8): 32 entries; the 8 rows of threads take every 8th slot, then
// one thread adds the 8 in row order.
template <class S>
__global__ void __launch_bounds__(256) reduce_partials(const float* partials, index_t slots, index_t slot_stride,
                                                       index_t cols, int col_grads, int scalar_grads, S* out0,
                                                       S* out1, S* out_scalar0, S* out_scalar1, bool accumulate) {
  __shared__ float part[8][33];
  const index_t n = index_t(col_grads) * cols + scalar_grads;
  const index_t i = index_t(blockIdx.x) * 32 + threadIdx.x;
  float s = 0.f;
  if (i < n)
    for (index_t k = threadIdx.y; k < slots; k += 8) s += partials[k * slot_stride + i];
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || i >= n) return;
  float total = part[0][threadIdx.x];
  for (int y = 1; y < 8; ++y) total += part[y][threadIdx.x];
  const index_t col_entries = index_t(col_grads) * cols;
  S* out = i == col_entries ? out_scalar0 : out_scalar1;
  index_t j = 0;
  if (i < col_entries) {
    out = i < cols ? out0 : out1;
    j = i < cols ? i : i - cols;
  }
  if (!out) return;
  store_one(out + j, accumulate ? load_one(out + j) + total : total);
}

}  // namespace cuda_detail
}  // namespace dyt
