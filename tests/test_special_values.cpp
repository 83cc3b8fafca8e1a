// NaN and Inf: what each layer returns, pinned on every backend (reference,
// cpu_scalar, cpu) and for float and bf16 storage (half too for NaN bits).
//
// What the layers do (the same as PyTorch's eager expressions of each layer):
//
// DyT, forward, y = gamma * tanh(alpha x) + beta, element by element:
//   x NaN           -> y NaN at that element only;
//   x = +-Inf       -> tanh saturates: y = +-gamma + beta (finite);
//   x huge, finite  -> the same (alpha x may overflow to Inf: still saturates).
// DyT, backward, g = dy * gamma * (1 - t^2):
//   dy NaN at (r, c)  -> dx NaN at (r, c) only; dgamma[c] and dbeta[c] NaN, other
//                        columns finite; dalpha (a sum over all elements) NaN;
//   x NaN at (r, c)   -> dx NaN at (r, c) only; dgamma[c] NaN; dbeta finite
//                        (it only sums dy); dalpha NaN;
//   x = +-Inf         -> 1 - t^2 = 0, so dx = 0 there and dgamma/dbeta stay finite;
//                        dalpha's term x * g is Inf * 0 (or Inf * tiny with a tanh
//                        policy that stops just short of 1): not finite.
// LayerNorm, forward: a NaN or +-Inf anywhere in a row makes mean/variance NaN
//   (Inf - Inf), so the whole row of y is NaN, and its saved rstd; other rows
//   are untouched by it.
// RMSNorm, forward: a NaN in a row makes the whole row NaN. An Inf makes
//   mean(x^2) Inf and rstd = 0, so the Inf element becomes Inf * 0 = NaN and
//   the row's finite elements become (signed) 0, exactly what PyTorch's
//   x * rsqrt(mean(x^2) + eps) returns. Other rows are untouched.
// LayerNorm/RMSNorm, backward: dy NaN at (r, c) -> the row's mean(gh) and
//   mean(gh * xh) are NaN, so all of dx's row r is NaN; dgamma[c] (and dbeta[c])
//   NaN, other columns finite. x NaN in row r -> dx's row r NaN, and every
//   column of dgamma NaN (xh is NaN across the row); dbeta stays finite.
//
// 16-bit storage: a NaN (quiet or signalling, either sign, any payload) is
// still a NaN after the layer, never Inf or a finite value.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "check_helpers.hpp"

namespace {

using dyt::index_t;
using dyt_test::from_double;
using dyt_test::is_finite;
using dyt_test::is_nan;
using dyt_test::matrix;
using dyt_test::rng;
using dyt_test::to_double;
using bf16 = dyt::bfloat16;
using half = dyt::half;

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

template <class T_, class B_>
struct cfg {
  using T = T_;
  using B = B_;
};

#define SPECIAL_CFGS                                                                                    \
  cfg<float, dyt::reference>, cfg<float, dyt::cpu_scalar>, cfg<float, dyt::cpu>, cfg<bf16, dyt::reference>, \
      cfg<bf16, dyt::cpu_scalar>, cfg<bf16, dyt::cpu>

#define SPECIAL_16BIT_CFGS                                                                               \
  cfg<bf16, dyt::reference>, cfg<bf16, dyt::cpu_scalar>, cfg<bf16, dyt::cpu>, cfg<half, dyt::reference>, \
      cfg<half, dyt::cpu_scalar>, cfg<half, dyt::cpu>

// 37 columns: a vector body (16 or 32 columns with AVX-512 or AVX2 floats) and
// a scalar tail, so special values are placed in both.
constexpr index_t kRows = 5, kCols = 37;
constexpr index_t kBodyCol = 3, kBodyCol2 = 10, kTailCol = 35, kTailCol2 = 36;

template <class T>
T max_finite() {
  if constexpr (std::is_same<T, float>::value) {
    return std::numeric_limits<float>::max();
  } else {
    T v;
    const std::uint16_t bits = dyt::format_of<T>::value == dyt::format::bf16 ? 0x7f7f : 0x7bff;
    std::memcpy(static_cast<void*>(&v), &bits, 2);
    return v;
  }
}

// Gains and shifts on a quarter grid, so +-gamma + beta is exact in every format.
template <class T>
std::vector<T> grid_values(index_t n, const double* choices, int count, rng& r) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (auto& e : v) e = from_double<T>(choices[r.between(0, count - 1)]);
  return v;
}

