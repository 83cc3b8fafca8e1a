// dyt/eigen.hpp: Eigen objects in and out of the layers, without copies, and
// DyT folded into the linear layer that follows it.
//
//   dyt::eigen::view(m)             a rows_view of m's own memory (row stride included)
//   dyt::eigen::forward(layer, x, y), dyt::eigen::backward(layer, x, dy, dx, grads)
//   dyt::eigen::fold_into_linear(gamma, beta, cols, W, b)
//
// view() takes any Eigen object with direct access whose rows are contiguous:
// Matrix<T, R, C, RowMajor>, a Map of one (with an OuterStride), a Block of
// either, Ref<Matrix<..., RowMajor>>, row vectors. Column-major storage or an
// inner stride other than 1 are refused when the program compiles, with a
// message; shapes are checked by the layer, which refuses a mismatch and writes
// nothing. T is the matrix's own scalar: float, double, Eigen::bfloat16 or
// Eigen::half (the same bits as dyt's own 16-bit types).
#pragma once

#include <Eigen/Core>

#include <type_traits>
#include <utility>

#include "dyt.hpp"

namespace dyt {
namespace eigen {

// The rows of m as a view: const when m's data is const (a const object, a
// Map<const ...>, a Ref<const ...>), writable otherwise.
template <class M>
auto view(M&& m) {
  using E = std::remove_cv_t<std::remove_reference_t<M>>;
  static_assert(bool(E::IsRowMajor) || E::RowsAtCompileTime == 1,
                "dyt::eigen::view: dyt reads rows that are contiguous in memory; this Eigen type stores columns "
                "(column-major). Use Eigen::Matrix<T, Rows, Cols, Eigen::RowMajor> or a Map/Ref of one.");
  static_assert(int(E::InnerStrideAtCompileTime) == 1,
                "dyt::eigen::view: the elements of a row must be adjacent (inner stride 1)");
  using T = std::remove_pointer_t<decltype(m.data())>;
  const index_t rows = index_t(m.rows()), cols = index_t(m.cols());
  return rows_view<T>(m.data(), rows, cols, rows == 1 ? cols : index_t(m.outerStride()));
}

// layer.forward on Eigen objects: y may be x itself (in place).
template <class Layer, class X, class Y>
status forward(const Layer& layer, const X& x, Y&& y) {
  return layer.forward(view(x), view(std::forward<Y>(y)));
}

template <class Layer, class X, class DY, class DX>
status backward(const Layer& layer, const X& x, const DY& dy, DX&& dx, const typename Layer::gradients& grads,
                grad_mode mode = grad_mode::overwrite) {
  return layer.backward(view(x), view(dy), view(std::forward<DX>(dx)), grads, mode);
}

// Folds DyT's gamma and beta into the linear layer z = W y + b that follows it,
// for inference: since y = gamma * t + beta with t = tanh(alpha x),
//   z = (W diag(gamma)) t + (W beta + b),
// so an engine runs DyT without gamma and beta (DyT<T>(alpha, nullptr, nullptr,
// cols)) and then W' = W diag(gamma), b' = W beta + b. W is out x cols (any
// storage order), b has `out` entries; either parameter may be null (then it is
// 1 or 0). Each new entry is computed in double and rounded once to the
// matrix's scalar type. A refused call writes nothing.
template <class T, class MatW, class VecB>
status fold_into_linear(const T* gamma, const T* beta, index_t cols, MatW&& W, VecB&& b) {
  using S = typename std::remove_reference_t<MatW>::Scalar;
  using SB = typename std::remove_reference_t<VecB>::Scalar;
  const char* fn = "dyt::eigen::fold_into_linear";
  if (cols < 1) return status::error(errc::bad_size, "%s: cols (%lld) must be >= 1", fn, static_cast<long long>(cols));
  if (index_t(W.cols()) != cols)
    return status::error(errc::size_mismatch, "%s: W has %lld columns but the DyT layer has %lld channels", fn,
                         static_cast<long long>(W.cols()), static_cast<long long>(cols));
  if (b.size() != W.rows())
    return status::error(errc::size_mismatch, "%s: b has %lld entries but W has %lld rows", fn,
                         static_cast<long long>(b.size()), static_cast<long long>(W.rows()));
  auto param = [&](const T* p, index_t j, double none) {
    return p ? double(scalar_traits<T>::load(p[j])) : none;
  };
  for (Eigen::Index i = 0; i < W.rows(); ++i) {
    if (beta) {
      double shift = 0;
      for (index_t j = 0; j < cols; ++j) shift += double(W(i, j)) * param(beta, j, 0.0);
      b(i) = SB(double(b(i)) + shift);
    }
    if (gamma)
      for (index_t j = 0; j < cols; ++j) W(i, j) = S(double(W(i, j)) * param(gamma, j, 1.0));
  }
  return status();
}

}  // namespace eigen
}  // namespace dyt
