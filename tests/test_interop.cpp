// A user's own 16-bit types work without copies: the layers run directly on
// Eigen::bfloat16 / Eigen::half buffers (and std::bfloat16_t / std::float16_t
// where the compiler has them) and give, bit for bit, what the same bytes give
// through dyt::bfloat16 / dyt::half. The native run reads the foreign buffers
// themselves through a reinterpret_cast: one set of bytes, two types.
//
// Inputs are made with the foreign type's own conversion from float (not the
// library's), and the foreign type's own conversion back to float must read
// the library's outputs as the library does.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#if defined(DYT_TESTS_HAVE_EIGEN)
#define DYT_INTEROP_EIGEN 1
#elif defined(__has_include)
#if __has_include(<Eigen/Core>)
#define DYT_INTEROP_EIGEN 1
#endif
#endif
#ifndef DYT_INTEROP_EIGEN
#define DYT_INTEROP_EIGEN 0
#endif

#if DYT_INTEROP_EIGEN
#include <Eigen/Core>
#endif

#include "check_helpers.hpp"

#if DYT_HAS_STDFLOAT && defined(__STDCPP_BFLOAT16_T__)
#define DYT_INTEROP_STD_BF16 1
#else
#define DYT_INTEROP_STD_BF16 0
#endif
#if DYT_HAS_STDFLOAT && defined(__STDCPP_FLOAT16_T__)
#define DYT_INTEROP_STD_F16 1
#else
#define DYT_INTEROP_STD_F16 0
#endif

