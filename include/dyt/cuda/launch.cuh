// dyt/cuda/launch.cuh: host side of the whole-tensor passes: how a shape maps
// to a kernel, a team size and a grid; the workspace that grid needs; and the
// launches, on the caller's stream.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "../backward_plan.hpp"
#include "../status.hpp"
#include "kernels.cuh"

namespace dyt {
namespace cuda_detail {

inline status cuda_status(cudaError_t e, const char* fn, const char* what) {
  if (e == cudaSuccess) return status();
  return status::error(errc::device_error, "%s: %s failed: %s (%s)", fn, what, cudaGetErrorName(e),
                       cudaGetErrorString(e));
}

// How one pass runs.
//   path 0: loop engine, one column per access (any alignment, any width)
//   path 1: loop engine, 16-byte accesses (rows too long to stage)
//   path 2, 3, 4: staged engine, one warp a row, K = 1, 2, K_warp vectors of 16 bytes per thread
//   path 5: staged engine, several warps a row, K = K_fwd or K_bwd
struct launch_plan {
  int path = 0;
  int team_warps = 1;
  int block = 32;
  index_t grid = 1;
  std::size_t smem = 0;
  bool ahead = false;  // backward_staged (fused residual) copies each team's next row to shared memory
};

inline bool aligned16(const void* p) { return p == nullptr || std::uintptr_t(p) % 16 == 0; }

// Residual: the fused residual variants (forward_residual, backward_residual),
// separate instantiations so that the plain passes keep their code and registers.
template <class Glue, class S, bool Residual = false>
struct launcher {
  static constexpr int N = 16 / int(sizeof(S));  // columns per 16-byte access
  // Path 4's K: one warp per row up to 32 K vectors: 768 16-bit columns (the
  // glue's k_warp_16bit: 2 where the quantized forward holds y), and 512 f32
  // columns in forward but 768 in backward, whose multi-warp teams get a block
  // each (see plan()), which costs more partial sums at that width.
  static constexpr int K_warp = sizeof(S) == 4 ? 4 : Glue::k_warp_16bit;
  static constexpr int K_warp_bwd = sizeof(S) == 4 ? 6 : 3;
  // Path 5's K, for longer rows, several warps each. Forward: 4 vectors of 16
  // bytes a thread (16 f32 or 32 16-bit columns), so a team moves as many bytes
  // per row in bf16 as in f32; 16-bit rows take the glue's K (DyT's forward
  // does better with 2, as does the quantized forward that holds y: fewer
  // registers; measured, see bench/RESULTS.md). The fused residual forward
  // takes the plain forward's K, so that its row sums, hence its bits, are
  // the plain layer's on h.
  static constexpr int K_fwd = sizeof(S) == 4 ? 4 : Glue::k_fwd_16bit;
  // Backward: 16 columns a thread (x and dy both staged), so 4096-column 16-bit
  // rows take one 256-thread block.
  static constexpr int K_bwd = sizeof(S) == 4 ? 4 : 2;

  // Whether a view can take the 16-byte path: aligned base and stride.
  template <class U>
  static bool vector_view(const U* data, index_t stride) {
    return aligned16(data) && stride % N == 0;
  }

  // The staged paths' vectors of 16 bytes per thread and staged row.
  static constexpr int staged_k(int path, bool backward) {
    return path == 2 ? 1 : path == 3 ? 2 : path == 4 ? (backward ? K_warp_bwd : K_warp) : (backward ? K_bwd : K_fwd);
  }

  // The plain forward of multi-warp rows (path 5) runs a team for every row
  // where that measured faster on an H200 (Glue::team_per_row_fwd_*: f32 DyT
  // and RMSNorm, 16-bit LayerNorm and RMSNorm, by 0.03 to 0.10 of copy at 4096
  // and 8192 columns; bench/RESULTS.md, session 5), and then loads no row
  // ahead; one-warp rows keep the persistent grid, which was as fast or faster
  // there. The fused residual forward always runs a team per row (plan()).
  static constexpr bool team_per_row_fwd = sizeof(S) == 4 ? Glue::team_per_row_fwd_f32 : Glue::team_per_row_fwd_16bit;
  static constexpr bool pipelined_path5 = !Residual && !team_per_row_fwd;

