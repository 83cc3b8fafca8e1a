// dyt/cuda/tanh.cuh: the tanh policies on the device.
//
//   tanh_precise  CUDA's tanhf (2 ulp by CUDA's math documentation).
//   tanh_approx   the hardware's tanh.approx.f32 (sm_75+): one MUFU instruction,
//                 maximum relative error 2^-10.987 (PTX ISA). That is a quarter of
//                 a bf16 ulp, invisible after the store; for half it is up to
//                 one half-ulp, so a half result may land one ulp off (the
//                 tests bound exactly that).
// The CPU's tanh_fast (a rational approximation) maps to tanh_approx on the
// device, so a layer's default policy (default_tanh_t: fast for 16-bit storage,
// precise for float) means the same thing on both backends: cheap where the
// storage cannot see the difference, accurate where it can.
#pragma once

#include <type_traits>

#include "../ops/tanh.hpp"
#include "types.cuh"

namespace dyt {

struct tanh_approx {
  __device__ DYT_INLINE static float one(float x) {
#if defined(__CUDA_ARCH__)
    float y;
    asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#else
    return x;  // never runs: device code only
#endif
  }
  __device__ DYT_INLINE static float apply(float x) { return one(x); }
  template <int N>
  __device__ DYT_INLINE static cuda_detail::fvec<N> apply(const cuda_detail::fvec<N>& x) {
    return cuda_detail::map(x, [](float a) { return one(a); });
  }
};

namespace cuda_detail {
// The policy a device kernel runs for a layer's policy.
template <class Tanh>
using device_tanh_t = std::conditional_t<std::is_same<Tanh, tanh_fast>::value, tanh_approx, Tanh>;
}  // namespace cuda_detail

}  // namespace dyt
