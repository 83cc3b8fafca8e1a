// dyt/view.hpp: non-owning views of the caller's row-major buffers.
#pragma once

#include <type_traits>

#include "config.hpp"

namespace dyt {

// rows x cols elements; row r starts at data + r * row_stride. The layers never
// allocate or copy: a view points at the caller's own buffer, of any alignment.
template <class T>
struct rows_view {
  T* data = nullptr;
  index_t rows = 0;
  index_t cols = 0;
  index_t row_stride = 0;

  constexpr rows_view() = default;
  constexpr rows_view(T* data_, index_t rows_, index_t cols_) : rows_view(data_, rows_, cols_, cols_) {}
  constexpr rows_view(T* data_, index_t rows_, index_t cols_, index_t row_stride_)
      : data(data_), rows(rows_), cols(cols_), row_stride(row_stride_) {}

  // A view of T converts to a view of const T (outputs can be passed as inputs).
  template <class U, class = std::enable_if_t<std::is_same<const U, T>::value && !std::is_same<U, T>::value>>
  constexpr rows_view(const rows_view<U>& v) : data(v.data), rows(v.rows), cols(v.cols), row_stride(v.row_stride) {}

  T* row(index_t r) const { return data + r * row_stride; }

  // Rows [first, last): how a caller's thread pool splits a forward pass.
  rows_view subrows(index_t first, index_t last) const { return rows_view(row(first), last - first, cols, row_stride); }
};

template <class T>
constexpr rows_view<T> make_view(T* data, index_t rows, index_t cols) {
  return rows_view<T>(data, rows, cols);
}
template <class T>
constexpr rows_view<T> make_view(T* data, index_t rows, index_t cols, index_t row_stride) {
  return rows_view<T>(data, rows, cols, row_stride);
}

// Per-row statistics saved by a forward pass for the backward pass: the mean
// (LayerNorm only) and the reciprocal standard deviation, in the layer's compute
// type. Either pointer may be null where a layer does not use it.
template <class C>
struct row_stats {
  C* mean = nullptr;
  C* rstd = nullptr;

  constexpr row_stats() = default;
  constexpr row_stats(C* mean_, C* rstd_) : mean(mean_), rstd(rstd_) {}
  template <class U, class = std::enable_if_t<std::is_same<const U, C>::value && !std::is_same<U, C>::value>>
  constexpr row_stats(const row_stats<U>& s) : mean(s.mean), rstd(s.rstd) {}
};

}  // namespace dyt