  // The kernel a plan launches: the one place a path maps to a kernel. A
  // template on the pass, so that a launcher used for one pass only (the
  // quantized forward's) instantiates only that pass's kernels.
  template <bool Backward>
  static const void* kernel(int path) {
    if constexpr (Backward) {
      switch (path) {
        case 0: return (const void*)&backward_loop<Glue, S, 1, Residual>;
        case 1: return (const void*)&backward_loop<Glue, S, N, Residual>;
        case 2: return (const void*)&backward_staged<Glue, S, N, 1, Residual>;
        case 3: return (const void*)&backward_staged<Glue, S, N, 2, Residual>;
        case 5: return (const void*)&backward_staged<Glue, S, N, K_bwd, Residual>;
        default: return (const void*)&backward_staged<Glue, S, N, K_warp_bwd, Residual>;
      }
    } else {
      switch (path) {
        case 0: return (const void*)&forward_loop<Glue, S, 1, Residual>;
        case 1: return (const void*)&forward_loop<Glue, S, N, Residual>;
        case 2: return (const void*)&forward_staged<Glue, S, N, 1, Residual, !Residual>;
        case 3: return (const void*)&forward_staged<Glue, S, N, 2, Residual, !Residual>;
        case 5: return (const void*)&forward_staged<Glue, S, N, K_fwd, Residual, pipelined_path5>;
        default: return (const void*)&forward_staged<Glue, S, N, K_warp, Residual, !Residual>;
      }
    }
  }

