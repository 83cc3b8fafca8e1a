// dyt/layers/dyt.hpp: the Dynamic Tanh layer, y = gamma * tanh(alpha * x) + beta.
// Its implementation is the point-wise layers' (layers/pointwise.hpp) with tanh.
#pragma once

#include <type_traits>

#include "../ops/tanh.hpp"
#include "pointwise.hpp"

namespace dyt {

// tanh_fast's few ulp of float are far below a bf16/half ulp: invisible after
// the store, and about twice as fast. Float and double keep full accuracy.
template <class T>
using default_tanh_t = std::conditional_t<is_16bit_v<T>, tanh_fast, tanh_precise>;

namespace detail {
template <class Tanh>
struct dyt_kind {
  using squash = ops::tanh_squash<Tanh>;
  static constexpr bool has_shift = false;
  static constexpr pointwise_names names = DYT_POINTWISE_NAMES("dyt::DyT");
};

// The reference backend is the truth the others are measured against: it
// always takes the accurate tanh, in double.
template <class Backend, class Tanh>
using dyt_tanh_t = std::conditional_t<std::is_same<Backend, reference>::value, tanh_precise, Tanh>;
}  // namespace detail

// DyT over rows of `cols` channels. Holds the caller's parameter pointers and
// never owns or copies them: alpha (one value, required), gamma and beta
// (`cols` values each; either may be null: no beta is LLaMA's DyT, neither is
// DiT's plain tanh(alpha x)). Every call checks its arguments first and
// returns a status; a refused call writes nothing.
//
// The whole API (forward, backward, forward_residual, backward_residual, the
// chunk API, reduce_gradients, workspace_bytes; gradients {dalpha, dgamma,
// dbeta}) is detail::pointwise_layer's, documented there.
template <class T, class Backend = cpu, class Tanh = default_tanh_t<T>>
class DyT : public detail::pointwise_layer<detail::dyt_kind<detail::dyt_tanh_t<Backend, Tanh>>, T, Backend> {
  using base = detail::pointwise_layer<detail::dyt_kind<detail::dyt_tanh_t<Backend, Tanh>>, T, Backend>;

 public:
  using tanh_policy = detail::dyt_tanh_t<Backend, Tanh>;

  DyT(const T* alpha, const T* gamma, const T* beta, index_t cols) noexcept : base(alpha, nullptr, gamma, beta, cols) {}
};

}  // namespace dyt
