// tests/support.hpp: what the layer tests (test_forward.cpp, test_backward.cpp) share.
//
// Seeds. A test draws its data from rng(seed_for(name, ...)): the base seed
// mixed with the test's own name and shape, so no two cases share data. The
// base seed is fixed (CI runs are repeatable) unless DYT_TEST_SEED sets it;
// DYT_TEST_SEED=random draws a fresh one. Tests INFO both seeds, so a failure
// prints them, and DYT_TEST_SEED=<base> reruns exactly the failing data.
//
// Buffers. guarded<T> places a rows x cols view inside a larger allocation in
// which every element outside the view is a canary (a signalling-NaN bit
// pattern): 32 elements before, 32 after, and the gaps between rows when
// row_stride > cols.
// The view starts on a 64-byte boundary, or one element past it (misaligned for
// every vector width). A layer that writes outside its view changes a canary;
// one that reads outside it (past a row's tail, in a gap) picks up a NaN and
// fails its comparison. Output views start filled with canaries too, so an
// element the layer never writes fails as well.
//
// Error model. Each output is compared with the same layer run as
// Layer<double, reference> on the same inputs (already rounded to T) converted
// to double. Per element:
//
//   |got - ref| <= store_error<T, Backend>(max(|got|, |ref|)) + k * (u + 2^-53) * scale
//
//  - u: unit roundoff of the backend's compute type: 2^-24 for float, 2^-53
//    for double (the reference backend computes in double for every T).
//  - k and scale come from a first-order rounding-error analysis of the
//    layer's formula in that compute type, |computed - exact| <= k u scale,
//    derived in a comment at each comparison. The float64 reference obeys the
//    same bound with 2^-53, so the two are at most k (u + 2^-53) scale apart.
//    A sum of n terms, in whatever order, is within (n - 1) u sum|terms| of the
//    exact sum (the textbook bound: no term passes through more than n - 1
//    additions), which holds for the scalar loop and for the vector lanes
//    alike. "+1" in a k is a unit of slack for second-order (u^2) terms, which
//    are below n u <= 4097 * 2^-24 < 2.5e-4 of the first-order ones here.
//  - store_error: the final rounding to T wherever k does not count it. 16-bit
//    T: half an ulp of T at the larger magnitude (the value before rounding
//    cannot sit in a higher binade than the rounded one), plus 2^-24 of it on
//    the reference backend, which rounds double -> float -> T. float T on the
//    reference backend: half an ulp of float. Otherwise 0: a float or double
//    output's own rounding is the last operation counted in k.
// The reference shares the library's ops/ math, so check_textbook also holds
// it to the tests' own plain float64 evaluation of DESIGN.md's formulas.
//
// DYT_TEST_REPORT=1 prints, at exit, the worst |got - ref| / bound of every
// output, type and backend: how close the run came to each bound.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <dyt/dyt.hpp>