template <class T>
matrix<T> finite_input(rng& r) {
  matrix<T> x(kRows, kCols);
  dyt_test::fill_uniform(x, r, -2.0, 2.0);
  return x;
}

template <class T>
bool row_all_nan(const matrix<T>& m, index_t r) {
  for (index_t c = 0; c < m.cols; ++c)
    if (!is_nan(m.at(r, c))) return false;
  return true;
}
template <class T>
bool row_all_finite(const matrix<T>& m, index_t r) {
  for (index_t c = 0; c < m.cols; ++c)
    if (!is_finite(m.at(r, c))) return false;
  return true;
}

// The bits of a 16-bit NaN, checked without the library's own decoding.
template <class T>
bool nan_bits16(const T& v) {
  std::uint16_t b;
  std::memcpy(&b, &v, 2);
  const std::uint16_t inf = dyt::format_of<T>::value == dyt::format::bf16 ? 0x7f80 : 0x7c00;
  return (b & 0x7fff) > inf;
}
template <class T>
T from_bits16(std::uint16_t b) {
  T v;
  std::memcpy(static_cast<void*>(&v), &b, 2);
  return v;
}

// --- DyT

template <class T, class B, class Tanh>
void check_dyt_forward(rng& r) {
  const double gammas[] = {0.5, 0.75, 1.25, 1.5, 2.0};
  const double betas[] = {-0.5, -0.25, 0.0, 0.25, 0.5};
  std::vector<T> alpha{from_double<T>(2.0)};  // alpha * max_finite overflows to Inf in float
  const std::vector<T> gamma = grid_values<T>(kCols, gammas, 5, r);
  const std::vector<T> beta = grid_values<T>(kCols, betas, 5, r);
  const dyt::DyT<T, B, Tanh> layer(alpha.data(), gamma.data(), beta.data(), kCols);

  matrix<T> x = finite_input<T>(r);
  x.at(0, kBodyCol) = from_double<T>(kNaN);
  x.at(1, kTailCol) = from_double<T>(kNaN);
  x.at(0, kBodyCol2) = from_double<T>(kInf);
  x.at(2, kTailCol2) = from_double<T>(-kInf);
  x.at(3, kBodyCol) = max_finite<T>();
  x.at(3, kTailCol) = from_double<T>(-to_double(max_finite<T>()));
  x.at(4, kBodyCol2) = from_double<T>(1e30);

  matrix<T> y(kRows, kCols);
  REQUIRE(layer.forward(x.cview(), y.view()).ok());

  for (index_t i = 0; i < kRows; ++i)
    for (index_t c = 0; c < kCols; ++c) {
      CAPTURE(i);
      CAPTURE(c);
      const double xv = to_double(x.at(i, c));
      const double yv = to_double(y.at(i, c));
      if (std::isnan(xv)) {
        CHECK(std::isnan(yv));
      } else if (std::fabs(xv) > 1e4) {
        // Saturated: y = sign(x) gamma + beta, exact in 16-bit storage; in float
        // within the tanh policy's few ulp of 1 (documented in ops/tanh.hpp).
        const double g = to_double(gamma[static_cast<std::size_t>(c)]);
        const double expected = std::copysign(g, xv) + to_double(beta[static_cast<std::size_t>(c)]);
        if (std::is_same<T, float>::value)
          CHECK(std::fabs(yv - expected) <= g * 0x1p-21);
        else
          CHECK(yv == expected);
      } else {
        CHECK(std::isfinite(yv));
      }
    }
}

