// Bad input is refused with the right dyt::errc and a message that names the
// function, the argument and the values, and a refused call writes nothing the
// caller owns.
//
// Every case runs in a "scene" whose every buffer (x, y, dy, dx, the layer's
// parameters, the gradient buffers, the statistics and the workspace) is
// painted with a canary pattern first and compared afterwards, so a call that
// touched anything before refusing fails the test even when it also returned
// the right code. Overlapping views are made inside those same buffers, so the
// library never gets memory the test does not own.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "check_helpers.hpp"

namespace {

using dyt::errc;
using dyt::index_t;
using dyt_test::grad_buffers;
using dyt_test::matrix;
using dyt_test::rng;
using bf16 = dyt::bfloat16;

constexpr index_t kRows = 6, kCols = 5;
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

bool contains(const char* haystack, const char* needle) { return std::strstr(haystack, needle) != nullptr; }

template <class Kit>
struct is_dyt : std::false_type {};
template <class T, class B, class Tanh>
struct is_dyt<dyt_test::dyt_kit<T, B, Tanh>> : std::true_type {};

// A layer of the kit's kind and settings, over other parameter pointers (the
// pointer arguments do not take part in deduction, so nullptr works).
template <class T>
using ptr = const typename std::enable_if<true, T>::type*;

template <class T, class B, class Tanh>
dyt::DyT<T, B, Tanh> layer_with(const dyt_test::dyt_kit<T, B, Tanh>& k, ptr<T> alpha, ptr<T> gamma, ptr<T> beta) {
  return dyt::DyT<T, B, Tanh>(alpha, gamma, beta, k.layer.cols());
}
template <class T, class B>
dyt::LayerNorm<T, B> layer_with(const dyt_test::layer_norm_kit<T, B>& k, ptr<T>, ptr<T> gamma, ptr<T> beta) {
  return dyt::LayerNorm<T, B>(gamma, beta, k.layer.cols(), k.layer.eps());
}
template <class T, class B>
dyt::RMSNorm<T, B> layer_with(const dyt_test::rms_norm_kit<T, B>& k, ptr<T>, ptr<T> gamma, ptr<T>) {
  return dyt::RMSNorm<T, B>(gamma, k.layer.cols(), k.layer.eps(), k.layer.form());
}

// The kit's alpha and beta, where its layer kind has them.
template <class T, class B, class Tanh>
T* alpha_of(dyt_test::dyt_kit<T, B, Tanh>& k) {
  return k.alpha.data();
}
template <class Kit>
typename Kit::layer_type::value_type* alpha_of(Kit&) {
  return nullptr;
}
template <class T, class B, class Tanh>
T* beta_of(dyt_test::dyt_kit<T, B, Tanh>& k) {
  return dyt_test::or_null(k.beta);
}
template <class T, class B>
T* beta_of(dyt_test::layer_norm_kit<T, B>& k) {
  return dyt_test::or_null(k.beta);
}
template <class T, class B>
T* beta_of(dyt_test::rms_norm_kit<T, B>&) {
  return nullptr;
}

// Every buffer one layer's calls can touch, painted.
template <class Kit>
struct scene {
  using layer_type = typename Kit::layer_type;
  using T = typename layer_type::value_type;
  using C = typename layer_type::compute_type;
  using gradients = typename Kit::gradients;
  template <class U>
  using view = dyt::rows_view<U>;

  rng r;
  Kit kit;
  // kRows + 2 rows each, so views shifted by a row still stay inside; the
  // default views see the first kRows.
  matrix<T> x, y, dy, dx;
  grad_buffers<T> grads;
  std::vector<C> mean, rstd;
  dyt::backward_plan plan;
  dyt_test::workspace ws;
  std::vector<std::vector<T>*> param_buffers;  // alpha, gamma, beta (empty where absent)

  template <class... KitArgs>
  explicit scene(KitArgs... kit_args)
      : r(7),
        kit(kCols, r, kit_args...),
        x(kRows + 2, kCols),
        y(kRows + 2, kCols),
        dy(kRows + 2, kCols),
        dx(kRows + 2, kCols),
        grads(kit.make_grads()),
        mean(kRows + 2),
        rstd(kRows + 2),
        plan(dyt::make_backward_plan(kRows, 3)),
        ws(kit.layer.workspace_bytes(dyt::make_backward_plan(kRows, 3))) {
    for (auto& p : kit.params()) param_buffers.push_back(p.values);
    paint_all();
  }

  void paint_all() {
    for (auto* p : param_buffers) dyt_test::paint(*p);
    for (matrix<T>* m : {&x, &y, &dy, &dx}) dyt_test::paint(*m);
    for (auto& g : grads) dyt_test::paint(g);
    dyt_test::paint(mean);
    dyt_test::paint(rstd);
    dyt_test::paint(ws.data(), ws.size());
  }

  bool untouched() const {
    for (const auto* p : param_buffers)
      if (!dyt_test::intact(*p)) return false;
    for (const matrix<T>* m : {&x, &y, &dy, &dx})
      if (!dyt_test::intact(*m)) return false;
    for (auto& g : grads)
      if (!dyt_test::intact(g)) return false;
    return dyt_test::intact(mean) && dyt_test::intact(rstd) && dyt_test::intact(ws.data(), ws.size());
  }

  view<const T> xv() const { return view<const T>(x.data(), kRows, kCols); }
  view<T> yv() { return view<T>(y.data(), kRows, kCols); }
  view<const T> dyv() const { return view<const T>(dy.data(), kRows, kCols); }
  view<T> dxv() { return view<T>(dx.data(), kRows, kCols); }
  gradients gp() { return Kit::pointers(grads); }

  // The calls with the scene's defaults.
  dyt::status forward() { return kit.layer.forward(xv(), yv()); }
  dyt::status backward() { return kit.layer.backward(xv(), dyv(), dxv(), gp()); }
  dyt::status chunks(index_t first = 0, index_t last = 3) {
    return kit.layer.backward_chunks(plan, first, last, xv(), dyv(), dxv(), ws.data(), ws.size());
  }
  dyt::status reduce() { return kit.layer.reduce_gradients(plan, ws.data(), ws.size(), gp()); }

