// dyt/layers/layer_base.hpp: what the three layers share: argument checks,
// the loops over rows, and the chunked backward whose parameter gradients do
// not depend on how rows are split between threads.
//
// A layer (CRTP Derived) supplies only what is its own:
//   static constexpr const char* name;          "dyt::LayerNorm", for messages
//   static constexpr int stats_saved;           0 (DyT), 1 (rstd), 2 (mean, rstd)
//   static constexpr bool prefetch_rows;        software prefetch in row sweeps (cpu/row_engine.hpp)
//   static constexpr bool hold_quantized_y;     the dynamic quantized forward holds y in a row
//                                               buffer rather than computing it twice (ops/quantize.hpp)
//   void check_params(arg_check&) const;        eps, alpha, ...
//   void add_params(region_list&) const;        its parameter arrays
//   grad_layout layout() const;                 which gradient sums it keeps
//   void check_grads(arg_check&, region_list&, const gradients&) const;
//   void grad_outputs(const gradients&, T** col_out, T** scalar_out) const;
//                                               (up to 2 of each, in layout() order)
//   auto row_forward(x, y, row_stats<C> save) const;             -> f(eng, r)
//        (y: a rows_view<T>, or ops::row_quantized_rows / channel_quantized_rows
//        for the quantized forward: anything whose row(r) ops' emit() takes)
//   auto row_backward(x, dy, dx, row_stats<const C> saved) const;  -> f(eng, r, col_acc, scalar_acc)
//        (dx: a rows_view<T>, or plus_rows<T> for the fused residual backward)
//
// The fused residual variants (forward_residual, backward_residual) are built
// here from the same row functions: forward first adds x into the residual
// row, then runs the layer on that row while it is in cache; backward writes
// dh + dx through ops::plus. Memory sees each tensor once.
#pragma once

#include <memory>
#include <new>
#include <type_traits>

#include "../backend.hpp"
#include "../backward_plan.hpp"
#include "../cpu/runner.hpp"
#include "../detail/checks.hpp"
#include "../ops/lanes.hpp"
#include "../ops/quantize.hpp"
#include "../status.hpp"
#include "../view.hpp"

namespace dyt {
namespace detail {

// dx of the fused residual backward: row r receives addend.row(r) + dx.
template <class T>
struct plus_rows {
  rows_view<const T> addend;
  rows_view<T> out;
  ops::plus<T> row(index_t r) const { return {addend.row(r), out.row(r)}; }
};

template <class Derived, class T, class Backend>
class layer_base {
 public:
  using value_type = T;
  using backend_type = Backend;
  using compute_type = typename backend_traits<Backend, T>::compute_type;

  index_t cols() const { return cols_; }

  // Scratch the chunk API needs for `plan`: one slot of partial gradient sums
  // per chunk, aligned to alignof(compute_type). 0 for a layer without parameters.
  std::size_t workspace_bytes(const backward_plan& plan) const {
    const grad_layout layout = self().layout();
    // A layer of cols < 1 refuses every call; its slot size would be
    // meaningless (negative for cols < 0, wrapping to ~2^64 bytes here).
    if (layout.empty() || plan.chunks < 1 || cols_ < 1) return 0;
    // A size beyond the address space is SIZE_MAX, which no buffer meets,
    // rather than a signed overflow in the slot size (cols >= 2^62) or a
    // product that wraps around (found by fuzz/; test_fuzz_regressions.cpp).
    if (cols_ > (PTRDIFF_MAX - 64) / 2) return SIZE_MAX;
    const std::size_t stride = std::size_t(layout.template slot_stride<C>());
    if (stride > SIZE_MAX / sizeof(C) / std::size_t(plan.chunks)) return SIZE_MAX;
    return std::size_t(plan.chunks) * stride * sizeof(C);
  }

 protected:
  using C = compute_type;
  // Named in member functions only, where Derived is complete.
  template <class D = Derived>
  using run = cpu_detail::runner<Backend, T, D::prefetch_rows>;

