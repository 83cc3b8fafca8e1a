// Quantized output (ops/quantize.hpp, docs/quantize.md): the E4M3 format's
// conversions, the int8 encoder, the vector and scalar stores agreeing bit
// for bit, every layer's dynamic (per-row) and static (per-channel) quantized
// forward against the float64 reference, no clipping ever for the point-wise
// layers' static scales, special values, and refused calls writing nothing.
//
// Tolerances. y_c is the value the layer computes in its compute type C
// before quantizing; Layer<float, B> (Layer<double, B> for double) run on the
// same inputs computes the same y_c (16-bit loads into float are exact, and
// DyT's tanh policy is named to match) and stores it unrounded, up to the
// compiler's FMA contraction, which differs between the two instantiations:
// one product's rounding and the sum's, within 2u m (m below): the twin
// slack of the point-wise layers is 4u m, in y's units. LayerNorm's variance
// and RMSNorm's sum of squares are sums of products too: each of the cols
// terms may keep or lose its product's rounding, after which the two running
// sums round differently, so the two sums may differ by up to 2 (cols - 1) u
// of their size (each within (cols - 1) u of the exact sum; seen at cols 769
// with -march=haswell, where 4u m was exceeded), rstd by half that relative,
// and every y of the row by (cols + 8) u m with the affine step: the norms'
// twin slack.
// For a code q made with scale s, v = y_c / s is what the encoder should
// round; with inv = fl(qmax / absmax) and the product rounded once,
// y_c * inv = v (1 + d), |d| <= 3u (u: C's unit roundoff, s and inv each
// within u of exact reciprocals of each other), so
//   |q - v| <= half_ulp_Q(v) + 4u |v|                                  (1)
// where half_ulp_Q is 0.5 for int8 and half the E4M3 spacing at |v| (2^-10
// below the normal range). Against the float64 reference y_ref:
//   |q s - y_ref| <= (1) * s + |y_c - y_ref|,
// and the layer's own forward error |y_c - y_ref| is bounded, as
// support.hpp's error model derives it, by (cols + 64) u m: m = the
// magnitude of the affine terms (|gamma| |xh| + |beta|; for the point-wise
// layers |gamma| + |beta|), cols - 1 roundings in the statistics' sums (rows
// centred near zero, as the data here), and 64 covering the squashing
// function's ulps (xsimd's double erf is 24.5 ulp = 49 u) and the affine
// step's roundings. The quantization gain 1 / s multiplies that error when
// it is seen in code units; here it is compared in y's units.
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ios>
#include <limits>
#include <string>
#include <vector>

#include <dyt/dyt.hpp>

#include "quantize_truth.hpp"
#include "support.hpp"