  std::string fn(const char* entry) const { return std::string("dyt::") + Kit::name + "::" + entry + ": "; }
};

// The call was refused with `expected`, its message contains every substring,
// and the scene was left untouched. (A function, not a macro body: these run
// hundreds of times, and one copy keeps the build fast.)
void verify_refused(const dyt::status& s, errc expected, std::initializer_list<std::string> substrings,
                    bool untouched, const char* expr, int line) {
  INFO("call (line ", line, "): ", expr);
  INFO("message: ", std::string(s.message()));
  CHECK(!s.ok());
  CHECK(std::string(dyt::to_string(s.code())) == dyt::to_string(expected));
  for (const std::string& sub : substrings)
    CHECK_MESSAGE(contains(s.message(), sub.c_str()), "the message lacks \"", sub, "\"");
  CHECK_MESSAGE(untouched, "a refused call wrote to the caller's memory");
}

void verify_accepted(const dyt::status& s, const char* expr, int line) {
  INFO("call (line ", line, "): ", expr);
  CHECK_MESSAGE(s.ok(), std::string(s.message()));
  CHECK(std::string(s.message()) == "ok");
}

#define CHECK_REFUSED(sc, expr, expected_code, ...)                                                   \
  do {                                                                                                \
    const dyt::status refused_ = (expr);                                                              \
    verify_refused(refused_, expected_code, {__VA_ARGS__}, (sc).untouched(), #expr, __LINE__);       \
  } while (0)

// The call is accepted; the scene is repainted for the next case.
#define CHECK_ACCEPTED(sc, expr)                       \
  do {                                                 \
    verify_accepted((expr), #expr, __LINE__);          \
    (sc).paint_all();                                  \
  } while (0)

// Layers of each kind, storage type and backend (the checks are the same for
// all; the compute type changes the statistics' and workspace's types).
template <class T, class B>
using dyt_k = dyt_test::dyt_kit<T, B>;
template <class T, class B>
using ln_k = dyt_test::layer_norm_kit<T, B>;
template <class T, class B>
using rms_k = dyt_test::rms_norm_kit<T, B>;

#define DYT_ERROR_KITS                                                                                \
  dyt_k<float, dyt::cpu>, dyt_k<bf16, dyt::reference>, ln_k<float, dyt::cpu>, ln_k<dyt::half, dyt::cpu_scalar>, \
      rms_k<float, dyt::cpu>, rms_k<bf16, dyt::reference>

}  // namespace

// ---------------------------------------------------------------------------
// Views

TEST_CASE_TEMPLATE("errors: null data in any view", Kit, DYT_ERROR_KITS) {
  using T = typename scene<Kit>::T;
  scene<Kit> sc;
  auto& L = sc.kit.layer;
  const dyt::rows_view<const T> null_in(nullptr, kRows, kCols);
  const dyt::rows_view<T> null_out(nullptr, kRows, kCols);
  CHECK_REFUSED(sc, L.forward(null_in, sc.yv()), errc::null_pointer, sc.fn("forward"), "x.data is null");
  CHECK_REFUSED(sc, L.forward(sc.xv(), null_out), errc::null_pointer, sc.fn("forward"), "y.data is null");
  CHECK_REFUSED(sc, L.forward(null_in, null_out), errc::null_pointer, "x.data is null");
  CHECK_REFUSED(sc, L.backward(null_in, sc.dyv(), sc.dxv(), sc.gp()), errc::null_pointer, sc.fn("backward"),
                "x.data is null");
  CHECK_REFUSED(sc, L.backward(sc.xv(), null_in, sc.dxv(), sc.gp()), errc::null_pointer, "dy.data is null");
  CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), null_out, sc.gp()), errc::null_pointer, "dx.data is null");
  CHECK_REFUSED(sc, L.backward_chunks(sc.plan, 0, 3, sc.xv(), sc.dyv(), null_out, sc.ws.data(), sc.ws.size()),
                errc::null_pointer, sc.fn("backward_chunks"), "dx.data is null");
  CHECK_REFUSED(sc, L.backward_chunks(sc.plan, 0, 3, null_in, sc.dyv(), sc.dxv(), sc.ws.data(), sc.ws.size()),
                errc::null_pointer, "x.data is null");
}

TEST_CASE_TEMPLATE("errors: rows or cols zero or negative", Kit, DYT_ERROR_KITS) {
  using T = typename scene<Kit>::T;
  scene<Kit> sc;
  auto& L = sc.kit.layer;
  struct bad {
    index_t rows, cols;
    const char* text;
  };
  const bad cases[] = {{0, kCols, "is 0 x 5, needs at least 1 x 1"},
                       {-1, kCols, "is -1 x 5, needs at least 1 x 1"},
                       {kRows, 0, "is 6 x 0, needs at least 1 x 1"},
                       {kRows, -2, "is 6 x -2, needs at least 1 x 1"}};
  for (const bad& b : cases) {
    INFO("case: ", std::string(b.text));
    // A non-negative stride so that only the size is wrong.
    const dyt::rows_view<const T> in_x(sc.x.data(), b.rows, b.cols, kCols);
    const dyt::rows_view<T> out_y(sc.y.data(), b.rows, b.cols, kCols);
    const dyt::rows_view<const T> in_dy(sc.dy.data(), b.rows, b.cols, kCols);
    const dyt::rows_view<T> out_dx(sc.dx.data(), b.rows, b.cols, kCols);
    CHECK_REFUSED(sc, L.forward(in_x, sc.yv()), errc::bad_size, sc.fn("forward"), std::string("x ") + b.text);
    CHECK_REFUSED(sc, L.forward(sc.xv(), out_y), errc::bad_size, std::string("y ") + b.text);
    CHECK_REFUSED(sc, L.backward(in_x, sc.dyv(), sc.dxv(), sc.gp()), errc::bad_size, std::string("x ") + b.text);
    CHECK_REFUSED(sc, L.backward(sc.xv(), in_dy, sc.dxv(), sc.gp()), errc::bad_size, std::string("dy ") + b.text);
    CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), out_dx, sc.gp()), errc::bad_size, std::string("dx ") + b.text);
    CHECK_REFUSED(sc, L.backward_chunks(sc.plan, 0, 3, sc.xv(), sc.dyv(), out_dx, sc.ws.data(), sc.ws.size()),
                  errc::bad_size, std::string("dx ") + b.text);
  }
}

TEST_CASE_TEMPLATE("errors: row_stride below cols", Kit, DYT_ERROR_KITS) {
  using T = typename scene<Kit>::T;
  scene<Kit> sc;
  auto& L = sc.kit.layer;
  for (index_t stride : {index_t(kCols - 1), index_t(0), index_t(-kCols)}) {
    CAPTURE(stride);
    const std::string s = std::to_string(stride);
    const dyt::rows_view<const T> in_x(sc.x.data(), kRows, kCols, stride);
    const dyt::rows_view<T> out_y(sc.y.data(), kRows, kCols, stride);
    const dyt::rows_view<const T> in_dy(sc.dy.data(), kRows, kCols, stride);
    const dyt::rows_view<T> out_dx(sc.dx.data(), kRows, kCols, stride);
    CHECK_REFUSED(sc, L.forward(in_x, sc.yv()), errc::bad_stride, sc.fn("forward"),
                  "x.row_stride (" + s + ") < x.cols (5)");
    CHECK_REFUSED(sc, L.forward(sc.xv(), out_y), errc::bad_stride, "y.row_stride (" + s + ") < y.cols (5)");
    CHECK_REFUSED(sc, L.backward(sc.xv(), in_dy, sc.dxv(), sc.gp()), errc::bad_stride,
                  "dy.row_stride (" + s + ") < dy.cols (5)");
    CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), out_dx, sc.gp()), errc::bad_stride,
                  "dx.row_stride (" + s + ") < dx.cols (5)");
  }
  // A stride above cols is fine: the rows have gaps.
  const dyt::rows_view<const T> gappy_x(sc.x.data(), 3, kCols, 2 * kCols);
  const dyt::rows_view<T> gappy_y(sc.y.data(), 3, kCols, 2 * kCols);
  CHECK_ACCEPTED(sc, L.forward(gappy_x, gappy_y));
}