  explicit layer_base(index_t cols) : cols_(cols) {}

  const Derived& self() const { return static_cast<const Derived&>(*this); }

  // The layer's own checks (cols, parameters): every call makes them first.
  void check_layer(arg_check& check) const {
    if (cols_ < 1) check.fail(errc::bad_size, "the layer's cols (%lld) must be >= 1", static_cast<long long>(cols_));
    self().check_params(check);
  }

  status forward_impl(const char* fn, rows_view<const T> x, rows_view<T> y, row_stats<C> save) const {
    arg_check check(fn);
    region_list regions;
    check_forward(check, regions, x, y, save);
    if (!check.ok() || !check.no_overlap(regions).ok()) return check.result();
    run<>::rows(x.rows, cols_, self().row_forward(x, y, save));
    return status();
  }

  // Quantized forward (ops/quantize.hpp): int8 or E4M3 codes in y, with each
  // row's scale from the row's largest |y| written to scales.out
  // (per_row_scale: x.rows values), or the caller's per-channel scales.in read
  // (per_channel_scale: cols values, no reduction).
  template <class Q, class Scales>
  status forward_quantized_impl(const char* fn, rows_view<const T> x, rows_view<Q> y, Scales scales,
                                row_stats<C> save) const {
    static_assert(ops::is_quantized_format_v<Q>, "quantized output is std::int8_t or dyt::float8_e4m3");
    constexpr bool per_channel = std::is_same<Scales, per_channel_scale<C>>::value;
    arg_check check(fn);
    region_list regions;
    check_forward(check, regions, x, y, save);
    if constexpr (per_channel) {
      check.not_null(scales.in, "scales.in");
      regions.array("scales.in", scales.in, cols_, false);
    } else {
      check.not_null(scales.out, "scales.out");
      regions.array("scales.out", scales.out, x.rows, true);
    }
    if (!check.ok() || !check.no_overlap(regions).ok()) return check.result();
    if constexpr (per_channel) {
      run<>::rows(x.rows, cols_, self().row_forward(x, ops::channel_quantized_rows<Q, C>{y, scales.in}, save));
    } else if constexpr (Derived::hold_quantized_y) {
      if (x.rows == 0) return status();
      // One row of y: cols values, reused by every row of the call.
      std::unique_ptr<C[]> row(new (std::nothrow) C[std::size_t(cols_)]);
      if (!row)
        return status::error(errc::out_of_memory, "%s: cannot allocate the %zu-byte row buffer", fn,
                             std::size_t(cols_) * sizeof(C));
      run<>::rows_held(x.rows, cols_, row.get(),
                       self().row_forward(x, ops::row_quantized_rows<Q, C, true>{y, scales.out}, save));
    } else {
      run<>::rows(x.rows, cols_, self().row_forward(x, ops::row_quantized_rows<Q, C>{y, scales.out}, save));
    }
    return status();
  }

  // residual <- x + residual (rounded to T, as an add kernel would store it),
  // then the layer on that row while it is still in cache. The layer's row
  // runs through the very function forward() runs (run<>::rows of the same
  // row function, on a one-row view), never inlined into another loop, so y is
  // bit for bit forward(h) whatever FMA contraction a compiler chooses where
  // it inlines (the fused backward's dx once moved so on aarch64); the add
  // before it is one exact sum, rounded once.
  status forward_residual_impl(const char* fn, rows_view<const T> x, rows_view<T> residual, rows_view<T> y,
                               row_stats<C> save) const {
    arg_check check(fn);
    region_list regions;
    check_forward(check, regions, x, y, save);
    check.view(residual, "residual").same_shape(residual, "residual", x, "x");
    regions.view("residual", residual, true);
    if (!check.ok() || !check.no_overlap(regions).ok()) return check.result();
    for (index_t r = 0; r < x.rows; ++r) {
      const T* x_row = x.row(r);
      T* h_row = residual.row(r);
      run<>::rows(1, cols_, [&](const auto& eng, index_t) {
        eng.for_each([&](const auto& at) {
          auto h = at.load(x_row) + at.load(h_row);
          at.store(h_row, decltype(h)(h));
        });
      });
      const row_stats<C> save_r(save.mean ? save.mean + r : nullptr, save.rstd ? save.rstd + r : nullptr);
      run<>::rows(1, cols_, self().row_forward(residual.subrows(r, r + 1), y.subrows(r, r + 1), save_r));
    }
    return status();
  }