namespace {

using dyt::index_t;
using dyt::float8_e4m3;
using dyt_test::code_value;
using dyt_test::e4m3_half_ulp;
using dyt_test::e4m3_nearest;
using dyt_test::e4m3_value;
using dyt_test::half_step;
using dyt_test::q_name;
using dyt_test::rng;
using dyt_test::seed_for;

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- E4M3 (the format's truth: quantize_truth.hpp) -------------------------

TEST_CASE("e4m3: every code widens to its value and narrows back to itself") {
  for (int c = 0; c < 256; ++c) {
    const auto code = std::uint8_t(c);
    const float f = dyt::detail::e4m3_bits_to_float(code);
    const double want = e4m3_value(code);
    INFO("code 0x" << std::hex << c);
    if (std::isnan(want)) {
      CHECK(std::isnan(f));
      CHECK(std::signbit(f) == bool(c & 0x80));
      CHECK(dyt::detail::float_to_e4m3_bits(f) == code);
      CHECK(dyt::detail::double_to_e4m3_bits(double(f)) == code);
    } else {
      CHECK(double(f) == want);
      CHECK(std::signbit(f) == bool(c & 0x80));
      CHECK(dyt::detail::float_to_e4m3_bits(f) == code);
      CHECK(dyt::detail::double_to_e4m3_bits(double(f)) == code);
      CHECK(float(float8_e4m3::from_bits(code)) == f);
    }
  }
}

TEST_CASE("e4m3: midpoints round to even, their neighbours to the nearer code") {
  for (int sign = 0; sign < 2; ++sign) {
    for (std::uint8_t c = 0; c < 0x7e; ++c) {
      const double lo = e4m3_value(c), hi = e4m3_value(std::uint8_t(c + 1));
      const double mid = (lo + hi) / 2;  // exact in float: one more bit than E4M3 has
      const double s = sign ? -1 : 1;
      const std::uint8_t sb = sign ? 0x80 : 0;
      const std::uint8_t even = (c & 1) ? std::uint8_t(c + 1) : c;
      INFO("between codes 0x" << std::hex << int(c) << " and 0x" << int(c + 1));
      CHECK(dyt::detail::float_to_e4m3_bits(float(s * mid)) == (sb | even));
      CHECK(dyt::detail::double_to_e4m3_bits(s * mid) == (sb | even));
      const float above = std::nextafter(float(mid), 1e9f), below = std::nextafter(float(mid), 0.f);
      CHECK(dyt::detail::float_to_e4m3_bits(float(s) * above) == (sb | (c + 1)));
      CHECK(dyt::detail::float_to_e4m3_bits(float(s) * below) == (sb | c));
      CHECK(dyt::detail::double_to_e4m3_bits(s * std::nextafter(mid, 1e9)) == (sb | (c + 1)));
      CHECK(dyt::detail::double_to_e4m3_bits(s * std::nextafter(mid, 0.0)) == (sb | c));
    }
  }
}

TEST_CASE("e4m3: saturation, zeros, tiny values, NaN; random floats against the nearest code") {
  using dyt::detail::double_to_e4m3_bits;
  using dyt::detail::float_to_e4m3_bits;
  for (double v : {448.0, 449.0, 464.0, 480.0, 1e30, double(FLT_MAX), kInf}) {
    CHECK(float_to_e4m3_bits(float(v)) == 0x7e);
    CHECK(float_to_e4m3_bits(float(-v)) == 0xfe);
    CHECK(double_to_e4m3_bits(v) == 0x7e);
    CHECK(double_to_e4m3_bits(-v) == 0xfe);
  }
  CHECK(double_to_e4m3_bits(DBL_MAX) == 0x7e);
  CHECK(float_to_e4m3_bits(0.f) == 0x00);
  CHECK(float_to_e4m3_bits(-0.f) == 0x80);
  CHECK(float_to_e4m3_bits(0x1p-10f) == 0x00);  // half the smallest subnormal: tie to even (0)
  CHECK(float_to_e4m3_bits(std::nextafter(0x1p-10f, 1.f)) == 0x01);
  CHECK(float_to_e4m3_bits(1e-40f) == 0x00);  // a float subnormal
  CHECK(double_to_e4m3_bits(1e-310) == 0x00);
  CHECK(float_to_e4m3_bits(std::numeric_limits<float>::quiet_NaN()) == 0x7f);
  CHECK(float_to_e4m3_bits(-std::numeric_limits<float>::quiet_NaN()) == 0xff);
  CHECK(float_to_e4m3_bits(std::numeric_limits<float>::signaling_NaN()) == 0x7f);
  CHECK(double_to_e4m3_bits(kNaN) == 0x7f);

  rng r(seed_for("e4m3 random"));
  for (int i = 0; i < 20000; ++i) {
    const double v = std::ldexp(r.uniform(-1, 1), int(r.uniform(-14, 11)));
    const float f = float(v);
    INFO("v = " << v);
    CHECK(float_to_e4m3_bits(f) == e4m3_nearest(double(f)));
    CHECK(double_to_e4m3_bits(v) == e4m3_nearest(v));
  }
}

// ---- int8 -----------------------------------------------------------------

TEST_CASE("int8: round to nearest even, saturating to +-127, NaN to 0") {
  using enc = dyt::ops::quant_format<std::int8_t>;
  const double cases[][2] = {{0.5, 0},     {1.5, 2},     {2.5, 2},       {-0.5, 0},   {-1.5, -2},  {-2.5, -2},
                             {0.49, 0},    {0.51, 1},    {126.5, 126},   {126.51, 127}, {127.4, 127}, {127.5, 127},
                             {200, 127},   {-200, -127}, {-128, -127},   {kInf, 127}, {-kInf, -127}, {kNaN, 0},
                             {1e30, 127},  {-0.0, 0},    {3.0, 3},       {-126.5, -126}};
  for (const auto& c : cases) {
    INFO("v = " << c[0]);
    CHECK(int(enc::encode(float(c[0]))) == int(c[1]));
    CHECK(int(enc::encode(c[0])) == int(c[1]));
  }
  rng r(seed_for("int8 random"));
  for (int i = 0; i < 20000; ++i) {
    const float v = float(r.uniform(-130, 130));
    const double want = std::max(-127.0, std::min(127.0, std::nearbyint(double(v))));
    CHECK(int(enc::encode(v)) == int(want));
  }
}

// ---- Vector and scalar stores ----------------------------------------------

// A row of awkward values: ties, saturating values, tiny ones, NaN and Inf.
template <class C>
std::vector<C> awkward_row(index_t n, bool with_nan, bool with_inf, double spread, std::uint64_t seed) {
  rng r(seed);
  std::vector<C> v(static_cast<std::size_t>(n));
  for (auto& e : v) e = C(r.uniform(-spread, spread));
  if (n > 5) {
    v[1] = C(spread * 0.5);
    v[2] = C(-spread * 0.25);
    v[3] = C(0);
    v[4] = C(-0.0);
  }
  if (with_nan) v[std::size_t(n / 2)] = C(kNaN);
  if (with_inf) v[std::size_t(n - 1)] = C(-kInf);
  return v;
}

// The dynamic codes are made twice, computing y again in the store sweep
// and holding it in a row buffer (held_row_engine, ops::row_quantized's
// Hold, what the point-wise layers run): holding must change nothing, bit
// for bit.
template <class C, class Q, bool Vectorized>
void run_sinks(const std::vector<C>& values, const std::vector<C>& scales, std::vector<Q>& dyn_codes, C& dyn_scale,
               std::vector<Q>& static_codes) {
  const dyt::cpu_detail::row_engine<C, Vectorized> eng{index_t(values.size())};
  const auto value = [&](const auto& at) { return at.load(values.data()); };
  dyn_codes.assign(values.size(), Q{});
  static_codes.assign(values.size(), Q{});
  dyt::ops::emit(eng, dyt::ops::row_quantized<Q, C>{dyn_codes.data(), &dyn_scale}, value);
  dyt::ops::emit(eng, dyt::ops::channel_quantized<Q, C>{static_codes.data(), scales.data()}, value);
  std::vector<C> row_buffer(values.size(), C(kNaN));
  const dyt::cpu_detail::held_row_engine<C, Vectorized> held{{index_t(values.size())}, row_buffer.data()};
  std::vector<Q> held_codes(values.size(), Q{});
  C held_scale = C(-3);
  dyt::ops::emit(held, dyt::ops::row_quantized<Q, C, true>{held_codes.data(), &held_scale}, value);
  CHECK(std::memcmp(held_codes.data(), dyn_codes.data(), dyn_codes.size()) == 0);
  CHECK(std::memcmp(&held_scale, &dyn_scale, sizeof(C)) == 0);
}

template <class C, class Q>
void check_vector_matches_scalar() {
  for (index_t n : {1, 3, 17, 67, 769}) {
    for (int variant = 0; variant < 6; ++variant) {
      const double spread = variant == 3 ? 1e-38 : variant == 4 ? 1e30 : 3.0;
      auto values = awkward_row<C>(n, variant == 1, variant == 2, spread, seed_for("sinks", n, variant));
      std::vector<C> scales(values.size());
      rng r(seed_for("sink scales", n, variant));
      for (std::size_t j = 0; j < scales.size(); ++j) scales[j] = j % 7 == 3 ? C(0) : C(r.uniform(0.001, 0.05));
      if (variant == 5) {  // ties of the format, with scale 1: the rounding itself
        for (std::size_t j = 0; j < values.size(); ++j) {
          const int k = int(r.uniform(0, 126));
          const double tie = std::is_same<Q, std::int8_t>::value ? k + 0.5 : (e4m3_value(std::uint8_t(k)) + e4m3_value(std::uint8_t(k + 1))) / 2;
          values[j] = C(r.chance(0.5) ? -tie : tie);
          scales[j] = C(1);
        }
      }
      std::vector<Q> dv, sv, ds, ss;
      C scale_v = C(-1), scale_s = C(-2);
      run_sinks<C, Q, true>(values, scales, dv, scale_v, sv);
      run_sinks<C, Q, false>(values, scales, ds, scale_s, ss);
      INFO(q_name<Q>() << " cols " << n << " variant " << variant);
      CHECK(std::memcmp(dv.data(), ds.data(), dv.size()) == 0);
      CHECK(std::memcmp(sv.data(), ss.data(), sv.size()) == 0);
      if (variant == 5)
        for (std::size_t j = 0; j < values.size(); ++j) {
          const double v = double(values[j]);
          const double want = std::is_same<Q, std::int8_t>::value ? std::nearbyint(v) : e4m3_value(e4m3_nearest(v));
          CHECK(code_value(sv[j]) == want);
        }
      CHECK(std::memcmp(&scale_v, &scale_s, sizeof(C)) == 0);
      if (variant == 1) CHECK(std::isnan(scale_v));
      if (variant == 2) CHECK(scale_v == C(kInf));
    }
  }
}

TEST_CASE("the vector body and the scalar loop store the same codes and scales, y held or computed again") {
  check_vector_matches_scalar<float, std::int8_t>();
  check_vector_matches_scalar<float, float8_e4m3>();
  check_vector_matches_scalar<double, std::int8_t>();
  check_vector_matches_scalar<double, float8_e4m3>();
}

TEST_CASE("a row of tiny values (qmax / absmax overflows) gets full-range codes") {
  std::vector<float> values = {1e-40f, -3e-41f, 0.f, 5e-45f};
  std::vector<std::int8_t> codes(4);
  float scale = -1;
  const dyt::cpu_detail::row_engine<float, false> eng{4};
  dyt::ops::emit(eng, dyt::ops::row_quantized<std::int8_t, float>{codes.data(), &scale},
                 [&](const auto& at) { return at.load(values.data()); });
  CHECK(int(codes[0]) == 127);
  CHECK(int(codes[1]) == -38);  // -3e-41 / 1e-40 * 127 = -38.1
  CHECK(int(codes[2]) == 0);
  CHECK(int(codes[3]) == 0);
  CHECK(scale > 0);
}

// ---- Layers -----------------------------------------------------------------

// The layers under test, with what the tolerance needs: the magnitude m of
// each y (see the top of this file) from the float64 inputs.
struct params {
  std::vector<double> gamma, beta;
  bool has_gamma = true, has_beta = true;
  double alpha = 0.7, shift = 0.2;
};

template <class T>
struct typed_params {
  std::vector<T> gamma, beta;
  T alpha, shift;
  typed_params(const params& p) {
    for (double g : p.gamma) gamma.push_back(dyt_test::from_double<T>(g));
    for (double b : p.beta) beta.push_back(dyt_test::from_double<T>(b));
    alpha = dyt_test::from_double<T>(p.alpha);
    shift = dyt_test::from_double<T>(p.shift);
  }
  const T* g(const params& p) const { return p.has_gamma ? gamma.data() : nullptr; }
  const T* b(const params& p) const { return p.has_beta ? beta.data() : nullptr; }
};

// DyT's tanh policy for T, named so that the float twin computes the same y_c.
template <class T>
using policy_of = dyt::default_tanh_t<T>;

struct dyt_kind {
  static constexpr const char* name = "DyT";
  static constexpr bool pointwise = true;
  template <class T, class B, class P>
  static auto make(const typed_params<T>& tp, const params& p, index_t cols) {
    return dyt::DyT<T, B, P>(&tp.alpha, tp.g(p), tp.b(p), cols);
  }
};
struct derf_kind {
  static constexpr const char* name = "Derf";
  static constexpr bool pointwise = true;
  template <class T, class B, class P>
  static auto make(const typed_params<T>& tp, const params& p, index_t cols) {
    return dyt::Derf<T, B>(&tp.alpha, &tp.shift, tp.g(p), tp.b(p), cols);
  }
};
struct dyisru_kind {
  static constexpr const char* name = "DyISRU";
  static constexpr bool pointwise = true;
  template <class T, class B, class P>
  static auto make(const typed_params<T>& tp, const params& p, index_t cols) {
    return dyt::DyISRU<T, B>(&tp.alpha, tp.g(p), tp.b(p), cols);
  }
};
struct layer_norm_kind {
  static constexpr const char* name = "LayerNorm";
  static constexpr bool pointwise = false;
  template <class T, class B, class P>
  static auto make(const typed_params<T>& tp, const params& p, index_t cols) {
    return dyt::LayerNorm<T, B>(tp.g(p), tp.b(p), cols);
  }
};
struct rms_norm_kind {
  static constexpr const char* name = "RMSNorm";
  static constexpr bool pointwise = false;
  template <class T, class B, class P>
  static auto make(const typed_params<T>& tp, const params& p, index_t cols) {
    return dyt::RMSNorm<T, B>(tp.g(p), cols);
  }
};

// |gamma| |xh| + |beta| per element, in double from the inputs.
template <class Kind>
std::vector<double> magnitudes(const std::vector<double>& x, index_t rows, index_t cols, const params& p) {
  std::vector<double> m(x.size());
  for (index_t r = 0; r < rows; ++r) {
    const double* xr = &x[std::size_t(r * cols)];
    double mean = 0, ms = 0;
    for (index_t j = 0; j < cols; ++j) mean += xr[j] / double(cols);
    for (index_t j = 0; j < cols; ++j) ms += xr[j] * xr[j] / double(cols);
    double var = 0;
    for (index_t j = 0; j < cols; ++j) var += (xr[j] - mean) * (xr[j] - mean) / double(cols);
    for (index_t j = 0; j < cols; ++j) {
      const double g = p.has_gamma ? std::fabs(p.gamma[std::size_t(j)]) : 1.0;
      const double b = p.has_beta ? std::fabs(p.beta[std::size_t(j)]) : 0.0;
      double xh = 1;
      if (std::is_same<Kind, layer_norm_kind>::value) xh = std::fabs(xr[j] - mean) / std::sqrt(var + 1e-5);
      if (std::is_same<Kind, rms_norm_kind>::value) xh = std::fabs(xr[j]) / std::sqrt(ms + 1e-6);
      m[std::size_t(r * cols + j)] = g * xh + (std::is_same<Kind, rms_norm_kind>::value ? 0.0 : b);
    }
  }
  return m;
}

// A strided, possibly misaligned buffer of `rows` rows of `cols` elements of
// U, with canary bytes everywhere else.
template <class U>
struct buffer {
  index_t rows, cols, stride, offset;
  std::vector<unsigned char> bytes;
  buffer(index_t rows_, index_t cols_, index_t pad, bool misaligned)
      : rows(rows_), cols(cols_), stride(cols_ + pad), offset(misaligned ? 1 : 0) {
    bytes.assign(std::size_t((rows * stride + offset + 64) * index_t(sizeof(U))) + 64, 0xA5);
  }
  U* data() {
    auto base = reinterpret_cast<std::uintptr_t>(bytes.data());
    base = (base + 63) / 64 * 64;
    return reinterpret_cast<U*>(base) + offset;
  }
  U& at(index_t r, index_t c) { return data()[r * stride + c]; }
  dyt::rows_view<U> view() { return {data(), rows, cols, stride}; }
  // Whether every byte outside the view is still the canary.
  bool canaries_intact() {
    const auto* first = reinterpret_cast<const unsigned char*>(data());
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      const std::ptrdiff_t off = reinterpret_cast<const unsigned char*>(&bytes[i]) - first;
      const std::ptrdiff_t elem = off >= 0 ? off / std::ptrdiff_t(sizeof(U)) : -1;
      const bool inside = off >= 0 && elem < rows * stride && elem % stride < cols;
      if (!inside && bytes[i] != 0xA5) return false;
    }
    return true;
  }
};

struct case_data {
  index_t rows, cols;
  std::vector<double> x;
  params p;
};

case_data random_case(index_t rows, index_t cols, int variant, std::uint64_t seed) {
  rng r(seed);
  case_data c{rows, cols, std::vector<double>(std::size_t(rows * cols)), {}};
  for (auto& v : c.x) v = r.uniform(-3, 3);
  for (index_t j = 0; j < cols; ++j) {
    c.p.gamma.push_back(r.gamma());
    c.p.beta.push_back(r.beta());
  }
  if (variant == 1) {  // adversarial: huge |x|, gamma and beta of both signs and zero
    const double huge[] = {1e30, double(FLT_MAX), kInf, -kInf, -1e30, 1e38, -3.4e38, 0.0};
    for (std::size_t i = 0; i < c.x.size(); ++i)
      if (i % 3 != 1) c.x[i] = huge[i % 8];
    for (index_t j = 0; j < cols; ++j) {
      c.p.gamma[std::size_t(j)] = j % 5 == 0 ? 0.0 : (j % 2 ? -1 : 1) * r.uniform(0.1, 4);
      c.p.beta[std::size_t(j)] = j % 7 == 0 ? 0.0 : (j % 3 ? 1 : -1) * r.uniform(0.1, 2);
    }
  }
  c.p.has_gamma = variant != 2;
  c.p.has_beta = variant != 3;
  return c;
}

// One layer, one storage type, one backend, one format, one case: dynamic
// (and for the point-wise layers static) quantized forward against the twin
// y_c and the float64 reference.
template <class Kind, class T, class B, class Q>
void check_layer_case(const case_data& c, bool strided) {
  using C = typename dyt::backend_traits<B, T>::compute_type;
  using Twin = std::conditional_t<std::is_same<C, double>::value, double, float>;
  constexpr double u = std::is_same<C, double>::value ? 0x1p-53 : 0x1p-24;
  constexpr double qmax = dyt::ops::quant_format<Q>::qmax;
  using P = policy_of<T>;
  const index_t rows = c.rows, cols = c.cols;
  const double twin_u = Kind::pointwise ? 4 * u : (double(cols) + 8) * u;  // the twin slack, over m (top of file)

  typed_params<T> tp(c.p);
  buffer<T> x(rows, cols, strided ? 5 : 0, strided);
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j) x.at(r, j) = dyt_test::from_double<T>(c.x[std::size_t(r * cols + j)]);
  std::vector<double> xd(c.x.size());  // the inputs as rounded to T
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j) xd[std::size_t(r * cols + j)] = dyt_test::to_double(x.at(r, j));
  params pd = c.p;  // the parameters as rounded to T
  for (index_t j = 0; j < cols; ++j) {
    pd.gamma[std::size_t(j)] = dyt_test::to_double(tp.gamma[std::size_t(j)]);
    pd.beta[std::size_t(j)] = dyt_test::to_double(tp.beta[std::size_t(j)]);
  }
  pd.alpha = dyt_test::to_double(tp.alpha);
  pd.shift = dyt_test::to_double(tp.shift);

  // The twin: same compute type and math, unrounded output.
  typed_params<Twin> tpt(pd);
  std::vector<Twin> xt(xd.begin(), xd.end()), yc(xd.size());
  const auto twin = Kind::template make<Twin, B, P>(tpt, pd, cols);
  REQUIRE(twin.forward(dyt::make_view<const Twin>(xt.data(), rows, cols), dyt::make_view(yc.data(), rows, cols)).ok());
  // The truth.
  typed_params<double> tpd(pd);
  std::vector<double> yref(xd.size());
  const auto truth = Kind::template make<double, dyt::reference, dyt::tanh_precise>(tpd, pd, cols);
  REQUIRE(truth.forward(dyt::make_view<const double>(xd.data(), rows, cols), dyt::make_view(yref.data(), rows, cols)).ok());
  const std::vector<double> mag = magnitudes<Kind>(xd, rows, cols, pd);

  const auto layer = Kind::template make<T, B, P>(tp, c.p, cols);
  auto check_codes = [&](buffer<Q>& y, auto scale_of, bool dynamic) {
    for (index_t r = 0; r < rows; ++r) {
      double absmax = 0, max_mag = 0;
      for (index_t j = 0; j < cols; ++j) {
        absmax = std::max(absmax, std::fabs(double(yc[std::size_t(r * cols + j)])));
        max_mag = std::max(max_mag, mag[std::size_t(r * cols + j)]);
      }
      bool hit_qmax = false;
      for (index_t j = 0; j < cols; ++j) {
        const std::size_t k = std::size_t(r * cols + j);
        const double s = double(scale_of(r, j));
        const double q = code_value(y.at(r, j));
        const double yv = double(yc[k]);
        INFO(std::string(Kind::name) << " " << dyt_test::type_name<T>() << " " << dyt_test::backend_name<B>() << " "
                        << q_name<Q>() << (dynamic ? " dynamic" : " static") << " cols " << cols << " row " << r
                        << " col " << j << ": y_c " << yv << " y_ref " << yref[k] << " scale " << s << " code " << q);
        if (s == 0) {
          CHECK(q == 0);
          CHECK(yv == 0);
          continue;
        }
        const double v = yv / s;
        if (!dynamic) CHECK(std::fabs(v) <= qmax * (1 + 4 * u));  // never clips (y_c up to the twin's slack)
        CHECK(std::fabs(q) <= qmax);
        const double twin_slack = twin_u * mag[k] / s;  // in code units
        const double code_err = half_step<Q>(std::fabs(v) + twin_slack) + 4 * u * std::fabs(v) + twin_slack;  // (1)
        CHECK(std::fabs(q - v) <= code_err);
        CHECK(std::fabs(q * s - yref[k]) <= code_err * s + (double(cols) + 64) * u * mag[k]);
        if (std::fabs(q) == qmax) hit_qmax = true;
      }
      if (dynamic) {
        INFO(std::string(Kind::name) << " " << dyt_test::type_name<T>() << " " << dyt_test::backend_name<B>() << " "
                        << q_name<Q>() << " cols " << cols << " row " << r);
        // absmax / qmax, rounded once, from a y_c within the twin's slack.
        const double want = absmax / qmax;
        CHECK(std::fabs(double(scale_of(r, 0)) - want) <= u * want + twin_u * max_mag / qmax);
        if (absmax > 0) CHECK(hit_qmax);
      }
    }
  };

  {  // dynamic
    buffer<Q> y(rows, cols, strided ? 3 : 0, strided);
    std::vector<C> scales(std::size_t(rows) + 2, C(-7));
    REQUIRE(layer.forward_quantized(x.view(), y.view(), dyt::per_row_scale<C>{scales.data() + 1}).ok());
    CHECK(y.canaries_intact());
    CHECK(scales.front() == C(-7));
    CHECK(scales.back() == C(-7));
    check_codes(y, [&](index_t r, index_t) { return scales[std::size_t(r) + 1]; }, true);
  }
  if constexpr (Kind::pointwise) {  // static
    buffer<Q> y(rows, cols, strided ? 3 : 0, strided);
    std::vector<C> scales(static_cast<std::size_t>(cols));
    REQUIRE(layer.template static_scales<Q>(scales.data()).ok());
    for (index_t j = 0; j < cols; ++j) {
      const double g = c.p.has_gamma ? std::fabs(pd.gamma[std::size_t(j)]) : 1.0;
      const double b = c.p.has_beta ? std::fabs(pd.beta[std::size_t(j)]) : 0.0;
      CHECK(double(scales[std::size_t(j)]) >= (g + b) / qmax);
    }
    REQUIRE(layer.forward_quantized(x.view(), y.view(), dyt::per_channel_scale<C>{scales.data()}).ok());
    CHECK(y.canaries_intact());
    check_codes(y, [&](index_t, index_t j) { return scales[std::size_t(j)]; }, false);
  }
}

