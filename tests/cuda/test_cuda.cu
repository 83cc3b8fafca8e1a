// tests/cuda/test_cuda.cu: the CUDA backend against the float64 reference.
//
// Every layer (all parameter variants), every storage type (float, bf16, half)
// and every pass (forward, forward saving statistics, backward with and without
// saved statistics, overwrite and accumulate) on fresh random inputs
// (support.hpp's problems and seeds), at column counts from 1 to 12288 (the
// warp, block and loop paths, vector and one-column accesses), with dense,
// strided and misaligned views; in place; NaN and Inf; refused arguments
// (same code and message as the CPU layer, nothing written); two runs
// bit-identical; both tanh policies; the device functors; the fused residual
// add (forward_residual, backward_residual); and one tensor of more than 2^31
// elements.
//
// Bounds: truth.hpp (the CPU tests' derivations, valid for any summation order)
// with each tanh policy's error in float ulp: tanhf within 2 ulp (CUDA C
// Programming Guide, maximum ulp error table), rounded up to the 2.2 the CPU
// tests use; tanh.approx.f32 within 2^-10.987 relative (PTX ISA), which is
// 2^-10.987 / 2^-23 = 4133 float ulp at worst (an ulp is at least 2^-23 |t|).
// Every element is checked; output buffers start as NaN canaries, so an element
// never written fails, and canaries around each view catch stray writes.
//
// DYT_CUDA_TEST_QUICK=1 keeps a few shapes (for compute-sanitizer runs).
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <dyt/cuda.cuh>

#include "../pointwise_truth.hpp"
#include "device.hpp"
#include "truth.hpp"

