// Regression tests for the bugs fuzz/ found, each minimized from a fuzzer
// finding (fuzz/README.md lists them). Every test fails on the code before its fix.
//
//  1. LayerNorm/RMSNorm rows whose sum or sum of squares overflows the compute
//     type: 4096 floats of +-1e18 gave rstd = 0 and y = beta (LayerNorm) or
//     y = 0 (RMSNorm), silently; opposite bf16 values near the largest gave a
//     NaN row. Fixed by rescaling such rows (ops/rescue.hpp).
//  2. eps above the compute type's largest value (1e39 in a float layer)
//     became infinite in float, so every rstd was 0 and y = beta. Now refused.
//  3. DyT<double> on dyt::cpu: xsimd's exp (inside tanh) cast NaN and
//     |x| > ~6e18 to int64, undefined behaviour (UBSan; the results were
//     right). tanh's argument is now clamped, NaN kept aside. This test is
//     what the sanitizer stage of .ci/run runs into.
//  4. workspace_bytes() of a layer built with cols < 1 (which refuses every
//     call) returned a slot size computed from the negative column count:
//     64 bytes for cols = 0, and 2^64 - 1408 bytes for cols = -100. Now 0.
//  5. workspace_bytes() of a layer with cols >= 2^62 overflowed a signed
//     integer (undefined behaviour, UBSan), also inside backward_chunks'
//     argument checks of a call it then refused; a product beyond SIZE_MAX
//     could wrap around. Now SIZE_MAX, which no workspace meets.
//  6. static_scales() of a point-wise layer with cols above PTRDIFF_MAX /
//     sizeof(compute type) (2^61 and more for float) sized its output array
//     in the overlap check with a signed overflow (undefined behaviour,
//     UBSan), and, had the check passed, wrote that many values. Now refused
//     (errc::bad_size) before anything is sized.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "check_helpers.hpp"

