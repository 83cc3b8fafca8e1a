// dyt/layers/layer_norm.hpp: LayerNorm over the last dimension,
// y = gamma * (x - mean) / sqrt(var + eps) + beta.
#pragma once

#include "../ops/layer_norm.hpp"
#include "layer_base.hpp"

namespace dyt {

// LayerNorm over rows of `cols` channels, with the caller's gamma and beta
// (`cols` values each; either may be null, as for elementwise_affine=False).
// Statistics are per row, in compute_type (float for float/bf16/half storage).
template <class T, class Backend = cpu>
class LayerNorm : public detail::layer_base<LayerNorm<T, Backend>, T, Backend> {
  using base = detail::layer_base<LayerNorm<T, Backend>, T, Backend>;
  friend base;

 public:
  using typename base::compute_type;
  using stats = row_stats<compute_type>;              // mean and rstd per row, written by forward
  using saved_stats = row_stats<const compute_type>;  // read by backward

  struct gradients {
    T* dgamma = nullptr;
    T* dbeta = nullptr;
  };

  LayerNorm(const T* gamma, const T* beta, index_t cols, double eps = 1e-5) noexcept
      : base(cols), gamma_(gamma), beta_(beta), eps_(eps) {}

  const T* gamma() const { return gamma_; }
  const T* beta() const { return beta_; }
  double eps() const { return eps_; }

  // y may be x itself (in place); a thread pool may run row slices (subrows).
  status forward(rows_view<const T> x, rows_view<T> y) const {
    return this->forward_impl("dyt::LayerNorm::forward", x, y, {});
  }
  // Also writes each row's mean and rstd = 1/sqrt(var + eps) where the pointers are set.
  status forward(rows_view<const T> x, rows_view<T> y, stats save) const {
    return this->forward_impl("dyt::LayerNorm::forward", x, y, save);
  }

  // Quantized forward (ops/quantize.hpp, docs/quantize.md): y as int8
  // (std::int8_t) or E4M3 (dyt::float8_e4m3) codes, y ~ code * scale, with
  // each row's scale = its largest |y| / qmax written to scales.out (x.rows
  // values), found in the same pass that normalizes (the row is swept once
  // more while in cache). With `save`, also each row's statistics, as forward.
  template <class Q>
  status forward_quantized(rows_view<const T> x, rows_view<Q> y, per_row_scale<compute_type> scales) const {
    return this->forward_quantized_impl("dyt::LayerNorm::forward_quantized", x, y, scales, {});
  }
  template <class Q>
  status forward_quantized(rows_view<const T> x, rows_view<Q> y, per_row_scale<compute_type> scales,
                           stats save) const {
    return this->forward_quantized_impl("dyt::LayerNorm::forward_quantized", x, y, scales, save);
  }

  // dx (which may be x or dy itself) and each gradient whose pointer is set.
  // `saved` (both mean and rstd, or neither) skips recomputing the statistics;
  // the results are the same either way when they come from forward on the same backend.
  status backward(rows_view<const T> x, rows_view<const T> dy, rows_view<T> dx, const gradients& grads,
                  grad_mode mode = grad_mode::overwrite, saved_stats saved = {}) const {
    return this->backward_impl("dyt::LayerNorm::backward", x, dy, dx, grads, mode, saved);
  }

  // Chunk API for a caller's thread pool: see DyT and backward_plan.hpp.
  status backward_chunks(const backward_plan& plan, index_t first_chunk, index_t last_chunk, rows_view<const T> x,
                         rows_view<const T> dy, rows_view<T> dx, void* workspace, std::size_t workspace_size,
                         saved_stats saved = {}) const {
    return this->chunks_impl("dyt::LayerNorm::backward_chunks", plan, first_chunk, last_chunk, x, dy, dx, workspace,
                             workspace_size, saved);
  }

  // Fused residual add: residual <- x + residual (in place; rounded to T, as an
  // add kernel would store it), then y = LayerNorm(residual), in one pass over memory
  // (x and the residual read once, the new residual and y written once). y may
  // be x; it must not overlap residual. With `save`, also each row's mean and rstd.
  status forward_residual(rows_view<const T> x, rows_view<T> residual, rows_view<T> y) const {
    return this->forward_residual_impl("dyt::LayerNorm::forward_residual", x, residual, y, {});
  }
  status forward_residual(rows_view<const T> x, rows_view<T> residual, rows_view<T> y, stats save) const {
    return this->forward_residual_impl("dyt::LayerNorm::forward_residual", x, residual, y, save);
  }