TEST_CASE_TEMPLATE("errors: a view spanning more than PTRDIFF_MAX bytes", Kit, DYT_ERROR_KITS) {
  using T = typename scene<Kit>::T;
  scene<Kit> sc;
  auto& L = sc.kit.layer;
  const index_t huge_rows = PTRDIFF_MAX / index_t(sizeof(T)) / kCols + 2;
  const dyt::rows_view<const T> in_x(sc.x.data(), huge_rows, kCols);
  const dyt::rows_view<T> out_y(sc.y.data(), huge_rows, kCols);
  CHECK_REFUSED(sc, L.forward(in_x, sc.yv()), errc::bad_size, sc.fn("forward"), "x spans more than PTRDIFF_MAX bytes",
                std::to_string(huge_rows) + " rows");
  CHECK_REFUSED(sc, L.forward(sc.xv(), out_y), errc::bad_size, "y spans more than PTRDIFF_MAX bytes");
  // rows * row_stride itself past 2^63: a stride near the maximum.
  const dyt::rows_view<const T> far_x(sc.x.data(), 3, kCols, PTRDIFF_MAX / 2);
  CHECK_REFUSED(sc, L.forward(far_x, sc.yv()), errc::bad_size, "x spans more than PTRDIFF_MAX bytes");
  CHECK_REFUSED(sc, L.backward(sc.xv(), dyt::rows_view<const T>(sc.dy.data(), 3, kCols, PTRDIFF_MAX / 2), sc.dxv(),
                               sc.gp()),
                errc::bad_size, "dy spans more than PTRDIFF_MAX bytes");
}

TEST_CASE("errors: a single row wider than PTRDIFF_MAX bytes is refused as too large") {
  // One row of 2^61 floats is 2^63 bytes. The extent check must refuse it
  // before anything multiplies cols by the element size (which overflows).
  // The layer has 5 columns, so a missed check shows up as a size mismatch
  // instead, without the library doing arithmetic that overflows.
  float alpha = 1.0f;
  std::vector<float> buf(8);
  dyt_test::paint(buf);
  const index_t cols = PTRDIFF_MAX / index_t(sizeof(float)) + 1;
  dyt::DyT<float> layer(&alpha, nullptr, nullptr, kCols);
  const dyt::status s = layer.forward(dyt::rows_view<const float>(buf.data(), 1, cols),
                                      dyt::rows_view<float>(buf.data(), 1, cols));
  INFO(std::string(s.message()));
  CHECK(std::string(dyt::to_string(s.code())) == "bad_size");
  CHECK(contains(s.message(), "x spans more than PTRDIFF_MAX bytes"));
  CHECK(dyt_test::intact(buf));
}

// ---------------------------------------------------------------------------
// Shapes

TEST_CASE_TEMPLATE("errors: shapes that disagree", Kit, DYT_ERROR_KITS) {
  using T = typename scene<Kit>::T;
  scene<Kit> sc;
  auto& L = sc.kit.layer;
  const dyt::rows_view<T> y_short(sc.y.data(), kRows - 1, kCols);
  const dyt::rows_view<T> y_narrow(sc.y.data(), kRows, kCols - 1);
  CHECK_REFUSED(sc, L.forward(sc.xv(), y_short), errc::size_mismatch, sc.fn("forward"), "y is 5 x 5 but x is 6 x 5");
  CHECK_REFUSED(sc, L.forward(sc.xv(), y_narrow), errc::size_mismatch, "y is 6 x 4 but x is 6 x 5");
  // x and y agree with each other but not with the layer.
  const dyt::rows_view<const T> x_narrow(sc.x.data(), kRows, kCols - 1);
  CHECK_REFUSED(sc, L.forward(x_narrow, y_narrow), errc::size_mismatch, "x.cols (4) != the layer's cols (5)");
  CHECK_REFUSED(sc, L.backward(x_narrow, sc.dyv(), sc.dxv(), sc.gp()), errc::size_mismatch, sc.fn("backward"),
                "x.cols (4) != the layer's cols (5)");
  CHECK_REFUSED(sc, L.backward(sc.xv(), dyt::rows_view<const T>(sc.dy.data(), kRows + 1, kCols), sc.dxv(), sc.gp()),
                errc::size_mismatch, "dy is 7 x 5 but x is 6 x 5");
  CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), dyt::rows_view<T>(sc.dx.data(), kRows, kCols - 1), sc.gp()),
                errc::size_mismatch, "dx is 6 x 4 but x is 6 x 5");
  CHECK_REFUSED(sc,
                L.backward_chunks(sc.plan, 0, 3, sc.xv(), sc.dyv(), dyt::rows_view<T>(sc.dx.data(), kRows - 1, kCols),
                                  sc.ws.data(), sc.ws.size()),
                errc::size_mismatch, "dx is 5 x 5 but x is 6 x 5");
}

TEST_CASE("errors: the message quotes the values, e.g. x.cols (767)") {
  rng r(9);
  dyt_test::layer_norm_kit<float, dyt::cpu> k(768, r);
  std::vector<float> x(2 * 768), y(2 * 768);
  dyt_test::paint(y);
  const dyt::status s = k.layer.forward(dyt::rows_view<const float>(x.data(), 2, 767),
                                        dyt::rows_view<float>(y.data(), 2, 767));
  CHECK(s.code() == errc::size_mismatch);
  CHECK(std::string(s.message()) == "dyt::LayerNorm::forward: x.cols (767) != the layer's cols (768)");
  CHECK(dyt_test::intact(y));
}

TEST_CASE("errors: a layer with fewer than one column") {
  float alpha = 1.0f;
  float gamma[4] = {}, beta[4] = {};
  std::vector<float> x(8), y(8), dy(8), dx(8), dg(4), db(4);
  std::vector<unsigned char> ws(4096);
  for (auto* v : {&y, &dx, &dg, &db}) dyt_test::paint(*v);
  dyt_test::paint(ws);
  const dyt::rows_view<const float> xv(x.data(), 2, 4), dyv(dy.data(), 2, 4);
  const dyt::rows_view<float> yv(y.data(), 2, 4), dxv(dx.data(), 2, 4);
  const dyt::backward_plan plan = dyt::make_backward_plan(2, 1);
  auto untouched = [&] {
    return dyt_test::intact(y) && dyt_test::intact(dx) && dyt_test::intact(dg) && dyt_test::intact(db) &&
           dyt_test::intact(ws);
  };
  for (index_t cols : {index_t(0), index_t(-3)}) {
    CAPTURE(cols);
    const std::string text = "the layer's cols (" + std::to_string(cols) + ") must be >= 1";
    auto refused = [&](const dyt::status& s, const char* fn) {
      INFO(std::string(s.message()));
      CHECK(s.code() == errc::bad_size);
      CHECK(contains(s.message(), fn));
      CHECK(contains(s.message(), text.c_str()));
      CHECK(untouched());
    };
    dyt::DyT<float> d(&alpha, gamma, beta, cols);
    refused(d.forward(xv, yv), "dyt::DyT::forward: ");
    refused(d.backward(xv, dyv, dxv, {nullptr, dg.data(), db.data()}), "dyt::DyT::backward: ");
    refused(d.backward_chunks(plan, 0, 1, xv, dyv, dxv, ws.data(), ws.size()), "dyt::DyT::backward_chunks: ");
    refused(d.reduce_gradients(plan, ws.data(), ws.size(), {nullptr, dg.data(), db.data()}),
            "dyt::DyT::reduce_gradients: ");
    dyt::LayerNorm<float> ln(gamma, beta, cols);
    refused(ln.forward(xv, yv), "dyt::LayerNorm::forward: ");
    refused(ln.backward(xv, dyv, dxv, {dg.data(), db.data()}), "dyt::LayerNorm::backward: ");
    dyt::RMSNorm<float> rms(gamma, cols);
    refused(rms.forward(xv, yv), "dyt::RMSNorm::forward: ");
    refused(rms.reduce_gradients(plan, ws.data(), ws.size(), {dg.data()}), "dyt::RMSNorm::reduce_gradients: ");
  }
}

