// dyt/cuda/layers.cuh: the layers on the CUDA backend,
//   dyt::DyT<T, dyt::cuda>, dyt::Derf<T, dyt::cuda>, dyt::DyISRU<T, dyt::cuda>,
//   dyt::LayerNorm<T, dyt::cuda>, dyt::RMSNorm<T, dyt::cuda>
// with T = float, __nv_bfloat16, __half, dyt::bfloat16 or dyt::half. Views,
// parameters, statistics, gradients and the workspace are device memory; the
// argument checks are the CPU layers' own (same codes, same messages) and run on
// the host before anything is launched, so a refused call writes nothing.
// Every layer also has the CPU's quantized forward (forward_quantized, and
// static_scales for the point-wise layers; docs/quantize.md).
//
// Parameter gradients: each block of the backward grid leaves a slot of partial
// sums in a workspace of workspace_bytes(rows) bytes (16-byte aligned), and a
// second kernel adds the slots in order: bit-identical run after run on one
// device. Pass the workspace, or let the call take it from cudaMallocAsync on the
// same stream. The grid, hence the workspace size, depends on the current device.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../backend.hpp"
#include "../backward_plan.hpp"
#include "../detail/checks.hpp"
#include "../layers/derf.hpp"
#include "../layers/dyisru.hpp"
#include "../layers/dyt.hpp"
#include "../layers/layer_norm.hpp"
#include "../layers/rms_norm.hpp"
#include "../ops/quantize.hpp"
#include "../status.hpp"
#include "../view.hpp"
#include "launch.cuh"

namespace dyt {

// The CUDA backend tag: Layer<T, dyt::cuda>.
struct cuda {};

template <class T>
struct backend_traits<cuda, T> {
  using compute_type = float;
  static constexpr bool vectorized = true;
};

// Caller-owned device scratch for a backward pass (see workspace_bytes()).
struct device_workspace {
  void* data = nullptr;
  std::size_t bytes = 0;
};

namespace cuda_detail {

// What the three CUDA layers share: the CPU layers' checks, in the same order,
// and the launch sequence. Derived supplies name, stats_saved, check_params,
// add_params, layout, check_grads, grad_outputs and fill(row_args&).
template <class Derived, class T, class Glue>
class layer_shell {
 public:
  using value_type = T;
  using compute_type = float;

  index_t cols() const { return cols_; }

  // Bytes of workspace backward() needs for `rows` rows on the current device
  // (0 for a layer without parameter gradients), whatever the views' alignment.
  std::size_t workspace_bytes(index_t rows) const {
    const detail::grad_layout layout = self().layout();
    if (layout.empty() || rows < 1 || cols_ < 1) return 0;
    // The most any plan of backward or backward_residual takes.
    std::size_t most = 0;
    for (bool vectors : {false, true}) {
      launch_plan p, q;
      const bool col_grads = layout.col_grads > 0;
      if (run<false>::template plan<true>(rows, cols_, vectors, col_grads, p) != cudaSuccess) continue;
      if (run<true>::template plan<true>(rows, cols_, vectors, col_grads, q) != cudaSuccess) continue;
      const index_t grid = p.grid > q.grid ? p.grid : q.grid;
      const std::size_t bytes = std::size_t(grid) * std::size_t(layout.template slot_stride<float>()) * 4;
      most = bytes > most ? bytes : most;
    }
    return most;
  }

 protected:
  using S = storage_t<T>;
  template <bool Residual>
  using run = launcher<Glue, S, Residual>;

  explicit layer_shell(index_t cols) : cols_(cols) {}
  const Derived& self() const { return static_cast<const Derived&>(*this); }

  void check_layer(detail::arg_check& check) const {
    if (cols_ < 1) check.fail(errc::bad_size, "the layer's cols (%lld) must be >= 1", static_cast<long long>(cols_));
    self().check_params(check);
  }