namespace {

using namespace dyt_test;
using dyt::grad_mode;
using bf16 = __nv_bfloat16;

bool quick() { return quick_from_env(); }

// The truth after grad_mode::accumulate onto g0: ref + g0, and one more
// rounding of the float sum: (k + 1) (scale + |g0|) covers it.
template <class T>
expected_output shifted(const expected_output& e, const guarded<T>& g0) {
  expected_output s = e;
  for (index_t c = 0; c < e.ref.cols; ++c) {
    const double g = g0.get(0, c);
    s.ref.v[std::size_t(c)] += g;
    s.set_bound(0, c, e.k0(0, c) + 1, e.scale(0, c) + std::fabs(g), e.k1(0, c));
  }
  return s;
}

// ---- Layers under test, built over a problem's device parameters (device.hpp) ---------
struct shape_case {
  index_t rows, cols;
};

std::vector<shape_case> shapes() {
  if (quick()) return {{5, 3}, {9, 768}, {3, 769}, {4, 4096}, {2, 12288}};
  return {{7, 1},     {37, 3},    {300, 17},  {37, 767}, {37, 768}, {37, 769}, {33, 1024},
          {19, 4096}, {9, 4097},  {5, 8192},  {3, 12288}, {1, 768}};
}

const layout kGpuLayouts[] = {dense_aligned, layout{8, false}, strided_misaligned};

// ---- Running one layer through every pass -------------------------------------------
// Layer-specific calls, with the problem's parameters on the device.
template <class T, class Tanh>
struct dyt_kit {
  using layer_t = dyt::DyT<T, dyt::cuda, Tanh>;
  static constexpr layer_kind kind = layer_kind::dyt;
  static int variants() { return 3; }
  static constexpr bool stats = false;
  static std::string variant_name(int v) { return bwd::kDytVariants[v].name; }
  static layer_t make(const device_problem<T>& d, int v) {
    const auto& var = bwd::kDytVariants[v];
    return layer_t(d.alpha.data(), var.gamma ? d.gamma.data() : nullptr, var.beta ? d.beta.data() : nullptr, d.p.cols);
  }
  static fwd::forward_truth ftruth(const problem<T>& p, int v) {
    return fwd::dyt_truth(p, fwd::kDytVariants[v], policy_ulps<Tanh>);
  }
  static bwd::backward_truth btruth(const problem<T>& p, int v) {
    bwd::backward_truth t = bwd::dyt_truth(p, bwd::kDytVariants[v], policy_ulps<Tanh>);
    // dalpha: each thread sums all its elements of all its rows before the
    // block and slot sums, so a term may pass through more than the CPU's
    // n + rows - 1 additions; rows * cols bounds any summation tree.
    const double scale = t.grad[2].scale(0, 0);
    t.grad[2].set_bound(0, 0, double(p.rows) * double(p.cols) + 4 * policy_ulps<Tanh> + 3, scale);
    return t;
  }
  static dyt::status backward(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<const T> dy,
                              dyt::rows_view<T> dx, T* g0, T* g1, T* g2, grad_mode mode, const float*, const float*,
                              dyt::device_workspace ws = {}) {
    typename layer_t::gradients g;
    g.dgamma = g0;
    g.dbeta = g1;
    g.dalpha = g2;
    return l.backward(x, dy, dx, g, nullptr, mode, ws);
  }
};

template <class T>
struct ln_kit {
  using layer_t = dyt::LayerNorm<T, dyt::cuda>;
  static constexpr layer_kind kind = layer_kind::layer_norm;
  static int variants() { return 4; }
  static constexpr bool stats = true;
  static std::string variant_name(int v) { return bwd::kLnVariants[v].name; }
  static layer_t make(const device_problem<T>& d, int v) {
    const auto& var = bwd::kLnVariants[v];
    return layer_t(var.gamma ? d.gamma.data() : nullptr, var.beta ? d.beta.data() : nullptr, d.p.cols, kLayerNormEps);
  }
  static fwd::forward_truth ftruth(const problem<T>& p, int v) { return fwd::layer_norm_truth(p, fwd::kLnVariants[v]); }
  static bwd::backward_truth btruth(const problem<T>& p, int v) { return bwd::layer_norm_truth(p, bwd::kLnVariants[v]); }
  static dyt::status backward(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<const T> dy,
                              dyt::rows_view<T> dx, T* g0, T* g1, T*, grad_mode mode, const float* mean,
                              const float* rstd, dyt::device_workspace ws = {}) {
    typename layer_t::gradients g;
    g.dgamma = g0;
    g.dbeta = g1;
    return l.backward(x, dy, dx, g, nullptr, mode, {mean, rstd}, ws);
  }
};

template <class T>
struct rms_kit {
  using layer_t = dyt::RMSNorm<T, dyt::cuda>;
  static constexpr layer_kind kind = layer_kind::rms_norm;
  static int variants() { return 3; }
  static constexpr bool stats = true;
  static std::string variant_name(int v) { return bwd::kRmsVariants[v].name; }
  static layer_t make(const device_problem<T>& d, int v) {
    const auto& var = bwd::kRmsVariants[v];
    return layer_t(var.gamma ? d.gamma.data() : nullptr, d.p.cols, kRmsNormEps, var.form);
  }
  static fwd::forward_truth ftruth(const problem<T>& p, int v) { return fwd::rms_norm_truth(p, fwd::kRmsVariants[v]); }
  static bwd::backward_truth btruth(const problem<T>& p, int v) { return bwd::rms_norm_truth(p, bwd::kRmsVariants[v]); }
  static dyt::status backward(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<const T> dy,
                              dyt::rows_view<T> dx, T* g0, T*, T*, grad_mode mode, const float*, const float* rstd,
                              dyt::device_workspace ws = {}) {
    typename layer_t::gradients g;
    g.dgamma = g0;
    return l.backward(x, dy, dx, g, nullptr, mode, {nullptr, rstd}, ws);
  }
};

template <class Layer, class T>
dyt::status forward_call(const Layer& l, dyt::rows_view<const T> x, dyt::rows_view<T> y, float* mean, float* rstd,
                         std::true_type) {
  return mean || rstd ? l.forward(x, y, {mean, rstd}, nullptr) : l.forward(x, y, nullptr);
}
template <class Layer, class T>
dyt::status forward_call(const Layer& l, dyt::rows_view<const T> x, dyt::rows_view<T> y, float*, float*,
                         std::false_type) {
  return l.forward(x, y, nullptr);
}

// All passes of one layer variant at one shape and layout.
template <class Kit, class T>
void run_case(const char* test, int v, shape_case s, layout lay, bool all_passes) {
  rng g(seed_for(test, std::uint64_t(s.rows * 100003 + s.cols), std::uint64_t(v * 16 + lay.pad + lay.misaligned)));
  problem<T> p(Kit::kind, s.rows, s.cols, lay, g);
  INFO(std::string(test) << ": " << tname<T>() << ", " << Kit::variant_name(v) << ", " << s.rows << " x " << s.cols << ", "
            << describe(lay) << ", base seed " << base_seed());
  device_problem<T> d(p);
  const auto layer = Kit::make(d, v);
  const bool with_mean = Kit::kind == layer_kind::layer_norm;
  using has_stats = std::integral_constant<bool, Kit::stats>;

  // Forward, out of place, saving statistics where the layer has them.
  const fwd::forward_truth ft = Kit::ftruth(p, v);
  guarded<T> y(s.rows, s.cols, lay);
  mirror<T> dy_out(y);
  dfloats mean(s.rows), rstd(s.rows);
  REQUIRE(forward_call(layer, d.x.cview(), dy_out.view(), with_mean ? mean.p : nullptr,
                       Kit::stats ? rstd.p : nullptr, has_stats()).ok());
  dy_out.download(y);
  check_cuda<T>("y", y, ft.y);
  if (Kit::stats) {
    check_cuda<T>("rstd", rstd.get(), ft.rstd, false);
    if (with_mean) check_cuda<T>("mean", mean.get(), ft.mean, false);
  }
  if (all_passes) {
    // In place: y == x, same bits as out of place (the same kernel reads each
    // column before writing it).
    mirror<T> inplace(p.x);
    REQUIRE(forward_call(layer, inplace.cview(), inplace.view(), nullptr, nullptr, has_stats()).ok());
    guarded<T> y2(s.rows, s.cols, lay);
    inplace.download(y2);
    CHECK_MESSAGE(y2.same_bits_as(y), "in-place forward: " << y2.difference_from(y));
  }

  // Backward, overwrite, statistics recomputed.
  const bwd::backward_truth bt = Kit::btruth(p, v);
  guarded<T> dx(s.rows, s.cols, lay);
  mirror<T> ddx(dx);
  guarded<T> gr[3] = {guarded<T>(1, s.cols, lay), guarded<T>(1, s.cols, lay), guarded<T>(1, 1, lay)};
  mirror<T> dg0(gr[0]), dg1(gr[1]), dg2(gr[2]);
  T* gp[3] = {bt.grads & 1u ? dg0.data() : nullptr, bt.grads & 2u ? dg1.data() : nullptr,
              bt.grads & 4u ? dg2.data() : nullptr};
  REQUIRE(Kit::backward(layer, d.x.cview(), d.dy.cview(), ddx.view(), gp[0], gp[1], gp[2], grad_mode::overwrite,
                        nullptr, nullptr)
              .ok());
  ddx.download(dx);
  check_cuda<T>("dx", dx, bt.dx);
  mirror<T>* dgs[3] = {&dg0, &dg1, &dg2};
  for (int i = 0; i < 3; ++i)
    if (bt.grads & (1u << i)) {
      dgs[i]->download(gr[i]);
      check_cuda<T>(bwd::kGradNames[i], gr[i], bt.grad[i]);
    }
  if (!all_passes) return;

  // Deterministic: a second run gives the same bits everywhere.
  {
    guarded<T> dx2(s.rows, s.cols, lay);
    mirror<T> ddx2(dx2);
    REQUIRE(Kit::backward(layer, d.x.cview(), d.dy.cview(), ddx2.view(), gp[0], gp[1], gp[2], grad_mode::overwrite,
                          nullptr, nullptr)
                .ok());
    ddx2.download(dx2);
    CHECK_MESSAGE(dx2.same_bits_as(dx), "second backward, dx: " << dx2.difference_from(dx));
    for (int i = 0; i < 3; ++i)
      if (bt.grads & (1u << i)) {
        guarded<T> again(gr[i].rows(), gr[i].cols(), lay);
        dgs[i]->download(again);
        CHECK_MESSAGE(again.same_bits_as(gr[i]), "second backward, " << bwd::kGradNames[i] << ": "
                                                                     << again.difference_from(gr[i]));
      }
  }

  // Saved statistics (forward's), dx == dy in place, and accumulate onto random gradients.
  {
    guarded<T> acc[3] = {guarded<T>(1, s.cols, lay), guarded<T>(1, s.cols, lay), guarded<T>(1, 1, lay)};
    for (int i = 0; i < 3; ++i)
      for (index_t c = 0; c < acc[i].cols(); ++c) acc[i].set(0, c, g.uniform(-2, 2));
    mirror<T> a0(acc[0]), a1(acc[1]), a2(acc[2]);
    T* ap[3] = {gp[0] ? a0.data() : nullptr, gp[1] ? a1.data() : nullptr, gp[2] ? a2.data() : nullptr};
    mirror<T> inplace(p.dy);
    const std::size_t ws_bytes = layer.workspace_bytes(s.rows);
    void* ws = nullptr;
    if (ws_bytes) CUDA_REQUIRE(cudaMalloc(&ws, ws_bytes));
    REQUIRE(Kit::backward(layer, d.x.cview(), inplace.cview(), inplace.view(), ap[0], ap[1], ap[2],
                          grad_mode::accumulate, Kit::stats && with_mean ? mean.p : nullptr,
                          Kit::stats ? rstd.p : nullptr, {ws, ws_bytes})
                .ok());
    guarded<T> dx3(s.rows, s.cols, lay);
    inplace.download(dx3);
    cudaFree(ws);
    check_cuda<T>("dx (saved statistics, dx == dy)", dx3, bt.dx);
    mirror<T>* as[3] = {&a0, &a1, &a2};
    for (int i = 0; i < 3; ++i)
      if (bt.grads & (1u << i)) {
        guarded<T> got(acc[i].rows(), acc[i].cols(), lay);
        as[i]->download(got);
        check_cuda<T>(bwd::kGradNames[i] + " (accumulate)", got, shifted(bt.grad[i], acc[i]));
      }
  }
}

template <class Kit, class T>
void run_layer(const char* test) {
  for (const shape_case& s : shapes())
    for (const layout& lay : kGpuLayouts) {
      run_case<Kit, T>(test, 0, s, lay, true);
      if (s.cols == 768 || s.cols == 17 || s.cols == 4097 || (quick() && s.cols == 3))
        for (int v = 1; v < Kit::variants(); ++v) run_case<Kit, T>(test, v, s, lay, lay.pad == 0 && !lay.misaligned);
    }
}

}  // namespace