  // The whole-tensor backward: the default plan through the same chunk and
  // reduce code a thread pool runs (every partial sum, wanted or not), with a
  // workspace allocated here, so both give bit-identical results.
  template <class Gradients>
  status backward_impl(const char* fn, rows_view<const T> x, rows_view<const T> dy, rows_view<T> dx,
                       const Gradients& grads, grad_mode mode, row_stats<const C> saved) const {
    arg_check check(fn);
    region_list regions;
    check_backward(check, regions, x, dy, dx, saved);
    if (check.ok()) self().check_grads(check, regions, grads);
    if (!check.ok() || !check.no_overlap(regions).ok()) return check.result();
    return backward_rows(fn, x, dy, dx, grads, mode, saved);
  }

  // dx = dh + the layer's dx, for h = the residual forward_residual left.
  template <class Gradients>
  status backward_residual_impl(const char* fn, rows_view<const T> h, rows_view<const T> dy, rows_view<const T> dh,
                                rows_view<T> dx, const Gradients& grads, grad_mode mode,
                                row_stats<const C> saved) const {
    arg_check check(fn);
    region_list regions;
    check_backward(check, regions, h, dy, dx, saved, "h");
    check.view(dh, "dh").same_shape(dh, "dh", h, "h");
    regions.view("dh", dh, false);
    if (check.ok()) self().check_grads(check, regions, grads);
    if (!check.ok() || !check.no_overlap(regions).ok()) return check.result();
    return backward_rows(fn, h, dy, plus_rows<T>{dh, dx}, grads, mode, saved);
  }

  status chunks_impl(const char* fn, const backward_plan& plan, index_t first, index_t last, rows_view<const T> x,
                     rows_view<const T> dy, rows_view<T> dx, void* workspace, std::size_t workspace_size,
                     row_stats<const C> saved) const {
    arg_check check(fn);
    region_list regions;
    check_chunks(check, regions, plan, first, last, x, dy, dx, workspace, workspace_size, saved, "x");
    if (!check.ok() || !check.no_overlap(regions).ok()) return check.result();
    run<>::chunks(plan, first, last, self().layout(), static_cast<C*>(workspace), self().row_backward(x, dy, dx, saved));
    return status();
  }

  status chunks_residual_impl(const char* fn, const backward_plan& plan, index_t first, index_t last,
                              rows_view<const T> h, rows_view<const T> dy, rows_view<const T> dh, rows_view<T> dx,
                              void* workspace, std::size_t workspace_size, row_stats<const C> saved) const {
    arg_check check(fn);
    region_list regions;
    check_chunks(check, regions, plan, first, last, h, dy, dx, workspace, workspace_size, saved, "h");
    check.view(dh, "dh").same_shape(dh, "dh", h, "h");
    regions.view("dh", dh, false);
    if (!check.ok() || !check.no_overlap(regions).ok()) return check.result();
    run<>::chunks(plan, first, last, self().layout(), static_cast<C*>(workspace),
                  self().row_backward(h, dy, plus_rows<T>{dh, dx}, saved));
    return status();
  }

  template <class Gradients>
  status reduce_impl(const char* fn, const backward_plan& plan, const void* workspace, std::size_t workspace_size,
                     const Gradients& grads, grad_mode mode) const {
    arg_check check(fn);
    region_list regions;
    check_layer(check);
    check.plan(plan, plan.rows).workspace(workspace, workspace_size, workspace_bytes(plan), alignof(C));
    regions.array("workspace", static_cast<const unsigned char*>(workspace), index_t(workspace_size), false);
    self().add_params(regions);
    if (check.ok()) self().check_grads(check, regions, grads);
    if (!check.ok() || !check.no_overlap(regions).ok()) return check.result();
    if (workspace_bytes(plan) > 0) reduce(plan, static_cast<const C*>(workspace), grads, mode);
    return status();
  }