  // Every forward's checks (the CPU's check_forward, in the same order); y is
  // a rows_view<T> or the quantized forward's rows_view<Q>.
  template <class Y>
  void check_forward(detail::arg_check& check, detail::region_list& regions, rows_view<const T> x, rows_view<Y> y,
                     row_stats<float> save) const {
    check_layer(check);
    check.view(x, "x").view(y, "y").cols_are(x, "x", cols_, "the layer's cols").same_shape(y, "y", x, "x");
    if (check.ok() && Derived::stats_saved < 2 && save.mean)
      check.fail(errc::bad_parameter, "a mean buffer is given, but %s computes no mean", Derived::name);
    if (!check.ok()) return;
    regions.view("x", x, false).view("y", y, true);
    regions.array("mean", save.mean, x.rows, true).array("rstd", save.rstd, x.rows, true);
    self().add_params(regions);
  }

  row_args<S> forward_args(rows_view<const T> x, row_stats<float> save) const {
    row_args<S> a;
    a.rows = x.rows;
    a.cols = cols_;
    a.x = as_storage(x.data);
    a.x_stride = x.row_stride;
    a.mean = save.mean;
    a.rstd = save.rstd;
    self().fill(a);
    return a;
  }

  // residual: null for forward; the residual view for forward_residual
  // (residual <- x + residual, then the layer on it).
  status forward_impl(const char* fn, rows_view<const T> x, const rows_view<T>* residual, rows_view<T> y,
                      row_stats<float> save, cudaStream_t stream) const {
    detail::arg_check check(fn);
    detail::region_list regions;
    check_forward(check, regions, x, y, save);
    if (residual && check.ok()) {
      check.view(*residual, "residual").same_shape(*residual, "residual", x, "x");
      regions.view("residual", *residual, true);
    }
    if (!check.ok() || !check.no_overlap(regions).ok()) return check.result();

    row_args<S> a = forward_args(x, save);
    a.y = as_storage(y.data);
    a.y_stride = y.row_stride;
    if (residual) {
      a.residual = as_storage(residual->data);
      a.residual_stride = residual->row_stride;
    }
    const cudaError_t e = residual ? launch_forward<run<true>>(a, stream) : launch_forward<run<false>>(a, stream);
    return cuda_status(e, fn, "the forward launch");
  }

  // The quantized forward (ops/quantize.hpp), as on the CPU (layers/
  // layer_base.hpp): Q codes in y, with each row's scale written to
  // scales.out (per_row_scale: x.rows values) or the caller's per-channel
  // scales.in read (per_channel_scale: cols values).
  template <class Q, class Scales>
  status forward_quantized_impl(const char* fn, rows_view<const T> x, rows_view<Q> y, Scales scales,
                                row_stats<float> save, cudaStream_t stream) const {
    static_assert(ops::is_quantized_format_v<Q>, "quantized output is std::int8_t or dyt::float8_e4m3");
    constexpr bool per_channel = std::is_same<Scales, per_channel_scale<float>>::value;
    detail::arg_check check(fn);
    detail::region_list regions;
    check_forward(check, regions, x, y, save);
    row_args<S> a = forward_args(x, save);
    if constexpr (per_channel) {
      check.not_null(scales.in, "scales.in");
      regions.array("scales.in", scales.in, cols_, false);
      a.scales_in = scales.in;
    } else {
      check.not_null(scales.out, "scales.out");
      regions.array("scales.out", scales.out, x.rows, true);
      a.scales_out = scales.out;
    }
    if (!check.ok() || !check.no_overlap(regions).ok()) return check.result();
    a.codes = y.data;
    a.codes_stride = y.row_stride;
    const cudaError_t e = launch_forward<launcher<quantized_rows<Glue, Q, per_channel>, S>>(a, stream);
    return cuda_status(e, fn, "the forward launch");
  }

