// dyt/backward_plan.hpp: how a backward pass splits its rows, and how
// parameter gradients are combined so the result never depends on the split.
//
// dgamma, dbeta and dalpha are sums over rows. A plan cuts the rows into
// `chunks` fixed ranges; each chunk's partial sums go to its own slot of a
// workspace, and reduce_gradients() adds the slots in chunk order. The result
// depends only on the inputs and the chunk count: not on which thread ran
// which chunk, nor in which order they finished. The whole-tensor backward()
// runs the same plan (make_backward_plan's default), so it gives bit-identical
// gradients to any threaded run of that plan.
#pragma once

#include <cstddef>

#include "config.hpp"

namespace dyt {

// What a backward pass does with the caller's gradient buffers.
enum class grad_mode {
  overwrite,   // dgamma = this batch's gradient
  accumulate,  // dgamma = dgamma + this batch's gradient (summed in the compute type, rounded once)
};

struct backward_plan {
  index_t rows = 0;
  index_t chunks = 0;

  // Chunk k holds rows [chunk_begin(k), chunk_begin(k + 1)); sizes differ by at most one row.
  constexpr index_t chunk_begin(index_t k) const {
    return k * (rows / chunks) + (k < rows % chunks ? k : rows % chunks);
  }
};

// Chunks of at least 32 rows and at most 64 of them: enough parallelism for a
// thread pool, while the workspace (chunks x parameter gradients) stays small
// next to the tensor.
constexpr index_t default_chunks(index_t rows) {
  return rows / 32 < 1 ? 1 : (rows / 32 > 64 ? 64 : rows / 32);
}

// chunks == 0 picks default_chunks(rows); otherwise 1 <= chunks <= rows.
constexpr backward_plan make_backward_plan(index_t rows, index_t chunks = 0) {
  return backward_plan{rows, chunks > 0 ? chunks : default_chunks(rows)};
}

namespace detail {

// Where one chunk's partial sums live in the workspace: `col_grads` vectors of
// `cols` (dgamma, dbeta) then `scalar_grads` scalars (dalpha, and Derf's
// dshift), the slot padded to 64 bytes so threads writing neighbouring slots
// don't share a cache line.
struct grad_layout {
  index_t cols = 0;
  int col_grads = 0;
  int scalar_grads = 0;

  template <class C>
  constexpr index_t slot_stride() const {
    const index_t n = col_grads * cols + scalar_grads;
    const index_t per_line = index_t(64 / sizeof(C));
    return (n + per_line - 1) / per_line * per_line;
  }
  constexpr bool empty() const { return col_grads == 0 && scalar_grads == 0; }
};

}  // namespace detail
}  // namespace dyt