  // Its backward. h: the residual forward_residual left (this layer's input);
  // dy: the gradient of y; dh: the gradient reaching h through the residual
  // stream. Writes dx = dh + the layer's dx (the gradient of both x and the old
  // residual), rounded once; dx may be dh (in place), h or dy.
  status backward_residual(rows_view<const T> h, rows_view<const T> dy, rows_view<const T> dh, rows_view<T> dx,
                           const gradients& grads, grad_mode mode = grad_mode::overwrite,
                           saved_stats saved = {}) const {
    return this->backward_residual_impl("dyt::LayerNorm::backward_residual", h, dy, dh, dx, grads, mode, saved);
  }

  // backward_residual's chunks, for a caller's thread pool (then reduce_gradients).
  status backward_chunks_residual(const backward_plan& plan, index_t first_chunk, index_t last_chunk,
                                  rows_view<const T> h, rows_view<const T> dy, rows_view<const T> dh, rows_view<T> dx,
                                  void* workspace, std::size_t workspace_size, saved_stats saved = {}) const {
    return this->chunks_residual_impl("dyt::LayerNorm::backward_chunks_residual", plan, first_chunk, last_chunk, h, dy, dh,
                                      dx, workspace, workspace_size, saved);
  }

  status reduce_gradients(const backward_plan& plan, const void* workspace, std::size_t workspace_size,
                          const gradients& grads, grad_mode mode = grad_mode::overwrite) const {
    return this->reduce_impl("dyt::LayerNorm::reduce_gradients", plan, workspace, workspace_size, grads, mode);
  }

 private:
  using C = compute_type;
  using math = ops::layer_norm_math;
  static constexpr const char* name = "dyt::LayerNorm";
  static constexpr int stats_saved = 2;
  // Its first sweep reads x alone, which the hardware prefetcher follows;
  // software prefetch measured slower (bench/RESULTS.md).
  static constexpr bool prefetch_rows = false;
  static constexpr bool hold_quantized_y = false;  // y is cheap to compute again

  void check_params(detail::arg_check& check) const { check.eps(eps_, "eps", double(ops::largest<C>())); }

  void add_params(detail::region_list& regions) const {
    regions.array("gamma", gamma_, this->cols(), false).array("beta", beta_, this->cols(), false);
  }

  detail::grad_layout layout() const { return {this->cols(), int(gamma_ != nullptr) + int(beta_ != nullptr), 0}; }

  void check_grads(detail::arg_check& check, detail::region_list& regions, const gradients& g) const {
    check.grad_for(g.dgamma, gamma_, "dgamma", "gamma").grad_for(g.dbeta, beta_, "dbeta", "beta");
    regions.array("dgamma", g.dgamma, this->cols(), true).array("dbeta", g.dbeta, this->cols(), true);
  }

  void grad_outputs(const gradients& g, T** col_out, T**) const {
    int n = 0;
    if (gamma_) col_out[n++] = g.dgamma;
    if (beta_) col_out[n++] = g.dbeta;
  }

  template <class Y>
  auto row_forward(rows_view<const T> x, Y y, stats save) const {
    return [=, eps = C(eps_)](const auto& eng, index_t r) {
      math::forward_row<true>(eng, x.row(r), y.row(r), gamma_, beta_, eps, save.mean ? save.mean + r : nullptr,
                        save.rstd ? save.rstd + r : nullptr);
    };
  }

  // dx: a rows_view<T>, or detail::plus_rows<T> (fused residual backward).
  template <class DX>
  auto row_backward(rows_view<const T> x, rows_view<const T> dy, DX dx, saved_stats saved) const {
    return [=, eps = C(eps_)](const auto& eng, index_t r, C* const* col_acc, C*) {
      C mean, rstd;
      if (saved.rstd) {
        mean = saved.mean[r];
        rstd = saved.rstd[r];
      } else {
        math::moments<true>(eng, x.row(r), eps, mean, rstd);
      }
      C* dgamma_acc = gamma_ ? col_acc[0] : nullptr;
      C* dbeta_acc = beta_ ? col_acc[gamma_ ? 1 : 0] : nullptr;
      math::backward_row<true>(eng, x.row(r), dy.row(r), dx.row(r), gamma_, mean, rstd, dgamma_acc, dbeta_acc);
    };
  }

  const T* gamma_;
  const T* beta_;
  double eps_;
};

}  // namespace dyt