template <class Kind, class T, class B>
void check_layer_all(const char* tag) {
  const index_t col_counts[] = {1, 3, 17, 767, 769, 4097};
  int i = 0;
  for (index_t cols : col_counts) {
    for (int variant = 0; variant < 4; ++variant, ++i) {
      if (!Kind::pointwise && variant == 1) continue;  // the adversarial inputs are the static scale's
      const index_t rows = cols > 1000 ? 2 : 3;
      const case_data c = random_case(rows, cols, variant, seed_for(tag, std::uint64_t(cols), std::uint64_t(variant)));
      const bool strided = i % 2 == 1;
      check_layer_case<Kind, T, B, std::int8_t>(c, strided);
      check_layer_case<Kind, T, B, float8_e4m3>(c, !strided);
    }
  }
}

template <class T, class B>
void check_all_layers() {
  check_layer_all<dyt_kind, T, B>("quantized DyT");
  check_layer_all<derf_kind, T, B>("quantized Derf");
  check_layer_all<dyisru_kind, T, B>("quantized DyISRU");
  check_layer_all<layer_norm_kind, T, B>("quantized LayerNorm");
  check_layer_all<rms_norm_kind, T, B>("quantized RMSNorm");
}

}  // namespace

TEST_CASE_TEMPLATE("quantized forward: every layer against the float64 reference, cpu and cpu_scalar", T, float,
                   dyt::bfloat16, dyt::half) {
  check_all_layers<T, dyt::cpu>();
  check_all_layers<T, dyt::cpu_scalar>();
}

