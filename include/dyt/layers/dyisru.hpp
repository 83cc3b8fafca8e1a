// dyt/layers/dyisru.hpp: DyISRU (after arXiv 2503.21708), the inverse square
// root unit in DyT's form:
//   y = gamma * isru(alpha * x) + beta,   isru(u) = u / sqrt(1 + u^2),
// which is gamma * x / sqrt(b + x^2) + beta with b = 1 / alpha^2 (for alpha > 0;
// a negative alpha flips the sign, alpha = 0 gives beta). The point-wise
// layers' implementation (layers/pointwise.hpp) with isru.
#pragma once

#include "pointwise.hpp"

namespace dyt {

namespace detail {
struct dyisru_kind {
  using squash = ops::isru_squash;
  static constexpr bool has_shift = false;
  static constexpr pointwise_names names = DYT_POINTWISE_NAMES("dyt::DyISRU");
};
}  // namespace detail

// DyISRU over rows of `cols` channels: alpha one value (required), gamma and
// beta `cols` values each (either may be null), all owned by the caller.
// Gradients {dalpha, dgamma, dbeta}, as DyT's; the API is
// detail::pointwise_layer's.
template <class T, class Backend = cpu>
class DyISRU : public detail::pointwise_layer<detail::dyisru_kind, T, Backend> {
  using base = detail::pointwise_layer<detail::dyisru_kind, T, Backend>;

 public:
  DyISRU(const T* alpha, const T* gamma, const T* beta, index_t cols) noexcept : base(alpha, nullptr, gamma, beta, cols) {}
};

}  // namespace dyt
