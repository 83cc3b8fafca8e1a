// dyt/layers/pointwise.hpp: the one implementation of the point-wise layers,
// y = gamma * f(alpha * x [+ shift]) + beta: DyT (tanh), Derf (erf, with a
// shift) and DyISRU (u / sqrt(1 + u^2)). The public classes (layers/dyt.hpp,
// derf.hpp, dyisru.hpp) add only their constructors; the math is
// ops/pointwise.hpp, the squashing functions ops/squash.hpp.
#pragma once

#include <cmath>
#include <type_traits>

#include "../ops/pointwise.hpp"
#include "../ops/squash.hpp"
#include "layer_base.hpp"

namespace dyt {
namespace detail {

// The functions' names in messages ("dyt::DyT::forward: ..."): string
// literals, which arg_check keeps by pointer.
struct pointwise_names {
  const char* layer;
  const char* forward;
  const char* backward;
  const char* forward_residual;
  const char* backward_residual;
  const char* backward_chunks;
  const char* backward_chunks_residual;
  const char* reduce_gradients;
  const char* forward_quantized;
  const char* static_scales;
};
// A layer's names from its own (a string literal): "dyt::DyT" gives
// "dyt::DyT::forward" and the rest.
#define DYT_POINTWISE_NAMES(layer)                                                                            \
  ::dyt::detail::pointwise_names {                                                                            \
    layer, layer "::forward", layer "::backward", layer "::forward_residual", layer "::backward_residual",     \
        layer "::backward_chunks", layer "::backward_chunks_residual", layer "::reduce_gradients",             \
        layer "::forward_quantized", layer "::static_scales"                                                   \
  }

// Where backward writes each parameter's gradient; null skips it.
template <class T, bool Shift>
struct pointwise_gradients {
  T* dalpha = nullptr;
  T* dgamma = nullptr;
  T* dbeta = nullptr;
};
template <class T>
struct pointwise_gradients<T, true> {
  T* dalpha = nullptr;
  T* dshift = nullptr;
  T* dgamma = nullptr;
  T* dbeta = nullptr;
};

// Kind: `squash` (an ops/squash.hpp policy), `has_shift` and `names`.
// Holds the caller's parameter pointers and never owns or copies them: alpha
// (and shift) one value each, required; gamma and beta `cols` values each,
// either may be null. Every call checks its arguments first and returns a
// status; a refused call writes nothing.
template <class Kind, class T, class Backend>
class pointwise_layer : public layer_base<pointwise_layer<Kind, T, Backend>, T, Backend> {
  using base = layer_base<pointwise_layer<Kind, T, Backend>, T, Backend>;
  friend base;
  static constexpr bool has_shift = Kind::has_shift;

 public:
  using typename base::compute_type;
  using gradients = pointwise_gradients<T, has_shift>;

  const T* alpha() const { return alpha_; }
  const T* gamma() const { return gamma_; }
  const T* beta() const { return beta_; }

  // y = gamma * f(u) + beta. y may be x itself (in place). Rows are
  // independent: a thread pool may run x.subrows(a, b) / y.subrows(a, b) slices.
  status forward(rows_view<const T> x, rows_view<T> y) const {
    return this->forward_impl(Kind::names.forward, x, y, {});
  }

  // Quantized forward (ops/quantize.hpp, docs/quantize.md): y as int8
  // (std::int8_t) or E4M3 (dyt::float8_e4m3) codes with y ~ code * scale.
  // Dynamic: each row's scale is its largest |y| / qmax, written to
  // scales.out (x.rows values); the row is swept twice while in cache.
  template <class Q>
  status forward_quantized(rows_view<const T> x, rows_view<Q> y, per_row_scale<compute_type> scales) const {
    return this->forward_quantized_impl(Kind::names.forward_quantized, x, y, scales, {});
  }
  // Static: code = y / scales.in[j] (cols values, each finite and >= 0; a
  // channel whose scale is not > 0 gets code 0, a value beyond qmax *
  // scale saturates). With static_scales() nothing ever saturates, and no
  // reduction is needed: one sweep of the row.
  template <class Q>
  status forward_quantized(rows_view<const T> x, rows_view<Q> y, per_channel_scale<compute_type> scales) const {
    return this->forward_quantized_impl(Kind::names.forward_quantized, x, y, scales, {});
  }

