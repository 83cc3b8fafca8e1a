// Small helpers shared by test_gradcheck, test_determinism, test_errors,
// test_no_exceptions, test_special_values and test_interop: owning row-major
// buffers with a row stride, seeded random fills, bit comparisons, canary
// patterns that prove a refused call wrote nothing, and one "kit" per layer that
// owns a layer's parameters and gradient buffers.
//
// Everything here must also compile with -fno-exceptions (test_no_exceptions).
#pragma once

#include <dyt/dyt.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace dyt_test {

using dyt::index_t;

// ---------------------------------------------------------------------------
// Values of any storage type, through the library's own load/store rules.

template <class T>
T from_double(double v) {
  return dyt::scalar_traits<T>::store(static_cast<dyt::compute_t<T>>(v));
}

template <class T>
double to_double(const T& v) {
  return static_cast<double>(dyt::scalar_traits<T>::load(v));
}

template <class T>
bool is_nan(const T& v) {
  return std::isnan(to_double(v));
}

template <class T>
bool is_finite(const T& v) {
  return std::isfinite(to_double(v));
}

// The raw bits of a storage value, for messages and bit comparisons.
template <class T>
std::uint64_t bits_of(const T& v) {
  std::uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}

// ---------------------------------------------------------------------------
// Seeded randomness: every test is reproducible from its seed.

class rng {
 public:
  explicit rng(std::uint64_t seed) : gen_(seed) {}
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(gen_); }
  double normal() { return std::normal_distribution<double>(0.0, 1.0)(gen_); }
  // An integer in [lo, hi].
  index_t between(index_t lo, index_t hi) { return std::uniform_int_distribution<index_t>(lo, hi)(gen_); }
  std::mt19937_64& engine() { return gen_; }

 private:
  std::mt19937_64 gen_;
};

template <class T>
std::vector<T> random_vector(index_t n, rng& r, double lo, double hi) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (auto& e : v) e = from_double<T>(r.uniform(lo, hi));
  return v;
}

// ---------------------------------------------------------------------------
// A caller's row-major buffer: rows x cols elements, row r at r * stride.

template <class T>
struct matrix {
  index_t rows = 0, cols = 0, stride = 0;
  std::vector<T> buf;

  matrix() = default;
  matrix(index_t rows_, index_t cols_, index_t stride_ = 0)
      : rows(rows_), cols(cols_), stride(stride_ > 0 ? stride_ : cols_),
        buf(static_cast<std::size_t>(rows_ * (stride_ > 0 ? stride_ : cols_)), from_double<T>(0.0)) {}

  T* data() { return buf.data(); }
  const T* data() const { return buf.data(); }
  T& at(index_t r, index_t c) { return buf[static_cast<std::size_t>(r * stride + c)]; }
  const T& at(index_t r, index_t c) const { return buf[static_cast<std::size_t>(r * stride + c)]; }

  dyt::rows_view<T> view() { return dyt::rows_view<T>(buf.data(), rows, cols, stride); }
  dyt::rows_view<const T> cview() const { return dyt::rows_view<const T>(buf.data(), rows, cols, stride); }
};

// Every element, padding included, from U(lo, hi).
template <class T>
void fill_uniform(matrix<T>& m, rng& r, double lo, double hi) {
  for (auto& e : m.buf) e = from_double<T>(r.uniform(lo, hi));
}

// ---------------------------------------------------------------------------
// Bit-for-bit comparison (NaN payloads and signed zeros count).

template <class T>
bool same_bits(const T* a, const T* b, std::size_t n) {
  return n == 0 || std::memcmp(a, b, n * sizeof(T)) == 0;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && same_bits(a.data(), b.data(), a.size());
}

template <class T>
bool same_bits(const matrix<T>& a, const matrix<T>& b) {
  return a.rows == b.rows && a.cols == b.cols && a.stride == b.stride && same_bits(a.buf, b.buf);
}

// Index of the first element whose bits differ, or -1.
template <class T>
long first_difference(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (bits_of(a[i]) != bits_of(b[i])) return static_cast<long>(i);
  return -1;
}

// ---------------------------------------------------------------------------
// Canaries: a byte pattern no computation produces by accident (it varies with
// the position, so a shifted copy is caught too). Painting every buffer a call
// may write and checking it afterwards proves a refused call wrote nothing.

inline unsigned char canary_byte(std::size_t i) { return static_cast<unsigned char>(0xA5u ^ (i * 29u)); }

inline void paint(void* p, std::size_t bytes) {
  auto* c = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < bytes; ++i) c[i] = canary_byte(i);
}

inline bool intact(const void* p, std::size_t bytes) {
  const auto* c = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < bytes; ++i)
    if (c[i] != canary_byte(i)) return false;
  return true;
}

template <class T>
void paint(std::vector<T>& v) {
  paint(v.data(), v.size() * sizeof(T));
}
template <class T>
bool intact(const std::vector<T>& v) {
  return intact(v.data(), v.size() * sizeof(T));
}
template <class T>
void paint(matrix<T>& m) {
  paint(m.buf);
}
template <class T>
bool intact(const matrix<T>& m) {
  return intact(m.buf);
}

// ---------------------------------------------------------------------------
// Workspace memory for the chunk API, aligned for any compute type.

