// dyt/ops/affine.hpp: the per-channel scale and shift every layer ends with.
#pragma once

#include "../config.hpp"

namespace dyt {

// How RMSNorm applies its gain: y = gamma * xh, or Gemma's y = (1 + gamma) * xh
// (whose gamma is stored as an offset from one and initialised to zeros).
enum class gamma_form { plain, one_plus };

namespace ops {

// gamma * v + beta, where a null gamma means 1 and a null beta means 0.
template <class At, class T, class V>
DYT_HOST_DEVICE DYT_INLINE V affine(const At& at, const V& v, const T* gamma, const T* beta) {
  V out = gamma ? V(v * at.load(gamma)) : v;
  return beta ? V(out + at.load(beta)) : out;
}

// The gain that multiplies a column: gamma, 1 + gamma, or 1 without gamma.
template <class At, class T>
DYT_HOST_DEVICE DYT_INLINE auto gain(const At& at, const T* gamma, gamma_form form) {
  using V = decltype(at.load(gamma));
  if (!gamma) return V(at.splat(1));
  V g = at.load(gamma);
  return form == gamma_form::one_plus ? V(g + at.splat(1)) : g;
}

}  // namespace ops
}  // namespace dyt