// ---------------------------------------------------------------------------
// Overlap of outputs with inputs

TEST_CASE_TEMPLATE("errors: y partially overlapping x is refused, exact in-place is accepted", Kit,
                   DYT_ERROR_KITS) {
  using T = typename scene<Kit>::T;
  scene<Kit> sc;
  auto& L = sc.kit.layer;
  T* base = sc.x.data();
  const dyt::rows_view<const T> x(base, kRows, kCols);
  // y one element past x, and y one row past x: most of the memory is shared.
  CHECK_REFUSED(sc, L.forward(x, dyt::rows_view<T>(base + 1, kRows, kCols)), errc::overlap, sc.fn("forward"),
                "y overlaps x");
  CHECK_REFUSED(sc, L.forward(x, dyt::rows_view<T>(base + kCols, kRows, kCols)), errc::overlap, "y overlaps x");
  CHECK_REFUSED(sc, L.forward(dyt::rows_view<const T>(base + kCols, kRows, kCols), dyt::rows_view<T>(base, kRows, kCols)),
                errc::overlap, "y overlaps x");
  // Same first element, different strides: not the same view.
  CHECK_REFUSED(sc, L.forward(dyt::rows_view<const T>(base, 3, kCols, kCols + 1), dyt::rows_view<T>(base, 3, kCols)),
                errc::overlap, "y overlaps x");
  // Only the last element of x's last row is shared.
  CHECK_REFUSED(sc,
                L.forward(dyt::rows_view<const T>(base, 2, kCols), dyt::rows_view<T>(base + 2 * kCols - 1, 2, kCols)),
                errc::overlap, "y overlaps x");
  // Exactly in place.
  CHECK_ACCEPTED(sc, L.forward(x, dyt::rows_view<T>(base, kRows, kCols)));
  // Touching but disjoint: y starts right after x ends.
  CHECK_ACCEPTED(sc, L.forward(dyt::rows_view<const T>(base, 3, kCols), dyt::rows_view<T>(base + 3 * kCols, 3, kCols)));
}

TEST_CASE_TEMPLATE("errors: interleaved rows of one buffer are not an overlap", Kit, DYT_ERROR_KITS) {
  using T = typename scene<Kit>::T;
  scene<Kit> sc;
  auto& L = sc.kit.layer;
  // x rows at 0, 2*cols, 4*cols...; y rows at cols, 3*cols...: one buffer, no shared element.
  const index_t rows = 4;
  T* base = sc.x.data();  // (kRows + 2) * kCols = 40 elements, 2 * rows * cols = 40 needed
  const dyt::rows_view<const T> x(base, rows, kCols, 2 * kCols);
  const dyt::rows_view<T> y(base + kCols, rows, kCols, 2 * kCols);
  CHECK_ACCEPTED(sc, L.forward(x, y));
  // Shifted one element back, y's rows start on the last element of x's rows.
  CHECK_REFUSED(sc, L.forward(x, dyt::rows_view<T>(base + kCols - 1, rows, kCols, 2 * kCols)), errc::overlap,
                "y overlaps x");

  // And the results are those of separate buffers.
  rng r(11);
  for (auto& p : sc.kit.params())
    for (auto& v : *p.values) v = dyt_test::from_double<T>(r.uniform(0.5, 1.5));
  for (auto& e : sc.x.buf) e = dyt_test::from_double<T>(r.uniform(-2.0, 2.0));
  matrix<T> x_alone(rows, kCols), y_alone(rows, kCols);
  for (index_t i = 0; i < rows; ++i)
    for (index_t c = 0; c < kCols; ++c) x_alone.at(i, c) = base[i * 2 * kCols + c];
  REQUIRE(L.forward(x_alone.cview(), y_alone.view()).ok());
  REQUIRE(L.forward(x, y).ok());
  for (index_t i = 0; i < rows; ++i)
    for (index_t c = 0; c < kCols; ++c) {
      CHECK(dyt_test::bits_of(y_alone.at(i, c)) == dyt_test::bits_of(base[i * 2 * kCols + kCols + c]));
      CHECK(dyt_test::bits_of(x_alone.at(i, c)) == dyt_test::bits_of(base[i * 2 * kCols + c]));
    }

  // Backward: dx interleaved with dy (and x elsewhere).
  sc.paint_all();
  T* dbase = sc.dy.data();
  CHECK_ACCEPTED(sc, L.backward(dyt::rows_view<const T>(sc.x.data(), rows, kCols),
                                dyt::rows_view<const T>(dbase, rows, kCols, 2 * kCols),
                                dyt::rows_view<T>(dbase + kCols, rows, kCols, 2 * kCols), sc.gp()));
}

TEST_CASE_TEMPLATE("errors: dx partially overlapping x or dy is refused, exact aliasing is accepted", Kit,
                   DYT_ERROR_KITS) {
  using T = typename scene<Kit>::T;
  scene<Kit> sc;
  auto& L = sc.kit.layer;
  const dyt::rows_view<T> dx_on_dy(sc.dy.data() + 1, kRows, kCols);
  const dyt::rows_view<T> dx_on_x(sc.x.data() + kCols, kRows, kCols);
  CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), dx_on_dy, sc.gp()), errc::overlap, sc.fn("backward"),
                "dx overlaps dy");
  CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), dx_on_x, sc.gp()), errc::overlap, "dx overlaps x");
  CHECK_REFUSED(sc, L.backward_chunks(sc.plan, 0, 3, sc.xv(), sc.dyv(), dx_on_dy, sc.ws.data(), sc.ws.size()),
                errc::overlap, sc.fn("backward_chunks"), "dx overlaps dy");
  // dx == dy and dx == x (in place), and even x == dy == dx.
  CHECK_ACCEPTED(sc, L.backward(sc.xv(), sc.dyv(), dyt::rows_view<T>(sc.dy.data(), kRows, kCols), sc.gp()));
  CHECK_ACCEPTED(sc, L.backward(sc.xv(), sc.dyv(), dyt::rows_view<T>(sc.x.data(), kRows, kCols), sc.gp()));
  CHECK_ACCEPTED(sc, L.backward(sc.xv(), sc.xv(), dyt::rows_view<T>(sc.x.data(), kRows, kCols), sc.gp()));
  CHECK_ACCEPTED(sc, L.backward_chunks(sc.plan, 0, 3, sc.xv(), sc.dyv(), dyt::rows_view<T>(sc.dy.data(), kRows, kCols),
                                       sc.ws.data(), sc.ws.size()));
}