class workspace {
 public:
  explicit workspace(std::size_t bytes)
      : mem_((bytes + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t) + 1), bytes_(bytes) {}
  void* data() { return mem_.data(); }
  const void* data() const { return mem_.data(); }
  std::size_t size() const { return bytes_; }
  // Poison: the chunk API must not depend on what the workspace held before.
  void fill_nan() {
    unsigned char* p = static_cast<unsigned char*>(data());
    for (std::size_t i = 0; i < bytes_; ++i) p[i] = 0xff;  // all-ones is a NaN in float and double
  }

 private:
  std::vector<std::max_align_t> mem_;
  std::size_t bytes_;
};

// ---------------------------------------------------------------------------
// Layer kits: a layer together with the parameters it points at, and gradient
// buffers in a fixed order so generic code can compare them. Parameters are
// allocated before the layer is built and never resized, so the kit must not
// be copied (the layer would point into the original's vectors).

template <class T>
using grad_buffers = std::vector<std::vector<T>>;

// A parameter a kit owns, by name, in the same order as its gradient buffers.
template <class T>
struct named_param {
  const char* name;
  std::vector<T>* values;
};

template <class T>
T* or_null(std::vector<T>& v) {
  return v.empty() ? nullptr : v.data();
}
template <class T>
const T* or_null(const std::vector<T>& v) {
  return v.empty() ? nullptr : v.data();
}

// DyT: gradients in the order dalpha, dgamma, dbeta (absent parameters: empty).
template <class T, class Backend, class Tanh = dyt::default_tanh_t<T>>
struct dyt_kit {
  using layer_type = dyt::DyT<T, Backend, Tanh>;
  using gradients = typename layer_type::gradients;
  static constexpr const char* name = "DyT";
  static constexpr int stats_saved = 0;

  std::vector<T> alpha, gamma, beta;
  layer_type layer;

  dyt_kit(index_t cols, rng& r, bool with_gamma = true, bool with_beta = true)
      : alpha(1, from_double<T>(r.uniform(0.4, 1.2))),
        gamma(with_gamma ? random_vector<T>(cols, r, 0.5, 1.5) : std::vector<T>()),
        beta(with_beta ? random_vector<T>(cols, r, -0.5, 0.5) : std::vector<T>()),
        layer(alpha.data(), or_null(gamma), or_null(beta), cols) {}
  dyt_kit(const dyt_kit&) = delete;
  dyt_kit& operator=(const dyt_kit&) = delete;

  grad_buffers<T> make_grads() const {
    return {std::vector<T>(1), std::vector<T>(gamma.size()), std::vector<T>(beta.size())};
  }
  static gradients pointers(grad_buffers<T>& g) { return {or_null(g[0]), or_null(g[1]), or_null(g[2])}; }
  std::vector<named_param<T>> params() { return {{"alpha", &alpha}, {"gamma", &gamma}, {"beta", &beta}}; }
};

// LayerNorm: gradients in the order dgamma, dbeta.
template <class T, class Backend>
struct layer_norm_kit {
  using layer_type = dyt::LayerNorm<T, Backend>;
  using gradients = typename layer_type::gradients;
  static constexpr const char* name = "LayerNorm";
  static constexpr int stats_saved = 2;

  std::vector<T> gamma, beta;
  layer_type layer;

  layer_norm_kit(index_t cols, rng& r, bool with_gamma = true, bool with_beta = true, double eps = 1e-5)
      : gamma(with_gamma ? random_vector<T>(cols, r, 0.5, 1.5) : std::vector<T>()),
        beta(with_beta ? random_vector<T>(cols, r, -0.5, 0.5) : std::vector<T>()),
        layer(or_null(gamma), or_null(beta), cols, eps) {}
  layer_norm_kit(const layer_norm_kit&) = delete;
  layer_norm_kit& operator=(const layer_norm_kit&) = delete;

  grad_buffers<T> make_grads() const { return {std::vector<T>(gamma.size()), std::vector<T>(beta.size())}; }
  static gradients pointers(grad_buffers<T>& g) { return {or_null(g[0]), or_null(g[1])}; }
  std::vector<named_param<T>> params() { return {{"gamma", &gamma}, {"beta", &beta}}; }
};

// RMSNorm: gradients in the order dgamma.
template <class T, class Backend>
struct rms_norm_kit {
  using layer_type = dyt::RMSNorm<T, Backend>;
  using gradients = typename layer_type::gradients;
  static constexpr const char* name = "RMSNorm";
  static constexpr int stats_saved = 1;

  std::vector<T> gamma;
  layer_type layer;

  rms_norm_kit(index_t cols, rng& r, bool with_gamma = true, dyt::gamma_form form = dyt::gamma_form::plain,
               double eps = 1e-6)
      : gamma(with_gamma ? random_vector<T>(cols, r, form == dyt::gamma_form::one_plus ? -0.5 : 0.5,
                                            form == dyt::gamma_form::one_plus ? 0.5 : 1.5)
                         : std::vector<T>()),
        layer(or_null(gamma), cols, eps, form) {}
  rms_norm_kit(const rms_norm_kit&) = delete;
  rms_norm_kit& operator=(const rms_norm_kit&) = delete;

  grad_buffers<T> make_grads() const { return {std::vector<T>(gamma.size())}; }
  static gradients pointers(grad_buffers<T>& g) { return {or_null(g[0])}; }
  std::vector<named_param<T>> params() { return {{"gamma", &gamma}}; }
};

template <class T>
bool same_bits(const grad_buffers<T>& a, const grad_buffers<T>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!same_bits(a[i], b[i])) return false;
  return true;
}

}  // namespace dyt_test
