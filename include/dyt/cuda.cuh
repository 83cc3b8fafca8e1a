// dyt/cuda.cuh: the one header a CUDA user includes (nvcc only).
//
//   dyt::DyT<T, dyt::cuda>, dyt::LayerNorm<T, dyt::cuda>, dyt::RMSNorm<T, dyt::cuda>
//       whole tensors in device memory, on a cudaStream_t, returning dyt::status
//   dyt::device::dyt_functor, dyt::device::warp_row, dyt::device::block_row<Threads>
//       the same math inside a user's own kernels
// T: float, __nv_bfloat16, __half, dyt::bfloat16, dyt::half.
#pragma once

#include "dyt.hpp"
#include "cuda/types.cuh"
#include "cuda/tanh.cuh"
#include "cuda/engine.cuh"
#include "cuda/kernels.cuh"
#include "cuda/launch.cuh"
#include "cuda/layers.cuh"
#include "cuda/functors.cuh"
