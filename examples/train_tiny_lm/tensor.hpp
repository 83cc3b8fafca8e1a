// tensor.hpp: the matrix type every part of the model uses, the record a
// parameter tensor is visited through, and a small deterministic random source.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <string>

namespace tiny_lm {

// Row-major, because dyt::eigen::view hands dyt the rows of a matrix and dyt
// reads each row as one contiguous run of memory. Vectors (biases, gamma,
// beta) are 1 x n and scalars (DyT's alpha, the embedding scale) 1 x 1, so
// the optimizer and the gradient check treat every parameter alike.
template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// One parameter tensor and the gradient the backward pass writes for it.
// `decay`: whether AdamW's weight decay applies (matrices yes; biases, norm
// parameters and scalars no, as in GPT-2 and LLaMA training).
template <class T>
struct param_ref {
  std::string name;  // "block2.ffn_norm.gamma"
  Mat<T>* value;
  Mat<T>* grad;
  bool decay;
};

// splitmix64: the same numbers on every compiler and standard library (the
// <random> distributions are implementation-defined), so a seed names a run.
class rng {
 public:
  explicit rng(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n); the modulo bias is below 2^-40 for any n used here.
  std::size_t below(std::size_t n) { return std::size_t(next() % n); }
  // Standard normal (Box-Muller; the second value is dropped for simplicity).
  double normal() {
    const double u1 = 1.0 - uniform();  // in (0, 1]: log is finite
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  std::uint64_t state_;
};

}  // namespace tiny_lm