// ---------------------------------------------------------------------------
// Overlap of outputs with parameters, gradients, statistics and the workspace

TEST_CASE_TEMPLATE("errors: outputs overlapping the layer's parameters", Kit, DYT_ERROR_KITS) {
  using T = typename scene<Kit>::T;
  scene<Kit> sc;
  // Parameters placed inside the y / dx / gradient buffers the call writes.
  T* in_y = sc.y.data() + 2 * kCols + 1;
  T* in_dx = sc.dx.data() + 3;
  const T* alpha = alpha_of(sc.kit);
  T* gamma = dyt_test::or_null(sc.kit.gamma);
  T* beta = beta_of(sc.kit);

  {
    auto L = layer_with(sc.kit, alpha, in_y, beta);
    CHECK_REFUSED(sc, L.forward(sc.xv(), sc.yv()), errc::overlap, sc.fn("forward"), "y overlaps gamma");
    auto L2 = layer_with(sc.kit, alpha, in_dx, beta);
    CHECK_REFUSED(sc, L2.backward(sc.xv(), sc.dyv(), sc.dxv(), sc.gp()), errc::overlap, "dx overlaps gamma");
    CHECK_REFUSED(sc, L2.backward_chunks(sc.plan, 0, 3, sc.xv(), sc.dyv(), sc.dxv(), sc.ws.data(), sc.ws.size()),
                  errc::overlap, "dx overlaps gamma");
  }
  if (beta) {
    auto L = layer_with(sc.kit, alpha, gamma, in_y);
    CHECK_REFUSED(sc, L.forward(sc.xv(), sc.yv()), errc::overlap, "y overlaps beta");
  }
  if constexpr (is_dyt<Kit>::value) {
    auto L = layer_with(sc.kit, in_y, gamma, beta);
    CHECK_REFUSED(sc, L.forward(sc.xv(), sc.yv()), errc::overlap, "y overlaps alpha");
  }
  // Gradients written over the parameters they belong to.
  {
    auto g = sc.gp();
    g.dgamma = gamma;
    CHECK_REFUSED(sc, sc.kit.layer.backward(sc.xv(), sc.dyv(), sc.dxv(), g), errc::overlap, "dgamma overlaps gamma");
    CHECK_REFUSED(sc, sc.kit.layer.reduce_gradients(sc.plan, sc.ws.data(), sc.ws.size(), g), errc::overlap,
                  sc.fn("reduce_gradients"), "dgamma overlaps gamma");
  }
  if constexpr (is_dyt<Kit>::value) {
    auto g = sc.gp();
    g.dalpha = sc.kit.alpha.data();
    CHECK_REFUSED(sc, sc.kit.layer.backward(sc.xv(), sc.dyv(), sc.dxv(), g), errc::overlap, "dalpha overlaps alpha");
    g = sc.gp();
    g.dbeta = beta + 1;
    CHECK_REFUSED(sc, sc.kit.layer.backward(sc.xv(), sc.dyv(), sc.dxv(), g), errc::overlap, "dbeta overlaps beta");
  }
}

TEST_CASE_TEMPLATE("errors: gradients overlapping dx, each other, inputs or the workspace", Kit, DYT_ERROR_KITS) {
  using T = typename scene<Kit>::T;
  scene<Kit> sc;
  auto& L = sc.kit.layer;
  {
    auto g = sc.gp();
    g.dgamma = sc.dx.data() + kCols * (kRows - 1) + 2;  // the last row of dx, partly
    CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), sc.dxv(), g), errc::overlap, sc.fn("backward"), "dx overlaps dgamma");
    g.dgamma = sc.x.data();
    CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), sc.dxv(), g), errc::overlap, "dgamma overlaps x");
    g.dgamma = sc.dy.data() + 7;
    CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), sc.dxv(), g), errc::overlap, "dgamma overlaps dy");
    g.dgamma = static_cast<T*>(sc.ws.data());
    CHECK_REFUSED(sc, L.reduce_gradients(sc.plan, sc.ws.data(), sc.ws.size(), g), errc::overlap,
                  "dgamma overlaps workspace");
  }
  if constexpr (Kit::stats_saved != 1) {  // DyT and LayerNorm have dbeta
    // dgamma and dbeta: shifted by one, and the very same buffer.
    auto g = sc.gp();
    g.dbeta = g.dgamma + 1;
    CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), sc.dxv(), g), errc::overlap, "dgamma overlaps dbeta");
    CHECK_REFUSED(sc, L.reduce_gradients(sc.plan, sc.ws.data(), sc.ws.size(), g), errc::overlap, "dgamma overlaps dbeta");
    g.dbeta = g.dgamma;
    CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), sc.dxv(), g), errc::overlap, "dgamma overlaps dbeta");
  }
  if constexpr (is_dyt<Kit>::value) {
    auto g = sc.gp();
    g.dalpha = g.dgamma + kCols - 1;
    CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), sc.dxv(), g), errc::overlap, "dalpha overlaps dgamma");
  }
  // The workspace of the chunk API against dx and the inputs.
  {
    // One arena holding dy (or dx) and a workspace that starts on dy's second row.
    const std::size_t need = L.workspace_bytes(sc.plan);
    std::vector<T> arena(static_cast<std::size_t>(kRows * kCols) + need / sizeof(T) + 64);
    dyt_test::paint(arena);
    void* ws_in_arena = arena.data() + 8;  // 16 bytes or more from an operator new block: aligned for any C
    CHECK_REFUSED(sc,
                  L.backward_chunks(sc.plan, 0, 3, sc.xv(), dyt::rows_view<const T>(arena.data(), kRows, kCols),
                                    sc.dxv(), ws_in_arena, need),
                  errc::overlap, sc.fn("backward_chunks"), "workspace overlaps dy");
    CHECK_REFUSED(sc,
                  L.backward_chunks(sc.plan, 0, 3, sc.xv(), sc.dyv(), dyt::rows_view<T>(arena.data(), kRows, kCols),
                                    ws_in_arena, need),
                  errc::overlap, "dx overlaps workspace");
    CHECK(dyt_test::intact(arena));
  }
}