template <class T, class B, class Tanh>
void check_dyt_backward(rng& r) {
  std::vector<T> alpha{from_double<T>(0.8)};
  const std::vector<T> gamma = dyt_test::random_vector<T>(kCols, r, 0.5, 1.5);
  const std::vector<T> beta = dyt_test::random_vector<T>(kCols, r, -0.5, 0.5);
  const dyt::DyT<T, B, Tanh> layer(alpha.data(), gamma.data(), beta.data(), kCols);
  using grads = typename dyt::DyT<T, B, Tanh>::gradients;

  auto run = [&](const matrix<T>& x, const matrix<T>& dy, matrix<T>& dx, std::vector<T>& dalpha,
                 std::vector<T>& dgamma, std::vector<T>& dbeta) {
    dalpha.assign(1, T());
    dgamma.assign(kCols, T());
    dbeta.assign(kCols, T());
    const dyt::status s = layer.backward(x.cview(), dy.cview(), dx.view(), grads{dalpha.data(), dgamma.data(), dbeta.data()});
    REQUIRE_MESSAGE(s.ok(), s.message());
  };
  matrix<T> dx(kRows, kCols);
  std::vector<T> dalpha, dgamma, dbeta;

  SUBCASE("NaN in dy") {
    const matrix<T> x = finite_input<T>(r);
    matrix<T> dy = finite_input<T>(r);
    dy.at(1, kTailCol) = from_double<T>(kNaN);
    run(x, dy, dx, dalpha, dgamma, dbeta);
    for (index_t i = 0; i < kRows; ++i)
      for (index_t c = 0; c < kCols; ++c) CHECK(is_nan(dx.at(i, c)) == (i == 1 && c == kTailCol));
    for (index_t c = 0; c < kCols; ++c) {
      CHECK(is_nan(dgamma[static_cast<std::size_t>(c)]) == (c == kTailCol));
      CHECK(is_nan(dbeta[static_cast<std::size_t>(c)]) == (c == kTailCol));
    }
    CHECK(is_nan(dalpha[0]));
  }
  SUBCASE("NaN in x") {
    matrix<T> x = finite_input<T>(r);
    const matrix<T> dy = finite_input<T>(r);
    x.at(2, kBodyCol) = from_double<T>(kNaN);
    run(x, dy, dx, dalpha, dgamma, dbeta);
    for (index_t i = 0; i < kRows; ++i)
      for (index_t c = 0; c < kCols; ++c) CHECK(is_nan(dx.at(i, c)) == (i == 2 && c == kBodyCol));
    for (index_t c = 0; c < kCols; ++c) {
      CHECK(is_nan(dgamma[static_cast<std::size_t>(c)]) == (c == kBodyCol));
      CHECK(is_finite(dbeta[static_cast<std::size_t>(c)]));
    }
    CHECK(is_nan(dalpha[0]));
  }
  SUBCASE("Inf in x") {
    matrix<T> x = finite_input<T>(r);
    const matrix<T> dy = finite_input<T>(r);
    x.at(0, kBodyCol2) = from_double<T>(kInf);
    x.at(3, kTailCol2) = from_double<T>(-kInf);
    run(x, dy, dx, dalpha, dgamma, dbeta);
    CHECK(row_all_finite(dx, 0));
    CHECK(row_all_finite(dx, 3));
    // 1 - t^2 vanishes at saturation (exactly, or to a few float ulp with a
    // policy that stops short of 1), and so does dx.
    CHECK(std::fabs(to_double(dx.at(0, kBodyCol2))) <= 1e-6);
    CHECK(std::fabs(to_double(dx.at(3, kTailCol2))) <= 1e-6);
    for (index_t c = 0; c < kCols; ++c) {
      CHECK(is_finite(dgamma[static_cast<std::size_t>(c)]));
      CHECK(is_finite(dbeta[static_cast<std::size_t>(c)]));
    }
    CHECK(!is_finite(dalpha[0]));
  }
}

// --- LayerNorm and RMSNorm