TEST_CASE_TEMPLATE("DyT on CUDA matches the float64 reference (default tanh policy)", T, float, bf16, __half) {
  run_layer<dyt_kit<T, dyt::default_tanh_t<T>>, T>("cuda dyt");
}

TEST_CASE("DyT on CUDA with the other tanh policy: approx for float, precise for bf16") {
  for (const shape_case& s : shapes()) {
    run_case<dyt_kit<float, dyt::tanh_fast>, float>("cuda dyt approx", 0, s, dense_aligned, true);
    run_case<dyt_kit<bf16, dyt::tanh_precise>, bf16>("cuda dyt precise", 0, s, strided_misaligned, true);
  }
}

TEST_CASE_TEMPLATE("LayerNorm on CUDA matches the float64 reference", T, float, bf16, __half) {
  run_layer<ln_kit<T>, T>("cuda layer_norm");
}

TEST_CASE_TEMPLATE("RMSNorm on CUDA matches the float64 reference", T, float, bf16, __half) {
  run_layer<rms_kit<T>, T>("cuda rms_norm");
}

TEST_CASE("dyt::bfloat16 and __nv_bfloat16 are the same bits on CUDA") {
  rng g(seed_for("cuda bfloat16 spelling"));
  problem<dyt::bfloat16> p(layer_kind::layer_norm, 11, 768, dense_aligned, g);
  mirror<dyt::bfloat16> x(p.x), gamma(p.gamma), beta(p.beta);
  guarded<dyt::bfloat16> y1(11, 768), y2(11, 768);
  mirror<dyt::bfloat16> d1(y1), d2(y2);
  dyt::LayerNorm<dyt::bfloat16, dyt::cuda> a(gamma.data(), beta.data(), 768);
  dyt::LayerNorm<bf16, dyt::cuda> b(reinterpret_cast<bf16*>(gamma.data()), reinterpret_cast<bf16*>(beta.data()), 768);
  REQUIRE(a.forward(x.cview(), d1.view(), nullptr).ok());
  REQUIRE(b.forward({reinterpret_cast<const bf16*>(x.data()), 11, 768}, {reinterpret_cast<bf16*>(d2.data()), 11, 768},
                    nullptr)
              .ok());
  d1.download(y1);
  d2.download(y2);
  CHECK(y1.same_bits_as(y2));
}

// ---- NaN and Inf -------------------------------------------------------------------------
TEST_CASE_TEMPLATE("NaN and Inf propagate on CUDA as in the reference", T, float, bf16) {
  for (index_t cols : {17, 768, 4096}) {
    rng g(seed_for("cuda special", cols));
    problem<T> p(layer_kind::layer_norm, 4, cols, dense_aligned, g);
    p.x.set(1, cols / 2, std::nan(""));
    p.x.set(2, 0, HUGE_VAL);
    p.x.set(3, cols - 1, -HUGE_VAL);
    p.xd = dense(p.x);
    device_problem<T> d(p);
    INFO(tname<T>() << " cols " << cols);
    {  // DyT: tanh(+-Inf) = +-1; NaN stays in its element.
      dyt::DyT<T, dyt::cuda> l(d.alpha.data(), d.gamma.data(), d.beta.data(), cols);
      const auto t = fwd::dyt_truth(p, fwd::kDytVariants[0], policy_ulps<dyt::default_tanh_t<T>>);
      guarded<T> y(4, cols);
      mirror<T> dy(y);
      REQUIRE(l.forward(d.x.cview(), dy.view(), nullptr).ok());
      dy.download(y);
      check_cuda<T>("DyT y with NaN/Inf", y, t.y);
    }
    {  // LayerNorm: a row holding NaN or Inf is all NaN; the others are untouched.
      dyt::LayerNorm<T, dyt::cuda> l(d.gamma.data(), d.beta.data(), cols, kLayerNormEps);
      const auto t = fwd::layer_norm_truth(p, fwd::kLnVariants[0]);
      guarded<T> y(4, cols);
      mirror<T> dy(y);
      REQUIRE(l.forward(d.x.cview(), dy.view(), nullptr).ok());
      dy.download(y);
      check_cuda<T>("LayerNorm y with NaN/Inf", y, t.y);
      for (index_t c = 0; c < cols; ++c) CHECK(std::isnan(y.get(1, c)));
    }
  }
}