TEST_CASE_TEMPLATE("errors: statistics overlapping y, x or dx", Kit, ln_k<float, dyt::cpu>, ln_k<bf16, dyt::cpu>,
                   rms_k<float, dyt::cpu>, rms_k<dyt::half, dyt::reference>) {
  using C = typename scene<Kit>::C;
  scene<Kit> sc;
  auto& L = sc.kit.layer;
  const bool ln = Kit::stats_saved == 2;
  // A C-aligned address inside y's (and x's, dx's) buffer: a byte offset of 16
  // from the start of an operator new block.
  auto inside = [](auto& m) { return reinterpret_cast<C*>(reinterpret_cast<unsigned char*>(m.data()) + 16); };
  C* mean = ln ? sc.mean.data() : nullptr;
  CHECK_REFUSED(sc, L.forward(sc.xv(), sc.yv(), {mean, inside(sc.y)}), errc::overlap, sc.fn("forward"),
                "y overlaps rstd");
  CHECK_REFUSED(sc, L.forward(sc.xv(), sc.yv(), {mean, inside(sc.x)}), errc::overlap, "rstd overlaps x");
  if (ln) {
    CHECK_REFUSED(sc, L.forward(sc.xv(), sc.yv(), {inside(sc.y), sc.rstd.data()}), errc::overlap, "y overlaps mean");
    CHECK_REFUSED(sc, L.forward(sc.xv(), sc.yv(), {sc.mean.data(), sc.mean.data() + 1}), errc::overlap,
                  "mean overlaps rstd");
    CHECK_REFUSED(sc, L.forward(sc.xv(), sc.yv(), {sc.mean.data(), sc.mean.data()}), errc::overlap,
                  "mean overlaps rstd");
  }
  // Backward reads saved statistics: dx must not be written over them.
  CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), sc.dxv(), sc.gp(), dyt::grad_mode::overwrite, {mean, inside(sc.dx)}),
                errc::overlap, sc.fn("backward"), "dx overlaps saved.rstd");
  CHECK_REFUSED(sc, L.backward_chunks(sc.plan, 0, 3, sc.xv(), sc.dyv(), sc.dxv(), sc.ws.data(), sc.ws.size(),
                                      {mean, inside(sc.dx)}),
                errc::overlap, "dx overlaps saved.rstd");
  // Statistics in their own buffers are fine.
  CHECK_ACCEPTED(sc, L.forward(sc.xv(), sc.yv(), {mean, sc.rstd.data()}));
}

// ---------------------------------------------------------------------------
// Parameters

TEST_CASE_TEMPLATE("errors: eps NaN, infinite or negative; zero is accepted", Kit, ln_k<float, dyt::cpu>,
                   ln_k<bf16, dyt::reference>, rms_k<float, dyt::cpu>, rms_k<dyt::half, dyt::cpu_scalar>) {
  struct bad {
    double eps;
    const char* text;
  };
  const bad cases[] = {{kNaN, "nan) must be finite and >= 0"},
                       {kInf, "eps (inf) must be finite and >= 0"},
                       {-kInf, "eps (-inf) must be finite and >= 0"},
                       {-1e-3, "eps (-0.001) must be finite and >= 0"},
                       {-std::numeric_limits<double>::denorm_min(), "must be finite and >= 0"}};
  for (const bad& b : cases) {
    CAPTURE(b.eps);
    std::unique_ptr<scene<Kit>> sc;
    if constexpr (Kit::stats_saved == 2)
      sc.reset(new scene<Kit>(true, true, b.eps));
    else
      sc.reset(new scene<Kit>(true, dyt::gamma_form::plain, b.eps));
    CHECK_REFUSED(*sc, sc->forward(), errc::bad_parameter, sc->fn("forward"), b.text);
    CHECK_REFUSED(*sc, sc->backward(), errc::bad_parameter, sc->fn("backward"), b.text);
    CHECK_REFUSED(*sc, sc->chunks(), errc::bad_parameter, sc->fn("backward_chunks"), b.text);
    CHECK_REFUSED(*sc, sc->reduce(), errc::bad_parameter, sc->fn("reduce_gradients"), b.text);
  }
  std::unique_ptr<scene<Kit>> sc;
  if constexpr (Kit::stats_saved == 2)
    sc.reset(new scene<Kit>(true, true, 0.0));
  else
    sc.reset(new scene<Kit>(true, dyt::gamma_form::plain, 0.0));
  CHECK_ACCEPTED(*sc, sc->forward());
  CHECK_ACCEPTED(*sc, sc->backward());
}

TEST_CASE("errors: DyT without alpha") {
  scene<dyt_k<float, dyt::cpu>> sc;
  auto L = layer_with(sc.kit, nullptr, sc.kit.gamma.data(), sc.kit.beta.data());
  CHECK_REFUSED(sc, L.forward(sc.xv(), sc.yv()), errc::null_pointer, "dyt::DyT::forward: alpha is null");
  CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), sc.dxv(), sc.gp()), errc::null_pointer,
                "dyt::DyT::backward: alpha is null");
  CHECK_REFUSED(sc, L.backward_chunks(sc.plan, 0, 3, sc.xv(), sc.dyv(), sc.dxv(), sc.ws.data(), sc.ws.size()),
                errc::null_pointer, "dyt::DyT::backward_chunks: alpha is null");
  CHECK_REFUSED(sc, L.reduce_gradients(sc.plan, sc.ws.data(), sc.ws.size(), sc.gp()), errc::null_pointer,
                "dyt::DyT::reduce_gradients: alpha is null");
}

TEST_CASE("errors: a gradient for a parameter the layer does not have") {
  SUBCASE("DyT without gamma or beta") {
    scene<dyt_k<bf16, dyt::cpu>> sc(false, false);
    std::vector<bf16> extra(kCols);
    dyt_test::paint(extra);
    auto g = sc.gp();
    g.dgamma = extra.data();
    CHECK_REFUSED(sc, sc.kit.layer.backward(sc.xv(), sc.dyv(), sc.dxv(), g), errc::bad_parameter,
                  "dyt::DyT::backward: dgamma is given but the layer has no gamma");
    CHECK_REFUSED(sc, sc.kit.layer.reduce_gradients(sc.plan, sc.ws.data(), sc.ws.size(), g), errc::bad_parameter,
                  "dyt::DyT::reduce_gradients: dgamma is given but the layer has no gamma");
    g = sc.gp();
    g.dbeta = extra.data();
    CHECK_REFUSED(sc, sc.kit.layer.backward(sc.xv(), sc.dyv(), sc.dxv(), g), errc::bad_parameter,
                  "dbeta is given but the layer has no beta");
    CHECK(dyt_test::intact(extra));
    // dalpha alone is what this layer has.
    CHECK_ACCEPTED(sc, sc.backward());
  }
  SUBCASE("LayerNorm without affine") {
    scene<ln_k<float, dyt::cpu>> sc(false, false);
    std::vector<float> extra(kCols);
    dyt_test::paint(extra);
    auto g = sc.gp();
    g.dbeta = extra.data();
    CHECK_REFUSED(sc, sc.kit.layer.backward(sc.xv(), sc.dyv(), sc.dxv(), g), errc::bad_parameter,
                  "dyt::LayerNorm::backward: dbeta is given but the layer has no beta");
    g = sc.gp();
    g.dgamma = extra.data();
    CHECK_REFUSED(sc, sc.kit.layer.reduce_gradients(sc.plan, nullptr, 0, g), errc::bad_parameter,
                  "dgamma is given but the layer has no gamma");
    CHECK(dyt_test::intact(extra));
  }
  SUBCASE("LayerNorm with gamma only") {
    scene<ln_k<float, dyt::cpu>> sc(true, false);
    std::vector<float> extra(kCols);
    dyt_test::paint(extra);
    auto g = sc.gp();
    g.dbeta = extra.data();
    CHECK_REFUSED(sc, sc.kit.layer.backward(sc.xv(), sc.dyv(), sc.dxv(), g), errc::bad_parameter,
                  "dbeta is given but the layer has no beta");
    CHECK(dyt_test::intact(extra));
  }
  SUBCASE("RMSNorm without gamma") {
    scene<rms_k<float, dyt::cpu>> sc(false);
    std::vector<float> extra(kCols);
    dyt_test::paint(extra);
    CHECK_REFUSED(sc, sc.kit.layer.backward(sc.xv(), sc.dyv(), sc.dxv(), {extra.data()}), errc::bad_parameter,
                  "dyt::RMSNorm::backward: dgamma is given but the layer has no gamma");
    CHECK(dyt_test::intact(extra));
    // A parameter gradient that is simply not wanted is fine.
    CHECK_ACCEPTED(sc, sc.kit.layer.backward(sc.xv(), sc.dyv(), sc.dxv(), {nullptr}));
  }
}

