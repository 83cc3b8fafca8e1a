// dyt/layers/rms_norm.hpp: RMSNorm over the last dimension,
// y = gamma * x / sqrt(mean(x^2) + eps), or Gemma's (1 + gamma) * x / ...
#pragma once

#include "../ops/rms_norm.hpp"
#include "layer_base.hpp"

namespace dyt {

// RMSNorm over rows of `cols` channels with the caller's gamma (`cols`
// values; null for no gain, which gamma_form::one_plus does not allow).
template <class T, class Backend = cpu>
class RMSNorm : public detail::layer_base<RMSNorm<T, Backend>, T, Backend> {
  using base = detail::layer_base<RMSNorm<T, Backend>, T, Backend>;
  friend base;

 public:
  using typename base::compute_type;
  using stats = row_stats<compute_type>;              // rstd per row (mean stays null)
  using saved_stats = row_stats<const compute_type>;

  struct gradients {
    T* dgamma = nullptr;
  };

  RMSNorm(const T* gamma, index_t cols, double eps = 1e-6, gamma_form form = gamma_form::plain) noexcept
      : base(cols), gamma_(gamma), eps_(eps), form_(form) {}

  const T* gamma() const { return gamma_; }
  double eps() const { return eps_; }
  gamma_form form() const { return form_; }

  status forward(rows_view<const T> x, rows_view<T> y) const {
    return this->forward_impl("dyt::RMSNorm::forward", x, y, {});
  }
  // Also writes each row's rstd = 1/sqrt(mean(x^2) + eps); save.mean must be null.
  status forward(rows_view<const T> x, rows_view<T> y, stats save) const {
    return this->forward_impl("dyt::RMSNorm::forward", x, y, save);
  }

  // Quantized forward (ops/quantize.hpp, docs/quantize.md): y as int8
  // (std::int8_t) or E4M3 (dyt::float8_e4m3) codes, y ~ code * scale, with
  // each row's scale = its largest |y| / qmax written to scales.out (x.rows
  // values), found in the same pass that normalizes (the row is swept once
  // more while in cache). With `save`, also each row's statistics, as forward.
  template <class Q>
  status forward_quantized(rows_view<const T> x, rows_view<Q> y, per_row_scale<compute_type> scales) const {
    return this->forward_quantized_impl("dyt::RMSNorm::forward_quantized", x, y, scales, {});
  }
  template <class Q>
  status forward_quantized(rows_view<const T> x, rows_view<Q> y, per_row_scale<compute_type> scales,
                           stats save) const {
    return this->forward_quantized_impl("dyt::RMSNorm::forward_quantized", x, y, scales, save);
  }

  // `saved` (rstd only) skips recomputing it.
  status backward(rows_view<const T> x, rows_view<const T> dy, rows_view<T> dx, const gradients& grads,
                  grad_mode mode = grad_mode::overwrite, saved_stats saved = {}) const {
    return this->backward_impl("dyt::RMSNorm::backward", x, dy, dx, grads, mode, saved);
  }

  status backward_chunks(const backward_plan& plan, index_t first_chunk, index_t last_chunk, rows_view<const T> x,
                         rows_view<const T> dy, rows_view<T> dx, void* workspace, std::size_t workspace_size,
                         saved_stats saved = {}) const {
    return this->chunks_impl("dyt::RMSNorm::backward_chunks", plan, first_chunk, last_chunk, x, dy, dx, workspace,
                             workspace_size, saved);
  }

  // Fused residual add: residual <- x + residual (in place; rounded to T, as an
  // add kernel would store it), then y = RMSNorm(residual), in one pass over memory
  // (x and the residual read once, the new residual and y written once). y may
  // be x; it must not overlap residual. With `save`, also each row's rstd.
  status forward_residual(rows_view<const T> x, rows_view<T> residual, rows_view<T> y) const {
    return this->forward_residual_impl("dyt::RMSNorm::forward_residual", x, residual, y, {});
  }
  status forward_residual(rows_view<const T> x, rows_view<T> residual, rows_view<T> y, stats save) const {
    return this->forward_residual_impl("dyt::RMSNorm::forward_residual", x, residual, y, save);
  }

