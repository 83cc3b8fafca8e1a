// dyt/layers/derf.hpp: Derf (arXiv 2512.10938), y = gamma * erf(alpha * x + shift) + beta,
// with a learnable scalar shift. The point-wise layers' implementation
// (layers/pointwise.hpp) with erf.
#pragma once

#include "pointwise.hpp"

namespace dyt {

namespace detail {
struct derf_kind {
  using squash = ops::erf_squash;
  static constexpr bool has_shift = true;
  static constexpr pointwise_names names = DYT_POINTWISE_NAMES("dyt::Derf");
};
}  // namespace detail

// Derf over rows of `cols` channels: alpha and shift one value each
// (required), gamma and beta `cols` values each (either may be null). The
// caller owns every parameter. Backward's gradients are {dalpha, dshift,
// dgamma, dbeta}: dshift = sum over all elements of dy * gamma * erf'(u).
// erf is lanes<V>::erf: std::erf, xsimd::erf on the CPU's vectors (within
// 2.43 float ulp; docs/pointwise.md), erff on CUDA. The API is
// detail::pointwise_layer's, as DyT's.
template <class T, class Backend = cpu>
class Derf : public detail::pointwise_layer<detail::derf_kind, T, Backend> {
  using base = detail::pointwise_layer<detail::derf_kind, T, Backend>;

 public:
  Derf(const T* alpha, const T* shift, const T* gamma, const T* beta, index_t cols) noexcept
      : base(alpha, shift, gamma, beta, cols) {}

  const T* shift() const { return this->shift_pointer(); }
};

}  // namespace dyt