template <class Layer, class T>
void check_norm_forward(const Layer& layer, bool is_rms) {
  using C = typename Layer::compute_type;
  rng r(21);
  matrix<T> x = finite_input<T>(r);
  x.at(0, kBodyCol) = from_double<T>(kNaN);   // row 0: NaN in the vector body
  x.at(1, kBodyCol2) = from_double<T>(kInf);  // row 1: +Inf
  x.at(2, kTailCol) = from_double<T>(-kInf);  // row 2: -Inf in the tail
  x.at(4, kTailCol2) = from_double<T>(kNaN);  // row 4: NaN in the tail; row 3 stays finite
  matrix<T> y(kRows, kCols);
  std::vector<C> mean(kRows), rstd(kRows);
  dyt::status s;
  if constexpr (std::is_same<Layer, dyt::RMSNorm<T, typename Layer::backend_type>>::value)
    s = layer.forward(x.cview(), y.view(), {nullptr, rstd.data()});
  else
    s = layer.forward(x.cview(), y.view(), {mean.data(), rstd.data()});
  REQUIRE_MESSAGE(s.ok(), s.message());

  CHECK(row_all_nan(y, 0));
  CHECK(row_all_nan(y, 4));
  CHECK(row_all_finite(y, 3));
  CHECK(std::isfinite(double(rstd[3])));
  CHECK(std::isnan(double(rstd[0])));
  CHECK(std::isnan(double(rstd[4])));
  if (!is_rms) {
    CHECK(row_all_nan(y, 1));
    CHECK(row_all_nan(y, 2));
    CHECK(std::isnan(double(rstd[1])));
    CHECK(std::isnan(double(rstd[2])));
  } else {
    // rstd = 1/sqrt(Inf) = 0: the Inf element is Inf * 0 = NaN, the rest 0.
    CHECK(double(rstd[1]) == 0.0);
    CHECK(double(rstd[2]) == 0.0);
    for (index_t c = 0; c < kCols; ++c) {
      CAPTURE(c);
      if (c == kBodyCol2) CHECK(is_nan(y.at(1, c)));
      else CHECK(to_double(y.at(1, c)) == 0.0);
      if (c == kTailCol) CHECK(is_nan(y.at(2, c)));
      else CHECK(to_double(y.at(2, c)) == 0.0);
    }
  }
}

template <class Layer, class T>
void check_norm_backward(const Layer& layer, std::vector<T>* dgamma, std::vector<T>* dbeta,
                         typename Layer::gradients grads) {
  rng r(22);
  matrix<T> dx(kRows, kCols);
  SUBCASE("NaN in dy") {
    const matrix<T> x = finite_input<T>(r);
    matrix<T> dy = finite_input<T>(r);
    dy.at(1, kTailCol) = from_double<T>(kNaN);
    dy.at(3, kBodyCol) = from_double<T>(kNaN);
    const dyt::status s = layer.backward(x.cview(), dy.cview(), dx.view(), grads);
    REQUIRE_MESSAGE(s.ok(), s.message());
    for (index_t i = 0; i < kRows; ++i) {
      CAPTURE(i);
      if (i == 1 || i == 3) CHECK(row_all_nan(dx, i));
      else CHECK(row_all_finite(dx, i));
    }
    for (index_t c = 0; c < kCols; ++c) {
      CAPTURE(c);
      const bool poisoned = c == kTailCol || c == kBodyCol;
      if (dgamma) CHECK(is_nan((*dgamma)[static_cast<std::size_t>(c)]) == poisoned);
      if (dbeta) CHECK(is_nan((*dbeta)[static_cast<std::size_t>(c)]) == poisoned);
    }
  }
  SUBCASE("NaN in x") {
    matrix<T> x = finite_input<T>(r);
    const matrix<T> dy = finite_input<T>(r);
    x.at(2, kBodyCol2) = from_double<T>(kNaN);
    const dyt::status s = layer.backward(x.cview(), dy.cview(), dx.view(), grads);
    REQUIRE_MESSAGE(s.ok(), s.message());
    for (index_t i = 0; i < kRows; ++i) {
      CAPTURE(i);
      if (i == 2) CHECK(row_all_nan(dx, i));
      else CHECK(row_all_finite(dx, i));
    }
    for (index_t c = 0; c < kCols; ++c) {
      if (dgamma) CHECK(is_nan((*dgamma)[static_cast<std::size_t>(c)]));
      if (dbeta) CHECK(is_finite((*dbeta)[static_cast<std::size_t>(c)]));
    }
  }
}

}  // namespace

