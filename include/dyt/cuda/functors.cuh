// dyt/cuda/functors.cuh: the layers as device functions for a user's own kernels,
// so they fuse into the user's epilogues.
//
//   dyt::device::dyt_functor<T>     DyT on one element: f(x, col)
//   dyt::device::warp_row           LayerNorm/RMSNorm of one row by one warp
//   dyt::device::block_row<Threads> ... by a whole (1-D) block
//
// The row functions follow CUB's shape: the caller declares the TempStorage in
// shared memory (nothing for a warp), every thread of the warp/block calls the
// same function with the same arguments, and statistics come back in every thread.
// One object may normalize any number of rows in turn; as with CUB, put a
// __syncthreads() between its last call and any other use of its TempStorage.
// They run the same ops/ math as the whole-tensor kernels, one column per access,
// so they accept any column count and alignment.
#pragma once

#include "../ops/affine.hpp"
#include "../ops/dyt.hpp"
#include "../ops/layer_norm.hpp"
#include "../ops/rms_norm.hpp"
#include "../layers/dyt.hpp"
#include "engine.cuh"
#include "tanh.cuh"

namespace dyt {
namespace device {

// y = gamma[col] * tanh(alpha * x) + beta[col] in float; gamma and beta may be
// null (1 and 0). Tanh: tanh_approx (default for 16-bit T) or tanh_precise.
template <class T, class Tanh = cuda_detail::device_tanh_t<default_tanh_t<T>>>
struct dyt_functor {
  float alpha;
  const T* gamma;
  const T* beta;

  __host__ __device__ dyt_functor(float alpha_, const T* gamma_ = nullptr, const T* beta_ = nullptr)
      : alpha(alpha_), gamma(gamma_), beta(beta_) {}

  __device__ DYT_INLINE float operator()(float x, index_t col) const {
    const typename cuda_detail::loop_engine<T, 1>::at at{col};
    return ops::affine(at, ops::dyt_math<Tanh>::squash(x, alpha), gamma, beta);
  }
};

// A team of Warps warps (1: a warp, lanes = threadIdx.x % 32; otherwise the
// whole 1-D block of 32 * Warps threads) normalizing one row together.
template <int Warps>
class row_team {
 public:
  struct TempStorage {
    float red[Warps > 1 ? 4 * Warps : 1];
  };

  __device__ explicit row_team(TempStorage& storage) {
    tm_.size = 32 * Warps;
    tm_.warps = Warps;
    tm_.lane = Warps == 1 ? int(threadIdx.x % 32) : int(threadIdx.x);
    tm_.warp = tm_.lane / 32;
    tm_.barrier = 0;
    tm_.red = storage.red;
  }

  // Thread `lane` handles columns lane, lane + 32 * Warps, ...: dgamma/dbeta
  // accumulators below are updated at those columns only.
  __device__ int lane() const { return tm_.lane; }

  template <class T>
  __device__ void layer_norm_moments(const T* x, index_t cols, float eps, float& mean, float& rstd) const {
    const auto eng = engine<T>(cols);
    ops::layer_norm_math::moments(eng, x, eps, mean, rstd);
    parity_ = eng.parity;
  }

  // y may be x. mean/rstd (single floats, may be null) are written by lane 0.
  template <class T>
  __device__ void layer_norm_forward(const T* x, T* y, const T* gamma, const T* beta, index_t cols, float eps,
                                     float* mean = nullptr, float* rstd = nullptr) const {
    const bool lead = tm_.lane == 0;
    const auto eng = engine<T>(cols);
    ops::layer_norm_math::forward_row(eng, x, y, gamma, beta, eps, lead ? mean : nullptr, lead ? rstd : nullptr);
    parity_ = eng.parity;
  }

  // Adds this row's dy * xh and dy to dgamma_acc/dbeta_acc (float, may be null;
  // only this team may use them) and writes dx (which may be x or dy).
  template <class T>
  __device__ void layer_norm_backward(const T* x, const T* dy, T* dx, const T* gamma, index_t cols, float mean,
                                      float rstd, float* dgamma_acc = nullptr, float* dbeta_acc = nullptr) const {
    const auto eng = engine<T>(cols);
    ops::layer_norm_math::backward_row(eng, x, dy, dx, gamma, mean, rstd, dgamma_acc, dbeta_acc);
    parity_ = eng.parity;
  }

  template <class T>
  __device__ float rms_norm_rstd(const T* x, index_t cols, float eps) const {
    const auto eng = engine<T>(cols);
    const float r = ops::rms_norm_math::rstd(eng, x, eps);
    parity_ = eng.parity;
    return r;
  }

  template <class T>
  __device__ void rms_norm_forward(const T* x, T* y, const T* gamma, index_t cols, float eps, float* rstd = nullptr,
                                   gamma_form form = gamma_form::plain) const {
    const auto eng = engine<T>(cols);
    ops::rms_norm_math::forward_row(eng, x, y, gamma, form, eps, tm_.lane == 0 ? rstd : nullptr);
    parity_ = eng.parity;
  }

  template <class T>
  __device__ void rms_norm_backward(const T* x, const T* dy, T* dx, const T* gamma, index_t cols, float rstd,
                                    float* dgamma_acc = nullptr, gamma_form form = gamma_form::plain) const {
    const auto eng = engine<T>(cols);
    ops::rms_norm_math::backward_row(eng, x, dy, dx, gamma, form, rstd, dgamma_acc);
    parity_ = eng.parity;
  }

 private:
  template <class T>
  __device__ cuda_detail::loop_engine<T, 1> engine(index_t cols) const {
    return {cols, tm_, parity_};
  }

  cuda_detail::team tm_;
  mutable int parity_ = 0;  // carried from call to call: see cuda_detail::team
};

using warp_row = row_team<1>;
template <int BlockThreads>
using block_row = row_team<BlockThreads / 32>;

}  // namespace device
}  // namespace dyt