// ---- Refusals ------------------------------------------------------------------------------
TEST_CASE("Bad arguments are refused on CUDA with the CPU layer's code and message, and nothing is written") {
  const index_t rows = 4, cols = 768;
  rng g(seed_for("cuda refusals"));
  problem<float> p(layer_kind::layer_norm, rows, cols, dense_aligned, g);
  device_problem<float> d(p);
  guarded<float> y(rows, cols);
  mirror<float> dy_(y);
  dyt::LayerNorm<float, dyt::cuda> gpu(d.gamma.data(), d.beta.data(), cols);
  dyt::LayerNorm<float, dyt::cpu> cpu(d.gamma.data(), d.beta.data(), cols);  // never dereferences: it refuses too
  dyt::RMSNorm<float, dyt::cuda> gpu_rms(nullptr, cols, 1e-6, dyt::gamma_form::one_plus);
  dyt::RMSNorm<float, dyt::cpu> cpu_rms(nullptr, cols, 1e-6, dyt::gamma_form::one_plus);
  dyt::DyT<float, dyt::cuda> gpu_dyt(nullptr, d.gamma.data(), nullptr, cols);
  dyt::DyT<float, dyt::cpu> cpu_dyt(nullptr, d.gamma.data(), nullptr, cols);

  const dyt::rows_view<const float> x = d.x.cview();
  const dyt::rows_view<float> shifted_out(d.x.data() + 1, rows, cols);
  const dyt::rows_view<float> narrow(dy_.data(), rows, cols - 1);
  const dyt::rows_view<float> bad_stride(dy_.data(), rows, cols, cols - 1);
  const dyt::rows_view<float> out = dy_.view();
  auto same = [](const dyt::status& a, const dyt::status& b) {
    CHECK(!a.ok());
    CHECK(a.code() == b.code());
    CHECK(std::string(a.message()) == b.message());
  };
  same(gpu.forward(x, shifted_out, nullptr), cpu.forward(x, shifted_out));
  same(gpu.forward(x, narrow, nullptr), cpu.forward(x, narrow));
  same(gpu.forward(x, bad_stride, nullptr), cpu.forward(x, bad_stride));
  same(gpu.forward({nullptr, rows, cols}, out, nullptr), cpu.forward({nullptr, rows, cols}, out));
  same(gpu_rms.forward(x, out, nullptr), cpu_rms.forward(x, out));
  same(gpu_dyt.forward(x, out, nullptr), cpu_dyt.forward(x, out));
  dyt::LayerNorm<float, dyt::cuda> bad_eps(d.gamma.data(), d.beta.data(), cols, -1.0);
  dyt::LayerNorm<float, dyt::cpu> bad_eps_cpu(d.gamma.data(), d.beta.data(), cols, -1.0);
  same(bad_eps.forward(x, out, nullptr), bad_eps_cpu.forward(x, out));
  // Backward: dx overlapping dy; a gradient for a missing parameter; a short workspace.
  dyt::LayerNorm<float, dyt::cuda>::gradients grads;
  dyt::LayerNorm<float, dyt::cpu>::gradients cgrads;
  same(gpu.backward(x, d.dy.cview(), dyt::rows_view<float>(d.dy.data() + 3, rows, cols), grads, nullptr),
       cpu.backward(x, d.dy.cview(), dyt::rows_view<float>(d.dy.data() + 3, rows, cols), cgrads));
  dyt::LayerNorm<float, dyt::cuda> no_beta(d.gamma.data(), nullptr, cols);
  dyt::LayerNorm<float, dyt::cpu> no_beta_cpu(d.gamma.data(), nullptr, cols);
  grads.dbeta = out.data;
  cgrads.dbeta = out.data;
  same(no_beta.backward(x, d.dy.cview(), out, grads, nullptr), no_beta_cpu.backward(x, d.dy.cview(), out, cgrads));
  grads.dbeta = nullptr;
  const dyt::status short_ws = gpu.backward(x, d.dy.cview(), out, grads, nullptr, grad_mode::overwrite, {},
                                            {d.dy.data(), 16});
  CHECK(short_ws.code() == dyt::errc::bad_workspace);

  // Nothing was launched: the output still holds its canaries.
  guarded<float> after(rows, cols);
  dy_.download(after);
  for (index_t c = 0; c < cols; ++c) CHECK(std::isnan(after.get(0, c)));
  CHECK(after.same_bits_as(y));
}

// ---- Device functors ------------------------------------------------------------------------
namespace {
template <class T>
__global__ void functor_kernel(const T* x, T* y_warp, T* y_block, T* y_dyt, const T* gamma, const T* beta,
                               index_t rows, index_t cols, float alpha) {
  using block = dyt::device::block_row<128>;
  __shared__ typename block::TempStorage block_storage;
  __shared__ dyt::device::warp_row::TempStorage warp_storage[4];
  const int warp = threadIdx.x / 32;
  dyt::device::warp_row w(warp_storage[warp]);
  for (index_t r = warp; r < rows; r += 4)
    w.layer_norm_forward(x + r * cols, y_warp + r * cols, gamma, beta, cols, 1e-5f);
  block b(block_storage);
  for (index_t r = 0; r < rows; ++r) b.rms_norm_forward(x + r * cols, y_block + r * cols, gamma, cols, 1e-6f);
  const dyt::device::dyt_functor<T> f(alpha, gamma, beta);
  for (index_t i = threadIdx.x; i < rows * cols; i += blockDim.x)
    y_dyt[i] = dyt::scalar_traits<T>::store(f(float(dyt::scalar_traits<T>::load(x[i])), i % cols));
}
}  // namespace

TEST_CASE_TEMPLATE("Device functors: warp LayerNorm, block RMSNorm and the DyT element functor", T, float, bf16) {
  for (index_t cols : {5, 768, 1030}) {
    const index_t rows = 6;
    rng g(seed_for("cuda functors", cols));
    problem<T> p(layer_kind::layer_norm, rows, cols, dense_aligned, g);
    device_problem<T> d(p);
    guarded<T> yw(rows, cols), yb(rows, cols), yd(rows, cols);
    mirror<T> dw(yw), db(yb), dd(yd);
    functor_kernel<T><<<1, 128>>>(d.x.data(), dw.data(), db.data(), dd.data(), d.gamma.data(), d.beta.data(), rows,
                                  cols, float(p.alphad));
    CUDA_REQUIRE(cudaGetLastError());
    dw.download(yw);
    db.download(yb);
    dd.download(yd);
    INFO(tname<T>() << " cols " << cols);
    check_cuda<T>("warp_row layer_norm_forward", yw, fwd::layer_norm_truth(p, fwd::kLnVariants[0]).y);
    check_cuda<T>("block_row rms_norm_forward", yb, fwd::rms_norm_truth(p, fwd::kRmsVariants[0]).y);
    // dyt_functor: p.x drawn for LayerNorm is within the DyT bounds' assumptions too (any x).
    check_cuda<T>("dyt_functor", yd, fwd::dyt_truth(p, fwd::kDytVariants[0], policy_ulps<dyt::default_tanh_t<T>>).y);
  }
}