  // Per-channel scales (cols values, to `out`) with which the static
  // quantized forward never clips: |f(u)| <= 1 for tanh, erf and isru, so
  // |y_j| <= |gamma_j| + |beta_j| =: B_j, and
  //   scale_j = B_j (1 + 2^-(p - 6)) / qmax, rounded up to C,
  // with p the precision of C (24 or 53 bits). The factor covers what the
  // compute type's rounding can add to that bound: the computed y is
  // fl(fl(gamma t) + beta) with |t| <= 1 + k u (the policies clamp to
  // [-1, 1]; xsimd's tanh and erf are within a few ulp), so |y| <=
  // B_j (1 + (k + 2) u + O(u^2)), and 64 u = 2^-(p - 6) leaves room for
  // k up to 60 plus the rounding of B_j itself (formed in double, rounded
  // up). Rounding is monotone, so y / scale_j computed is <= qmax too. The
  // margin costs 2^-18 of the range in float: nothing at 8 bits. A null
  // gamma is 1, a null beta 0; a B_j beyond C's range gives scale +Inf
  // (code 0) for that channel, a NaN parameter a NaN scale (code 0).
  template <class Q>
  status static_scales(compute_type* out) const {
    static_assert(ops::is_quantized_format_v<Q>, "quantized output is std::int8_t or dyt::float8_e4m3");
    detail::arg_check check(Kind::names.static_scales);
    detail::region_list regions;
    this->check_layer(check);
    check.not_null(out, "out");
    // No array of cols values fits the address space: refused before the
    // overlap check sizes it (a signed overflow there; found by fuzz/).
    if (check.ok() && this->cols() > PTRDIFF_MAX / index_t(sizeof(compute_type)))
      check.fail(errc::bad_size, "out cannot hold the layer's cols (%lld) values", static_cast<long long>(this->cols()));
    regions.array("out", out, this->cols(), true);
    add_params(regions);
    if (!check.ok() || !check.no_overlap(regions).ok()) return check.result();
    for (index_t j = 0; j < this->cols(); ++j) {
      const double g = gamma_ ? double(scalar_traits<T>::load(gamma_[j])) : 1.0;
      const double b = beta_ ? double(scalar_traits<T>::load(beta_[j])) : 0.0;
      out[j] = ops::static_scale<Q, compute_type>(g, b);
    }
    return status();
  }

  // dx, and each gradient whose pointer is set; dx may be x or dy itself.
  // Parameter gradients are summed over the default plan's chunks (see
  // backward_plan.hpp) in a scratch buffer allocated here; the chunk API below
  // gives bit-identical results without allocating.
  status backward(rows_view<const T> x, rows_view<const T> dy, rows_view<T> dx, const gradients& grads,
                  grad_mode mode = grad_mode::overwrite) const {
    return this->backward_impl(Kind::names.backward, x, dy, dx, grads, mode, {});
  }

  // Fused residual add, as a pre-norm block's residual stream runs it:
  // residual <- x + residual (in place; rounded to T, as an add kernel would
  // store it), then y = layer(residual), in one pass over memory (x and the
  // residual read once, the new residual and y written once). y may be x; it
  // must not overlap residual, which holds the block's next input.
  status forward_residual(rows_view<const T> x, rows_view<T> residual, rows_view<T> y) const {
    return this->forward_residual_impl(Kind::names.forward_residual, x, residual, y, {});
  }

  // Its backward. h: the residual forward_residual left (this layer's input);
  // dy: the gradient of y; dh: the gradient reaching h through the residual
  // stream. Writes dx = dh + the layer's dx (the gradient of both x and the
  // old residual), rounded once; dx may be dh (in place), h or dy.
  status backward_residual(rows_view<const T> h, rows_view<const T> dy, rows_view<const T> dh, rows_view<T> dx,
                           const gradients& grads, grad_mode mode = grad_mode::overwrite) const {
    return this->backward_residual_impl(Kind::names.backward_residual, h, dy, dh, dx, grads, mode, {});
  }

  // Chunk API, for a caller's thread pool: a workspace of workspace_bytes(plan)
  // bytes; backward_chunks() over disjoint chunk ranges from any threads (each
  // writes dx for its rows and its chunks' partial sums); then, once all are
  // done, reduce_gradients() adds the partial sums in chunk order.
  status backward_chunks(const backward_plan& plan, index_t first_chunk, index_t last_chunk, rows_view<const T> x,
                         rows_view<const T> dy, rows_view<T> dx, void* workspace, std::size_t workspace_size) const {
    return this->chunks_impl(Kind::names.backward_chunks, plan, first_chunk, last_chunk, x, dy, dx, workspace,
                             workspace_size, {});
  }

  // backward_residual's chunks (reduce_gradients then as above).
  status backward_chunks_residual(const backward_plan& plan, index_t first_chunk, index_t last_chunk,
                                  rows_view<const T> h, rows_view<const T> dy, rows_view<const T> dh, rows_view<T> dx,
                                  void* workspace, std::size_t workspace_size) const {
    return this->chunks_residual_impl(Kind::names.backward_chunks_residual, plan, first_chunk, last_chunk, h, dy, dh,
                                      dx, workspace, workspace_size, {});
  }