TEST_CASE_TEMPLATE("special values: DyT forward, NaN stays put and Inf saturates", Cfg, SPECIAL_CFGS) {
  using T = typename Cfg::T;
  using B = typename Cfg::B;
  rng r(31);
  SUBCASE("precise tanh") { check_dyt_forward<T, B, dyt::tanh_precise>(r); }
  SUBCASE("fast tanh") { check_dyt_forward<T, B, dyt::tanh_fast>(r); }
}

TEST_CASE_TEMPLATE("special values: DyT backward", Cfg, SPECIAL_CFGS) {
  using T = typename Cfg::T;
  using B = typename Cfg::B;
  rng r(32);
  SUBCASE("precise tanh") { check_dyt_backward<T, B, dyt::tanh_precise>(r); }
  SUBCASE("fast tanh") { check_dyt_backward<T, B, dyt::tanh_fast>(r); }
}

TEST_CASE_TEMPLATE("special values: LayerNorm and RMSNorm forward, one bad value spoils its row only", Cfg,
                   SPECIAL_CFGS) {
  using T = typename Cfg::T;
  using B = typename Cfg::B;
  rng r(33);
  const std::vector<T> gamma = dyt_test::random_vector<T>(kCols, r, 0.5, 1.5);
  const std::vector<T> beta = dyt_test::random_vector<T>(kCols, r, -0.5, 0.5);
  SUBCASE("LayerNorm") { check_norm_forward<dyt::LayerNorm<T, B>, T>(dyt::LayerNorm<T, B>(gamma.data(), beta.data(), kCols), false); }
  SUBCASE("LayerNorm without affine") {
    check_norm_forward<dyt::LayerNorm<T, B>, T>(dyt::LayerNorm<T, B>(nullptr, nullptr, kCols), false);
  }
  SUBCASE("RMSNorm") { check_norm_forward<dyt::RMSNorm<T, B>, T>(dyt::RMSNorm<T, B>(gamma.data(), kCols), true); }
  SUBCASE("RMSNorm (1 + gamma)") {
    check_norm_forward<dyt::RMSNorm<T, B>, T>(
        dyt::RMSNorm<T, B>(beta.data(), kCols, 1e-6, dyt::gamma_form::one_plus), true);
  }
}

TEST_CASE_TEMPLATE("special values: LayerNorm and RMSNorm backward", Cfg, SPECIAL_CFGS) {
  using T = typename Cfg::T;
  using B = typename Cfg::B;
  rng r(34);
  const std::vector<T> gamma = dyt_test::random_vector<T>(kCols, r, 0.5, 1.5);
  const std::vector<T> beta = dyt_test::random_vector<T>(kCols, r, -0.5, 0.5);
  std::vector<T> dgamma(kCols), dbeta(kCols);
  SUBCASE("LayerNorm") {
    const dyt::LayerNorm<T, B> ln(gamma.data(), beta.data(), kCols);
    check_norm_backward(ln, &dgamma, &dbeta, {dgamma.data(), dbeta.data()});
  }
  SUBCASE("RMSNorm") {
    const dyt::RMSNorm<T, B> rms(gamma.data(), kCols);
    check_norm_backward(rms, &dgamma, static_cast<std::vector<T>*>(nullptr), {dgamma.data()});
  }
}