// ---- Derf and DyISRU (the point-wise layers beside DyT) ------------------------------------
// Against tests/pointwise_truth.hpp's float64 truth with the device's bounds
// (CUDA's erff/expf within 2 ulp; on 16-bit rows the fast forms, erf through
// tanh.approx and ISRU through rsqrtf; dalpha and dshift summed in any order), on
// every shape and layout of the other tests, with the three parameter
// variants; forward, backward (all gradients, dshift included), in place, and
// the fused residual forward bit for bit against the add and then forward.
namespace {

template <class Spec, class T>
void run_pointwise_case(shape_case s, layout lay, const variant& v) {
  const std::string test = std::string("cuda ") + Spec::name + "/" + tname<T>();
  rng g(seed_for(test.c_str(), std::uint64_t(v.id), std::uint64_t(s.rows * 100003 + s.cols),
                 std::uint64_t(lay.pad + lay.misaligned)));
  pw_problem<T> p(s.rows, s.cols, lay, g);
  INFO(test << ", " << v.name << ", " << s.rows << " x " << s.cols << ", " << describe(lay) << ", base seed "
            << base_seed());
  const pw_truth truth = make_truth<Spec>(p, v, false, true);
  mirror<T> x(p.x), dy(p.dy), alpha(p.alpha), shift(p.shift), gamma(p.gamma), beta(p.beta);
  const auto layer = make_layer<Spec, T, dyt::cuda>(alpha.data(), shift.data(), v.gamma ? gamma.data() : nullptr,
                                                    v.beta ? beta.data() : nullptr, s.cols);
  const std::string name = Spec::name;

  guarded<T> y(s.rows, s.cols, lay);
  mirror<T> dy_out(y);
  REQUIRE(layer.forward(x.cview(), dy_out.view(), nullptr).ok());
  dy_out.download(y);
  check_cuda<T>(name + " y", y, truth.y);
  {
    mirror<T> inplace(p.x);
    REQUIRE(layer.forward(inplace.cview(), inplace.view(), nullptr).ok());
    guarded<T> y2(s.rows, s.cols, lay);
    inplace.download(y2);
    CHECK_MESSAGE(y2.same_bits_as(y), name << " in place: " << y2.difference_from(y));
  }
  {
    // forward_residual with a zero-free residual r: h = round(x + r), y = layer(h),
    // bit for bit the plain forward on h (same layout, same launch shape).
    pw_problem<T> q(s.rows, s.cols, lay, g);
    guarded<T> h_want(q.x);
    for (index_t r = 0; r < s.rows; ++r)
      for (index_t c = 0; c < s.cols; ++c) h_want.set(r, c, double(float(p.x.get(r, c)) + float(q.x.get(r, c))));
    mirror<T> h(q.x), h_plain(h_want);
    guarded<T> yr(s.rows, s.cols, lay), yp(s.rows, s.cols, lay), h_got(s.rows, s.cols, lay);
    mirror<T> dyr(yr), dyp(yp);
    REQUIRE(layer.forward_residual(x.cview(), h.view(), dyr.view(), nullptr).ok());
    REQUIRE(layer.forward(h_plain.cview(), dyp.view(), nullptr).ok());
    dyr.download(yr);
    dyp.download(yp);
    h.download(h_got);
    CHECK_MESSAGE(h_got.same_bits_as(h_want), name << " residual: " << h_got.difference_from(h_want));
    CHECK_MESSAGE(yr.same_bits_as(yp), name << " forward_residual y: " << yr.difference_from(yp));
  }

  guarded<T> dx(s.rows, s.cols, lay);
  mirror<T> ddx(dx);
  pw_grads<T> gr(s.cols, lay);
  mirror<T> g0(gr.slot[0]), g1(gr.slot[1]), g2(gr.slot[2]), g3(gr.slot[3]);
  typename Spec::template layer<T, dyt::cuda>::gradients grads;
  grads.dgamma = truth.grads & 1u ? g0.data() : nullptr;
  grads.dbeta = truth.grads & 2u ? g1.data() : nullptr;
  grads.dalpha = g2.data();
  if constexpr (Spec::has_shift) grads.dshift = g3.data();
  REQUIRE(layer.backward(x.cview(), dy.cview(), ddx.view(), grads, nullptr).ok());
  ddx.download(dx);
  check_cuda<T>(name + " dx", dx, truth.dx);
  mirror<T>* gm[4] = {&g0, &g1, &g2, &g3};
  for (int i = 0; i < 4; ++i)
    if ((truth.grads >> i) & 1u) {
      gm[i]->download(gr.slot[i]);
      check_cuda<T>(name + " " + kGradNames[i], gr.slot[i], truth.grad[i]);
    }
}

template <class Spec, class T>
void run_pointwise() {
  for (const shape_case& s : shapes())
    for (const layout& lay : kGpuLayouts) {
      run_pointwise_case<Spec, T>(s, lay, kVariants[0]);
      if (s.cols == 768 || s.cols == 17 || s.cols == 4097 || (quick() && s.cols == 3))
        for (int v = 1; v < 3; ++v) run_pointwise_case<Spec, T>(s, lay, kVariants[v]);
    }
}

}  // namespace

TEST_CASE_TEMPLATE("Derf on CUDA matches the float64 reference", T, float, bf16, __half) {
  run_pointwise<derf_spec, T>();
}
TEST_CASE_TEMPLATE("DyISRU on CUDA matches the float64 reference", T, float, bf16, __half) {
  run_pointwise<dyisru_spec, T>();
}