namespace dyt_test {

using dyt::index_t;

// ---- Scalar types ---------------------------------------------------------

template <class T>
double to_double(T v) {
  return double(dyt::scalar_traits<T>::load(v));
}
// Rounds to T (through float for 16-bit T: used only to make inputs, whose
// T value is what the test then uses everywhere).
template <class T>
T from_double(double v) {
  return dyt::scalar_traits<T>::store(dyt::compute_t<T>(v));
}

// Names for messages (std::string: doctest prints a const char* as a pointer).
template <class T>
std::string type_name() {
  if (std::is_same<T, float>::value) return "float";
  if (std::is_same<T, double>::value) return "double";
  if (std::is_same<T, dyt::bfloat16>::value) return "bfloat16";
  return "half";
}

template <class B>
std::string backend_name() {
  if (std::is_same<B, dyt::cpu>::value) return "cpu";
  if (std::is_same<B, dyt::cpu_scalar>::value) return "cpu_scalar";
  return "reference";
}

template <class Policy>
std::string tanh_name() {
  return std::is_same<Policy, dyt::tanh_fast>::value ? "tanh_fast" : "tanh_precise";
}

// Significand bits (implicit bit included) and smallest normal exponent of T.
template <class T>
struct format_bits {
  static constexpr dyt::format fmt = dyt::format_of<T>::value;
  static constexpr int precision = fmt == dyt::format::f64 ? 53 : fmt == dyt::format::f32 ? 24
                                                            : fmt == dyt::format::bf16 ? 8 : 11;
  static constexpr int min_exponent = fmt == dyt::format::f64 ? -1022 : fmt == dyt::format::f16 ? -14 : -126;
};

// Half the spacing of T's values at magnitude m (the subnormal spacing below the normal range).
template <class T>
double half_ulp(double m) {
  int e = m > 0 ? std::ilogb(m) : format_bits<T>::min_exponent;
  e = std::max(e, format_bits<T>::min_exponent);
  return std::ldexp(1.0, e - format_bits<T>::precision);
}

// Distance in representable values of T between a and b (0: same value; +0 and -0 are 0 apart).
template <class T>
std::int64_t ulp_distance(T a, T b) {
  auto ordered = [](T v) -> std::int64_t {
    if constexpr (sizeof(T) == 2) {
      std::uint16_t bits;
      std::memcpy(&bits, &v, 2);
      return (bits & 0x8000u) ? -std::int64_t(bits & 0x7fffu) : std::int64_t(bits);
    } else if constexpr (sizeof(T) == 4) {
      std::uint32_t bits;
      std::memcpy(&bits, &v, 4);
      return (bits & 0x80000000u) ? -std::int64_t(bits & 0x7fffffffu) : std::int64_t(bits);
    } else {
      std::uint64_t bits;
      std::memcpy(&bits, &v, 8);
      return (bits >> 63) ? -std::int64_t(bits & 0x7fffffffffffffffu) : std::int64_t(bits);
    }
  };
  const std::int64_t d = ordered(a) - ordered(b);
  return d < 0 ? -d : d;
}

template <class T>
bool same_bits(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// ---- Seeds and random values ----------------------------------------------

inline std::uint64_t mix(std::uint64_t h, std::uint64_t v) {  // splitmix64 of h ^ v
  std::uint64_t z = (h ^ v) + 0x9e3779b97f4a7c15u;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

inline std::uint64_t base_seed() {
  static const std::uint64_t seed = [] {
    const char* env = std::getenv("DYT_TEST_SEED");
    if (!env || !*env) return std::uint64_t(20250314);
    if (std::string(env) == "random") {
      std::random_device rd;
      const std::uint64_t s = (std::uint64_t(rd()) << 32) ^ rd();
      std::fprintf(stderr, "dyt tests: DYT_TEST_SEED=%llu\n", static_cast<unsigned long long>(s));
      return s;
    }
    return std::uint64_t(std::strtoull(env, nullptr, 10));
  }();
  return seed;
}

// The seed of one test problem: the base seed, the test's name and up to three numbers (shape, variant).
inline std::uint64_t seed_for(const char* name, std::uint64_t a = 0, std::uint64_t b = 0, std::uint64_t c = 0) {
  std::uint64_t h = 0xcbf29ce484222325u;  // FNV-1a of the name
  for (const char* p = name; *p; ++p) h = (h ^ std::uint64_t(static_cast<unsigned char>(*p))) * 0x100000001b3u;
  return mix(mix(mix(mix(base_seed(), h), a), b), c);
}

class rng {
 public:
  explicit rng(std::uint64_t seed) : gen_(seed) {}
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(gen_); }
  bool chance(double p) { return uniform(0, 1) < p; }

  // Per-channel gain: magnitude in [0.5, 1.5] around 1, negative one time in eight.
  double gamma() {
    const double m = uniform(0.5, 1.5);
    return chance(0.125) ? -m : m;
  }
  double beta() { return uniform(-0.25, 0.25); }
  double dy() { return uniform(-1, 1); }

 private:
  std::mt19937_64 gen_;
};

// ---- Guarded buffers ------------------------------------------------------

struct layout {
  index_t pad = 0;          // row_stride = cols + pad
  bool misaligned = false;  // the view starts one element past a 64-byte boundary
};
constexpr layout dense_aligned{0, false};
constexpr layout strided_misaligned{5, true};

inline std::string describe(const layout& l) {
  return std::string(l.pad ? "row_stride = cols + " + std::to_string(l.pad) : "dense") +
         (l.misaligned ? ", misaligned base" : ", 64-byte aligned base");
}

template <class T>
class guarded {
 public:
  static constexpr index_t guard = 32;

  guarded(index_t rows, index_t cols, layout lay = {})
      : rows_(rows), cols_(cols), stride_(cols + lay.pad), lay_(lay) {
    const index_t per_line = index_t(64 / sizeof(T));
    store_.resize(std::size_t(per_line + guard + 1 + span() + guard));
    index_t lead = 0;
    while (reinterpret_cast<std::uintptr_t>(store_.data() + lead) % 64 != 0) ++lead;
    begin_ = lead + guard + (lay.misaligned ? 1 : 0);
    const T c = canary();
    for (T& v : store_) v = c;
  }

  // A copy is a fresh buffer of the same layout (aligned like the original)
  // holding the same view values; moves keep the buffer itself.
  guarded(const guarded& other) : guarded(other.rows_, other.cols_, other.lay_) { copy_from(other); }
  guarded& operator=(const guarded&) = delete;
  guarded(guarded&&) = default;
  guarded& operator=(guarded&&) = default;

  index_t rows() const { return rows_; }
  index_t cols() const { return cols_; }
  index_t stride() const { return stride_; }
  T* data() { return store_.data() + begin_; }
  const T* data() const { return store_.data() + begin_; }
  dyt::rows_view<T> view() { return {data(), rows_, cols_, stride_}; }
  dyt::rows_view<const T> cview() const { return {data(), rows_, cols_, stride_}; }

  T& at(index_t r, index_t c) { return data()[r * stride_ + c]; }
  const T& at(index_t r, index_t c) const { return data()[r * stride_ + c]; }
  double get(index_t r, index_t c) const { return to_double(at(r, c)); }
  void set(index_t r, index_t c, double v) { at(r, c) = from_double<T>(v); }

  // The view's values in double, dense row-major.
  std::vector<double> values() const {
    std::vector<double> out(std::size_t(rows_ * cols_));
    for (index_t r = 0; r < rows_; ++r)
      for (index_t c = 0; c < cols_; ++c) out[std::size_t(r * cols_ + c)] = get(r, c);
    return out;
  }

  // Copies the view's elements (bits) from another buffer of the same shape.
  void copy_from(const guarded& other) {
    for (index_t r = 0; r < rows_; ++r)
      for (index_t c = 0; c < cols_; ++c) at(r, c) = other.at(r, c);
  }

  // Whether every element outside the view still holds the canary.
  bool canaries_intact() const {
    const T c = canary();
    const index_t first = begin_, last = begin_ + span();
    for (index_t i = 0; i < index_t(store_.size()); ++i) {
      const bool inside = i >= first && i < last && (i - first) % stride_ < cols_;
      if (!inside && !same_bits(store_[std::size_t(i)], c)) return false;
    }
    return true;
  }

  // (row, col) of the first element whose bits differ from other's, or (-1, -1).
  std::pair<index_t, index_t> first_difference(const guarded& other) const {
    for (index_t r = 0; r < rows_; ++r)
      for (index_t c = 0; c < cols_; ++c)
        if (!same_bits(at(r, c), other.at(r, c))) return {r, c};
    return {-1, -1};
  }
  bool same_bits_as(const guarded& other) const { return first_difference(other).first < 0; }

  // For messages: where the first differing element is and both values.
  std::string difference_from(const guarded& other) const {
    const auto d = first_difference(other);
    if (d.first < 0) return "identical";
    char buf[160];
    std::snprintf(buf, sizeof buf, "first difference at (%lld, %lld): %a vs %a", static_cast<long long>(d.first),
                  static_cast<long long>(d.second), get(d.first, d.second), other.get(d.first, d.second));
    return buf;
  }

  // A signalling NaN with a recognisable payload, in T's format.
  static T canary() {
    T v;
    if constexpr (dyt::format_of<T>::value == dyt::format::f64) {
      const std::uint64_t b = 0x7ff5a5a5a5a5a5a5u;
      std::memcpy(&v, &b, 8);
    } else if constexpr (dyt::format_of<T>::value == dyt::format::f32) {
      const std::uint32_t b = 0x7fa5a5a5u;
      std::memcpy(&v, &b, 4);
    } else {
      const std::uint16_t b = dyt::format_of<T>::value == dyt::format::bf16 ? 0x7fa5u : 0x7da5u;
      std::memcpy(&v, &b, 2);
    }
    return v;
  }

 private:
  index_t span() const { return (rows_ - 1) * stride_ + cols_; }

  index_t rows_, cols_, stride_;
  layout lay_;
  index_t begin_ = 0;
  std::vector<T> store_;
};

// A dense float64 copy to run the reference on, with views over it.
struct dense {
  index_t rows = 0, cols = 0;
  std::vector<double> v;

  dense() = default;
  dense(index_t r, index_t c) : rows(r), cols(c), v(std::size_t(r * c), 0.0) {}
  template <class T>
  explicit dense(const guarded<T>& g) : rows(g.rows()), cols(g.cols()), v(g.values()) {}

  double operator()(index_t r, index_t c) const { return v[std::size_t(r * cols + c)]; }
  double* data() { return v.data(); }
  const double* data() const { return v.data(); }
  dyt::rows_view<double> view() { return {v.data(), rows, cols}; }
  dyt::rows_view<const double> cview() const { return {v.data(), rows, cols}; }
};

// ---- Test problems --------------------------------------------------------

enum class layer_kind { dyt, layer_norm, rms_norm };

// x, dy and every parameter of one test problem in T (guarded, with the given
// layout), and the same values in float64. x is drawn for the layer:
//  - DyT: alpha in [0.2, 1.2] (the paper's alpha0 range), x in [-4, 4], so
//    alpha x reaches both tanh's linear middle and its saturated ends;
//  - LayerNorm: per row an offset in [-1, 1] x spread and a spread in [0.5, 2],
//    so rows have a nonzero mean of either sign (|mean| <= sqrt(3) sigma);
//  - RMSNorm: per row a scale in [0.5, 2] times [-1, 1].
// gamma and beta (when present) and dy come from rng::gamma/beta/dy.
template <class T>
struct problem {
  index_t rows, cols;
  guarded<T> x, dy, alpha, gamma, beta;
  dense xd, dyd, gammad, betad;
  double alphad = 0;

  problem(layer_kind kind, index_t rows_, index_t cols_, layout lay, rng& g)
      : rows(rows_),
        cols(cols_),
        x(rows_, cols_, lay),
        dy(rows_, cols_, lay),
        alpha(1, 1, lay),
        gamma(1, cols_, lay),
        beta(1, cols_, lay) {
    alpha.set(0, 0, g.uniform(0.2, 1.2));
    for (index_t r = 0; r < rows; ++r) {
      const double spread = g.uniform(0.5, 2);
      const double offset = g.uniform(-1, 1) * spread;
      for (index_t c = 0; c < cols; ++c) {
        const double u = g.uniform(-1, 1);
        x.set(r, c, kind == layer_kind::dyt ? 4 * u : kind == layer_kind::layer_norm ? offset + spread * u : spread * u);
        dy.set(r, c, g.dy());
      }
    }
    for (index_t c = 0; c < cols; ++c) {
      gamma.set(0, c, g.gamma());
      beta.set(0, c, g.beta());
    }
    xd = dense(x);
    dyd = dense(dy);
    gammad = dense(gamma);
    betad = dense(beta);
    alphad = alpha.get(0, 0);
    REQUIRE(not_all_zero(xd));
    REQUIRE(not_all_zero(dyd));
  }

  static bool not_all_zero(const dense& d) {
    return std::any_of(d.v.begin(), d.v.end(), [](double v) { return v != 0; });
  }
};

// The eps every test passes explicitly (the layers' defaults), so the
// tests' own float64 evaluations use the same value.
constexpr double kLayerNormEps = 1e-5;
constexpr double kRmsNormEps = 1e-6;

// Parameter gradient slots, as the tests number them: dgamma, dbeta (1 x cols),
// dalpha, dshift (1 x 1; Derf's shift).
const std::string kGradNames[] = {"dgamma", "dbeta", "dalpha", "dshift"};

// ---- Error model ----------------------------------------------------------

constexpr double u64 = 0x1p-53;

template <class T, class Backend>
struct error_model {
  using compute_type = typename dyt::backend_traits<Backend, T>::compute_type;
  static constexpr bool is_reference = std::is_same<Backend, dyt::reference>::value;
  static constexpr double u = std::is_same<compute_type, double>::value ? 0x1p-53 : 0x1p-24;

  // The final rounding to T that k does not count (see the top of this file).
  static double store_error(double m) {
    if constexpr (dyt::is_16bit_v<T>) return half_ulp<T>(m) + (is_reference ? 0x1p-24 * m : 0.0);
    else if constexpr (std::is_same<T, float>::value) return is_reference ? half_ulp<float>(m) : 0.0;
    else return 0.0;
  }

  // |got - ref| bound for an output stored as T.
  static double bound(double got, double ref, double k, double scale) {
    return store_error(std::max(std::fabs(got), std::fabs(ref))) + k * (u + u64) * scale;
  }
  // The same for a value kept in the compute type (saved statistics).
  static double compute_bound(double k, double scale) { return k * (u + u64) * scale; }
};

// The documented max error of each tanh policy in float ulp (docs/tanh.md,
// measured exhaustively over floats): tanh_fast 5.70 without FMA contraction
// (5.17 with it), tanh_precise 2.19 (glibc's tanhf; xsimd's tanh 1.35). 2.2
// also covers the reference's std::tanh in double (at most 2.15 double ulp
// found). tanh_fast in double lanes is only as accurate as its float fit
// (2.8e-8 relative), so the tests use it with float compute only.
template <class Policy>
constexpr double tanh_ulps = std::is_same<Policy, dyt::tanh_fast>::value ? 5.7 : 2.2;

// ---- Checking outputs -----------------------------------------------------

// The worst |got - ref| / bound seen per label over the whole run, printed at
// exit when DYT_TEST_REPORT is set (how close the tests come to their bounds).
class ratio_registry {
 public:
  static ratio_registry& get() {
    static ratio_registry r;
    return r;
  }
  void note(const std::string& label, double ratio) {
    double& worst = worst_[label];
    worst = std::max(worst, ratio);
  }
  ~ratio_registry() {
    if (!std::getenv("DYT_TEST_REPORT")) return;
    std::fprintf(stderr, "%-64s %s\n", "worst |got - ref| / bound", "ratio");
    for (const auto& kv : worst_) std::fprintf(stderr, "%-64s %.3g\n", kv.first.c_str(), kv.second);
  }

 private:
  std::map<std::string, double> worst_;
};

// Compares one output element by element against per-element bounds and
// reports (one CHECK per output) the number of violations and the first one;
// NaN fails. The label names the output, the type and the backend; the
// caller's INFO gives the shape and the seed.
class error_check {
 public:
  explicit error_check(std::string label) : label_(std::move(label)) {}
  error_check(const error_check&) = delete;
  error_check& operator=(const error_check&) = delete;

  void add(index_t row, index_t col, double got, double ref, double bound) {
    const double err = std::fabs(got - ref);
    const bool ok = err <= bound;
    const double ratio = bound > 0 ? err / bound : (err == 0 ? 0.0 : HUGE_VAL);
    if (ok) {
      worst_ = std::max(worst_, ratio);
      return;
    }
    if (failures_++ == 0) {
      char buf[256];
      if (bound < 0)
        std::snprintf(buf, sizeof buf, "first at (%lld, %lld): got %.17g, expected exactly %.17g",
                      static_cast<long long>(row), static_cast<long long>(col), got, ref);
      else
        std::snprintf(buf, sizeof buf, "first at (%lld, %lld): got %.9g, ref %.9g, |diff| %.3g > bound %.3g",
                      static_cast<long long>(row), static_cast<long long>(col), got, ref, err, bound);
      first_ = buf;
    }
    worst_ = std::max(worst_, std::isnan(ratio) ? HUGE_VAL : ratio);
  }

  // An element that must match its expectation bit for bit (`same`).
  void add_exact(index_t row, index_t col, double got, double ref, bool same) {
    if (!same) add(row, col, got, ref, -1.0);  // a negative bound: every difference fails
  }

  ~error_check() {
    ratio_registry::get().note(label_, worst_);
    CHECK_MESSAGE(failures_ == 0, label_ << ": " << failures_ << " element(s) out of bound; " << first_);
  }

 private:
  std::string label_;
  double worst_ = 0;
  long long failures_ = 0;
  std::string first_;
};

template <class T, class Backend>
std::string label(const std::string& what) {
  return what + " / " + type_name<T>() + " / " + backend_name<Backend>();
}

// The float64 truth of one output and, per element, the terms of its bound:
//   |got - ref| <= store_error + (k0 + k1 u) (u + 2^-53) scale,
// k1 carrying the second-order terms a derivation keeps explicitly (they
// depend on the compute type's u, which only the backend under test fixes).
struct expected_output {
  dense ref, scale, k0, k1;

  expected_output() = default;
  expected_output(index_t rows, index_t cols) : ref(rows, cols), scale(rows, cols), k0(rows, cols), k1(rows, cols) {}
  void set_bound(index_t r, index_t c, double k0_, double scale_, double k1_ = 0) {
    const std::size_t i = std::size_t(r * ref.cols + c);
    k0.v[i] = k0_;
    k1.v[i] = k1_;
    scale.v[i] = scale_;
  }
  double k(index_t r, index_t c, double u) const { return k0(r, c) + k1(r, c) * u; }
};

// Checks every element of `got` against e. Rounded: got is stored as T (the
// store_error term applies); otherwise it is kept in the compute type (saved
// statistics). Also checks that nothing outside got's view was written.
template <class T, class Backend, class U>
void check_against(const std::string& what, const guarded<U>& got, const expected_output& e, bool rounded = true) {
  using model = error_model<T, Backend>;
  CHECK_MESSAGE(got.canaries_intact(), label<T, Backend>(what) << ": wrote outside its view");
  error_check check(label<T, Backend>(what));
  for (index_t r = 0; r < got.rows(); ++r)
    for (index_t c = 0; c < got.cols(); ++c) {
      const double g = got.get(r, c), ref = e.ref(r, c);
      const double k = e.k(r, c, model::u);
      check.add(r, c, g, ref, rounded ? model::bound(g, ref, k, e.scale(r, c)) : model::compute_bound(k, e.scale(r, c)));
    }
}

// Two backends' outputs for the same inputs: each is within its bound of the
// truth, so they are within the sum of the two bounds of each other.
// Where neither backend is vectorized (a build without xsimd) they run the
// same code, and must agree bit for bit.
template <class T, class BackendA, class BackendB>
void check_agreement(const std::string& what, const guarded<T>& a, const guarded<T>& b, const expected_output& e) {
  using ma = error_model<T, BackendA>;
  using mb = error_model<T, BackendB>;
  constexpr bool same_code = !dyt::backend_traits<BackendA, T>::vectorized &&
                             !dyt::backend_traits<BackendB, T>::vectorized &&
                             std::is_same<typename ma::compute_type, typename mb::compute_type>::value;
  error_check check(what + " / " + type_name<T>() + " / " + backend_name<BackendA>() + " vs " +
                    backend_name<BackendB>());
  for (index_t r = 0; r < a.rows(); ++r)
    for (index_t c = 0; c < a.cols(); ++c) {
      const double x = a.get(r, c), y = b.get(r, c), ref = e.ref(r, c);
      if (same_code) {
        check.add_exact(r, c, x, y, same_bits(a.at(r, c), b.at(r, c)));
        continue;
      }
      const double bound = ma::bound(x, ref, e.k(r, c, ma::u), e.scale(r, c)) +
                           mb::bound(y, ref, e.k(r, c, mb::u), e.scale(r, c));
      check.add(r, c, x, y, bound);
    }
}

// The reference backend itself, against a textbook float64 evaluation of the
// same formulas that the test writes from DESIGN.md in plain loops, sharing no
// code with the library (the reference runs the library's ops/ math and its
// chunked reductions, so a wrong formula there would be wrong in the truth
// too). The textbook takes the same or fewer roundings per term, so both are
// within k 2^-53 scale of the exact value, and 2 k 2^-53 scale of each other.
inline void check_textbook(const std::string& what, const expected_output& e, const dense& textbook) {
  error_check check(what + " / reference vs textbook");
  for (index_t r = 0; r < e.ref.rows; ++r)
    for (index_t c = 0; c < e.ref.cols; ++c)
      check.add(r, c, e.ref(r, c), textbook(r, c), e.k(r, c, u64) * 2 * u64 * e.scale(r, c));
}

// The column counts every layer is tested at: vector bodies with and without
// tails around the widths of SSE/AVX/AVX-512 and NEON, and typical model widths.
inline const std::vector<index_t>& test_cols() {
  static const std::vector<index_t> c{1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 767, 768, 769, 4095, 4096, 4097};
  return c;
}

struct shape {
  index_t rows, cols;
};
// Three rows at every test_cols() width, and 300 x 33: 300 rows is
// default_chunks(300) = 9 backward chunks, so gradients cross chunk boundaries.
inline std::vector<shape> test_shapes() {
  std::vector<shape> s;
  for (index_t c : test_cols()) s.push_back({3, c});
  s.push_back({300, 33});
  return s;
}

}  // namespace dyt_test