  // The plan for rows x cols. vectors: every view, gamma and beta allow 16-byte
  // accesses and cols % N == 0. col_grads: the layer has gamma or beta (backward
  // then keeps their sums in shared memory). The grid is what the device holds at once (a
  // persistent grid), so it depends on the device, never on timing.
  template <bool Backward>
  static cudaError_t plan(index_t rows, index_t cols, bool vectors, bool col_grads, launch_plan& p) {
    p = launch_plan();
    int teams = 1;
    if (vectors && cols % N == 0) {
      const index_t v = cols / N;
      if (v <= 32) p.path = 2;
      else if (v <= 64) p.path = 3;
      else if (v <= 32 * (Backward ? K_warp_bwd : K_warp)) p.path = 4;
      if (p.path != 0) {
        p.team_warps = 1;
      } else {
        const index_t per_warp = 32 * index_t(Backward ? K_bwd : K_fwd);
        const index_t warps = (v + per_warp - 1) / per_warp;
        if (warps <= max_block / 32) {
          p.path = 5;
          p.team_warps = int(warps);
        } else {
          p.path = 1;
          p.team_warps = max_block / 32;
        }
      }
      // Several teams share a block where that keeps blocks at 256 threads, but
      // in backward only one-warp teams do: multi-warp teams synchronize with
      // named barriers, and a block whose teams run different numbers of rows
      // (hence of barriers) before the block-wide merge of their dgamma/dbeta
      // sums is reported as racing by compute-sanitizer's racecheck.
      if (p.path >= 2 && p.team_warps <= 8 && !(Backward && p.team_warps > 1)) teams = 8 / p.team_warps;
    } else {
      const index_t warps = (cols + 127) / 128;
      p.team_warps = int(warps < 1 ? 1 : (warps > 8 ? 8 : warps));
    }
    p.block = 32 * p.team_warps * teams;
    p.smem = Backward && p.path >= 2 && col_grads ? std::size_t(teams) * 2 * std::size_t(cols) * sizeof(float) : 0;

    int device = 0, sms = 0, per_sm = 0;
    const void* const fn = kernel<Backward>(p.path);
    cudaError_t e = cudaGetDevice(&device);
    if (e == cudaSuccess && p.smem > 32 * 1024)  // static shared memory comes on top: ask early
      e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, int(p.smem));
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    if (e != cudaSuccess) return e;
    const index_t needed = (rows + teams - 1) / teams;
    // At most a block an SM (decode-sized calls): every team has at most one
    // row, so the grid is `needed` whatever the occupancy, and nothing is
    // staged ahead; the occupancy and attribute queries below are skipped
    // (host time that a call of 1 to 32 rows would otherwise pay each time).
    if (needed <= index_t(sms)) {
      p.grid = needed;
      return cudaSuccess;
    }
    // A team for every row (see team_per_row_fwd): blocks the hardware starts
    // as others finish keep more rows in flight than a persistent grid. The
    // fused residual forward cannot hold a team's next rows in registers beside
    // its two inputs (forward_staged), so it always runs so (measured 0.61-0.83
    // of copy persistent, 0.73-0.96 so; bench/RESULTS.md). Capped where a grid's
    // x dimension ends; the kernels loop over any rows beyond.
    if (!Backward && (Residual || (p.path == 5 && team_per_row_fwd))) {
      p.grid = needed < index_t(0x7fffffff) ? needed : index_t(0x7fffffff);
      return cudaSuccess;
    }
    e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fn, p.block, p.smem);
    // The fused residual backward stages the team's next row (h, dy, dh) ahead
    // in shared memory, where that fits without costing occupancy.
    if (e == cudaSuccess && Residual && Backward && p.path >= 2) {
      const std::size_t smem = p.smem + std::size_t(p.block) * 3 * staged_k(p.path, true) * 16;
      int optin = 0, per_sm_ahead = 0;
      cudaFuncAttributes attr;
      e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
      if (e == cudaSuccess) e = cudaFuncGetAttributes(&attr, fn);
      if (e == cudaSuccess && smem + attr.sharedSizeBytes <= std::size_t(optin)) {
        if (smem > 32 * 1024) e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
        if (e == cudaSuccess) e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm_ahead, fn, p.block, smem);
        if (e == cudaSuccess && per_sm_ahead >= per_sm && per_sm_ahead > 0) {
          p.smem = smem;
          p.ahead = true;
        }
      }
    }
    if (e != cudaSuccess) return e;
    const index_t resident = index_t(sms) * index_t(per_sm < 1 ? 1 : per_sm);
    p.grid = needed < resident ? needed : resident;
    return cudaSuccess;
  }

  // Launches kernel<Backward>(p.path) with the kernels' arguments, by address
  // (row_args, team_warps; backward's `ahead` too). The error, as after a
  // <<<>>> launch, is cudaGetLastError's, which also clears it.
  template <bool Backward>
  static cudaError_t launch(const row_args<S>& a, const launch_plan& p, cudaStream_t stream) {
    row_args<S> args = a;
    int team_warps = p.team_warps;
    bool ahead = p.ahead;
    void* forward_params[] = {&args, &team_warps};
    void* backward_params[] = {&args, &team_warps, &ahead};
    (void)cudaLaunchKernel(kernel<Backward>(p.path), dim3(unsigned(p.grid)), dim3(unsigned(p.block)),
                           Backward ? backward_params : forward_params, p.smem, stream);
    return cudaGetLastError();
  }

  static cudaError_t forward(const row_args<S>& a, const launch_plan& p, cudaStream_t stream) {
    return launch<false>(a, p, stream);
  }

  // The rows pass, then (when the layer has parameter gradients) the fixed-order sum.
  static cudaError_t backward(const row_args<S>& a, const launch_plan& p, S* out0, S* out1, S* out_scalar0,
                              S* out_scalar1, bool accumulate, cudaStream_t stream) {
    cudaError_t e = launch<true>(a, p, stream);
    const index_t n = index_t(a.col_grads) * a.cols + a.scalar_grads;
    if (e != cudaSuccess || n == 0 || !(out0 || out1 || out_scalar0 || out_scalar1)) return e;
    reduce_partials<S><<<unsigned((n + 31) / 32), dim3(32, 8), 0, stream>>>(
        a.partials, p.grid, a.slot_stride, a.cols, a.col_grads, a.scalar_grads, out0, out1, out_scalar0, out_scalar1,
        accumulate);
    return cudaGetLastError();
  }
};

}  // namespace cuda_detail
}  // namespace dyt