TEST_CASE("errors: gamma_form::one_plus without gamma") {
  scene<rms_k<float, dyt::cpu>> sc(false, dyt::gamma_form::one_plus);
  const char* text = "gamma is null, which gamma_form::one_plus needs";
  CHECK_REFUSED(sc, sc.forward(), errc::null_pointer, "dyt::RMSNorm::forward: ", text);
  CHECK_REFUSED(sc, sc.backward(), errc::null_pointer, "dyt::RMSNorm::backward: ", text);
  CHECK_REFUSED(sc, sc.chunks(), errc::null_pointer, "dyt::RMSNorm::backward_chunks: ", text);
  CHECK_REFUSED(sc, sc.reduce(), errc::null_pointer, "dyt::RMSNorm::reduce_gradients: ", text);
}

// ---------------------------------------------------------------------------
// Saved statistics

TEST_CASE("errors: LayerNorm's saved statistics are both given or neither") {
  scene<ln_k<float, dyt::cpu>> sc;
  auto& L = sc.kit.layer;
  const float* mean = sc.mean.data();
  const float* rstd = sc.rstd.data();
  CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), sc.dxv(), sc.gp(), dyt::grad_mode::overwrite, {mean, nullptr}),
                errc::null_pointer, "dyt::LayerNorm::backward: saved.rstd is null but saved.mean is not");
  CHECK_REFUSED(sc, L.backward(sc.xv(), sc.dyv(), sc.dxv(), sc.gp(), dyt::grad_mode::overwrite, {nullptr, rstd}),
                errc::null_pointer, "saved.mean is null but saved.rstd is not");
  CHECK_REFUSED(sc,
                L.backward_chunks(sc.plan, 0, 3, sc.xv(), sc.dyv(), sc.dxv(), sc.ws.data(), sc.ws.size(),
                                  {nullptr, rstd}),
                errc::null_pointer, "dyt::LayerNorm::backward_chunks: saved.mean is null but saved.rstd is not");
  // Forward may write either one alone, and then writes only that one.
  std::vector<float> rstd_only(kRows);
  dyt_test::paint(rstd_only);
  REQUIRE(L.forward(sc.xv(), sc.yv(), {nullptr, rstd_only.data()}).ok());
  CHECK(!dyt_test::intact(rstd_only));
  CHECK(dyt_test::intact(sc.mean));
}

TEST_CASE("errors: RMSNorm has no mean to save or read") {
  scene<rms_k<float, dyt::cpu>> sc;
  auto& L = sc.kit.layer;
  CHECK_REFUSED(sc, L.forward(sc.xv(), sc.yv(), {sc.mean.data(), sc.rstd.data()}), errc::bad_parameter,
                "dyt::RMSNorm::forward: a mean buffer is given, but dyt::RMSNorm computes no mean");
  CHECK_REFUSED(sc, L.forward(sc.xv(), sc.yv(), {sc.mean.data(), nullptr}), errc::bad_parameter,
                "computes no mean");
  CHECK_REFUSED(sc,
                L.backward(sc.xv(), sc.dyv(), sc.dxv(), sc.gp(), dyt::grad_mode::overwrite,
                           {sc.mean.data(), sc.rstd.data()}),
                errc::bad_parameter, "dyt::RMSNorm::backward: saved.mean given, but dyt::RMSNorm saves only rstd");
  CHECK_REFUSED(sc,
                L.backward_chunks(sc.plan, 0, 3, sc.xv(), sc.dyv(), sc.dxv(), sc.ws.data(), sc.ws.size(),
                                  {sc.mean.data(), nullptr}),
                errc::bad_parameter, "saved.mean given, but dyt::RMSNorm saves only rstd");
}

// ---------------------------------------------------------------------------
// The chunk API: plan, chunk range, workspace

TEST_CASE_TEMPLATE("errors: a plan that does not fit x", Kit, DYT_ERROR_KITS) {
  scene<Kit> sc;
  auto& L = sc.kit.layer;
  auto chunks_with = [&](const dyt::backward_plan& p) {
    return L.backward_chunks(p, 0, 1, sc.xv(), sc.dyv(), sc.dxv(), sc.ws.data(), sc.ws.size());
  };
  CHECK_REFUSED(sc, chunks_with(dyt::make_backward_plan(kRows - 1, 2)), errc::size_mismatch, sc.fn("backward_chunks"),
                "plan.rows (5) != x.rows (6)");
  CHECK_REFUSED(sc, chunks_with(dyt::make_backward_plan(kRows + 1, 2)), errc::size_mismatch,
                "plan.rows (7) != x.rows (6)");
  for (index_t chunks : {index_t(0), index_t(-1), index_t(kRows + 1)}) {
    CAPTURE(chunks);
    const dyt::backward_plan bad{kRows, chunks};
    const std::string text = "plan.chunks (" + std::to_string(chunks) + ") must be in [1, rows = 6]";
    CHECK_REFUSED(sc, chunks_with(bad), errc::bad_range, text);
    CHECK_REFUSED(sc, L.reduce_gradients(bad, sc.ws.data(), sc.ws.size(), sc.gp()), errc::bad_range,
                  sc.fn("reduce_gradients"), text);
  }
  // A plan of zero rows is no plan.
  CHECK_REFUSED(sc, L.reduce_gradients(dyt::backward_plan{0, 0}, sc.ws.data(), sc.ws.size(), sc.gp()),
                errc::bad_range, "plan.chunks (0) must be in [1, rows = 0]");
}

