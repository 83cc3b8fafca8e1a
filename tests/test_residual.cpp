// The fused residual add (forward_residual, backward_residual and its chunk
// API), on both CPU backends:
//   forward:  residual <- round_T(x + residual), then y = layer(residual),
//             bit for bit the unfused pair it replaces;
//   backward: dx = dh + the layer's dx, and the parameter gradients, within
//             the float64 truth's bounds (backward_truth.hpp);
// for DyT, LayerNorm and RMSNorm, every scalar type, every test width,
// strided and misaligned views, in place, and the refusals.
#include "backward_truth.hpp"
#include "support.hpp"

namespace {

using namespace dyt_test;

constexpr layout kLayouts[] = {dense_aligned, strided_misaligned};

// One layer of each kind built over a problem's parameters (every parameter
// present: the first variant of backward_truth.hpp), with the calls the tests
// make spelled the same way for all three. grads holds the parameter
// gradients in backward_truth's slots (dgamma, dbeta, dalpha).
template <class T>
struct grad_slots {
  guarded<T> slot[3];
  explicit grad_slots(index_t cols) : slot{guarded<T>(1, cols), guarded<T>(1, cols), guarded<T>(1, 1)} {}
  bool same_bits_as(const grad_slots& o) const {
    return slot[0].same_bits_as(o.slot[0]) && slot[1].same_bits_as(o.slot[1]) && slot[2].same_bits_as(o.slot[2]);
  }
};

template <class T, class Backend>
struct dyt_case {
  static constexpr layer_kind kind = layer_kind::dyt;
  static constexpr const char* name = "DyT";
  dyt::DyT<T, Backend> layer;
  explicit dyt_case(const problem<T>& p) : layer(p.alpha.data(), p.gamma.data(), p.beta.data(), p.cols) {}
  static backward_truth truth(const problem<T>& p) {
    return dyt_truth(p, kDytVariants[0], tanh_ulps<dyt::default_tanh_t<T>>);
  }
  struct grads : grad_slots<T> {
    using grad_slots<T>::grad_slots;
    typename dyt::DyT<T, Backend>::gradients get() {
      return {this->slot[2].data(), this->slot[0].data(), this->slot[1].data()};
    }
  };
};

template <class T, class Backend>
struct layer_norm_case {
  static constexpr layer_kind kind = layer_kind::layer_norm;
  static constexpr const char* name = "LayerNorm";
  dyt::LayerNorm<T, Backend> layer;
  explicit layer_norm_case(const problem<T>& p) : layer(p.gamma.data(), p.beta.data(), p.cols, kLayerNormEps) {}
  static backward_truth truth(const problem<T>& p) { return layer_norm_truth(p, kLnVariants[0]); }
  struct grads : grad_slots<T> {
    using grad_slots<T>::grad_slots;
    typename dyt::LayerNorm<T, Backend>::gradients get() { return {this->slot[0].data(), this->slot[1].data()}; }
  };
};

template <class T, class Backend>
struct rms_norm_case {
  static constexpr layer_kind kind = layer_kind::rms_norm;
  static constexpr const char* name = "RMSNorm";
  dyt::RMSNorm<T, Backend> layer;
  explicit rms_norm_case(const problem<T>& p) : layer(p.gamma.data(), p.cols, kRmsNormEps) {}
  static backward_truth truth(const problem<T>& p) { return rms_norm_truth(p, kRmsVariants[0]); }
  struct grads : grad_slots<T> {
    using grad_slots<T>::grad_slots;
    typename dyt::RMSNorm<T, Backend>::gradients get() { return {this->slot[0].data()}; }
  };
};

// round_T(x + residual) computed as the layer's compute type does it: one IEEE
// addition of the two widened values and one rounding to T.
template <class T, class Backend>
guarded<T> expected_sum(const guarded<T>& x, const guarded<T>& residual, layout lay) {
  using C = typename dyt::backend_traits<Backend, T>::compute_type;
  guarded<T> h(x.rows(), x.cols(), lay);
  for (index_t r = 0; r < x.rows(); ++r)
    for (index_t c = 0; c < x.cols(); ++c) {
      const C sum = C(dyt::scalar_traits<T>::load(x.at(r, c))) + C(dyt::scalar_traits<T>::load(residual.at(r, c)));
      h.at(r, c) = dyt::scalar_traits<T>::store(dyt::compute_t<T>(sum));
    }
  return h;
}

// Forward: the new residual is round_T(x + residual) bit for bit, and y is
// bit for bit the unfused layer's y on it: forward_residual runs the layer's
// own row function on that row, the same code on the same values.
template <template <class, class> class Case, class T, class Backend>
void check_forward(const shape& s, layout lay) {
  using L = Case<T, Backend>;
  const std::uint64_t seed = seed_for((std::string("residual forward ") + L::name + type_name<T>()).c_str(),
                                      std::uint64_t(s.rows * 100000 + s.cols), std::uint64_t(lay.pad));
  INFO(L::name << ", " << type_name<T>() << ", " << backend_name<Backend>() << ", " << s.rows << " x " << s.cols
               << ", " << describe(lay) << ", seed " << seed << " (DYT_TEST_SEED=" << base_seed() << ")");
  rng g(seed);
  const problem<T> p(L::kind, s.rows, s.cols, lay, g);
  const problem<T> q(L::kind, s.rows, s.cols, lay, g);  // its x is the residual stream
  const L c(p);

  guarded<T> residual(q.x), y(s.rows, s.cols, lay);
  REQUIRE(c.layer.forward_residual(p.x.cview(), residual.view(), y.view()).ok());
  const guarded<T> h = expected_sum<T, Backend>(p.x, q.x, lay);
  CHECK_MESSAGE(residual.same_bits_as(h), "residual: " << residual.difference_from(h));
  guarded<T> y_unfused(s.rows, s.cols, lay);
  REQUIRE(c.layer.forward(h.cview(), y_unfused.view()).ok());
  CHECK_MESSAGE(y.same_bits_as(y_unfused), "y: " << y.difference_from(y_unfused));
  CHECK(residual.canaries_intact());
  CHECK(y.canaries_intact());

  // In place: y over x itself.
  guarded<T> x_then_y(p.x), residual2(q.x);
  REQUIRE(c.layer.forward_residual(x_then_y.cview(), residual2.view(), x_then_y.view()).ok());
  CHECK_MESSAGE(x_then_y.same_bits_as(y_unfused), "y in place of x: " << x_then_y.difference_from(y_unfused));
  CHECK(residual2.same_bits_as(h));
}

// Backward: dx and the parameter gradients against the float64 truth
// (backward_truth.hpp), as test_backward.cpp checks the unfused layer. Not
// against the unfused layer's bits: the two instantiations run the same
// formulas, but the compiler may contract them into FMAs differently (GCC on
// aarch64 did, changing a row's rstd and with it dx by hundreds of float ulp
// where the row's terms cancel), so each is only as close to the other as
// both are to the truth.
// dx = round_T(dh + v), v the layer's dx in the compute type, within the
// truth's k u scale of its dx (k counts every rounding but the store to T);
// the addition rounds once more in the compute type, at most u |dh + v|;
// and this test's dh + truth, in double, half an ulp of double. So
//   |dx - (dh + truth)| <= bound(k, scale) + u m + half_ulp_double(m),
// m = max(|dx|, |dh + truth|) + k u scale (bound: error_model, the store).
// The parameter gradients do not see dh: they are the truth's, bounds and all.
template <template <class, class> class Case, class T, class Backend>
void check_backward(const shape& s, layout lay) {
  using L = Case<T, Backend>;
  using model = error_model<T, Backend>;
  using C = typename model::compute_type;
  const std::uint64_t seed = seed_for((std::string("residual backward ") + L::name + type_name<T>()).c_str(),
                                      std::uint64_t(s.rows * 100000 + s.cols), std::uint64_t(lay.pad));
  INFO(L::name << ", " << type_name<T>() << ", " << backend_name<Backend>() << ", " << s.rows << " x " << s.cols
               << ", " << describe(lay) << ", seed " << seed << " (DYT_TEST_SEED=" << base_seed() << ")");
  rng g(seed);
  const problem<T> p(L::kind, s.rows, s.cols, lay, g);  // p.x is h, p.dy the gradient of y
  const problem<T> q(L::kind, s.rows, s.cols, lay, g);  // q.dy is dh
  const L c(p);
  const backward_truth truth = L::truth(p);

  guarded<T> dx(s.rows, s.cols, lay);
  typename L::grads grads(s.cols);
  REQUIRE(c.layer.backward_residual(p.x.cview(), p.dy.cview(), q.dy.cview(), dx.view(), grads.get()).ok());
  const std::string what = std::string(L::name) + " backward_residual";
  for (int i = 0; i < 3; ++i)
    if ((truth.grads >> i) & 1u)
      check_against<T, Backend>(what + " " + kGradNames[i], grads.slot[i], truth.grad[i]);
  CHECK(dx.canaries_intact());
  {
    error_check check(label<T, Backend>(what + " dx"));
    for (index_t r = 0; r < s.rows; ++r)
      for (index_t k = 0; k < s.cols; ++k) {
        const double got = dx.get(r, k), want = q.dy.get(r, k) + truth.dx.ref(r, k);
        const double kk = truth.dx.k(r, k, model::u), scale = truth.dx.scale(r, k);
        const double m = std::max(std::fabs(got), std::fabs(want)) + kk * model::u * scale;
        check.add(r, k, got, want, model::bound(got, want, kk, scale) + model::u * m + half_ulp<double>(m));
      }
  }

  // In place over dh, as an engine keeps the residual stream's gradient.
  guarded<T> dh_then_dx(q.dy);
  typename L::grads grads2(s.cols);
  REQUIRE(c.layer.backward_residual(p.x.cview(), p.dy.cview(), dh_then_dx.cview(), dh_then_dx.view(), grads2.get()).ok());
  CHECK_MESSAGE(dh_then_dx.same_bits_as(dx), "dx in place of dh: " << dh_then_dx.difference_from(dx));

  // The chunk API, split in two, then reduce_gradients: the same bits.
  const dyt::backward_plan plan = dyt::make_backward_plan(s.rows);
  std::vector<unsigned char> ws_bytes(c.layer.workspace_bytes(plan) + alignof(C));
  void* ws = ws_bytes.data();
  std::size_t ws_size = ws_bytes.size();
  REQUIRE(std::align(alignof(C), c.layer.workspace_bytes(plan), ws, ws_size));
  guarded<T> dx_chunks(s.rows, s.cols, lay);
  typename L::grads grads3(s.cols);
  const index_t half = plan.chunks / 2;
  REQUIRE(c.layer.backward_chunks_residual(plan, half, plan.chunks, p.x.cview(), p.dy.cview(), q.dy.cview(),
                                           dx_chunks.view(), ws, ws_size).ok());
  REQUIRE(c.layer.backward_chunks_residual(plan, 0, half, p.x.cview(), p.dy.cview(), q.dy.cview(), dx_chunks.view(),
                                           ws, ws_size).ok());
  REQUIRE(c.layer.reduce_gradients(plan, ws, ws_size, grads3.get()).ok());
  CHECK_MESSAGE(dx_chunks.same_bits_as(dx), "dx by chunks: " << dx_chunks.difference_from(dx));
  CHECK_MESSAGE(grads3.same_bits_as(grads), "parameter gradients by chunks differ");
}

template <template <class, class> class Case, class T>
void check_layer() {
  for (const shape& s : test_shapes())
    for (const layout& lay : kLayouts) {
      check_forward<Case, T, dyt::cpu>(s, lay);
      check_forward<Case, T, dyt::cpu_scalar>(s, lay);
      check_backward<Case, T, dyt::cpu>(s, lay);
      check_backward<Case, T, dyt::cpu_scalar>(s, lay);
    }
}

TEST_CASE_TEMPLATE("DyT's fused residual add: forward as the add then the layer, backward within the truth's"
                   " bound", T, float, double, dyt::bfloat16, dyt::half) {
  check_layer<dyt_case, T>();
}

TEST_CASE_TEMPLATE("LayerNorm's fused residual add: forward as the add then the layer, backward within the truth's"
                   " bound", T, float, double, dyt::bfloat16, dyt::half) {
  check_layer<layer_norm_case, T>();
}

TEST_CASE_TEMPLATE("RMSNorm's fused residual add: forward as the add then the layer, backward within the truth's"
                   " bound", T, float, double, dyt::bfloat16, dyt::half) {
  check_layer<rms_norm_case, T>();
}

TEST_CASE("LayerNorm's fused residual forward also saves the statistics of the new residual") {
  rng g(seed_for("residual stats"));
  const problem<float> p(layer_kind::layer_norm, 4, 33, strided_misaligned, g);
  const problem<float> q(layer_kind::layer_norm, 4, 33, strided_misaligned, g);
  const dyt::LayerNorm<float> layer(p.gamma.data(), p.beta.data(), 33, kLayerNormEps);
  guarded<float> residual(q.x), y(4, 33), mean(1, 4), rstd(1, 4), y2(4, 33), mean2(1, 4), rstd2(1, 4);
  REQUIRE(layer.forward_residual(p.x.cview(), residual.view(), y.view(), {mean.data(), rstd.data()}).ok());
  REQUIRE(layer.forward(residual.cview(), y2.view(), {mean2.data(), rstd2.data()}).ok());
  CHECK(mean.same_bits_as(mean2));
  CHECK(rstd.same_bits_as(rstd2));
}

// A refused call names the argument and writes nothing: not the residual,
// not y, not dx.
TEST_CASE("The fused residual calls refuse bad views with a message and write nothing") {
  const index_t rows = 3, cols = 16;
  rng g(seed_for("residual refusals"));
  const problem<float> p(layer_kind::rms_norm, rows, cols, dense_aligned, g);
  const dyt::RMSNorm<float> layer(p.gamma.data(), cols, kRmsNormEps);
  guarded<float> residual(p.x), y(rows, cols);
  const guarded<float> residual_before(residual), y_before(y);

  dyt::status s = layer.forward_residual(p.x.cview(), residual.view(), residual.view());
  CHECK(s.code() == dyt::errc::overlap);
  CHECK(std::string(s.message()).find("residual") != std::string::npos);

  s = layer.forward_residual(p.x.cview(), {residual.data(), rows - 1, cols}, y.view());
  CHECK(s.code() == dyt::errc::size_mismatch);
  CHECK(std::string(s.message()).find("residual") != std::string::npos);

  s = layer.forward_residual(p.x.cview(), {nullptr, rows, cols}, y.view());
  CHECK(s.code() == dyt::errc::null_pointer);
  CHECK(residual.same_bits_as(residual_before));
  CHECK(y.same_bits_as(y_before));

  guarded<float> dx(rows, cols), dgamma(1, cols);
  const guarded<float> dx_before(dx);
  s = layer.backward_residual(p.x.cview(), p.dy.cview(), {p.dy.data(), rows, cols - 1}, dx.view(), {dgamma.data()});
  CHECK(s.code() == dyt::errc::size_mismatch);
  CHECK(std::string(s.message()).find("dh") != std::string::npos);
  s = layer.backward_residual({p.x.data(), rows, cols + 1}, p.dy.cview(), p.dy.cview(), dx.view(), {dgamma.data()});
  CHECK(s.code() == dyt::errc::size_mismatch);
  CHECK(std::string(s.message()).find("h.cols") != std::string::npos);
  CHECK(dx.same_bits_as(dx_before));
}

}  // namespace
