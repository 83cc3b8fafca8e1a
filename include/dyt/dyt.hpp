// dyt/dyt.hpp: the one header a CPU user includes.
//
//   dyt::DyT<T, Backend, Tanh>, dyt::LayerNorm<T, Backend>, dyt::RMSNorm<T, Backend>,
//   dyt::Derf<T, Backend>, dyt::DyISRU<T, Backend> (docs/pointwise.md)
//   T: float, double, dyt::bfloat16, dyt::half, or a layout-compatible 16-bit
//      type (Eigen::bfloat16, Eigen::half, std::bfloat16_t, std::float16_t)
//   Backend: dyt::cpu (xsimd where available), dyt::cpu_scalar, dyt::reference (float64)
//
// CUDA users include dyt/cuda/... separately; Eigen users dyt/eigen.hpp.
#pragma once

#include "alpha0.hpp"
#include "backend.hpp"
#include "backward_plan.hpp"
#include "config.hpp"
#include "layers/derf.hpp"
#include "layers/dyisru.hpp"
#include "layers/dyt.hpp"
#include "layers/layer_norm.hpp"
#include "layers/rms_norm.hpp"
#include "ops/tanh.hpp"
#include "status.hpp"
#include "types.hpp"
#include "view.hpp"