  // dh: null for backward; for backward_residual, the gradient reaching the
  // layer's input h (called x here, "h" in messages) through the residual
  // stream: dx <- dh + the layer's dx.
  template <class Gradients>
  status backward_impl(const char* fn, rows_view<const T> x, const rows_view<const T>* dh, rows_view<const T> dy,
                       rows_view<T> dx, const Gradients& grads, grad_mode mode, row_stats<const float> saved,
                       device_workspace ws, cudaStream_t stream) const {
    const char* x_name = dh ? "h" : "x";
    detail::arg_check check(fn);
    detail::region_list regions;
    check_layer(check);
    check.view(x, x_name).view(dy, "dy").view(dx, "dx").cols_are(x, x_name, cols_, "the layer's cols");
    check.same_shape(dy, "dy", x, x_name).same_shape(dx, "dx", x, x_name);
    if (check.ok()) {
      constexpr int saved_count = Derived::stats_saved;
      if (saved_count == 0 && (saved.mean || saved.rstd))
        check.fail(errc::bad_parameter, "saved statistics given, but %s keeps none", Derived::name);
      if (saved_count == 1 && saved.mean)
        check.fail(errc::bad_parameter, "saved.mean given, but %s saves only rstd", Derived::name);
      if (saved_count == 2 && (saved.mean == nullptr) != (saved.rstd == nullptr))
        check.fail(errc::null_pointer, "saved.%s is null but saved.%s is not: give both or neither",
                   saved.mean ? "rstd" : "mean", saved.mean ? "mean" : "rstd");
    }
    if (!check.ok()) return check.result();
    regions.view(x_name, x, false).view("dy", dy, false).view("dx", dx, true);
    regions.array("saved.mean", saved.mean, x.rows, false).array("saved.rstd", saved.rstd, x.rows, false);
    self().add_params(regions);
    if (dh) {
      check.view(*dh, "dh").same_shape(*dh, "dh", x, x_name);
      regions.view("dh", *dh, false);
    }
    if (check.ok()) self().check_grads(check, regions, grads);
    const std::size_t needed = workspace_bytes(x.rows);
    if (ws.data) {
      check.workspace(ws.data, ws.bytes, needed, 16);
      regions.array("workspace", static_cast<unsigned char*>(ws.data), index_t(ws.bytes), true);
    }
    if (!check.ok() || !check.no_overlap(regions).ok()) return check.result();

    row_args<S> a;
    a.rows = x.rows;
    a.cols = cols_;
    a.x = as_storage(x.data);
    a.x_stride = x.row_stride;
    a.dy = as_storage(dy.data);
    a.dy_stride = dy.row_stride;
    a.dx = as_storage(dx.data);
    a.dx_stride = dx.row_stride;
    if (dh) {
      a.dh = as_storage(dh->data);
      a.dh_stride = dh->row_stride;
    }
    a.saved_mean = saved.mean;
    a.saved_rstd = saved.rstd;
    self().fill(a);
    const detail::grad_layout layout = self().layout();
    a.slot_stride = layout.template slot_stride<float>();
    a.col_grads = layout.col_grads;
    a.scalar_grads = layout.scalar_grads;
    T* col_out[2] = {nullptr, nullptr};
    T* scalar_out[2] = {nullptr, nullptr};
    self().grad_outputs(grads, col_out, scalar_out);

    void* scratch = ws.data;
    if (needed && !scratch) {
      const cudaError_t e = cudaMallocAsync(&scratch, needed, stream);
      if (e != cudaSuccess) return cuda_status(e, fn, "cudaMallocAsync of the gradient workspace");
    }
    a.partials = static_cast<float*>(scratch);
    const bool accumulate = mode == grad_mode::accumulate;
    cudaError_t e = dh ? launch_backward<true>(a, col_out, scalar_out, accumulate, stream)
                       : launch_backward<false>(a, col_out, scalar_out, accumulate, stream);
    if (scratch && !ws.data) {
      const cudaError_t f = cudaFreeAsync(scratch, stream);
      if (e == cudaSuccess) e = f;
    }
    return cuda_status(e, fn, "the backward launch");
  }

 private:
  template <class Run>
  cudaError_t launch_forward(const row_args<S>& a, cudaStream_t stream) const {
    launch_plan p;
    cudaError_t e = Run::template plan<false>(a.rows, a.cols, vectors(a, false), false, p);
    if (e == cudaSuccess) e = Run::forward(a, p, stream);
    return e;
  }

  template <bool Residual>
  cudaError_t launch_backward(const row_args<S>& a, T* const* col_out, T* const* scalar_out, bool accumulate,
                              cudaStream_t stream) const {
    launch_plan p;
    cudaError_t e = run<Residual>::template plan<true>(a.rows, a.cols, vectors(a, true), a.col_grads > 0, p);
    if (e == cudaSuccess)
      e = run<Residual>::backward(a, p, as_storage(col_out[0]), as_storage(col_out[1]), as_storage(scalar_out[0]),
                                  as_storage(scalar_out[1]),
                                  accumulate, stream);
    return e;
  }

