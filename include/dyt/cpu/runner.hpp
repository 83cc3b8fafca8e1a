// dyt/cpu/runner.hpp: the loops over rows and chunks of the CPU backends
// (reference, cpu_scalar, cpu). Row math comes from ops/; the engine decides
// how a row is swept; this file only decides which rows and where partial
// gradient sums go.
#pragma once

#include "../backend.hpp"
#include "../backward_plan.hpp"
#include "row_engine.hpp"

namespace dyt {
namespace cpu_detail {

template <class Backend, class T, bool Prefetch = false>
struct runner {
  using C = typename backend_traits<Backend, T>::compute_type;
  using engine = row_engine<C, backend_traits<Backend, T>::vectorized, Prefetch>;
  using held_engine = held_row_engine<C, backend_traits<Backend, T>::vectorized, Prefetch>;

  // row_fn(eng, r) for every row r in [0, rows). Out of line, like chunks():
  // every caller of a layer's forward (a whole tensor, a thread's subrows, a
  // call through dyt/eigen.hpp) runs the same machine code, so the same row
  // gives the same bits whatever FMA contraction inlining into the caller
  // would have chosen.
  template <class RowFn>
  DYT_NOINLINE static void rows(index_t rows, index_t cols, const RowFn& row_fn) {
    const engine eng{cols};
    for (index_t r = 0; r < rows; ++r) row_fn(eng, r);
  }

  // rows() with an engine whose keep() holds a row in row_buffer (cols
  // values of C, the caller's scratch): the quantized forward's Hold.
  template <class RowFn>
  DYT_NOINLINE static void rows_held(index_t rows, index_t cols, C* row_buffer, const RowFn& row_fn) {
    const held_engine eng{{cols}, row_buffer};
    for (index_t r = 0; r < rows; ++r) row_fn(eng, r);
  }

  // Backward over chunks [first, last) of the plan. Each chunk's slot is
  // zeroed, then row_fn(eng, r, col_acc, scalar_acc) adds each row's
  // contribution in row order (the accumulators are null without a workspace;
  // scalar_acc points at layout.scalar_grads consecutive sums).
  // Out of line, so the whole-tensor backward and every split of the chunk
  // API run the same machine code: dx and the partial sums come out
  // bit-identical, whatever FMA contraction the compiler chose.
  template <class RowFn>
  DYT_NOINLINE static void chunks(const backward_plan& plan, index_t first, index_t last,
                                  const detail::grad_layout& layout, C* workspace, const RowFn& row_fn) {
    const engine eng{layout.cols};
    const index_t stride = layout.template slot_stride<C>();
    for (index_t k = first; k < last; ++k) {
      C* col_acc[2] = {nullptr, nullptr};
      C* scalar_acc = nullptr;
      if (workspace) {
        C* slot = workspace + k * stride;
        for (index_t i = 0; i < stride; ++i) slot[i] = C(0);
        for (int g = 0; g < layout.col_grads; ++g) col_acc[g] = slot + g * layout.cols;
        if (layout.scalar_grads) scalar_acc = slot + layout.col_grads * layout.cols;
      }
      for (index_t r = plan.chunk_begin(k); r < plan.chunk_begin(k + 1); ++r) row_fn(eng, r, col_acc, scalar_acc);
    }
  }

  // Adds the chunks' slots in chunk order, column by column, and writes (or
  // adds to) the caller's gradients: col_out[layout.col_grads] and
  // scalar_out[layout.scalar_grads]; null outputs are skipped.
  DYT_NOINLINE static void reduce(const backward_plan& plan, const detail::grad_layout& layout, const C* workspace,
                     T* const* col_out, T* const* scalar_out, grad_mode mode) {
    const engine eng{layout.cols};
    const index_t stride = layout.template slot_stride<C>();
    const bool accumulate = mode == grad_mode::accumulate;
    for (int g = 0; g < layout.col_grads; ++g) {
      T* out = col_out[g];
      if (!out) continue;
      const C* first = workspace + g * layout.cols;
      eng.for_each([&](const auto& at) {
        auto total = at.load(first);
        for (index_t k = 1; k < plan.chunks; ++k) total = total + at.load(first + k * stride);
        at.store(out, accumulate ? decltype(total)(at.load(out) + total) : total);
      });
    }
    for (int g = 0; g < layout.scalar_grads; ++g) {
      T* out = scalar_out[g];
      if (!out) continue;
      const C* first = workspace + layout.col_grads * layout.cols + g;
      C total = first[0];
      for (index_t k = 1; k < plan.chunks; ++k) total = total + first[k * stride];
      const scalar_at<C> at{0};
      at.store(out, accumulate ? at.load(out) + total : total);
    }
  }
};

}  // namespace cpu_detail
}  // namespace dyt