  status reduce_gradients(const backward_plan& plan, const void* workspace, std::size_t workspace_size,
                          const gradients& grads, grad_mode mode = grad_mode::overwrite) const {
    return this->reduce_impl(Kind::names.reduce_gradients, plan, workspace, workspace_size, grads, mode);
  }

 protected:
  // shift: null for the layers without one (never read).
  pointwise_layer(const T* alpha, const T* shift, const T* gamma, const T* beta, index_t cols) noexcept
      : base(cols), alpha_(alpha), shift_(shift), gamma_(gamma), beta_(beta) {}

  const T* shift_pointer() const { return shift_; }

 private:
  using C = compute_type;
  using math = ops::pointwise_math<typename Kind::squash>;
  static constexpr const char* name = Kind::names.layer;
  static constexpr int stats_saved = 0;
  // One sweep reading x (and dy) beside gamma and beta: measured faster with
  // software prefetch (bench/RESULTS.md).
  static constexpr bool prefetch_rows = true;
  // y costs a squashing function an element: the dynamic quantized forward
  // holds it rather than computing it twice (bench/RESULTS.md).
  static constexpr bool hold_quantized_y = true;

  // u's map: alpha alone (u = alpha x, one multiply), or alpha and shift.
  auto load_map() const {
    const C alpha = C(scalar_traits<T>::load(*alpha_));
    if constexpr (has_shift)
      return ops::scale_shift<C>{alpha, C(scalar_traits<T>::load(*shift_))};
    else
      return alpha;
  }

  void check_params(detail::arg_check& check) const {
    check.not_null(alpha_, "alpha");
    if (has_shift) check.not_null(shift_, "shift");
  }

  void add_params(detail::region_list& regions) const {
    regions.array("alpha", alpha_, 1, false);
    if (has_shift) regions.array("shift", shift_, 1, false);
    regions.array("gamma", gamma_, this->cols(), false).array("beta", beta_, this->cols(), false);
  }

  // Partial sums per chunk: dgamma (if the layer has gamma), dbeta (if beta);
  // dalpha, and dshift after it.
  detail::grad_layout layout() const {
    return {this->cols(), int(gamma_ != nullptr) + int(beta_ != nullptr), has_shift ? 2 : 1};
  }

  void check_grads(detail::arg_check& check, detail::region_list& regions, const gradients& g) const {
    check.grad_for(g.dgamma, gamma_, "dgamma", "gamma").grad_for(g.dbeta, beta_, "dbeta", "beta");
    regions.array("dalpha", g.dalpha, 1, true);
    if constexpr (has_shift) regions.array("dshift", g.dshift, 1, true);
    regions.array("dgamma", g.dgamma, this->cols(), true).array("dbeta", g.dbeta, this->cols(), true);
  }

  void grad_outputs(const gradients& g, T** col_out, T** scalar_out) const {
    int n = 0;
    if (gamma_) col_out[n++] = g.dgamma;
    if (beta_) col_out[n++] = g.dbeta;
    scalar_out[0] = g.dalpha;
    if constexpr (has_shift) scalar_out[1] = g.dshift;
  }

  template <class Y>
  auto row_forward(rows_view<const T> x, Y y, row_stats<C>) const {
    return [=, map = load_map()](const auto& eng, index_t r) {
      math::forward_row(eng, map, x.row(r), y.row(r), gamma_, beta_);
    };
  }

  // dx: a rows_view<T>, or detail::plus_rows<T> (fused residual backward).
  template <class DX>
  auto row_backward(rows_view<const T> x, rows_view<const T> dy, DX dx, row_stats<const C>) const {
    return [=, map = load_map()](const auto& eng, index_t r, C* const* col_acc, C* scalar_acc) {
      C* dgamma_acc = gamma_ ? col_acc[0] : nullptr;
      C* dbeta_acc = beta_ ? col_acc[gamma_ ? 1 : 0] : nullptr;
      const auto sums = math::backward_row(eng, map, x.row(r), dy.row(r), dx.row(r), gamma_, dgamma_acc, dbeta_acc);
      if (!scalar_acc) return;
      if constexpr (has_shift) {
        scalar_acc[0] += sums.first;
        scalar_acc[1] += sums.second;
      } else {
        scalar_acc[0] += sums;
      }
    };
  }

  const T* alpha_;
  const T* shift_;
  const T* gamma_;
  const T* beta_;
};

}  // namespace detail
}  // namespace dyt
