// dyt/layers/dyt.hpp: the Dynamic Tanh layer, y = gamma * tanh(alpha * x) + beta.
#pragma once

#include <type_traits>

#include "../ops/dyt.hpp"
#include "../ops/tanh.hpp"
#include "layer_base.hpp"

namespace dyt {

// tanh_fast's few ulp of float are far below a bf16/half ulp: invisible after
// the store, and about twice as fast. Float and double keep full accuracy.
template <class T>
using default_tanh_t = std::conditional_t<is_16bit_v<T>, tanh_fast, tanh_precise>;

// DyT over rows of `cols` channels. Holds the caller's parameter pointers and
// never owns or copies them: alpha (one value, required), gamma and beta
// (`cols` values each; either may be null: no beta is LLaMA's DyT, neither is
// DiT's plain tanh(alpha x)). Every call checks its arguments first and
// returns a status; a refused call writes nothing.
template <class T, class Backend = cpu, class Tanh = default_tanh_t<T>>
class DyT : public detail::layer_base<DyT<T, Backend, Tanh>, T, Backend> {
  using base = detail::layer_base<DyT<T, Backend, Tanh>, T, Backend>;
  friend base;

 public:
  using typename base::compute_type;
  // The reference backend is the truth the others are measured against: it
  // always takes the accurate tanh, in double.
  using tanh_policy = std::conditional_t<std::is_same<Backend, reference>::value, tanh_precise, Tanh>;

  // Where backward writes each parameter's gradient; null skips it.
  struct gradients {
    T* dalpha = nullptr;
    T* dgamma = nullptr;
    T* dbeta = nullptr;
  };

  DyT(const T* alpha, const T* gamma, const T* beta, index_t cols) noexcept
      : base(cols), alpha_(alpha), gamma_(gamma), beta_(beta) {}

  const T* alpha() const { return alpha_; }
  const T* gamma() const { return gamma_; }
  const T* beta() const { return beta_; }

  // y = gamma * tanh(alpha * x) + beta. y may be x itself (in place). Rows are
  // independent: a thread pool may run x.subrows(a, b) / y.subrows(a, b) slices.
  status forward(rows_view<const T> x, rows_view<T> y) const {
    return this->forward_impl("dyt::DyT::forward", x, y, {});
  }

  // dx, and each gradient whose pointer is set; dx may be x or dy itself.
  // Parameter gradients are summed over the default plan's chunks (see
  // backward_plan.hpp) in a scratch buffer allocated here; the chunk API below
  // gives bit-identical results without allocating.
  status backward(rows_view<const T> x, rows_view<const T> dy, rows_view<T> dx, const gradients& grads,
                  grad_mode mode = grad_mode::overwrite) const {
    return this->backward_impl("dyt::DyT::backward", x, dy, dx, grads, mode, {});
  }

  // Fused residual add, as a pre-norm block's residual stream runs it:
  // residual <- x + residual (in place; rounded to T, as an add kernel would
  // store it), then y = DyT(residual), in one pass over memory (x and the
  // residual read once, the new residual and y written once). y may be x; it
  // must not overlap residual, which holds the block's next input.
  status forward_residual(rows_view<const T> x, rows_view<T> residual, rows_view<T> y) const {
    return this->forward_residual_impl("dyt::DyT::forward_residual", x, residual, y, {});
  }

  // Its backward. h: the residual forward_residual left (this layer's input);
  // dy: the gradient of y; dh: the gradient reaching h through the residual
  // stream. Writes dx = dh + the layer's dx (the gradient of both x and the
  // old residual), rounded once; dx may be dh (in place), h or dy.
  status backward_residual(rows_view<const T> h, rows_view<const T> dy, rows_view<const T> dh, rows_view<T> dx,
                           const gradients& grads, grad_mode mode = grad_mode::overwrite) const {
    return this->backward_residual_impl("dyt::DyT::backward_residual", h, dy, dh, dx, grads, mode, {});
  }