TEST_CASE_TEMPLATE("special values: 16-bit NaN inputs stay NaN through every layer", Cfg, SPECIAL_16BIT_CFGS) {
  using T = typename Cfg::T;
  using B = typename Cfg::B;
  const bool is_bf16 = dyt::format_of<T>::value == dyt::format::bf16;
  // Quiet and signalling, both signs, smallest and largest payloads.
  const std::uint16_t nans[] = {
      static_cast<std::uint16_t>(is_bf16 ? 0x7fc0 : 0x7e00), static_cast<std::uint16_t>(is_bf16 ? 0xffc0 : 0xfe00),
      static_cast<std::uint16_t>(is_bf16 ? 0x7f81 : 0x7c01), static_cast<std::uint16_t>(is_bf16 ? 0xff81 : 0xfc01),
      static_cast<std::uint16_t>(0x7fff), static_cast<std::uint16_t>(0xffff)};
  rng r(35);
  const std::vector<T> gamma = dyt_test::random_vector<T>(kCols, r, 0.5, 1.5);
  const std::vector<T> beta = dyt_test::random_vector<T>(kCols, r, -0.5, 0.5);
  std::vector<T> alpha{from_double<T>(0.7)};

  for (std::uint16_t bits : nans) {
    CAPTURE(bits);
    REQUIRE(nan_bits16(from_bits16<T>(bits)));
    matrix<T> x = finite_input<T>(r);
    x.at(0, kBodyCol) = from_bits16<T>(bits);
    x.at(2, kTailCol2) = from_bits16<T>(bits);
    matrix<T> y(kRows, kCols), dx(kRows, kCols);
    matrix<T> dy = finite_input<T>(r);
    dy.at(3, kBodyCol2) = from_bits16<T>(bits);

    {  // DyT: that element only, both policies
      const dyt::DyT<T, B, dyt::tanh_fast> fast(alpha.data(), gamma.data(), beta.data(), kCols);
      const dyt::DyT<T, B, dyt::tanh_precise> precise(alpha.data(), gamma.data(), beta.data(), kCols);
      for (int p = 0; p < 2; ++p) {
        REQUIRE((p == 0 ? fast.forward(x.cview(), y.view()) : precise.forward(x.cview(), y.view())).ok());
        for (index_t i = 0; i < kRows; ++i)
          for (index_t c = 0; c < kCols; ++c) {
            const bool bad = (i == 0 && c == kBodyCol) || (i == 2 && c == kTailCol2);
            CHECK(nan_bits16(y.at(i, c)) == bad);
          }
      }
      // In place as well: the NaN survives being overwritten by its own result.
      matrix<T> inplace = x;
      REQUIRE(fast.forward(inplace.cview(), inplace.view()).ok());
      CHECK(nan_bits16(inplace.at(0, kBodyCol)));
      CHECK(nan_bits16(inplace.at(2, kTailCol2)));

      std::vector<T> dalpha(1), dgamma(kCols), dbeta(kCols);
      REQUIRE(fast.backward(x.cview(), dy.cview(), dx.view(), {dalpha.data(), dgamma.data(), dbeta.data()}).ok());
      CHECK(nan_bits16(dx.at(0, kBodyCol)));
      CHECK(nan_bits16(dx.at(3, kBodyCol2)));
      CHECK(nan_bits16(dalpha[0]));
      CHECK(nan_bits16(dbeta[kBodyCol2]));
      CHECK(!nan_bits16(dbeta[kBodyCol]));
    }
    {  // LayerNorm / RMSNorm: whole rows
      const dyt::LayerNorm<T, B> ln(gamma.data(), beta.data(), kCols);
      const dyt::RMSNorm<T, B> rms(gamma.data(), kCols);
      for (int l = 0; l < 2; ++l) {
        CAPTURE(l);
        REQUIRE((l == 0 ? ln.forward(x.cview(), y.view()) : rms.forward(x.cview(), y.view())).ok());
        for (index_t c = 0; c < kCols; ++c) {
          CHECK(nan_bits16(y.at(0, c)));
          CHECK(nan_bits16(y.at(2, c)));
          CHECK(!nan_bits16(y.at(1, c)));
        }
        std::vector<T> dgamma(kCols);
        const dyt::status s = l == 0 ? ln.backward(x.cview(), dy.cview(), dx.view(), {dgamma.data(), nullptr})
                                     : rms.backward(x.cview(), dy.cview(), dx.view(), {dgamma.data()});
        REQUIRE(s.ok());
        for (index_t c = 0; c < kCols; ++c) {
          CHECK(nan_bits16(dx.at(0, c)));
          CHECK(nan_bits16(dx.at(3, c)));
          CHECK(!nan_bits16(dx.at(1, c)));
        }
      }
    }
  }
}