  // Whether every row pointer and parameter allows 16-byte accesses.
  bool vectors(const row_args<S>& a, bool backward) const {
    using r = run<false>;
    if (a.cols % r::N != 0) return false;
    bool ok = r::vector_view(a.x, a.x_stride) && aligned16(a.gamma) && aligned16(a.beta);
    if (backward) ok = ok && r::vector_view(a.dy, a.dy_stride) && r::vector_view(a.dx, a.dx_stride);
    else ok = ok && r::vector_view(a.y, a.y_stride);
    // Codes: N one-byte codes a store (ops::vector_codes), N-byte aligned;
    // static scales: N floats a load.
    if (a.codes) ok = ok && std::uintptr_t(a.codes) % r::N == 0 && a.codes_stride % r::N == 0 && aligned16(a.scales_in);
    if (a.residual) ok = ok && r::vector_view(a.residual, a.residual_stride);
    if (a.dh) ok = ok && r::vector_view(a.dh, a.dh_stride);
    return ok;
  }

  index_t cols_;
};

}  // namespace cuda_detail

// ---- The point-wise layers: DyT, Derf, DyISRU ------------------------------------------
namespace cuda_detail {
// The squash a device kernel runs for a layer's, on rows stored as T: tanh
// policies through device_tanh_t (tanh_fast is tanh.approx.f32 there); on
// 16-bit rows, erf as tanh.approx of a polynomial (ops::erf_tanh_squash) and
// ISRU through rsqrtf (ops::isru_rsqrt_squash), whose errors the storage
// hides (bench/RESULTS.md, GPU session 9, measures what they save).
template <class Squash, class T>
struct device_squash {
  using type = Squash;
};
template <class Tanh, class T>
struct device_squash<ops::tanh_squash<Tanh>, T> {
  using type = ops::tanh_squash<device_tanh_t<Tanh>>;
};
template <class T>
struct device_squash<ops::erf_squash, T> {
  using type = std::conditional_t<is_16bit_v<T>, ops::erf_tanh_squash<tanh_approx>, ops::erf_squash>;
};
template <class T>
struct device_squash<ops::isru_squash, T> {
  using type = std::conditional_t<is_16bit_v<T>, ops::isru_rsqrt_squash, ops::isru_squash>;
};
template <class Kind, class T>
using pointwise_glue = pointwise_rows<typename device_squash<typename Kind::squash, T>::type, Kind::has_shift>;
}  // namespace cuda_detail

namespace detail {
// The point-wise layers on CUDA (layers/pointwise.hpp is the CPU's): the
// public classes DyT<T, cuda, Tanh>, Derf<T, cuda> and DyISRU<T, cuda> derive
// from this and add only their constructors. alpha (and Derf's shift) are one
// value each on the device, required; gamma and beta cols values each, either
// may be null.
template <class Kind, class T>
class pointwise_layer<Kind, T, cuda>
    : public cuda_detail::layer_shell<pointwise_layer<Kind, T, cuda>, T, cuda_detail::pointwise_glue<Kind, T>> {
  using base = cuda_detail::layer_shell<pointwise_layer<Kind, T, cuda>, T, cuda_detail::pointwise_glue<Kind, T>>;
  friend base;
  static constexpr bool has_shift = Kind::has_shift;

 public:
  using gradients = pointwise_gradients<T, has_shift>;

  const T* alpha() const { return alpha_; }
  const T* gamma() const { return gamma_; }
  const T* beta() const { return beta_; }

  status forward(rows_view<const T> x, rows_view<T> y, cudaStream_t stream) const {
    return this->forward_impl(Kind::names.forward, x, nullptr, y, {}, stream);
  }
  status backward(rows_view<const T> x, rows_view<const T> dy, rows_view<T> dx, const gradients& grads,
                  cudaStream_t stream, grad_mode mode = grad_mode::overwrite, device_workspace ws = {}) const {
    return this->backward_impl(Kind::names.backward, x, nullptr, dy, dx, grads, mode, {}, ws, stream);
  }

  // Quantized forward, as on the CPU (layers/pointwise.hpp, docs/quantize.md):
  // y as int8 (std::int8_t) or E4M3 (dyt::float8_e4m3) codes, y ~ code * scale.
  // Dynamic: each row's largest |y| / qmax to scales.out (x.rows floats),
  // found in the same pass (the row stays in registers); static: code = y /
  // scales.in[j] (cols floats), no reduction.
  template <class Q>
  status forward_quantized(rows_view<const T> x, rows_view<Q> y, per_row_scale<float> scales,
                           cudaStream_t stream) const {
    return this->forward_quantized_impl(Kind::names.forward_quantized, x, y, scales, {}, stream);
  }
  template <class Q>
  status forward_quantized(rows_view<const T> x, rows_view<Q> y, per_channel_scale<float> scales,
                           cudaStream_t stream) const {
    return this->forward_quantized_impl(Kind::names.forward_quantized, x, y, scales, {}, stream);
  }
  // The per-channel scales with which the static forward never clips (cols
  // floats to out, device memory), bit for bit the CPU layer's static_scales().
  template <class Q>
  status static_scales(float* out, cudaStream_t stream) const {
    static_assert(ops::is_quantized_format_v<Q>, "quantized output is std::int8_t or dyt::float8_e4m3");
    detail::arg_check check(Kind::names.static_scales);
    detail::region_list regions;
    this->check_layer(check);
    check.not_null(out, "out");
    if (check.ok() && this->cols() > PTRDIFF_MAX / index_t(sizeof(float)))  // as on the CPU
      check.fail(errc::bad_size, "out cannot hold the layer's cols (%lld) values", static_cast<long long>(this->cols()));
    regions.array("out", out, this->cols(), true);
    add_params(regions);
    if (!check.ok() || !check.no_overlap(regions).ok()) return check.result();
    const index_t blocks = (this->cols() + 255) / 256;
    cuda_detail::static_scales<Q><<<unsigned(blocks), 256, 0, stream>>>(
        cuda_detail::as_storage(gamma_), cuda_detail::as_storage(beta_), this->cols(), out);
    return cuda_detail::cuda_status(cudaGetLastError(), Kind::names.static_scales, "the launch");
  }

  // Fused residual add, as on the CPU (layers/pointwise.hpp): residual <- x +
  // residual (in place, rounded to T), then y = layer(residual), in one pass
  // over memory. y may be x; it must not overlap residual.
  status forward_residual(rows_view<const T> x, rows_view<T> residual, rows_view<T> y, cudaStream_t stream) const {
    return this->forward_impl(Kind::names.forward_residual, x, &residual, y, {}, stream);
  }
  // Its backward: dx = dh + the layer's dx, rounded once, for h the residual
  // forward_residual left; dx may be dh (in place), h or dy.
  status backward_residual(rows_view<const T> h, rows_view<const T> dy, rows_view<const T> dh, rows_view<T> dx,
                           const gradients& grads, cudaStream_t stream, grad_mode mode = grad_mode::overwrite,
                           device_workspace ws = {}) const {
    return this->backward_impl(Kind::names.backward_residual, h, &dh, dy, dx, grads, mode, {}, ws, stream);
  }

 protected:
  // shift: null for the layers without one (never read).
  pointwise_layer(const T* alpha, const T* shift, const T* gamma, const T* beta, index_t cols) noexcept
      : base(cols), alpha_(alpha), shift_(shift), gamma_(gamma), beta_(beta) {}

  const T* shift_pointer() const { return shift_; }

 private:
  static constexpr const char* name = Kind::names.layer;
  static constexpr int stats_saved = 0;

  void check_params(detail::arg_check& check) const {
    check.not_null(alpha_, "alpha");
    if (has_shift) check.not_null(shift_, "shift");
  }
  void add_params(detail::region_list& regions) const {
    regions.array("alpha", alpha_, 1, false);
    if (has_shift) regions.array("shift", shift_, 1, false);
    regions.array("gamma", gamma_, this->cols(), false).array("beta", beta_, this->cols(), false);
  }
  // dgamma (if gamma), dbeta (if beta); dalpha, and dshift after it.
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
  template <class A>
  void fill(A& a) const {
    a.alpha = cuda_detail::as_storage(alpha_);
    a.shift = cuda_detail::as_storage(shift_);
    a.gamma = cuda_detail::as_storage(gamma_);
    a.beta = cuda_detail::as_storage(beta_);
  }

  const T* alpha_;
  const T* shift_;
  const T* gamma_;
  const T* beta_;
};
}  // namespace detail

// ---- LayerNorm ---------------------------------------------------------------------------
template <class T>
class LayerNorm<T, cuda> : public cuda_detail::layer_shell<LayerNorm<T, cuda>, T, cuda_detail::layer_norm_rows> {
  using base = cuda_detail::layer_shell<LayerNorm<T, cuda>, T, cuda_detail::layer_norm_rows>;
  friend base;