  // Its backward. h: the residual forward_residual left (this layer's input);
  // dy: the gradient of y; dh: the gradient reaching h through the residual
  // stream. Writes dx = dh + the layer's dx (the gradient of both x and the old
  // residual), rounded once; dx may be dh (in place), h or dy.
  status backward_residual(rows_view<const T> h, rows_view<const T> dy, rows_view<const T> dh, rows_view<T> dx,
                           const gradients& grads, grad_mode mode = grad_mode::overwrite,
                           saved_stats saved = {}) const {
    return this->backward_residual_impl("dyt::RMSNorm::backward_residual", h, dy, dh, dx, grads, mode, saved);
  }

  // backward_residual's chunks, for a caller's thread pool (then reduce_gradients).
  status backward_chunks_residual(const backward_plan& plan, index_t first_chunk, index_t last_chunk,
                                  rows_view<const T> h, rows_view<const T> dy, rows_view<const T> dh, rows_view<T> dx,
                                  void* workspace, std::size_t workspace_size, saved_stats saved = {}) const {
    return this->chunks_residual_impl("dyt::RMSNorm::backward_chunks_residual", plan, first_chunk, last_chunk, h, dy, dh,
                                      dx, workspace, workspace_size, saved);
  }

  status reduce_gradients(const backward_plan& plan, const void* workspace, std::size_t workspace_size,
                          const gradients& grads, grad_mode mode = grad_mode::overwrite) const {
    return this->reduce_impl("dyt::RMSNorm::reduce_gradients", plan, workspace, workspace_size, grads, mode);
  }

 private:
  using C = compute_type;
  using math = ops::rms_norm_math;
  static constexpr const char* name = "dyt::RMSNorm";
  static constexpr int stats_saved = 1;
  // Its first sweep reads x alone, which the hardware prefetcher follows;
  // software prefetch measured slower (bench/RESULTS.md).
  static constexpr bool prefetch_rows = false;
  static constexpr bool hold_quantized_y = false;  // y is cheap to compute again

  void check_params(detail::arg_check& check) const {
    check.eps(eps_, "eps", double(ops::largest<C>()));
    if (check.ok() && form_ == gamma_form::one_plus && !gamma_)
      check.fail(errc::null_pointer, "gamma is null, which gamma_form::one_plus needs");
  }

  void add_params(detail::region_list& regions) const { regions.array("gamma", gamma_, this->cols(), false); }

  detail::grad_layout layout() const { return {this->cols(), int(gamma_ != nullptr), 0}; }

  void check_grads(detail::arg_check& check, detail::region_list& regions, const gradients& g) const {
    check.grad_for(g.dgamma, gamma_, "dgamma", "gamma");
    regions.array("dgamma", g.dgamma, this->cols(), true);
  }

  void grad_outputs(const gradients& g, T** col_out, T**) const {
    if (gamma_) col_out[0] = g.dgamma;
  }

  template <class Y>
  auto row_forward(rows_view<const T> x, Y y, stats save) const {
    return [=, eps = C(eps_)](const auto& eng, index_t r) {
      math::forward_row<true>(eng, x.row(r), y.row(r), gamma_, form_, eps, save.rstd ? save.rstd + r : nullptr);
    };
  }

  // dx: a rows_view<T>, or detail::plus_rows<T> (fused residual backward).
  template <class DX>
  auto row_backward(rows_view<const T> x, rows_view<const T> dy, DX dx, saved_stats saved) const {
    return [=, eps = C(eps_)](const auto& eng, index_t r, C* const* col_acc, C*) {
      const C rstd = saved.rstd ? saved.rstd[r] : math::rstd<true>(eng, x.row(r), eps);
      math::backward_row(eng, x.row(r), dy.row(r), dx.row(r), gamma_, form_, rstd, gamma_ ? col_acc[0] : nullptr);
    };
  }

  const T* gamma_;
  double eps_;
  gamma_form form_;
};

}  // namespace dyt