namespace {

using dyt::index_t;
using dyt_test::matrix;
using dyt_test::rng;

// A foreign type paired with the library's type of the same format.
template <class Foreign, class Native, class Backend>
struct pairing {
  using foreign = Foreign;
  using native = Native;
  using backend = Backend;
};

template <class F>
F foreign_from(float v) {
  return static_cast<F>(v);  // the foreign type's own conversion
}
template <class F>
float foreign_to_float(const F& v) {
  return static_cast<float>(v);
}

template <class Native, class F>
const Native* as_native(const F* p) {
  static_assert(sizeof(F) == sizeof(Native), "same size");
  return reinterpret_cast<const Native*>(p);
}
template <class Native, class F>
Native* as_native(F* p) {
  return reinterpret_cast<Native*>(p);
}

template <class F>
std::vector<F> foreign_vector(index_t n, rng& r, double lo, double hi) {
  std::vector<F> v(static_cast<std::size_t>(n));
  for (auto& e : v) e = foreign_from<F>(static_cast<float>(r.uniform(lo, hi)));
  return v;
}

template <class F>
matrix<F> foreign_matrix(index_t rows, index_t cols, index_t stride, rng& r) {
  matrix<F> m(rows, cols, stride);
  for (auto& e : m.buf) e = foreign_from<F>(static_cast<float>(r.uniform(-3.0, 3.0)));
  return m;
}

template <class A, class B>
bool same_bytes(const std::vector<A>& a, const std::vector<B>& b) {
  return a.size() == b.size() && sizeof(A) == sizeof(B) && std::memcmp(a.data(), b.data(), a.size() * sizeof(A)) == 0;
}

// The foreign type reads the library's outputs as the library reads them.
template <class Native, class F>
bool foreign_reads_alike(const std::vector<F>& v) {
  for (const F& e : v) {
    const float mine = foreign_to_float(e);
    const float theirs = dyt::scalar_traits<Native>::load(*as_native<Native>(&e));
    if (std::isnan(mine) != std::isnan(theirs)) return false;
    if (!std::isnan(mine) && dyt_test::bits_of(mine) != dyt_test::bits_of(theirs)) return false;
  }
  return true;
}

constexpr index_t kRows = 70, kCols = 37, kStride = 41;  // two backward chunks; a vector body and a tail; row gaps

// DyT: forward (and in place), backward with every gradient, both tanh policies.
template <class P, class Tanh>
void check_dyt() {
  using F = typename P::foreign;
  using N = typename P::native;
  using B = typename P::backend;
  rng r(51);
  const std::vector<F> alpha{foreign_from<F>(0.75f)};
  const std::vector<F> gamma = foreign_vector<F>(kCols, r, 0.5, 1.5), beta = foreign_vector<F>(kCols, r, -0.5, 0.5);
  const matrix<F> x = foreign_matrix<F>(kRows, kCols, kStride, r), dy = foreign_matrix<F>(kRows, kCols, kStride, r);

  const dyt::DyT<F, B, Tanh> theirs(alpha.data(), gamma.data(), beta.data(), kCols);
  const dyt::DyT<N, B, Tanh> ours(as_native<N>(alpha.data()), as_native<N>(gamma.data()), as_native<N>(beta.data()),
                                  kCols);
  const dyt::rows_view<const N> x_n(as_native<N>(x.data()), kRows, kCols, kStride);
  const dyt::rows_view<const N> dy_n(as_native<N>(dy.data()), kRows, kCols, kStride);

  matrix<F> y_f(kRows, kCols, kStride);
  matrix<N> y_n(kRows, kCols, kStride);
  REQUIRE(theirs.forward(x.cview(), y_f.view()).ok());
  REQUIRE(ours.forward(x_n, y_n.view()).ok());
  CHECK(same_bytes(y_f.buf, y_n.buf));
  CHECK(foreign_reads_alike<N>(y_f.buf));

  matrix<F> inplace = x;
  REQUIRE(theirs.forward(inplace.cview(), inplace.view()).ok());
  for (index_t i = 0; i < kRows; ++i)  // the row gaps keep x's bytes; every element is y
    CHECK(std::memcmp(&inplace.at(i, 0), &y_n.at(i, 0), kCols * sizeof(F)) == 0);

  matrix<F> dx_f(kRows, kCols, kStride);
  matrix<N> dx_n(kRows, kCols, kStride);
  std::vector<F> da_f(1), dg_f(kCols), db_f(kCols);
  std::vector<N> da_n(1), dg_n(kCols), db_n(kCols);
  REQUIRE(theirs.backward(x.cview(), dy.cview(), dx_f.view(), {da_f.data(), dg_f.data(), db_f.data()}).ok());
  REQUIRE(ours.backward(x_n, dy_n, dx_n.view(), {da_n.data(), dg_n.data(), db_n.data()}).ok());
  CHECK(same_bytes(dx_f.buf, dx_n.buf));
  CHECK(same_bytes(da_f, da_n));
  CHECK(same_bytes(dg_f, dg_n));
  CHECK(same_bytes(db_f, db_n));
  CHECK(foreign_reads_alike<N>(dx_f.buf));
  CHECK(foreign_reads_alike<N>(dg_f));
}

// LayerNorm: forward saving statistics, backward with and without them, and
// the chunk API with a workspace.
template <class P>
void check_layer_norm() {
  using F = typename P::foreign;
  using N = typename P::native;
  using B = typename P::backend;
  using C = typename dyt::LayerNorm<N, B>::compute_type;
  static_assert(std::is_same<C, typename dyt::LayerNorm<F, B>::compute_type>::value, "same compute type");
  rng r(52);
  const std::vector<F> gamma = foreign_vector<F>(kCols, r, 0.5, 1.5), beta = foreign_vector<F>(kCols, r, -0.5, 0.5);
  const matrix<F> x = foreign_matrix<F>(kRows, kCols, kStride, r), dy = foreign_matrix<F>(kRows, kCols, kStride, r);
  const dyt::LayerNorm<F, B> theirs(gamma.data(), beta.data(), kCols);
  const dyt::LayerNorm<N, B> ours(as_native<N>(gamma.data()), as_native<N>(beta.data()), kCols);
  const dyt::rows_view<const N> x_n(as_native<N>(x.data()), kRows, kCols, kStride);
  const dyt::rows_view<const N> dy_n(as_native<N>(dy.data()), kRows, kCols, kStride);

  matrix<F> y_f(kRows, kCols, kStride);
  matrix<N> y_n(kRows, kCols, kStride);
  std::vector<C> mean_f(kRows), rstd_f(kRows), mean_n(kRows), rstd_n(kRows);
  REQUIRE(theirs.forward(x.cview(), y_f.view(), {mean_f.data(), rstd_f.data()}).ok());
  REQUIRE(ours.forward(x_n, y_n.view(), {mean_n.data(), rstd_n.data()}).ok());
  CHECK(same_bytes(y_f.buf, y_n.buf));
  CHECK(same_bytes(mean_f, mean_n));
  CHECK(same_bytes(rstd_f, rstd_n));
  CHECK(foreign_reads_alike<N>(y_f.buf));

  matrix<F> dx_f(kRows, kCols, kStride);
  matrix<N> dx_n(kRows, kCols, kStride);
  std::vector<F> dg_f(kCols), db_f(kCols);
  std::vector<N> dg_n(kCols), db_n(kCols);
  REQUIRE(theirs.backward(x.cview(), dy.cview(), dx_f.view(), {dg_f.data(), db_f.data()}, dyt::grad_mode::overwrite,
                          {mean_f.data(), rstd_f.data()})
              .ok());
  REQUIRE(ours.backward(x_n, dy_n, dx_n.view(), {dg_n.data(), db_n.data()}).ok());
  CHECK(same_bytes(dx_f.buf, dx_n.buf));
  CHECK(same_bytes(dg_f, dg_n));
  CHECK(same_bytes(db_f, db_n));

  // The chunk API on the foreign type, accumulating onto the gradients above.
  const dyt::backward_plan plan = dyt::make_backward_plan(kRows);
  dyt_test::workspace ws(theirs.workspace_bytes(plan));
  REQUIRE(ws.size() == ours.workspace_bytes(plan));
  for (index_t k = 0; k < plan.chunks; ++k)
    REQUIRE(theirs.backward_chunks(plan, k, k + 1, x.cview(), dy.cview(), dx_f.view(), ws.data(), ws.size()).ok());
  REQUIRE(theirs.reduce_gradients(plan, ws.data(), ws.size(), {dg_f.data(), db_f.data()}, dyt::grad_mode::accumulate)
              .ok());
  REQUIRE(ours.backward(x_n, dy_n, dx_n.view(), {dg_n.data(), db_n.data()}, dyt::grad_mode::accumulate).ok());
  CHECK(same_bytes(dx_f.buf, dx_n.buf));
  CHECK(same_bytes(dg_f, dg_n));
  CHECK(same_bytes(db_f, db_n));
}

// RMSNorm in Gemma's (1 + gamma) form, in place.
template <class P>
void check_rms_norm() {
  using F = typename P::foreign;
  using N = typename P::native;
  using B = typename P::backend;
  rng r(53);
  const std::vector<F> gamma = foreign_vector<F>(kCols, r, -0.5, 0.5);
  const matrix<F> x = foreign_matrix<F>(kRows, kCols, kStride, r), dy = foreign_matrix<F>(kRows, kCols, kStride, r);
  const dyt::RMSNorm<F, B> theirs(gamma.data(), kCols, 1e-6, dyt::gamma_form::one_plus);
  const dyt::RMSNorm<N, B> ours(as_native<N>(gamma.data()), kCols, 1e-6, dyt::gamma_form::one_plus);

  matrix<F> y_f = x;
  matrix<N> y_n(kRows, kCols, kStride);
  REQUIRE(theirs.forward(y_f.cview(), y_f.view()).ok());
  REQUIRE(ours.forward(dyt::rows_view<const N>(as_native<N>(x.data()), kRows, kCols, kStride), y_n.view()).ok());
  for (index_t i = 0; i < kRows; ++i) CHECK(std::memcmp(&y_f.at(i, 0), &y_n.at(i, 0), kCols * sizeof(F)) == 0);

  matrix<F> dx_f = dy;  // dx in place over dy
  matrix<N> dx_n(kRows, kCols, kStride);
  std::vector<F> dg_f(kCols);
  std::vector<N> dg_n(kCols);
  REQUIRE(theirs.backward(x.cview(), dx_f.cview(), dx_f.view(), {dg_f.data()}).ok());
  REQUIRE(ours.backward(dyt::rows_view<const N>(as_native<N>(x.data()), kRows, kCols, kStride),
                        dyt::rows_view<const N>(as_native<N>(dy.data()), kRows, kCols, kStride), dx_n.view(),
                        {dg_n.data()})
              .ok());
  for (index_t i = 0; i < kRows; ++i) CHECK(std::memcmp(&dx_f.at(i, 0), &dx_n.at(i, 0), kCols * sizeof(F)) == 0);
  CHECK(same_bytes(dg_f, dg_n));
}

template <class P>
void check_all_layers() {
  SUBCASE("DyT, fast tanh") { check_dyt<P, dyt::tanh_fast>(); }
  SUBCASE("DyT, precise tanh") { check_dyt<P, dyt::tanh_precise>(); }
  SUBCASE("LayerNorm") { check_layer_norm<P>(); }
  SUBCASE("RMSNorm") { check_rms_norm<P>(); }
}

}  // namespace