// The edges of docs/pointwise.md on the device, where 16-bit rows run the fast
// forms (erf through tanh.approx of a clamped argument, ISRU through rsqrtf):
// +-Inf gives y = round(fl(+-gamma + beta)) and dx = 0 exactly, x = +-0 gives
// y = beta exactly, and a NaN stays in its element. Columns 0..4 hold the
// special values, in a row of 768 (the vector path) and of 17 (the tail).
template <class Spec, class T>
void pointwise_edges() {
  const double specials[] = {HUGE_VAL, -HUGE_VAL, std::nan(""), 0.0, -0.0};
  for (index_t cols : {17, 768}) {
    rng g(seed_for((std::string("cuda edges ") + Spec::name).c_str(), std::uint64_t(cols)));
    pw_problem<T> p(2, cols, dense_aligned, g);
    for (index_t r = 0; r < 2; ++r)
      for (int c = 0; c < 5; ++c) p.x.set(r, c, specials[c]);
    INFO(Spec::name << "/" << tname<T>() << ", " << cols << " columns");
    mirror<T> x(p.x), dy(p.dy), alpha(p.alpha), shift(p.shift), gamma(p.gamma), beta(p.beta);
    const auto layer = make_layer<Spec, T, dyt::cuda>(alpha.data(), shift.data(), gamma.data(), beta.data(), cols);
    guarded<T> y(2, cols), dx(2, cols);
    mirror<T> dy_out(y), dx_out(dx);
    pw_grads<T> gr(cols, dense_aligned);
    mirror<T> dgamma(gr.slot[0]), dbeta(gr.slot[1]), dalpha(gr.slot[2]), dshift(gr.slot[3]);
    typename Spec::template layer<T, dyt::cuda>::gradients grads;
    grads.dgamma = dgamma.data();
    grads.dbeta = dbeta.data();
    grads.dalpha = dalpha.data();
    if constexpr (Spec::has_shift) grads.dshift = dshift.data();
    REQUIRE(layer.forward(x.cview(), dy_out.view(), nullptr).ok());
    REQUIRE(layer.backward(x.cview(), dy.cview(), dx_out.view(), grads, nullptr).ok());
    dy_out.download(y);
    dx_out.download(dx);
    for (index_t r = 0; r < 2; ++r)
      for (int c = 0; c < 2; ++c) {
        const float gam = float(p.gamma.get(0, c)), bet = float(p.beta.get(0, c));
        guarded<T> want(1, 1);
        want.set(0, 0, double(c == 0 ? gam + bet : -gam + bet));  // fl(+-gamma + beta), then T's rounding
        CHECK_MESSAGE(y.get(r, c) == want.get(0, 0), "x = " << specials[c] << ": y " << y.get(r, c) << ", want "
                                                         << want.get(0, 0));
        CHECK_MESSAGE(dx.get(r, c) == 0.0, "x = " << specials[c] << ": dx " << dx.get(r, c));
      }
    for (index_t r = 0; r < 2; ++r) {
      CHECK(std::isnan(y.get(r, 2)));
      CHECK(std::isnan(dx.get(r, 2)));
      if (!Spec::has_shift)  // Derf's shift moves erf off 0
        for (int c = 3; c < 5; ++c) CHECK_MESSAGE(y.get(r, c) == p.beta.get(0, c), "x = " << specials[c]);
    }
  }
}

TEST_CASE_TEMPLATE("Derf and DyISRU on CUDA at +-Inf, +-0 and NaN", T, float, bf16, __half) {
  pointwise_edges<derf_spec, T>();
  pointwise_edges<dyisru_spec, T>();
}