 public:
  using stats = row_stats<float>;
  using saved_stats = row_stats<const float>;

  struct gradients {
    T* dgamma = nullptr;
    T* dbeta = nullptr;
  };

  LayerNorm(const T* gamma, const T* beta, index_t cols, double eps = 1e-5) noexcept
      : base(cols), gamma_(gamma), beta_(beta), eps_(eps) {}

  const T* gamma() const { return gamma_; }
  const T* beta() const { return beta_; }
  double eps() const { return eps_; }

  status forward(rows_view<const T> x, rows_view<T> y, cudaStream_t stream) const {
    return this->forward_impl("dyt::LayerNorm::forward", x, nullptr, y, {}, stream);
  }
  status forward(rows_view<const T> x, rows_view<T> y, stats save, cudaStream_t stream) const {
    return this->forward_impl("dyt::LayerNorm::forward", x, nullptr, y, save, stream);
  }
  // Quantized forward, as on the CPU (docs/quantize.md): y as int8 or E4M3
  // codes with each row's scale (its largest |y| / qmax, found in the same
  // pass) to scales.out (x.rows floats); optionally the statistics too.
  template <class Q>
  status forward_quantized(rows_view<const T> x, rows_view<Q> y, per_row_scale<float> scales,
                           cudaStream_t stream) const {
    return this->forward_quantized_impl("dyt::LayerNorm::forward_quantized", x, y, scales, {}, stream);
  }
  template <class Q>
  status forward_quantized(rows_view<const T> x, rows_view<Q> y, per_row_scale<float> scales, stats save,
                           cudaStream_t stream) const {
    return this->forward_quantized_impl("dyt::LayerNorm::forward_quantized", x, y, scales, save, stream);
  }
  status backward(rows_view<const T> x, rows_view<const T> dy, rows_view<T> dx, const gradients& grads,
                  cudaStream_t stream, grad_mode mode = grad_mode::overwrite, saved_stats saved = {},
                  device_workspace ws = {}) const {
    return this->backward_impl("dyt::LayerNorm::backward", x, nullptr, dy, dx, grads, mode, saved, ws, stream);
  }