#if DYT_INTEROP_EIGEN
static_assert(std::is_same<dyt::compute_t<Eigen::bfloat16>, float>::value, "Eigen::bfloat16 computes in float");
static_assert(std::is_same<dyt::compute_t<Eigen::half>, float>::value, "Eigen::half computes in float");
static_assert(std::is_same<dyt::default_tanh_t<Eigen::bfloat16>, dyt::default_tanh_t<dyt::bfloat16>>::value,
              "the same default tanh policy as the library's own bf16");

TEST_CASE_TEMPLATE("interop: Eigen::bfloat16 and Eigen::half give the bits of dyt::bfloat16 and dyt::half", P,
                   pairing<Eigen::bfloat16, dyt::bfloat16, dyt::cpu>,
                   pairing<Eigen::bfloat16, dyt::bfloat16, dyt::cpu_scalar>,
                   pairing<Eigen::bfloat16, dyt::bfloat16, dyt::reference>, pairing<Eigen::half, dyt::half, dyt::cpu>,
                   pairing<Eigen::half, dyt::half, dyt::cpu_scalar>, pairing<Eigen::half, dyt::half, dyt::reference>) {
  check_all_layers<P>();
}

TEST_CASE("interop: a NaN in an Eigen::bfloat16 buffer comes out as a NaN Eigen reads as NaN") {
  Eigen::bfloat16 alpha(1.0f);
  std::vector<Eigen::bfloat16> x(8, Eigen::bfloat16(0.5f)), y(8);
  x[3] = Eigen::bfloat16(std::nanf(""));
  const dyt::DyT<Eigen::bfloat16> layer(&alpha, nullptr, nullptr, 8);
  REQUIRE(layer.forward(dyt::rows_view<const Eigen::bfloat16>(x.data(), 1, 8), dyt::rows_view<Eigen::bfloat16>(y.data(), 1, 8)).ok());
  CHECK((Eigen::numext::isnan)(y[3]));
  CHECK(std::fabs(static_cast<float>(y[0]) - std::tanh(0.5f)) <= 0x1p-9f);  // half a bf16 ulp at 0.46, plus tanh's error
}
#endif

