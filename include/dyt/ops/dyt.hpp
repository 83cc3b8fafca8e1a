// dyt/ops/dyt.hpp: the math of Dynamic Tanh: the point-wise math
// (ops/pointwise.hpp) with tanh as its squashing function.
//
//   y = gamma * tanh(alpha * x) + beta         (gamma and beta each optional)
//
// Backward, with t = tanh(alpha x) and g = dy * gamma * (1 - t^2):
//   dx = alpha * g,   dalpha = sum over all elements of x * g,
//   dgamma[j] = sum over rows of dy * t,   dbeta[j] = sum over rows of dy.
// 1 - t^2 is formed as (1 - t)(1 + t): it keeps relative accuracy where t is
// near +-1, and it is formed in the compute type (in bf16 it would be 0 for
// |alpha x| > 3.4).
//
// forward_row(eng, alpha, x, y, gamma, beta), backward_row(eng, alpha, x, dy,
// dx, gamma, dgamma_acc, dbeta_acc) -> this row's share of dalpha, and
// squash(x, alpha), with alpha a plain scalar: u = alpha * x, no shift.
#pragma once

#include "pointwise.hpp"
#include "squash.hpp"

namespace dyt {
namespace ops {

template <class Tanh>
using dyt_math = pointwise_math<tanh_squash<Tanh>>;

}  // namespace ops
}  // namespace dyt