TEST_CASE("quantized forward: double storage, cpu and the reference backend") {
  check_all_layers<double, dyt::cpu>();
  check_all_layers<double, dyt::reference>();
}

// ---- Special values ---------------------------------------------------------

TEST_CASE("zero rows get scale 0 and code 0; a NaN row gets scale NaN; infinite x stays bounded") {
  const index_t cols = 37;
  std::vector<float> x(3 * cols, 0.f), gamma(cols, 1.5f), beta(cols, 0.25f);
  for (index_t j = 0; j < cols; ++j) x[std::size_t(cols + j)] = float(j) - 5.f;
  x[std::size_t(cols + 7)] = std::numeric_limits<float>::quiet_NaN();
  for (index_t j = 0; j < cols; ++j) x[std::size_t(2 * cols + j)] = j % 2 ? INFINITY : -INFINITY;
  const auto xv = dyt::make_view<const float>(x.data(), 3, cols);
  const float alpha = 0.5f;

  std::vector<std::int8_t> q8(x.size(), 99);
  std::vector<float8_e4m3> qf(x.size(), float8_e4m3::from_bits(0x55));
  std::vector<float> scales(3, -1.f);

  // RMSNorm and DyT without beta: a zero row's y is exactly 0.
  const dyt::RMSNorm<float> rms(gamma.data(), cols);
  REQUIRE(rms.forward_quantized(xv, dyt::make_view(q8.data(), 3, cols), dyt::per_row_scale<float>{scales.data()}).ok());
  CHECK(scales[0] == 0.f);
  for (index_t j = 0; j < cols; ++j) CHECK(int(q8[std::size_t(j)]) == 0);
  CHECK(std::isnan(scales[1]));
  for (index_t j = 0; j < cols; ++j) CHECK(int(q8[std::size_t(cols + j)]) == 0);  // int8 has no NaN

  const dyt::DyT<float> dyt_layer(&alpha, gamma.data(), nullptr, cols);
  REQUIRE(dyt_layer.forward_quantized(xv, dyt::make_view(qf.data(), 3, cols), dyt::per_row_scale<float>{scales.data()})
              .ok());
  CHECK(scales[0] == 0.f);
  for (index_t j = 0; j < cols; ++j) CHECK(int(qf[std::size_t(j)].bits) == 0);
  CHECK(std::isnan(scales[1]));
  for (index_t j = 0; j < cols; ++j) CHECK((qf[std::size_t(cols + j)].bits & 0x7f) == 0x7f);  // NaN codes
  // tanh(+-inf) = +-1: the row is +-gamma, whose codes are +-qmax.
  CHECK(scales[2] == 1.5f / 448.f);
  for (index_t j = 0; j < cols; ++j) CHECK(int(qf[std::size_t(2 * cols + j)].bits) == (j % 2 ? 0x7e : 0xfe));

  // The static scale of a channel whose gamma and beta are zero is 0: code 0.
  std::vector<float> g0(gamma), b0(beta);
  g0[3] = 0.f;
  b0[3] = 0.f;
  const dyt::DyT<float> with_zero(&alpha, g0.data(), b0.data(), cols);
  std::vector<float> channel_scales(cols);
  REQUIRE(with_zero.static_scales<std::int8_t>(channel_scales.data()).ok());
  CHECK(channel_scales[3] == 0.f);
  REQUIRE(with_zero.forward_quantized(xv, dyt::make_view(q8.data(), 3, cols),
                                      dyt::per_channel_scale<float>{channel_scales.data()}).ok());
  for (index_t r = 0; r < 3; ++r) CHECK(int(q8[std::size_t(r * cols + 3)]) == 0);
  for (index_t j = 0; j < cols; ++j) CHECK(std::abs(int(q8[std::size_t(2 * cols + j)])) <= 127);
}