#if DYT_INTEROP_STD_BF16
TEST_CASE_TEMPLATE("interop: std::bfloat16_t gives the bits of dyt::bfloat16", P,
                   pairing<std::bfloat16_t, dyt::bfloat16, dyt::cpu>,
                   pairing<std::bfloat16_t, dyt::bfloat16, dyt::cpu_scalar>,
                   pairing<std::bfloat16_t, dyt::bfloat16, dyt::reference>) {
  check_all_layers<P>();
}
#endif

#if DYT_INTEROP_STD_F16
TEST_CASE_TEMPLATE("interop: std::float16_t gives the bits of dyt::half", P, pairing<std::float16_t, dyt::half, dyt::cpu>,
                   pairing<std::float16_t, dyt::half, dyt::reference>) {
  check_all_layers<P>();
}
#endif

TEST_CASE("interop: which foreign types this build covers") {
  const std::string covered = std::string("Eigen: ") + (DYT_INTEROP_EIGEN ? "yes" : "no (not on the include path)") +
                              ", std::bfloat16_t: " + (DYT_INTEROP_STD_BF16 ? "yes" : "no (compiler lacks it)") +
                              ", std::float16_t: " + (DYT_INTEROP_STD_F16 ? "yes" : "no (compiler lacks it)");
  MESSAGE(covered);
  CHECK(true);
}