  // Chunk API, for a caller's thread pool: a workspace of workspace_bytes(plan)
  // bytes; backward_chunks() over disjoint chunk ranges from any threads (each
  // writes dx for its rows and its chunks' partial sums); then, once all are
  // done, reduce_gradients() adds the partial sums in chunk order.
  status backward_chunks(const backward_plan& plan, index_t first_chunk, index_t last_chunk, rows_view<const T> x,
                         rows_view<const T> dy, rows_view<T> dx, void* workspace, std::size_t workspace_size) const {
    return this->chunks_impl("dyt::DyT::backward_chunks", plan, first_chunk, last_chunk, x, dy, dx, workspace,
                             workspace_size, {});
  }

  // backward_residual's chunks (reduce_gradients then as above).
  status backward_chunks_residual(const backward_plan& plan, index_t first_chunk, index_t last_chunk,
                                  rows_view<const T> h, rows_view<const T> dy, rows_view<const T> dh, rows_view<T> dx,
                                  void* workspace, std::size_t workspace_size) const {
    return this->chunks_residual_impl("dyt::DyT::backward_chunks_residual", plan, first_chunk, last_chunk, h, dy, dh,
                                      dx, workspace, workspace_size, {});
  }

  status reduce_gradients(const backward_plan& plan, const void* workspace, std::size_t workspace_size,
                          const gradients& grads, grad_mode mode = grad_mode::overwrite) const {
    return this->reduce_impl("dyt::DyT::reduce_gradients", plan, workspace, workspace_size, grads, mode);
  }

 private:
  using C = compute_type;
  using math = ops::dyt_math<tanh_policy>;
  static constexpr const char* name = "dyt::DyT";
  static constexpr int stats_saved = 0;
  // One sweep reading x (and dy) beside gamma and beta: measured faster with
  // software prefetch (bench/RESULTS.md).
  static constexpr bool prefetch_rows = true;

  C load_alpha() const { return C(scalar_traits<T>::load(*alpha_)); }

  void check_params(detail::arg_check& check) const { check.not_null(alpha_, "alpha"); }

  void add_params(detail::region_list& regions) const {
    regions.array("alpha", alpha_, 1, false).array("gamma", gamma_, this->cols(), false);
    regions.array("beta", beta_, this->cols(), false);
  }

  // Partial sums per chunk: dgamma (if the layer has gamma), dbeta (if beta), dalpha.
  detail::grad_layout layout() const { return {this->cols(), int(gamma_ != nullptr) + int(beta_ != nullptr), 1}; }

  void check_grads(detail::arg_check& check, detail::region_list& regions, const gradients& g) const {
    check.grad_for(g.dgamma, gamma_, "dgamma", "gamma").grad_for(g.dbeta, beta_, "dbeta", "beta");
    regions.array("dalpha", g.dalpha, 1, true).array("dgamma", g.dgamma, this->cols(), true);
    regions.array("dbeta", g.dbeta, this->cols(), true);
  }

  void grad_outputs(const gradients& g, T** col_out, T** scalar_out) const {
    int n = 0;
    if (gamma_) col_out[n++] = g.dgamma;
    if (beta_) col_out[n++] = g.dbeta;
    *scalar_out = g.dalpha;
  }

  auto row_forward(rows_view<const T> x, rows_view<T> y, row_stats<C>) const {
    return [=, alpha = load_alpha()](const auto& eng, index_t r) {
      math::forward_row(eng, alpha, x.row(r), y.row(r), gamma_, beta_);
    };
  }

  // dx: a rows_view<T>, or detail::plus_rows<T> (fused residual backward).
  template <class DX>
  auto row_backward(rows_view<const T> x, rows_view<const T> dy, DX dx, row_stats<const C>) const {
    return [=, alpha = load_alpha()](const auto& eng, index_t r, C* const* col_acc, C* scalar_acc) {
      C* dgamma_acc = gamma_ ? col_acc[0] : nullptr;
      C* dbeta_acc = beta_ ? col_acc[gamma_ ? 1 : 0] : nullptr;
      const C row_dalpha = math::backward_row(eng, alpha, x.row(r), dy.row(r), dx.row(r), gamma_, dgamma_acc, dbeta_acc);
      if (scalar_acc) *scalar_acc += row_dalpha;
    };
  }

  const T* alpha_;
  const T* gamma_;
  const T* beta_;
};

}  // namespace dyt