  // Fused residual add, as on the CPU (layers/layer_norm.hpp): residual <- x + residual
  // (in place, rounded to T), then y = LayerNorm(residual), in one pass over memory;
  // with `save`, also the statistics. y may be x; it must not overlap residual.
  status forward_residual(rows_view<const T> x, rows_view<T> residual, rows_view<T> y, cudaStream_t stream) const {
    return this->forward_impl("dyt::LayerNorm::forward_residual", x, &residual, y, {}, stream);
  }
  status forward_residual(rows_view<const T> x, rows_view<T> residual, rows_view<T> y, stats save,
                          cudaStream_t stream) const {
    return this->forward_impl("dyt::LayerNorm::forward_residual", x, &residual, y, save, stream);
  }
  // Its backward: dx = dh + the layer's dx, rounded once, for h the residual
  // forward_residual left; dx may be dh (in place), h or dy.
  status backward_residual(rows_view<const T> h, rows_view<const T> dy, rows_view<const T> dh, rows_view<T> dx,
                           const gradients& grads, cudaStream_t stream, grad_mode mode = grad_mode::overwrite,
                           saved_stats saved = {}, device_workspace ws = {}) const {
    return this->backward_impl("dyt::LayerNorm::backward_residual", h, &dh, dy, dx, grads, mode, saved, ws, stream);
  }

 private:
  static constexpr const char* name = "dyt::LayerNorm";
  static constexpr int stats_saved = 2;

  void check_params(detail::arg_check& check) const { check.eps(eps_); }
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
  template <class A>
  void fill(A& a) const {
    a.gamma = cuda_detail::as_storage(gamma_);
    a.beta = cuda_detail::as_storage(beta_);
    a.eps = float(eps_);
  }