TEST_CASE("LayerNorm quantized with saved statistics matches forward's statistics") {
  const index_t rows = 4, cols = 769;
  rng r(seed_for("ln saved"));
  std::vector<dyt::bfloat16> x(rows * cols), gamma(cols), beta(cols), y(rows * cols);
  for (auto& v : x) v = dyt::bfloat16(float(r.uniform(-2, 2)));
  for (index_t j = 0; j < cols; ++j) {
    gamma[std::size_t(j)] = dyt::bfloat16(float(r.gamma()));
    beta[std::size_t(j)] = dyt::bfloat16(float(r.beta()));
  }
  const dyt::LayerNorm<dyt::bfloat16> ln(gamma.data(), beta.data(), cols);
  std::vector<float> mean(rows), rstd(rows), mean_q(rows), rstd_q(rows), scales(rows);
  std::vector<std::int8_t> q(rows * cols);
  const auto xv = dyt::make_view<const dyt::bfloat16>(x.data(), rows, cols);
  REQUIRE(ln.forward(xv, dyt::make_view(y.data(), rows, cols), {mean.data(), rstd.data()}).ok());
  REQUIRE(ln.forward_quantized(xv, dyt::make_view(q.data(), rows, cols), dyt::per_row_scale<float>{scales.data()},
                               {mean_q.data(), rstd_q.data()})
              .ok());
  CHECK(std::memcmp(mean.data(), mean_q.data(), rows * sizeof(float)) == 0);
  CHECK(std::memcmp(rstd.data(), rstd_q.data(), rows * sizeof(float)) == 0);
}