// ---- The fused residual add ------------------------------------------------------------------
// forward_residual: the new residual is round_T(float(x) + float(residual))
// bit for bit (the kernels add in float and round once, as an add kernel
// stores), and y is bit for bit the plain forward's y on that residual (the
// same launch shape, since every view here shares one layout, and the same
// row math on the same values). backward_residual: dx = dh + the layer's dx,
// rounded once, so it is held to the backward truth plus dh with one more
// rounding of the float sum (as `shifted` does for accumulated gradients);
// the parameter gradients to the backward truth.
namespace {

template <class Kit, class T>
dyt::status forward_residual_call(const typename Kit::layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<T> h,
                                  dyt::rows_view<T> y, float* mean, float* rstd) {
  if constexpr (Kit::stats) return l.forward_residual(x, h, y, {mean, rstd}, nullptr);
  else return l.forward_residual(x, h, y, nullptr);
}

template <class Kit, class T>
dyt::status backward_residual_call(const typename Kit::layer_t& l, dyt::rows_view<const T> h,
                                   dyt::rows_view<const T> dy, dyt::rows_view<const T> dh, dyt::rows_view<T> dx,
                                   T* const* gp, const float* mean, const float* rstd) {
  typename Kit::layer_t::gradients g;
  if constexpr (Kit::kind == layer_kind::dyt) {
    g.dgamma = gp[0];
    g.dbeta = gp[1];
    g.dalpha = gp[2];
    return l.backward_residual(h, dy, dh, dx, g, nullptr);
  } else if constexpr (Kit::kind == layer_kind::layer_norm) {
    g.dgamma = gp[0];
    g.dbeta = gp[1];
    return l.backward_residual(h, dy, dh, dx, g, nullptr, grad_mode::overwrite, {mean, rstd});
  } else {
    g.dgamma = gp[0];
    return l.backward_residual(h, dy, dh, dx, g, nullptr, grad_mode::overwrite, {nullptr, rstd});
  }
}

template <class Kit, class T>
void run_residual_case(const char* test, shape_case s, layout lay) {
  rng g(seed_for(test, std::uint64_t(s.rows * 100003 + s.cols), std::uint64_t(lay.pad + lay.misaligned)));
  problem<T> p(Kit::kind, s.rows, s.cols, lay, g);  // x, dy and the parameters
  problem<T> q(Kit::kind, s.rows, s.cols, lay, g);  // q.x: the residual stream; q.dy: dh
  INFO(std::string(test) << ": " << tname<T>() << ", " << s.rows << " x " << s.cols << ", " << describe(lay)
                         << ", base seed " << base_seed());
  device_problem<T> d(p);
  const auto layer = Kit::make(d, 0);
  const bool with_mean = Kit::kind == layer_kind::layer_norm;

  // Forward: residual <- x + residual, y = layer(residual).
  guarded<T> h_want(q.x);
  for (index_t r = 0; r < s.rows; ++r)
    for (index_t c = 0; c < s.cols; ++c) h_want.set(r, c, double(float(p.x.get(r, c)) + float(q.x.get(r, c))));
  mirror<T> h(q.x);
  guarded<T> y(s.rows, s.cols, lay), h_got(s.rows, s.cols, lay);
  mirror<T> dy_fused(y);
  dfloats mean(s.rows), rstd(s.rows);
  REQUIRE(forward_residual_call<Kit, T>(layer, d.x.cview(), h.view(), dy_fused.view(), with_mean ? mean.p : nullptr,
                                        Kit::stats ? rstd.p : nullptr)
              .ok());
  h.download(h_got);
  dy_fused.download(y);
  CHECK_MESSAGE(h_got.canaries_intact(), "residual: wrote outside its view");
  CHECK_MESSAGE(h_got.same_bits_as(h_want), "residual: " << h_got.difference_from(h_want));
  {
    mirror<T> h_plain(h_want);
    guarded<T> y_plain(s.rows, s.cols, lay);
    mirror<T> dy_plain(y_plain);
    dfloats mean2(s.rows), rstd2(s.rows);
    using has_stats = std::integral_constant<bool, Kit::stats>;
    REQUIRE(forward_call(layer, h_plain.cview(), dy_plain.view(), with_mean ? mean2.p : nullptr,
                         Kit::stats ? rstd2.p : nullptr, has_stats())
                .ok());
    dy_plain.download(y_plain);
    CHECK_MESSAGE(y.canaries_intact(), "y: wrote outside its view");
    CHECK_MESSAGE(y.same_bits_as(y_plain), "y against the unfused pair: " << y.difference_from(y_plain));
    if (Kit::stats) {
      CHECK(rstd.get().same_bits_as(rstd2.get()));
      if (with_mean) CHECK(mean.get().same_bits_as(mean2.get()));
    }
  }
  // y == x in place: the same bits.
  {
    mirror<T> xy(p.x), h2(q.x);
    REQUIRE(forward_residual_call<Kit, T>(layer, xy.cview(), h2.view(), xy.view(), nullptr, nullptr).ok());
    guarded<T> y2(s.rows, s.cols, lay), h3(s.rows, s.cols, lay);
    xy.download(y2);
    h2.download(h3);
    CHECK_MESSAGE(y2.same_bits_as(y), "y == x: " << y2.difference_from(y));
    CHECK(h3.same_bits_as(h_want));
  }

  // Backward on h = p.x with dh = q.dy, dx == dh in place, saved statistics
  // from the plain forward on p.x.
  const bwd::backward_truth bt = Kit::btruth(p, 0);
  expected_output want_dx = bt.dx;
  for (index_t r = 0; r < s.rows; ++r)
    for (index_t c = 0; c < s.cols; ++c) {
      const double dh = q.dy.get(r, c);
      const std::size_t i = std::size_t(r * s.cols + c);
      want_dx.ref.v[i] += dh;
      want_dx.set_bound(r, c, bt.dx.k0(r, c) + 1, bt.dx.scale(r, c) + std::fabs(dh), bt.dx.k1(r, c));
    }
  dfloats smean(s.rows), srstd(s.rows);
  if (Kit::stats) {
    guarded<T> scratch(s.rows, s.cols, lay);
    mirror<T> dscratch(scratch);
    using has_stats = std::integral_constant<bool, Kit::stats>;
    REQUIRE(forward_call(layer, d.x.cview(), dscratch.view(), with_mean ? smean.p : nullptr, srstd.p, has_stats()).ok());
  }
  guarded<T> gr[3] = {guarded<T>(1, s.cols, lay), guarded<T>(1, s.cols, lay), guarded<T>(1, 1, lay)};
  mirror<T> dg0(gr[0]), dg1(gr[1]), dg2(gr[2]);
  T* const gp[3] = {bt.grads & 1u ? dg0.data() : nullptr, bt.grads & 2u ? dg1.data() : nullptr,
                    bt.grads & 4u ? dg2.data() : nullptr};
  for (int saved = 0; saved < 2; ++saved) {
    if (saved && !Kit::stats) break;
    mirror<T> dhx(q.dy);
    REQUIRE(backward_residual_call<Kit, T>(layer, d.x.cview(), d.dy.cview(), dhx.cview(), dhx.view(), gp,
                                           saved && with_mean ? smean.p : nullptr, saved ? srstd.p : nullptr)
                .ok());
    guarded<T> dx(s.rows, s.cols, lay);
    dhx.download(dx);
    check_cuda<T>(saved ? "dh + dx (saved statistics, dx == dh)" : "dh + dx (dx == dh)", dx, want_dx);
    mirror<T>* dgs[3] = {&dg0, &dg1, &dg2};
    for (int i = 0; i < 3; ++i)
      if (bt.grads & (1u << i)) {
        dgs[i]->download(gr[i]);
        check_cuda<T>(bwd::kGradNames[i] + " (backward_residual)", gr[i], bt.grad[i]);
      }
  }
  // dx out of place, beside dh (which stays as it was).
  {
    mirror<T> dh(q.dy);
    guarded<T> dx(s.rows, s.cols, lay), dh_after(s.rows, s.cols, lay);
    mirror<T> ddx(dx);
    REQUIRE(backward_residual_call<Kit, T>(layer, d.x.cview(), d.dy.cview(), dh.cview(), ddx.view(), gp, nullptr,
                                           nullptr)
                .ok());
    ddx.download(dx);
    dh.download(dh_after);
    check_cuda<T>("dh + dx (out of place)", dx, want_dx);
    CHECK(dh_after.same_bits_as(q.dy));
  }
}

template <class Kit, class T>
void run_residual(const char* test) {
  for (const shape_case& s : shapes())
    for (const layout& lay : kGpuLayouts) run_residual_case<Kit, T>(test, s, lay);
}

}  // namespace

TEST_CASE_TEMPLATE("Fused residual add on CUDA: DyT", T, float, bf16, __half) {
  run_residual<dyt_kit<T, dyt::default_tanh_t<T>>, T>("residual DyT");
}
TEST_CASE_TEMPLATE("Fused residual add on CUDA: LayerNorm", T, float, bf16, __half) {
  run_residual<ln_kit<T>, T>("residual LayerNorm");
}
TEST_CASE_TEMPLATE("Fused residual add on CUDA: RMSNorm", T, float, bf16, __half) {
  run_residual<rms_kit<T>, T>("residual RMSNorm");
}