TEST_CASE_TEMPLATE("errors: a chunk range outside [0, plan.chunks]", Kit, DYT_ERROR_KITS) {
  scene<Kit> sc;
  struct bad {
    index_t first, last;
    const char* text;
  };
  const bad cases[] = {{-1, 1, "chunk range [-1, 1) is not within [0, plan.chunks = 3]"},
                       {0, 4, "chunk range [0, 4) is not within [0, plan.chunks = 3]"},
                       {2, 1, "chunk range [2, 1) is not within [0, plan.chunks = 3]"},
                       {3, 4, "chunk range [3, 4)"},
                       {-5, -4, "chunk range [-5, -4)"}};
  for (const bad& b : cases) {
    CHECK_REFUSED(sc, sc.chunks(b.first, b.last), errc::bad_range, sc.fn("backward_chunks"), b.text);
  }
  // An empty range is valid and does nothing at all.
  for (index_t k : {index_t(0), index_t(2), index_t(3)}) {
    CAPTURE(k);
    const dyt::status s = sc.chunks(k, k);
    CHECK_MESSAGE(s.ok(), s.message());
    CHECK(sc.untouched());
  }
}

TEST_CASE_TEMPLATE("errors: workspace too small, null or misaligned", Kit, DYT_ERROR_KITS) {
  using C = typename scene<Kit>::C;
  scene<Kit> sc;
  auto& L = sc.kit.layer;
  const std::size_t need = L.workspace_bytes(sc.plan);
  REQUIRE(need > 0);  // every kit here has a parameter gradient
  const std::string needs = "needs " + std::to_string(need);
  // A separate, larger block so a misaligned pointer still has `need` bytes.
  dyt_test::workspace big(need + 64);
  dyt_test::paint(big.data(), big.size());
  auto chunks_ws = [&](void* ws, std::size_t bytes) {
    return L.backward_chunks(sc.plan, 0, 3, sc.xv(), sc.dyv(), sc.dxv(), ws, bytes);
  };
  auto reduce_ws = [&](const void* ws, std::size_t bytes) { return L.reduce_gradients(sc.plan, ws, bytes, sc.gp()); };

  CHECK_REFUSED(sc, chunks_ws(sc.ws.data(), need - 1), errc::bad_workspace, sc.fn("backward_chunks"),
                "workspace has " + std::to_string(need - 1) + " bytes, " + needs);
  CHECK_REFUSED(sc, chunks_ws(sc.ws.data(), 0), errc::bad_workspace, "workspace has 0 bytes, " + needs);
  CHECK_REFUSED(sc, reduce_ws(sc.ws.data(), need - 1), errc::bad_workspace, sc.fn("reduce_gradients"), needs);
  CHECK_REFUSED(sc, chunks_ws(nullptr, need), errc::null_pointer,
                "workspace is null (" + std::to_string(need) + " bytes needed)");
  CHECK_REFUSED(sc, reduce_ws(nullptr, need), errc::null_pointer, "workspace is null");
  if (alignof(C) > 1) {
    void* misaligned = static_cast<unsigned char*>(big.data()) + 1;
    const std::string text = "is not aligned to " + std::to_string(alignof(C)) + " bytes";
    CHECK_REFUSED(sc, chunks_ws(misaligned, need), errc::bad_workspace, text);
    CHECK_REFUSED(sc, reduce_ws(misaligned, need), errc::bad_workspace, text);
    CHECK(dyt_test::intact(big.data(), big.size()));
  }
  // More than needed is fine.
  CHECK_ACCEPTED(sc, chunks_ws(big.data(), big.size()));
}

TEST_CASE("errors: layers without parameter gradients need no workspace") {
  SUBCASE("LayerNorm without affine") {
    scene<ln_k<float, dyt::cpu>> sc(false, false);
    CHECK(sc.kit.layer.workspace_bytes(sc.plan) == 0);
    CHECK_ACCEPTED(sc, sc.kit.layer.backward_chunks(sc.plan, 0, 3, sc.xv(), sc.dyv(), sc.dxv(), nullptr, 0));
    CHECK_ACCEPTED(sc, sc.kit.layer.reduce_gradients(sc.plan, nullptr, 0, sc.gp()));
  }
  SUBCASE("RMSNorm without gamma") {
    scene<rms_k<bf16, dyt::cpu>> sc(false);
    CHECK(sc.kit.layer.workspace_bytes(sc.plan) == 0);
    CHECK_ACCEPTED(sc, sc.kit.layer.backward_chunks(sc.plan, 0, 3, sc.xv(), sc.dyv(), sc.dxv(), nullptr, 0));
  }
}

// ---------------------------------------------------------------------------
// status and check()

TEST_CASE("errors: status, to_string and check()") {
  const dyt::status ok;
  CHECK(ok.ok());
  CHECK(static_cast<bool>(ok));
  CHECK(ok.code() == errc::ok);
  CHECK(std::string(ok.message()) == "ok");
  CHECK_NOTHROW(dyt::check(ok));

  const dyt::status bad = dyt::status::error(errc::bad_stride, "f: %s (%d)", "x.row_stride", 3);
  CHECK(!bad.ok());
  CHECK(!static_cast<bool>(bad));
  CHECK(std::string(bad.message()) == "f: x.row_stride (3)");

  // A message longer than the buffer is cut, not overflowed.
  const std::string longer(1000, 'a');
  const dyt::status cut = dyt::status::error(errc::overlap, "%s", longer.c_str());
  CHECK(std::strlen(cut.message()) < longer.size());
  CHECK(std::strlen(cut.message()) > 100);

  const errc all[] = {errc::ok,         errc::null_pointer, errc::bad_size,      errc::bad_stride,
                      errc::size_mismatch, errc::overlap,   errc::bad_parameter, errc::bad_workspace,
                      errc::bad_range,  errc::out_of_memory};
  const char* names[] = {"ok",      "null_pointer",  "bad_size",      "bad_stride", "size_mismatch",
                         "overlap", "bad_parameter", "bad_workspace", "bad_range",  "out_of_memory"};
  for (std::size_t i = 0; i < sizeof(all) / sizeof(all[0]); ++i) CHECK(std::string(dyt::to_string(all[i])) == names[i]);

  // check() throws dyt::error carrying the code and the message of a real refusal.
  rng r(12);
  dyt_test::layer_norm_kit<float, dyt::cpu> k(4, r);
  std::vector<float> x(8);
  const dyt::status refused =
      k.layer.forward(dyt::rows_view<const float>(x.data(), 2, 4), dyt::rows_view<float>(x.data() + 1, 2, 4));
  REQUIRE(refused.code() == errc::overlap);
  bool thrown = false;
  try {
    dyt::check(refused);
  } catch (const dyt::error& e) {
    thrown = true;
    CHECK(e.code() == errc::overlap);
    CHECK(std::string(e.what()) == refused.message());
    CHECK(contains(e.what(), "dyt::LayerNorm::forward: y overlaps x"));
  }
  CHECK(thrown);
  // dyt::error is a std::invalid_argument, for callers catching the standard types.
  CHECK_THROWS_AS(dyt::check(refused), std::invalid_argument);
}