namespace {

using dyt::index_t;
using dyt_test::from_double;
using dyt_test::to_double;
using bf16 = dyt::bfloat16;

template <class T_, class B_>
struct cfg {
  using T = T_;
  using B = B_;
};

// |got - want| <= rel * scale + 2^-132 (twice bf16's subnormal spacing, for
// outputs as small as 1e-38), and finite.
void check_close(double got, double want, double rel, double scale, const std::string& what) {
  INFO(what << ": got " << got << ", want " << want << ", scale " << scale);
  CHECK(std::isfinite(got));
  CHECK(std::fabs(got - want) <= rel * scale + 0x1p-132);
}

// --- 1. Rows that overflow the compute type's sums

// One row: x_j = (+-) v (1 + (j % 7) / 16), alternating signs. The truth is the
// float64 reference on x / v (LayerNorm and RMSNorm are scale-invariant while
// eps is negligible next to the variance, as here), so it never takes the
// rescued path itself: y and dgamma are the same, mean and 1/rstd scale by v,
// dx by 1/v.
template <class T, class B>
void check_wide_rows(index_t cols, double v) {
  CAPTURE(cols);
  CAPTURE(v);
  std::vector<T> x(static_cast<std::size_t>(cols)), y(x.size()), dy(x.size()), dx(x.size());
  std::vector<T> gamma(x.size(), from_double<T>(1.5)), beta(x.size(), from_double<T>(0.25));
  std::vector<double> xd(x.size()), dyd(x.size()), gd(x.size(), 1.5), bd(x.size(), 0.25);
  for (index_t j = 0; j < cols; ++j) {
    const std::size_t i = static_cast<std::size_t>(j);
    x[i] = from_double<T>((j % 2 ? v : -v) * (1 + double(j % 7) / 16));
    xd[i] = to_double(x[i]) / v;
    dy[i] = from_double<T>(double(j % 5) / 4 - 0.5);
    dyd[i] = to_double(dy[i]);
  }
  using C = typename dyt::LayerNorm<T, B>::compute_type;
  const auto xv = dyt::make_view<const T>(x.data(), 1, cols);
  const auto dyv = dyt::make_view<const T>(dy.data(), 1, cols);
  // Loose tolerances (a 16-bit T rounds to 2^-8): before the fix the outputs
  // were off by O(1) (y = beta) or NaN.
  const double rel = dyt::is_16bit_v<T> ? 1e-2 : 1e-3;

  SUBCASE("LayerNorm") {
    const dyt::LayerNorm<T, B> ln(gamma.data(), beta.data(), cols);
    const dyt::LayerNorm<double, dyt::reference> ref(gd.data(), bd.data(), cols, 0.0);
    C mean = 0, rstd = 0;
    REQUIRE(ln.forward(xv, dyt::make_view(y.data(), 1, cols), {&mean, &rstd}).ok());
    std::vector<double> yr(x.size()), dxr(x.size());
    double mr = 0, rr = 0;
    REQUIRE(ref.forward({xd.data(), 1, cols}, {yr.data(), 1, cols}, {&mr, &rr}).ok());
    mr *= v;
    rr /= v;
    for (double& e : dxr) e /= v;
    CHECK(double(rstd) > 0);
    check_close(double(rstd), rr, rel, rr, "rstd");
    check_close(double(mean), mr, rel, v, "mean");
    for (std::size_t i = 0; i < x.size(); ++i) check_close(to_double(y[i]), yr[i], rel, 3.0, "y");

    // Backward, recomputing the statistics and from the saved ones: the same bits.
    std::vector<T> dg(x.size()), db(x.size()), dx2(x.size()), dg2(x.size()), db2(x.size());
    REQUIRE(ln.backward(xv, dyv, dyt::make_view(dx.data(), 1, cols), {dg.data(), db.data()}).ok());
    REQUIRE(ln.backward(xv, dyv, dyt::make_view(dx2.data(), 1, cols), {dg2.data(), db2.data()},
                        dyt::grad_mode::overwrite, {&mean, &rstd})
                .ok());
    CHECK(dyt_test::same_bits(dx, dx2));
    CHECK(dyt_test::same_bits(dg, dg2));
    std::vector<double> dgr(x.size()), dbr(x.size());
    REQUIRE(ref.backward({xd.data(), 1, cols}, {dyd.data(), 1, cols}, {dxr.data(), 1, cols}, {dgr.data(), dbr.data()})
                .ok());
    for (double& e : dxr) e /= v;
    for (std::size_t i = 0; i < x.size(); ++i) {
      check_close(to_double(dx[i]), dxr[i], rel, 3 * rr, "dx");
      check_close(to_double(dg[i]), dgr[i], rel, 2.0, "dgamma");
    }
  }
  SUBCASE("RMSNorm") {
    const dyt::RMSNorm<T, B> rms(gamma.data(), cols);
    const dyt::RMSNorm<double, dyt::reference> ref(gd.data(), cols, 0.0);
    C rstd = 0;
    REQUIRE(rms.forward(xv, dyt::make_view(y.data(), 1, cols), {nullptr, &rstd}).ok());
    std::vector<double> yr(x.size()), dxr(x.size()), dgr(x.size());
    double rr = 0;
    REQUIRE(ref.forward({xd.data(), 1, cols}, {yr.data(), 1, cols}, {nullptr, &rr}).ok());
    rr /= v;
    CHECK(double(rstd) > 0);
    check_close(double(rstd), rr, rel, rr, "rstd");
    for (std::size_t i = 0; i < x.size(); ++i) check_close(to_double(y[i]), yr[i], rel, 3.0, "y");
    std::vector<T> dg(x.size());
    REQUIRE(rms.backward(xv, dyv, dyt::make_view(dx.data(), 1, cols), {dg.data()}).ok());
    REQUIRE(ref.backward({xd.data(), 1, cols}, {dyd.data(), 1, cols}, {dxr.data(), 1, cols}, {dgr.data()}).ok());
    for (double& e : dxr) e /= v;
    for (std::size_t i = 0; i < x.size(); ++i) {
      check_close(to_double(dx[i]), dxr[i], rel, 3 * rr, "dx");
      check_close(to_double(dg[i]), dgr[i], rel, 2.0, "dgamma");
    }
  }
}

TEST_CASE_TEMPLATE("fuzz regression: LayerNorm and RMSNorm rows whose sums overflow float stay finite and right", Cfg,
                   cfg<float, dyt::cpu>, cfg<float, dyt::cpu_scalar>, cfg<bf16, dyt::cpu>, cfg<bf16, dyt::cpu_scalar>) {
  using T = typename Cfg::T;
  using B = typename Cfg::B;
  // The minimized finding: 4096 columns of about 1e18 (sum of squares 4e39 > FLT_MAX).
  check_wide_rows<T, B>(4096, 1e18);
  // A few columns of 1e19 (each square is 1e38; their sum overflows).
  check_wide_rows<T, B>(7, 1e19);
  // Near the largest float / bf16 value: the sum of x itself overflows too.
  check_wide_rows<T, B>(37, 2e38);
  // sigma above 2^126: rstd is a subnormal float.
  check_wide_rows<T, B>(2, 1.5e38);
}

TEST_CASE_TEMPLATE("fuzz regression: LayerNorm and RMSNorm rows whose sums overflow double stay finite and right", B,
                   dyt::cpu, dyt::cpu_scalar) {
  check_wide_rows<double, B>(64, 1e300);
  check_wide_rows<double, B>(5, 1e160);
}

TEST_CASE_TEMPLATE("fuzz regression: the minimized bf16 finding, opposite values at the largest bf16", B, dyt::cpu,
                   dyt::cpu_scalar, dyt::reference) {
  // x = (max, max, -max): mean max/3, sigma max * 0.943; y = xh = (0.707, 0.707, -1.414).
  const bf16 big = bf16::from_bits(0x7f7f), neg = bf16::from_bits(0xff7f);
  std::vector<bf16> x{big, big, neg}, y(3), gamma(3, bf16(1.0f)), beta(3, bf16(0.0f));
  const dyt::LayerNorm<bf16, B> ln(gamma.data(), beta.data(), 3);
  REQUIRE(ln.forward(dyt::make_view<const bf16>(x.data(), 1, 3), dyt::make_view(y.data(), 1, 3)).ok());
  CHECK(float(y[0]) == doctest::Approx(std::sqrt(0.5)).epsilon(0.01));
  CHECK(float(y[1]) == doctest::Approx(std::sqrt(0.5)).epsilon(0.01));
  CHECK(float(y[2]) == doctest::Approx(-std::sqrt(2.0)).epsilon(0.01));
  const dyt::RMSNorm<bf16, B> rms(gamma.data(), 3);
  REQUIRE(rms.forward(dyt::make_view<const bf16>(x.data(), 1, 3), dyt::make_view(y.data(), 1, 3)).ok());
  CHECK(float(y[0]) == doctest::Approx(1.0).epsilon(0.01));
  CHECK(float(y[2]) == doctest::Approx(-1.0).epsilon(0.01));
}

// --- 2. eps beyond the compute type

TEST_CASE_TEMPLATE("fuzz regression: eps larger than the compute type's largest value is refused", Cfg,
                   cfg<float, dyt::cpu>, cfg<float, dyt::cpu_scalar>, cfg<bf16, dyt::cpu>, cfg<dyt::half, dyt::cpu>) {
  using T = typename Cfg::T;
  using B = typename Cfg::B;
  const index_t cols = 5;
  std::vector<T> x(cols, from_double<T>(1.0)), y(cols), gamma(cols, from_double<T>(1.0));
  dyt_test::paint(y);
  const auto xv = dyt::make_view<const T>(x.data(), 1, cols);
  const auto yv = dyt::make_view(y.data(), 1, cols);
  for (double eps : {1e39, 3.5e38}) {
    CAPTURE(eps);
    const dyt::status a = dyt::LayerNorm<T, B>(gamma.data(), nullptr, cols, eps).forward(xv, yv);
    const dyt::status b = dyt::RMSNorm<T, B>(gamma.data(), cols, eps).forward(xv, yv);
    for (const dyt::status& s : {a, b}) {
      CHECK(s.code() == dyt::errc::bad_parameter);
      CHECK(std::string(s.message()).find("exceeds the compute type's largest value") != std::string::npos);
    }
    CHECK(dyt_test::intact(y));
  }
  // The largest float itself is fine: rstd = 1/sqrt(FLT_MAX), y = x / 1.8e19.
  CHECK(dyt::RMSNorm<T, B>(gamma.data(), cols, double(std::numeric_limits<float>::max())).forward(xv, yv).ok());
}

TEST_CASE("fuzz regression: a double layer keeps eps = 1e39, which its compute type holds") {
  // One row of +-1e30 (variance 1e60 >> eps): y = x / sqrt(1e60 + 1e39) = +-1.
  std::vector<double> x{1e30, -1e30, 1e30, -1e30}, y(4);
  const dyt::LayerNorm<double> ln(nullptr, nullptr, 4, 1e39);
  REQUIRE(ln.forward(dyt::make_view<const double>(x.data(), 1, 4), dyt::make_view(y.data(), 1, 4)).ok());
  CHECK(y[0] == doctest::Approx(1.0));
  CHECK(y[1] == doctest::Approx(-1.0));
}

// --- 3. DyT<double>'s vector tanh with NaN and huge arguments

TEST_CASE_TEMPLATE("fuzz regression: DyT<double> with NaN and |alpha x| > 6e18 (UB inside xsimd's exp)", B, dyt::cpu,
                   dyt::cpu_scalar) {
  const index_t cols = 19;  // vector body and tail
  std::vector<double> x(cols), y(cols), dy(cols, 0.5), dx(cols), gamma(cols, 1.5), beta(cols, 0.25);
  for (index_t j = 0; j < cols; ++j) x[static_cast<std::size_t>(j)] = j % 3 == 0 ? 1e19 : j % 3 == 1 ? -1e300 : 0.5;
  x[4] = std::numeric_limits<double>::quiet_NaN();
  x[5] = std::numeric_limits<double>::infinity();
  const double alpha = 1.0;
  const dyt::DyT<double, B> layer(&alpha, gamma.data(), beta.data(), cols);
  REQUIRE(layer.forward(dyt::make_view<const double>(x.data(), 1, cols), dyt::make_view(y.data(), 1, cols)).ok());
  for (index_t j = 0; j < cols; ++j) {
    const std::size_t i = static_cast<std::size_t>(j);
    CAPTURE(j);
    if (std::isnan(x[i])) CHECK(std::isnan(y[i]));
    else if (x[i] == 0.5) CHECK(y[i] == doctest::Approx(1.5 * std::tanh(0.5) + 0.25).epsilon(1e-15));
    else CHECK(y[i] == (x[i] > 0 ? 1.75 : -1.25));
  }
  double dalpha = 0;
  std::vector<double> dg(cols), db(cols);
  REQUIRE(layer
              .backward(dyt::make_view<const double>(x.data(), 1, cols), dyt::make_view<const double>(dy.data(), 1, cols),
                        dyt::make_view(dx.data(), 1, cols), {&dalpha, dg.data(), db.data()})
              .ok());
  CHECK(std::isnan(dx[4]));
  CHECK(dx[0] == 0.0);  // saturated: 1 - t^2 = 0
  CHECK(std::isnan(dalpha));
}

// --- 4. workspace_bytes of a layer that refuses every call

TEST_CASE_TEMPLATE("fuzz regression: workspace_bytes is 0 for a layer built with cols < 1", B, dyt::cpu,
                   dyt::cpu_scalar) {
  float alpha = 1, gamma[4] = {1, 1, 1, 1}, beta[4] = {0, 0, 0, 0};
  const dyt::backward_plan plan = dyt::make_backward_plan(4, 2);
  for (index_t cols : {index_t(0), index_t(-1), index_t(-100)}) {
    CAPTURE(cols);
    const dyt::DyT<float, B> d(&alpha, gamma, beta, cols);
    const dyt::LayerNorm<float, B> ln(gamma, beta, cols);
    const dyt::RMSNorm<float, B> rms(gamma, cols);
    CHECK(d.workspace_bytes(plan) == 0);
    CHECK(ln.workspace_bytes(plan) == 0);
    CHECK(rms.workspace_bytes(plan) == 0);
    // And every call is refused as before.
    std::vector<float> x(4, 1.0f), y(4);
    CHECK(d.forward(dyt::make_view<const float>(x.data(), 1, 4), dyt::make_view(y.data(), 1, 4)).code() ==
          dyt::errc::bad_size);
  }
}

// --- 5. workspace_bytes beyond the address space

TEST_CASE_TEMPLATE("fuzz regression: workspace_bytes saturates at SIZE_MAX instead of overflowing", B, dyt::cpu,
                   dyt::cpu_scalar) {
  dyt::half g[1], b[1], x[1];
  const index_t huge = index_t(1) << 62;
  const dyt::LayerNorm<dyt::half, B> ln(g, b, huge);
  const dyt::RMSNorm<dyt::half, B> rms(g, huge);
  const dyt::backward_plan plan = dyt::make_backward_plan(124, 13);
  CHECK(ln.workspace_bytes(plan) == SIZE_MAX);
  CHECK(rms.workspace_bytes(plan) == SIZE_MAX);
  // The chunk API asks for it while checking its arguments: refused, no overflow on the way.
  const dyt::status s = ln.backward_chunks(plan, 0, 1, {x, 124, huge}, {x, 124, huge}, {x, 124, huge}, nullptr, 0);
  CHECK(s.code() == dyt::errc::null_pointer);
  // Ordinary layers are unchanged: 13 chunks of (2 * 768 floats) = 79872 bytes.
  const dyt::LayerNorm<dyt::half, B> small(g, b, 768);
  CHECK(small.workspace_bytes(plan) == std::size_t(13 * 2 * 768 * 4));
}

// --- 6. static_scales() of a layer whose cols no array can hold

TEST_CASE_TEMPLATE("fuzz regression: static_scales refuses cols beyond the address space instead of overflowing", B,
                   dyt::cpu, dyt::cpu_scalar) {
  const float alpha = 0.5f;
  float gamma[4] = {1, 2, 3, 4}, beta[4] = {0, 0, 0, 0}, out[4] = {-1, -1, -1, -1};
  const index_t huge = PTRDIFF_MAX / index_t(sizeof(float)) + 1;  // 2^61: the fuzzer's inj_huge_cols
  const dyt::DyT<float, B> layer(&alpha, gamma, beta, huge);
  const dyt::status s8 = layer.template static_scales<std::int8_t>(out);
  CHECK(s8.code() == dyt::errc::bad_size);
  CHECK(std::string(s8.message()).find("static_scales") != std::string::npos);
  CHECK(layer.template static_scales<dyt::float8_e4m3>(out).code() == dyt::errc::bad_size);
  const dyt::Derf<dyt::bfloat16, B> derf(nullptr, nullptr, nullptr, nullptr, huge);  // null alpha: refused first
  CHECK(derf.template static_scales<std::int8_t>(out).code() == dyt::errc::null_pointer);
  for (float v : out) CHECK(v == -1);
  // An ordinary layer is unchanged.
  const dyt::DyT<float, B> small(&alpha, gamma, beta, 4);
  REQUIRE(small.template static_scales<std::int8_t>(out).ok());
  CHECK(out[3] > 4.f / 127);
}

}  // namespace