 private:
  template <class Gradients>
  void reduce(const backward_plan& plan, const C* workspace, const Gradients& grads, grad_mode mode) const {
    T* col_out[2] = {nullptr, nullptr};
    T* scalar_out[2] = {nullptr, nullptr};
    self().grad_outputs(grads, col_out, scalar_out);
    run<>::reduce(plan, self().layout(), workspace, col_out, scalar_out, mode);
  }

  // y: rows_view<T>, or rows_view<Q> of the quantized forward.
  template <class Y>
  void check_forward(arg_check& check, region_list& regions, rows_view<const T> x, rows_view<Y> y,
                     row_stats<C> save) const {
    check_layer(check);
    check.view(x, "x").view(y, "y").cols_are(x, "x", cols_, "the layer's cols").same_shape(y, "y", x, "x");
    if (check.ok() && Derived::stats_saved < 2 && save.mean)
      check.fail(errc::bad_parameter, "a mean buffer is given, but %s computes no mean", Derived::name);
    if (!check.ok()) return;
    regions.view("x", x, false).view("y", y, true);
    regions.array("mean", save.mean, x.rows, true).array("rstd", save.rstd, x.rows, true);
    self().add_params(regions);
  }

  // The whole-tensor backward, after the checks: the default plan through the
  // same chunk and reduce code a thread pool runs (every partial sum, wanted
  // or not), with a workspace allocated here, so both give bit-identical
  // results. dx: a rows_view<T> or plus_rows<T>.
  template <class Gradients, class DX>
  status backward_rows(const char* fn, rows_view<const T> x, rows_view<const T> dy, DX dx, const Gradients& grads,
                       grad_mode mode, row_stats<const C> saved) const {
    const backward_plan plan = make_backward_plan(x.rows);
    const std::size_t count = workspace_bytes(plan) / sizeof(C);
    std::unique_ptr<C[]> workspace(count ? new (std::nothrow) C[count] : nullptr);
    if (count && !workspace)
      return status::error(errc::out_of_memory, "%s: cannot allocate the %zu-byte gradient workspace", fn,
                           count * sizeof(C));
    run<>::chunks(plan, 0, plan.chunks, self().layout(), workspace.get(), self().row_backward(x, dy, dx, saved));
    if (count) reduce(plan, workspace.get(), grads, mode);
    return status();
  }

  void check_chunks(arg_check& check, region_list& regions, const backward_plan& plan, index_t first, index_t last,
                    rows_view<const T> x, rows_view<const T> dy, rows_view<T> dx, void* workspace,
                    std::size_t workspace_size, row_stats<const C> saved, const char* x_name) const {
    check.plan(plan, x.rows).chunk_range(plan, first, last);
    check.workspace(workspace, workspace_size, workspace_bytes(plan), alignof(C));
    check_backward(check, regions, x, dy, dx, saved, x_name);
    regions.array("workspace", static_cast<unsigned char*>(workspace), index_t(workspace_size), true);
  }

  // x_name: what the layer's input is called in messages ("h" in the fused residual backward).
  void check_backward(arg_check& check, region_list& regions, rows_view<const T> x, rows_view<const T> dy,
                      rows_view<T> dx, row_stats<const C> saved, const char* x_name = "x") const {
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
    if (!check.ok()) return;
    regions.view(x_name, x, false).view("dy", dy, false).view("dx", dx, true);
    regions.array("saved.mean", saved.mean, x.rows, false).array("saved.rstd", saved.rstd, x.rows, false);
    self().add_params(regions);
  }

  index_t cols_;
};

}  // namespace detail
}  // namespace dyt