// ---- Refused calls ------------------------------------------------------------

TEST_CASE("refused quantized calls name the argument and write nothing") {
  const index_t rows = 3, cols = 17;
  std::vector<float> x(rows * cols, 0.5f), gamma(cols, 1.f), beta(cols, 0.f);
  const float alpha = 1.f;
  const dyt::DyT<float> layer(&alpha, gamma.data(), beta.data(), cols);
  const dyt::LayerNorm<float> ln(gamma.data(), beta.data(), cols);
  std::vector<std::int8_t> q(rows * cols, 42);
  std::vector<float> scales(rows + cols, -3.f);
  const auto xv = dyt::make_view<const float>(x.data(), rows, cols);
  const auto qv = dyt::make_view(q.data(), rows, cols);
  auto untouched = [&] {
    for (auto v : q)
      if (v != 42) return false;
    for (auto v : scales)
      if (v != -3.f) return false;
    return true;
  };
  auto refused = [&](const dyt::status& st, const char* fragment) {
    INFO(st.message());
    CHECK(!st.ok());
    CHECK(std::string(st.message()).find(fragment) != std::string::npos);
    CHECK(untouched());
  };
  refused(layer.forward_quantized(xv, qv, dyt::per_row_scale<float>{nullptr}), "scales.out is null");
  refused(ln.forward_quantized(xv, qv, dyt::per_row_scale<float>{nullptr}), "scales.out is null");
  refused(layer.forward_quantized(xv, qv, dyt::per_channel_scale<float>{nullptr}), "scales.in is null");
  refused(layer.forward_quantized(xv, dyt::rows_view<std::int8_t>(nullptr, rows, cols),
                                  dyt::per_row_scale<float>{scales.data()}),
          "y.data is null");
  refused(layer.forward_quantized(xv, dyt::make_view(q.data(), rows - 1, cols), dyt::per_row_scale<float>{scales.data()}),
          "y is 2 x 17 but x is 3 x 17");
  // y inside x's bytes (different types, so never in place).
  auto* inside_x = reinterpret_cast<std::int8_t*>(x.data());
  refused(layer.forward_quantized(xv, dyt::make_view(inside_x, rows, cols), dyt::per_row_scale<float>{scales.data()}),
          "y overlaps x");
  // The scales inside x, inside y, or overlapping a parameter.
  refused(layer.forward_quantized(xv, qv, dyt::per_row_scale<float>{x.data() + 5}), "scales.out overlaps x");
  refused(layer.forward_quantized(xv, qv, dyt::per_row_scale<float>{reinterpret_cast<float*>(q.data() + 4)}),
          "overlaps");
  refused(ln.forward_quantized(xv, qv, dyt::per_row_scale<float>{gamma.data()}), "scales.out overlaps gamma");
  // static_scales: null output, and an output over the layer's own gamma.
  {
    const auto st = layer.static_scales<dyt::float8_e4m3>(nullptr);
    CHECK(!st.ok());
    CHECK(std::string(st.message()).find("out is null") != std::string::npos);
    std::vector<float> g_copy(gamma);
    const dyt::DyT<float> aliased(&alpha, g_copy.data(), beta.data(), cols);
    const auto st2 = aliased.static_scales<std::int8_t>(g_copy.data());
    CHECK(!st2.ok());
    CHECK(std::string(st2.message()).find("out overlaps gamma") != std::string::npos);
    CHECK(g_copy == gamma);
  }
}
