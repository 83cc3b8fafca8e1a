// The library in a translation unit built with -fno-exceptions, as inference
// engines often are: every entry point reports through dyt::status, so valid
// calls work and bad ones are refused with their code and message, with no
// try/catch anywhere. The build gives this file -fno-exceptions (and the test
// below fails if it did not). doctest's REQUIRE family needs exceptions, so
// only CHECKs are used here.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "check_helpers.hpp"

namespace {

using dyt::errc;
using dyt::index_t;
using dyt_test::matrix;
using dyt_test::rng;

bool contains(const dyt::status& s, const char* text) { return std::strstr(s.message(), text) != nullptr; }

constexpr index_t kRows = 70, kCols = 19;  // 2 chunks in the default plan; a vector body and a tail

// A valid forward, backward, chunked backward and reduction, then a few
// refusals, for one kit; `saved` adds the statistics-saving overloads.
template <class Kit>
void exercise(Kit& k) {
  using T = typename Kit::layer_type::value_type;
  rng r(41);
  matrix<T> x(kRows, kCols), y(kRows, kCols), dy(kRows, kCols), dx(kRows, kCols), dx2(kRows, kCols);
  dyt_test::fill_uniform(x, r, -2.0, 2.0);
  dyt_test::fill_uniform(dy, r, -1.0, 1.0);

  // Valid calls.
  dyt::status s = k.layer.forward(x.cview(), y.view());
  CHECK_MESSAGE(s.ok(), std::string(s.message()));
  CHECK(std::string(s.message()) == "ok");
  for (index_t i = 0; i < kRows; ++i)
    for (index_t c = 0; c < kCols; ++c) CHECK(dyt_test::is_finite(y.at(i, c)));

  auto g1 = k.make_grads();
  s = k.layer.backward(x.cview(), dy.cview(), dx.view(), Kit::pointers(g1));
  CHECK_MESSAGE(s.ok(), std::string(s.message()));

  const dyt::backward_plan plan = dyt::make_backward_plan(kRows);
  CHECK(plan.chunks == 2);
  dyt_test::workspace ws(k.layer.workspace_bytes(plan));
  for (index_t c = plan.chunks; c > 0; --c) {  // in reverse, one chunk at a time
    s = k.layer.backward_chunks(plan, c - 1, c, x.cview(), dy.cview(), dx2.view(), ws.data(), ws.size());
    CHECK_MESSAGE(s.ok(), std::string(s.message()));
  }
  auto g2 = k.make_grads();
  s = k.layer.reduce_gradients(plan, ws.data(), ws.size(), Kit::pointers(g2));
  CHECK_MESSAGE(s.ok(), std::string(s.message()));
  // (Bit-identity of the two paths is test_determinism's job; here both ran.)
  for (index_t i = 0; i < kRows; ++i)
    for (index_t c = 0; c < kCols; ++c) CHECK(dyt_test::is_finite(dx2.at(i, c)));

  // In place.
  s = k.layer.forward(x.cview(), x.view());
  CHECK(s.ok());
  CHECK(dyt_test::same_bits(x, y));

  // Refusals, each leaving the output alone.
  dyt_test::paint(y);
  s = k.layer.forward(x.cview(), dyt::rows_view<T>(x.data() + 1, kRows - 1, kCols));
  CHECK(s.code() == errc::size_mismatch);
  s = k.layer.forward(dyt::rows_view<const T>(x.data(), kRows - 1, kCols), dyt::rows_view<T>(x.data() + 1, kRows - 1, kCols));
  CHECK(s.code() == errc::overlap);
  CHECK(contains(s, "y overlaps x"));
  s = k.layer.forward(dyt::rows_view<const T>(nullptr, kRows, kCols), y.view());
  CHECK(s.code() == errc::null_pointer);
  CHECK(contains(s, "x.data is null"));
  s = k.layer.forward(dyt::rows_view<const T>(x.data(), kRows, kCols, kCols - 1), y.view());
  CHECK(s.code() == errc::bad_stride);
  s = k.layer.forward(dyt::rows_view<const T>(x.data(), kRows, kCols - 1), dyt::rows_view<T>(y.data(), kRows, kCols - 1));
  CHECK(s.code() == errc::size_mismatch);
  CHECK(contains(s, "x.cols (18) != the layer's cols (19)"));
  CHECK(dyt_test::intact(y));

  dyt_test::paint(dx);
  s = k.layer.backward(x.cview(), dy.cview(), dyt::rows_view<T>(dy.data() + kCols, kRows - 1, kCols), Kit::pointers(g1));
  CHECK(s.code() == errc::size_mismatch);
  s = k.layer.backward_chunks(plan, 0, plan.chunks + 1, x.cview(), dy.cview(), dx.view(), ws.data(), ws.size());
  CHECK(s.code() == errc::bad_range);
  s = k.layer.backward_chunks(plan, 0, 1, x.cview(), dy.cview(), dx.view(), nullptr, ws.size());
  CHECK(s.code() == (ws.size() > 0 ? errc::null_pointer : errc::ok));
  if (ws.size() > 0) CHECK(dyt_test::intact(dx));
  s = k.layer.backward_chunks(dyt::make_backward_plan(kRows - 1), 0, 1, x.cview(), dy.cview(), dx.view(), ws.data(),
                              ws.size());
  CHECK(s.code() == errc::size_mismatch);
  CHECK(contains(s, "plan.rows (69) != x.rows (70)"));

  dyt::check(dyt::status());  // returns; a failure would print and abort instead of throwing
}

template <class T, class B>
void all_layers() {
  rng r(42);
  {
    dyt_test::dyt_kit<T, B> k(kCols, r);
    exercise(k);
    // Without alpha.
    const dyt::DyT<T, B> no_alpha(nullptr, k.gamma.data(), k.beta.data(), kCols);
    std::vector<T> x(kCols), y(kCols);
    const dyt::status s = no_alpha.forward(dyt::rows_view<const T>(x.data(), 1, kCols), dyt::rows_view<T>(y.data(), 1, kCols));
    CHECK(s.code() == errc::null_pointer);
    CHECK(contains(s, "dyt::DyT::forward: alpha is null"));
  }
  {
    dyt_test::layer_norm_kit<T, B> k(kCols, r);
    exercise(k);
    dyt_test::layer_norm_kit<T, B> bad_eps(kCols, r, true, true, -1.0);
    std::vector<T> x(kCols), y(kCols);
    const dyt::status s = bad_eps.layer.forward(dyt::rows_view<const T>(x.data(), 1, kCols), dyt::rows_view<T>(y.data(), 1, kCols));
    CHECK(s.code() == errc::bad_parameter);
    CHECK(contains(s, "eps (-1) must be finite and >= 0"));
  }
  {
    dyt_test::rms_norm_kit<T, B> k(kCols, r, true, dyt::gamma_form::one_plus);
    exercise(k);
    dyt_test::rms_norm_kit<T, B> no_gamma(kCols, r, false, dyt::gamma_form::one_plus);
    std::vector<T> x(kCols), y(kCols);
    const dyt::status s =
        no_gamma.layer.forward(dyt::rows_view<const T>(x.data(), 1, kCols), dyt::rows_view<T>(y.data(), 1, kCols));
    CHECK(s.code() == errc::null_pointer);
  }
}

}  // namespace

TEST_CASE("no exceptions: this file is built with -fno-exceptions") {
  // DYT_HAS_EXCEPTIONS follows the compiler's own macros; 0 proves the flag
  // reached this translation unit, so the rest really runs without exceptions.
  CHECK_MESSAGE(DYT_HAS_EXCEPTIONS == 0, "compile tests/test_no_exceptions.cpp with -fno-exceptions");
}

TEST_CASE("no exceptions: every layer, float on the SIMD backend") { all_layers<float, dyt::cpu>(); }
TEST_CASE("no exceptions: every layer, bf16 on the SIMD backend") { all_layers<dyt::bfloat16, dyt::cpu>(); }
TEST_CASE("no exceptions: every layer, half on the scalar backend") { all_layers<dyt::half, dyt::cpu_scalar>(); }
TEST_CASE("no exceptions: every layer, double on the reference backend") { all_layers<double, dyt::reference>(); }