  const T* gamma_;
  const T* beta_;
  double eps_;
};

// ---- RMSNorm -----------------------------------------------------------------------------
template <class T>
class RMSNorm<T, cuda> : public cuda_detail::layer_shell<RMSNorm<T, cuda>, T, cuda_detail::rms_norm_rows> {
  using base = cuda_detail::layer_shell<RMSNorm<T, cuda>, T, cuda_detail::rms_norm_rows>;
  friend base;

 public:
  using stats = row_stats<float>;
  using saved_stats = row_stats<const float>;

  struct gradients {
    T* dgamma = nullptr;
  };

  RMSNorm(const T* gamma, index_t cols, double eps = 1e-6, gamma_form form = gamma_form::plain) noexcept
      : base(cols), gamma_(gamma), eps_(eps), form_(form) {}

  const T* gamma() const { return gamma_; }
  double eps() const { return eps_; }
  gamma_form form() const { return form_; }

  status forward(rows_view<const T> x, rows_view<T> y, cudaStream_t stream) const {
    return this->forward_impl("dyt::RMSNorm::forward", x, nullptr, y, {}, stream);
  }
  status forward(rows_view<const T> x, rows_view<T> y, stats save, cudaStream_t stream) const {
    return this->forward_impl("dyt::RMSNorm::forward", x, nullptr, y, save, stream);
  }
  // Quantized forward, as on the CPU (docs/quantize.md): y as int8 or E4M3
  // codes with each row's scale (its largest |y| / qmax, found in the same
  // pass) to scales.out (x.rows floats); optionally the statistics too.
  template <class Q>
  status forward_quantized(rows_view<const T> x, rows_view<Q> y, per_row_scale<float> scales,
                           cudaStream_t stream) const {
    return this->forward_quantized_impl("dyt::RMSNorm::forward_quantized", x, y, scales, {}, stream);
  }
  template <class Q>
  status forward_quantized(rows_view<const T> x, rows_view<Q> y, per_row_scale<float> scales, stats save,
                           cudaStream_t stream) const {
    return this->forward_quantized_impl("dyt::RMSNorm::forward_quantized", x, y, scales, save, stream);
  }
  status backward(rows_view<const T> x, rows_view<const T> dy, rows_view<T> dx, const gradients& grads,
                  cudaStream_t stream, grad_mode mode = grad_mode::overwrite, saved_stats saved = {},
                  device_workspace ws = {}) const {
    return this->backward_impl("dyt::RMSNorm::backward", x, nullptr, dy, dx, grads, mode, saved, ws, stream);
  }

  // Fused residual add, as on the CPU (layers/rms_norm.hpp): residual <- x + residual
  // (in place, rounded to T), then y = RMSNorm(residual), in one pass over memory;
  // with `save`, also the statistics. y may be x; it must not overlap residual.
  status forward_residual(rows_view<const T> x, rows_view<T> residual, rows_view<T> y, cudaStream_t stream) const {
    return this->forward_impl("dyt::RMSNorm::forward_residual", x, &residual, y, {}, stream);
  }
  status forward_residual(rows_view<const T> x, rows_view<T> residual, rows_view<T> y, stats save,
                          cudaStream_t stream) const {
    return this->forward_impl("dyt::RMSNorm::forward_residual", x, &residual, y, save, stream);
  }
  // Its backward: dx = dh + the layer's dx, rounded once, for h the residual
  // forward_residual left; dx may be dh (in place), h or dy.
  status backward_residual(rows_view<const T> h, rows_view<const T> dy, rows_view<const T> dh, rows_view<T> dx,
                           const gradients& grads, cudaStream_t stream, grad_mode mode = grad_mode::overwrite,
                           saved_stats saved = {}, device_workspace ws = {}) const {
    return this->backward_impl("dyt::RMSNorm::backward_residual", h, &dh, dy, dx, grads, mode, saved, ws, stream);
  }

 private:
  static constexpr const char* name = "dyt::RMSNorm";
  static constexpr int stats_saved = 1;

  void check_params(detail::arg_check& check) const {
    check.eps(eps_);
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
  template <class A>
  void fill(A& a) const {
    a.gamma = cuda_detail::as_storage(gamma_);
    a.eps = float(eps_);
    a.form = form_;
  }

  const T* gamma_;
  double eps_;
  gamma_form form_;
};

}  // namespace dyt
