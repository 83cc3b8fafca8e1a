// dyt/backend.hpp: the backend tags a layer is templated on.
//
// A backend decides the compute type and how a row is swept (plain loop, xsimd
// vectors, later CUDA warps); the math in ops/ is the same for all of them.
#pragma once

#include "types.hpp"

namespace dyt {

// Float64 everywhere with plain loops and std::tanh whatever the tanh policy:
// the truth the tests compare against, available to users for the same purpose.
struct reference {};

// compute_t<T> (float for 16- and 32-bit storage) with plain scalar loops:
// what `cpu` is on a build without xsimd, kept selectable for comparisons.
struct cpu_scalar {};

// compute_t<T> with xsimd vectors for the body of each row and scalar tails.
struct cpu {};

template <class Backend, class T>
struct backend_traits {
  using compute_type = compute_t<T>;
  static constexpr bool vectorized = false;
};
template <class T>
struct backend_traits<reference, T> {
  using compute_type = double;
  static constexpr bool vectorized = false;
};
template <class T>
struct backend_traits<cpu, T> {
  using compute_type = compute_t<T>;
  static constexpr bool vectorized = DYT_USE_XSIMD != 0;
};

}  // namespace dyt