TEST_CASE("Fused residual add on CUDA: refusals match the CPU layer's, and nothing is written") {
  const index_t rows = 4, cols = 768;
  rng g(seed_for("cuda residual refusals"));
  problem<float> p(layer_kind::layer_norm, rows, cols, dense_aligned, g);
  device_problem<float> d(p);
  guarded<float> canvas(rows, cols);
  mirror<float> res(p.dy), out(canvas);
  dyt::LayerNorm<float, dyt::cuda> gpu(d.gamma.data(), d.beta.data(), cols);
  dyt::LayerNorm<float, dyt::cpu> cpu(d.gamma.data(), d.beta.data(), cols);  // refuses before any access
  auto same = [](const dyt::status& a, const dyt::status& b) {
    CHECK(!a.ok());
    CHECK(a.code() == b.code());
    CHECK(std::string(a.message()) == b.message());
  };
  const dyt::rows_view<const float> x = d.x.cview();
  // y overlapping the residual; a residual of another shape; a null residual.
  const dyt::rows_view<float> y_on_res(res.data() + 1, rows, cols);
  same(gpu.forward_residual(x, res.view(), y_on_res, nullptr), cpu.forward_residual(x, res.view(), y_on_res));
  const dyt::rows_view<float> short_res(res.data(), rows - 1, cols);
  same(gpu.forward_residual(x, short_res, out.view(), nullptr), cpu.forward_residual(x, short_res, out.view()));
  const dyt::rows_view<float> null_res(nullptr, rows, cols);
  same(gpu.forward_residual(x, null_res, out.view(), nullptr), cpu.forward_residual(x, null_res, out.view()));
  // Backward: dh of another shape; dx overlapping dh without being it.
  dyt::LayerNorm<float, dyt::cuda>::gradients grads;
  dyt::LayerNorm<float, dyt::cpu>::gradients cgrads;
  const dyt::rows_view<const float> short_dh(res.data(), rows, cols - 1);
  same(gpu.backward_residual(x, d.dy.cview(), short_dh, out.view(), grads, nullptr),
       cpu.backward_residual(x, d.dy.cview(), short_dh, out.view(), cgrads));
  const dyt::rows_view<float> dx_on_dh(res.data() + 2, rows, cols);
  same(gpu.backward_residual(x, d.dy.cview(), res.cview(), dx_on_dh, grads, nullptr),
       cpu.backward_residual(x, d.dy.cview(), res.cview(), dx_on_dh, cgrads));

  guarded<float> after(rows, cols), res_after(rows, cols);
  out.download(after);
  res.download(res_after);
  CHECK(after.same_bits_as(canvas));
  CHECK(res_after.same_bits_as(p.dy));
}

// ---- More than 2^31 elements ----------------------------------------------------------------
namespace {
__host__ __device__ inline float hash_value(index_t i) {
  std::uint64_t z = std::uint64_t(i) * 0x9e3779b97f4a7c15u;
  z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9u;
  z ^= z >> 29;
  return float(z >> 40) * (4.0f / 16777216.0f) - 2.0f;  // [-2, 2)
}
__global__ void fill_hash(bf16* p, index_t n) {
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += index_t(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16_rn(hash_value(i));
}
}  // namespace

TEST_CASE("More than 2^31 elements (bf16, 64-bit indexing): DyT and LayerNorm forward in place") {
  if (quick()) return;
  const index_t cols = 1024, rows = (index_t(1) << 21) + 3;  // 2^31 + 3072 elements
  const index_t n = rows * cols;
  REQUIRE(n > (index_t(1) << 31));
  bf16* x = nullptr;
  const cudaError_t e = cudaMalloc(&x, std::size_t(n) * 2);
  if (e == cudaErrorMemoryAllocation) {
    MESSAGE("skipped: the device cannot hold 4.3 GB");
    cudaGetLastError();
    return;
  }
  CUDA_REQUIRE(e);
  const std::vector<index_t> check_rows = {0, (index_t(1) << 20) + 7, (index_t(1) << 21) - 1, rows - 1};
  auto host_row = [&](index_t r) {
    std::vector<double> v(static_cast<std::size_t>(cols));
    for (index_t c = 0; c < cols; ++c) v[std::size_t(c)] = double(float(__float2bfloat16_rn(hash_value(r * cols + c))));
    return v;
  };
  auto fetch = [&](index_t r) {
    std::vector<bf16> h(static_cast<std::size_t>(cols));
    CUDA_REQUIRE(cudaMemcpy(h.data(), x + r * cols, std::size_t(cols) * 2, cudaMemcpyDeviceToHost));
    return h;
  };
  for (int layer = 0; layer < 2; ++layer) {
    fill_hash<<<4096, 256>>>(x, n);
    CUDA_REQUIRE(cudaGetLastError());
    const dyt::rows_view<bf16> v(x, rows, cols);
    if (layer == 0) {
      bf16* alpha = nullptr;
      CUDA_REQUIRE(cudaMalloc(&alpha, 2));
      const bf16 a = __float2bfloat16_rn(0.75f);
      CUDA_REQUIRE(cudaMemcpy(alpha, &a, 2, cudaMemcpyHostToDevice));
      REQUIRE(dyt::DyT<bf16, dyt::cuda>(alpha, nullptr, nullptr, cols).forward(v, v, nullptr).ok());
      CUDA_REQUIRE(cudaDeviceSynchronize());
      cudaFree(alpha);
    } else {
      REQUIRE(dyt::LayerNorm<bf16, dyt::cuda>(nullptr, nullptr, cols).forward(v, v, nullptr).ok());
      CUDA_REQUIRE(cudaDeviceSynchronize());
    }
    for (index_t r : check_rows) {
      const std::vector<double> in = host_row(r);
      std::vector<double> ref(static_cast<std::size_t>(cols));
      double alpha = 0.75;
      if (layer == 0)
        REQUIRE(dyt::DyT<double, dyt::reference>(&alpha, nullptr, nullptr, cols)
                    .forward({in.data(), 1, cols}, {ref.data(), 1, cols})
                    .ok());
      else
        REQUIRE(dyt::LayerNorm<double, dyt::reference>(nullptr, nullptr, cols)
                    .forward({in.data(), 1, cols}, {ref.data(), 1, cols})
                    .ok());
      const std::vector<bf16> got = fetch(r);
      // A bf16 half-ulp of the result plus the float computation, which is far
      // smaller (tanh.approx: 2^-11 relative; LayerNorm: (n + 9) 2^-24 relative
      // to |xh| + m1 <= 6, under 2e-3 at n = 1024): 2^-8 relative plus 2e-3 absolute.
      int bad = 0;
      for (index_t c = 0; c < cols; ++c) {
        const double gv = double(float(got[std::size_t(c)])), rv = ref[std::size_t(c)];
        if (!(std::fabs(gv - rv) <= std::fabs(rv) * 0x1p-8 + 2e-3)) ++bad;
      }
      CHECK_MESSAGE(bad == 0, (layer ? "LayerNorm" : "DyT") << " row " << r << ": " << bad << " elements off");
    }
  }
  cudaFree(x);
}
