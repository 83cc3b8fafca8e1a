// tests/cuda/test_quantize.cu: the quantized output on CUDA (ops/quantize.hpp,
// docs/quantize.md) against the float64 reference.
//
//  - The device's code stores (4- and 8-lane vectors through the hardware
//    conversions, and the scalar encoder of the one-column path) agree bit for
//    bit with the host's encoders: on special values, every E4M3 code, every
//    midpoint between neighbouring codes and the floats either side of it, the
//    int8 ties, and random floats and bit patterns.
//  - DyT, LayerNorm and RMSNorm (every parameter variant), float, bf16 and
//    half, int8 and E4M3, with a dynamic per-row scale (the norms also saving
//    their statistics) and, for the point-wise layers, the static per-channel
//    scales of static_scales(); at column counts that reach every kernel path,
//    on dense, strided and misaligned views, and codes misaligned under
//    aligned x (the one-column path): every code and scale within the bound
//    below, nothing outside the codes' view written, a second run bit-identical.
//  - static_scales() gives the CPU layer's bits.
//  - Zero rows, NaN rows and huge |x| as on the CPU; refused calls with the CPU
//    layer's code and message, writing nothing.
//
// Bound. y_c is what the kernel computes in float before quantizing; truth.hpp
// bounds |y_c - y_ref| by cb = k (u + 2^-53) m (compute_bound: no rounding to
// T, since the codes are made from y_c itself). A code q made with scale s
// rounds v = y_c / s (static) or y_c * pre * inv (dynamic), and as
// tests/test_quantize.cpp derives (its (1)), |q - v| <= half_step_Q(v) + 4u |v|,
// so
//   |q s - y_ref| <= (half_step_Q(v) + 4u |v|) s + cb,   |v| <= (|y_ref| + cb) / s,
// half_step_Q growing with |v| (E4M3) or constant (int8). A dynamic scale is
// fl(absmax / qmax) with absmax the exact maximum of |y_c| over the row:
//   |s qmax - max |y_ref|| <= max cb + u s qmax.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <dyt/cuda.cuh>

#include "../quantize_truth.hpp"
#include "device.hpp"
#include "truth.hpp"

namespace dyt_test_quantize {
// The device's code stores of Q = codes_t<E4M3> (int8 or E4M3) on n floats:
// the N-lane vector store and the scalar encoder. (Outside the anonymous
// namespace, with an int parameter: nvcc's host stub for a kernel template
// there, instantiated with std::int8_t, does not compile.)
template <bool E4M3>
using codes_t = std::conditional_t<E4M3, dyt::float8_e4m3, std::int8_t>;

template <bool E4M3, int N>
__global__ void encode_kernel(const float* in, std::uint8_t* vector_out, std::uint8_t* scalar_out, dyt::index_t n) {
  using Q = codes_t<E4M3>;
  const dyt::index_t i = (dyt::index_t(blockIdx.x) * blockDim.x + threadIdx.x) * N;
  if (i + N > n) return;
  dyt::cuda_detail::fvec<N> v;
  for (int k = 0; k < N; ++k) v.v[k] = in[i + k];
  dyt::ops::vector_codes<Q, dyt::cuda_detail::fvec<N>>::store(reinterpret_cast<Q*>(vector_out + i), v);
  for (int k = 0; k < N; ++k) {
    const Q q = dyt::ops::quant_format<Q>::encode(in[i + k]);
    std::memcpy(scalar_out + i + k, &q, 1);
  }
}

// The largest |tanh.approx.f32(x)| over every float x but NaN, as bits (a
// float >= 0 orders as its bits), into *out; every `step`-th bit pattern.
__global__ void tanh_approx_largest(unsigned* out, unsigned step) {
  unsigned largest = 0;
  const std::uint64_t stride = std::uint64_t(gridDim.x) * blockDim.x * step;
  for (std::uint64_t i = (std::uint64_t(blockIdx.x) * blockDim.x + threadIdx.x) * step; i < (std::uint64_t(1) << 32);
       i += stride) {
    const float t = dyt::tanh_approx::one(__uint_as_float(unsigned(i)));
    if (t == t) largest = max(largest, __float_as_uint(fabsf(t)));
  }
  atomicMax(out, largest);
}
}  // namespace dyt_test_quantize

namespace {

using namespace dyt_test;
using bf16 = __nv_bfloat16;
using dyt::float8_e4m3;

template <class Q>
constexpr double qmax_of = dyt::ops::quant_format<Q>::qmax;

template <class Q>
std::uint8_t host_code(float v) {
  const Q q = dyt::ops::quant_format<Q>::encode(v);
  std::uint8_t b;
  std::memcpy(&b, &q, 1);
  return b;
}

// ---- The encoders (the kernel: above, outside the anonymous namespace) -----------------
std::vector<float> awkward_floats() {
  std::vector<float> v;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (float s : {1.f, -1.f}) {
    for (float a : {0.f, inf, nan, std::numeric_limits<float>::max(), std::numeric_limits<float>::min(),
                    std::numeric_limits<float>::denorm_min(), 1e-30f, 448.f, 464.f, 480.f, 1e6f})
      v.push_back(s * a);
    // Every E4M3 code, each midpoint to the next code and the floats around it.
    for (int c = 0; c < 0x7e; ++c) {
      const double lo = e4m3_value(std::uint8_t(c)), hi = e4m3_value(std::uint8_t(c + 1));
      const float mid = float((lo + hi) / 2);
      for (float f : {float(lo), mid, std::nextafter(mid, 0.f), std::nextafter(mid, inf)}) v.push_back(s * f);
    }
    // int8: every half-integer tie and its neighbours, past the saturation.
    for (int k = -260; k <= 260; ++k) {
      const float t = 0.5f * float(k);
      for (float f : {t, std::nextafter(t, -inf), std::nextafter(t, inf)}) v.push_back(s * f);
    }
  }
  rng g(seed_for("cuda quantize encoders"));
  for (int i = 0; i < (1 << 18); ++i) {
    const std::uint32_t bits = std::uint32_t(g.uniform(0, 4294967296.0));
    float f;
    std::memcpy(&f, &bits, 4);
    v.push_back(f);
    v.push_back(float(g.uniform(-600, 600)));
  }
  while (v.size() % 8) v.push_back(0.f);
  return v;
}

template <class Q, int N>
void check_encoders(const std::vector<float>& in) {
  const index_t n = index_t(in.size());
  float* din = nullptr;
  std::uint8_t *dvec = nullptr, *dscalar = nullptr;
  CUDA_REQUIRE(cudaMalloc(&din, n * 4));
  CUDA_REQUIRE(cudaMalloc(&dvec, n));
  CUDA_REQUIRE(cudaMalloc(&dscalar, n));
  CUDA_REQUIRE(cudaMemcpy(din, in.data(), n * 4, cudaMemcpyHostToDevice));
  const index_t threads = n / N;
  dyt_test_quantize::encode_kernel<std::is_same<Q, float8_e4m3>::value, N><<<unsigned((threads + 255) / 256), 256>>>(din, dvec, dscalar, n);
  CUDA_REQUIRE(cudaGetLastError());
  std::vector<std::uint8_t> vec(static_cast<std::size_t>(n)), scalar(static_cast<std::size_t>(n));
  CUDA_REQUIRE(cudaMemcpy(vec.data(), dvec, n, cudaMemcpyDeviceToHost));
  CUDA_REQUIRE(cudaMemcpy(scalar.data(), dscalar, n, cudaMemcpyDeviceToHost));
  cudaFree(din);
  cudaFree(dvec);
  cudaFree(dscalar);
  long long bad_vec = 0, bad_scalar = 0;
  std::string first;
  for (index_t i = 0; i < n; ++i) {
    const std::uint8_t want = host_code<Q>(in[std::size_t(i)]);
    const bool v_ok = vec[std::size_t(i)] == want, s_ok = scalar[std::size_t(i)] == want;
    bad_vec += !v_ok;
    bad_scalar += !s_ok;
    if ((!v_ok || !s_ok) && first.empty())
      first = "first at " + std::to_string(in[std::size_t(i)]) + ": host " + std::to_string(want) + ", vector " +
              std::to_string(vec[std::size_t(i)]) + ", scalar " + std::to_string(scalar[std::size_t(i)]);
  }
  INFO(q_name<Q>() << ", " << N << " lanes, " << n << " values");
  CHECK_MESSAGE(bad_vec == 0, bad_vec << " vector codes differ; " << first);
  CHECK_MESSAGE(bad_scalar == 0, bad_scalar << " scalar codes differ; " << first);
}

TEST_CASE("The device's code stores agree with the host encoders bit for bit") {
  const std::vector<float> in = awkward_floats();
  check_encoders<std::int8_t, 4>(in);
  check_encoders<std::int8_t, 8>(in);
  check_encoders<float8_e4m3, 4>(in);
  check_encoders<float8_e4m3, 8>(in);
}

// The static scales' premise (docs/quantize.md): |f(u)| <= 1, here for the
// device's tanh.approx.f32 (the 16-bit types' default), which is documented
// only to 2^-11 relative. Exhaustive over all 2^32 floats (every 4099th under
// DYT_CUDA_TEST_QUICK, for the sanitizers).
TEST_CASE("tanh.approx.f32 never exceeds 1 in magnitude") {
  unsigned* d = nullptr;
  CUDA_REQUIRE(cudaMalloc(&d, 4));
  CUDA_REQUIRE(cudaMemset(d, 0, 4));
  dyt_test_quantize::tanh_approx_largest<<<1024, 256>>>(d, quick_from_env() ? 4099u : 1u);
  CUDA_REQUIRE(cudaGetLastError());
  unsigned bits = 0;
  CUDA_REQUIRE(cudaMemcpy(&bits, d, 4, cudaMemcpyDeviceToHost));
  cudaFree(d);
  float largest;
  std::memcpy(&largest, &bits, 4);
  CHECK_MESSAGE(largest <= 1.0f, "largest |tanh.approx.f32| is " << largest);
}

// ---- Codes on the device ----------------------------------------------------------------
// rows x cols one-byte codes at row stride cols + lay.pad, `offset` bytes past a
// 64-byte boundary, with `guard` canary bytes around: every byte outside the
// view must keep the fill.
template <class Q>
class device_codes {
 public:
  static constexpr index_t guard = 64;
  device_codes(index_t rows, index_t cols, layout lay, index_t offset, std::uint8_t fill)
      : rows_(rows), cols_(cols), stride_(cols + lay.pad), offset_(offset), fill_(fill) {
    bytes_ = std::size_t(2 * guard + 64 + (rows - 1) * stride_ + cols);
    CUDA_REQUIRE(cudaMalloc(&base_, bytes_));
    CUDA_REQUIRE(cudaMemset(base_, fill, bytes_));
  }
  ~device_codes() { cudaFree(base_); }
  device_codes(const device_codes&) = delete;
  device_codes& operator=(const device_codes&) = delete;

  Q* data() const { return reinterpret_cast<Q*>(base_ + guard + offset_); }
  dyt::rows_view<Q> view() const { return {data(), rows_, cols_, stride_}; }

  // The whole allocation, on the host.
  std::vector<std::uint8_t> download() const {
    std::vector<std::uint8_t> h(bytes_);
    CUDA_REQUIRE(cudaDeviceSynchronize());
    CUDA_REQUIRE(cudaMemcpy(h.data(), base_, bytes_, cudaMemcpyDeviceToHost));
    return h;
  }
  std::uint8_t at(const std::vector<std::uint8_t>& h, index_t r, index_t c) const {
    return h[std::size_t(guard + offset_ + r * stride_ + c)];
  }
  bool canaries_intact(const std::vector<std::uint8_t>& h) const {
    for (std::size_t i = 0; i < h.size(); ++i) {
      const index_t k = index_t(i) - guard - offset_;
      const bool inside = k >= 0 && k / stride_ < rows_ && k % stride_ < cols_;
      if (!inside && h[i] != fill_) return false;
    }
    return true;
  }

 private:
  index_t rows_, cols_, stride_, offset_;
  std::uint8_t fill_;
  std::size_t bytes_ = 0;
  unsigned char* base_ = nullptr;
};

template <class Q>
double value_of(std::uint8_t b) {
  Q q;
  std::memcpy(&q, &b, 1);
  return code_value(q);
}

// ---- Layers ------------------------------------------------------------------------------
template <class T>
struct dyt_layer {
  using layer_t = dyt::DyT<T, dyt::cuda>;
  static constexpr layer_kind kind = layer_kind::dyt;
  static constexpr bool pointwise = true;
  static int variants() { return 3; }
  static std::string name(int v) { return fwd::kDytVariants[v].name; }
  static layer_t make(const device_problem<T>& d, int v) {
    const auto& var = fwd::kDytVariants[v];
    return layer_t(d.alpha.data(), var.gamma ? d.gamma.data() : nullptr, var.beta ? d.beta.data() : nullptr, d.p.cols);
  }
  static fwd::forward_truth truth(const problem<T>& p, int v) {
    return fwd::dyt_truth(p, fwd::kDytVariants[v], policy_ulps<dyt::default_tanh_t<T>>);
  }
  template <class Q>
  static dyt::status dynamic(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<Q> y, float* scales, float*,
                             float*) {
    return l.forward_quantized(x, y, dyt::per_row_scale<float>{scales}, nullptr);
  }
};

template <class T>
struct ln_layer {
  using layer_t = dyt::LayerNorm<T, dyt::cuda>;
  static constexpr layer_kind kind = layer_kind::layer_norm;
  static constexpr bool pointwise = false;
  static int variants() { return 4; }
  static std::string name(int v) { return fwd::kLnVariants[v].name; }
  static layer_t make(const device_problem<T>& d, int v) {
    const auto& var = fwd::kLnVariants[v];
    return layer_t(var.gamma ? d.gamma.data() : nullptr, var.beta ? d.beta.data() : nullptr, d.p.cols, kLayerNormEps);
  }
  static fwd::forward_truth truth(const problem<T>& p, int v) { return fwd::layer_norm_truth(p, fwd::kLnVariants[v]); }
  template <class Q>
  static dyt::status dynamic(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<Q> y, float* scales,
                             float* mean, float* rstd) {
    if (!mean) return l.forward_quantized(x, y, dyt::per_row_scale<float>{scales}, nullptr);
    return l.forward_quantized(x, y, dyt::per_row_scale<float>{scales}, {mean, rstd}, nullptr);
  }
};

template <class T>
struct rms_layer {
  using layer_t = dyt::RMSNorm<T, dyt::cuda>;
  static constexpr layer_kind kind = layer_kind::rms_norm;
  static constexpr bool pointwise = false;
  static int variants() { return 3; }
  static std::string name(int v) { return fwd::kRmsVariants[v].name; }
  static layer_t make(const device_problem<T>& d, int v) {
    const auto& var = fwd::kRmsVariants[v];
    return layer_t(var.gamma ? d.gamma.data() : nullptr, d.p.cols, kRmsNormEps, var.form);
  }
  static fwd::forward_truth truth(const problem<T>& p, int v) { return fwd::rms_norm_truth(p, fwd::kRmsVariants[v]); }
  template <class Q>
  static dyt::status dynamic(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<Q> y, float* scales,
                             float* mean, float* rstd) {
    if (!mean) return l.forward_quantized(x, y, dyt::per_row_scale<float>{scales}, nullptr);
    return l.forward_quantized(x, y, dyt::per_row_scale<float>{scales}, {nullptr, rstd}, nullptr);
  }
};

struct shape_case {
  index_t rows, cols;
};

// Column counts for every path: one column per access (1, 17, 769, 4097),
// one-warp rows (768: path 4), multi-warp teams (4096, 8192: path 5), rows too
// long to stage (12288 in 16-bit... and f32: path 1).
std::vector<shape_case> shapes() {
  if (quick_from_env()) return {{5, 3}, {9, 768}, {4, 4096}, {2, 12288}};
  return {{7, 1}, {37, 17}, {37, 768}, {37, 769}, {19, 4096}, {9, 4097}, {5, 8192}, {3, 12288}, {1, 768}};
}

struct view_case {
  layout lay;
  index_t codes_offset;  // bytes past the 64-byte boundary
};
const view_case kViews[] = {{dense_aligned, 0}, {layout{8, false}, 0}, {strided_misaligned, 1}, {dense_aligned, 2}};

// One layer variant, format and scale kind at one shape and view.
template <class Q, class Kit, class T>
void quantized_case(int v, shape_case s, const view_case& vc, bool per_channel) {
  const layout lay = vc.lay;
  rng g(seed_for("cuda quantized", std::uint64_t(s.rows * 100003 + s.cols),
                 std::uint64_t(v * 16 + lay.pad + lay.misaligned + 4 * vc.codes_offset), per_channel));
  problem<T> p(Kit::kind, s.rows, s.cols, lay, g);
  const std::string label = q_name<Q>() + (per_channel ? " static" : " dynamic") + " / " + tname<T>() + " / " +
                            Kit::name(v);
  INFO(label << ", " << s.rows << " x " << s.cols << ", " << describe(lay) << ", codes at +" << vc.codes_offset
             << ", base seed " << base_seed());
  device_problem<T> d(p);
  const auto layer = Kit::make(d, v);
  const fwd::forward_truth ft = Kit::truth(p, v);
  device_codes<Q> codes(s.rows, s.cols, lay, vc.codes_offset, 0x5a);
  dfloats scales(per_channel ? s.cols : s.rows), mean(s.rows), rstd(s.rows);
  const bool stats = !Kit::pointwise && s.cols % 2 == 0;  // half the shapes also save statistics
  auto run = [&](const device_codes<Q>& out) {
    if constexpr (Kit::pointwise) {
      if (per_channel) return layer.forward_quantized(d.x.cview(), out.view(), dyt::per_channel_scale<float>{scales.p},
                                                      nullptr);
    }
    return Kit::template dynamic<Q>(layer, d.x.cview(), out.view(), scales.p, stats ? mean.p : nullptr,
                                    stats ? rstd.p : nullptr);
  };
  if (per_channel) {
    if constexpr (Kit::pointwise) REQUIRE(layer.template static_scales<Q>(scales.p, nullptr).ok());
  }
  REQUIRE(run(codes).ok());
  const std::vector<std::uint8_t> h = codes.download();
  CHECK_MESSAGE(codes.canaries_intact(h), label << ": wrote outside the codes' view");
  const guarded<float> sc = scales.get();

  using model = error_model<T, dyt::cuda>;
  const double u = model::u, qmax = qmax_of<Q>;
  error_check code_check(label + " codes"), scale_check(label + " scales");
  for (index_t r = 0; r < s.rows; ++r) {
    if (!per_channel) {
      double top = 0, slack = 0;
      for (index_t c = 0; c < s.cols; ++c) {
        top = std::max(top, std::fabs(ft.y.ref(r, c)));
        slack = std::max(slack, model::compute_bound(ft.y.k(r, c, u), ft.y.scale(r, c)));
      }
      const double got = double(sc.get(0, r)) * qmax;
      scale_check.add(r, 0, got, top, slack + u * got);
    }
    for (index_t c = 0; c < s.cols; ++c) {
      const double scale = sc.get(0, per_channel ? c : r), ref = ft.y.ref(r, c);
      const double cb = model::compute_bound(ft.y.k(r, c, u), ft.y.scale(r, c));
      // A zero scale (a row, or a channel, whose y are all zero) codes 0.
      const double v_max = scale > 0 ? (std::fabs(ref) + cb) / scale : 0.0;
      const double q = value_of<Q>(codes.at(h, r, c));
      code_check.add(r, c, q * scale, ref, (half_step<Q>(v_max) + 4 * u * v_max) * scale + cb);
      if (per_channel) code_check.add_exact(r, c, std::fabs(q), qmax, std::fabs(q) <= qmax);
    }
  }
  if (stats) {
    check_cuda<T>("rstd", rstd.get(), ft.rstd, false);
    if (Kit::kind == layer_kind::layer_norm) check_cuda<T>("mean", mean.get(), ft.mean, false);
  }
  // A second run, into codes prefilled differently: the same bits everywhere
  // in the view (so every code was written, and deterministically).
  device_codes<Q> again(s.rows, s.cols, lay, vc.codes_offset, 0xa5);
  REQUIRE(run(again).ok());
  const std::vector<std::uint8_t> h2 = again.download();
  long long differ = 0;
  for (index_t r = 0; r < s.rows; ++r)
    for (index_t c = 0; c < s.cols; ++c) differ += codes.at(h, r, c) != again.at(h2, r, c);
  CHECK_MESSAGE(differ == 0, label << ": a second run changed " << differ << " code(s)");
  if (!per_channel) CHECK_MESSAGE(scales.get().same_bits_as(sc), label << ": a second run changed the scales");
}

template <class Kit, class T>
void run_quantized() {
  for (const shape_case& s : shapes())
    for (int v = 0; v < Kit::variants(); ++v)
      for (const view_case& vc : kViews) {
        // Variants and views rotate over the shapes beyond the first view.
        if (&vc != &kViews[0] && (v + int(&vc - kViews)) % 2 != 0) continue;
        quantized_case<std::int8_t, Kit, T>(v, s, vc, false);
        quantized_case<float8_e4m3, Kit, T>(v, s, vc, false);
        if constexpr (Kit::pointwise) {
          quantized_case<std::int8_t, Kit, T>(v, s, vc, true);
          quantized_case<float8_e4m3, Kit, T>(v, s, vc, true);
        }
      }
}

TEST_CASE_TEMPLATE("Quantized DyT on CUDA: dynamic and static scales against the float64 reference", T, float, bf16,
                   __half) {
  run_quantized<dyt_layer<T>, T>();
}
TEST_CASE_TEMPLATE("Quantized LayerNorm on CUDA against the float64 reference", T, float, bf16, __half) {
  run_quantized<ln_layer<T>, T>();
}
TEST_CASE_TEMPLATE("Quantized RMSNorm on CUDA against the float64 reference", T, float, bf16, __half) {
  run_quantized<rms_layer<T>, T>();
}

TEST_CASE_TEMPLATE("static_scales on CUDA gives the CPU layer's bits", T, float, bf16) {
  const index_t cols = 777;
  rng g(seed_for("cuda static scales", cols));
  problem<T> p(layer_kind::dyt, 1, cols, dense_aligned, g);
  // Awkward parameters: zero, negative zero, huge, tiny, NaN.
  p.gamma.set(0, 0, 0.0);
  p.beta.set(0, 0, -0.0);
  p.gamma.set(0, 1, 3e38);
  p.beta.set(0, 2, -1e-30);
  p.gamma.set(0, 3, std::nan(""));
  device_problem<T> d(p);
  for (int v = 0; v < 3; ++v) {
    const auto& var = fwd::kDytVariants[v];
    const dyt::DyT<T, dyt::cuda> gpu(d.alpha.data(), var.gamma ? d.gamma.data() : nullptr,
                                     var.beta ? d.beta.data() : nullptr, cols);
    const dyt::DyT<T, dyt::cpu> cpu(p.alpha.data(), var.gamma ? p.gamma.data() : nullptr,
                                    var.beta ? p.beta.data() : nullptr, cols);
    dfloats dev8(cols), deve(cols);
    REQUIRE(gpu.template static_scales<std::int8_t>(dev8.p, nullptr).ok());
    REQUIRE(gpu.template static_scales<float8_e4m3>(deve.p, nullptr).ok());
    guarded<float> host8(1, cols), hoste(1, cols);
    REQUIRE(cpu.template static_scales<std::int8_t>(host8.data()).ok());
    REQUIRE(cpu.template static_scales<float8_e4m3>(hoste.data()).ok());
    INFO(tname<T>() << ", " << var.name);
    CHECK(dev8.get().same_bits_as(host8));
    CHECK(deve.get().same_bits_as(hoste));
  }
}

TEST_CASE_TEMPLATE("Quantized special rows on CUDA: zero rows, NaN rows, huge x", T, float, bf16) {
  for (index_t cols : {17, 768, 4096}) {
    rng g(seed_for("cuda quantized special", cols));
    problem<T> p(layer_kind::rms_norm, 4, cols, dense_aligned, g);
    for (index_t c = 0; c < cols; ++c) p.x.set(0, c, 0.0);  // row 0: y = 0 exactly
    p.x.set(1, cols / 2, std::nan(""));                     // row 1: y NaN at one column
    p.x.set(2, 0, 1e30);                                     // row 2: huge values (DyT: tanh = +-1)
    p.x.set(2, cols - 1, -HUGE_VAL);
    device_problem<T> d(p);
    INFO(tname<T>() << ", cols " << cols);
    dyt::RMSNorm<T, dyt::cuda> rms(d.gamma.data(), cols, kRmsNormEps);
    dyt::DyT<T, dyt::cuda> dyt_layer(d.alpha.data(), d.gamma.data(), nullptr, cols);
    dfloats scales(4), channel(cols);
    {
      device_codes<std::int8_t> q(4, cols, dense_aligned, 0, 0x5a);
      REQUIRE(rms.forward_quantized(d.x.cview(), q.view(), dyt::per_row_scale<float>{scales.p}, nullptr).ok());
      const auto h = q.download();
      const guarded<float> sc = scales.get();
      CHECK(sc.get(0, 0) == 0.0);
      CHECK(!std::signbit(sc.get(0, 0)));
      CHECK(std::isnan(sc.get(0, 1)));
      for (index_t c = 0; c < cols; ++c) {
        CHECK(q.at(h, 0, c) == 0);
        CHECK(q.at(h, 1, c) == 0);  // int8 has no NaN
      }
    }
    {
      device_codes<float8_e4m3> q(4, cols, dense_aligned, 0, 0x5a);
      REQUIRE(dyt_layer.forward_quantized(d.x.cview(), q.view(), dyt::per_row_scale<float>{scales.p}, nullptr).ok());
      const auto h = q.download();
      const guarded<float> sc = scales.get();
      CHECK(sc.get(0, 0) == 0.0);
      CHECK(std::isnan(sc.get(0, 1)));
      CHECK(std::isfinite(sc.get(0, 2)));
      for (index_t c = 0; c < cols; ++c) {
        CHECK(q.at(h, 0, c) == 0);
        CHECK((q.at(h, 1, c) & 0x7f) == 0x7f);  // NaN codes
        CHECK((q.at(h, 2, c) & 0x7f) != 0x7f);
      }
      // Static scales bound huge x too: never saturated past the bound.
      REQUIRE(dyt_layer.template static_scales<float8_e4m3>(channel.p, nullptr).ok());
      REQUIRE(dyt_layer.forward_quantized(d.x.cview(), q.view(), dyt::per_channel_scale<float>{channel.p}, nullptr).ok());
      const auto h2 = q.download();
      for (index_t c = 0; c < cols; ++c) {
        CHECK((q.at(h2, 2, c) & 0x7f) != 0x7f);
        CHECK(value_of<float8_e4m3>(q.at(h2, 0, c)) == 0.0);  // y = gamma * 0: +-0
      }
    }
  }
}

TEST_CASE("Quantized calls refused on CUDA with the CPU layer's code and message, and nothing is written") {
  const index_t rows = 4, cols = 768;
  rng g(seed_for("cuda quantized refusals"));
  problem<float> p(layer_kind::layer_norm, rows, cols, dense_aligned, g);
  device_problem<float> d(p);
  device_codes<std::int8_t> q(rows, cols, dense_aligned, 0, 0x5a);
  dfloats scales(cols);
  // The CPU layers get the same (device) pointers: they refuse before any access.
  dyt::LayerNorm<float, dyt::cuda> gpu_ln(d.gamma.data(), d.beta.data(), cols);
  dyt::LayerNorm<float, dyt::cpu> cpu_ln(d.gamma.data(), d.beta.data(), cols);
  dyt::DyT<float, dyt::cuda> gpu_dyt(d.alpha.data(), d.gamma.data(), d.beta.data(), cols);
  dyt::DyT<float, dyt::cpu> cpu_dyt(d.alpha.data(), d.gamma.data(), d.beta.data(), cols);
  dyt::DyT<float, dyt::cuda> gpu_no_alpha(nullptr, d.gamma.data(), d.beta.data(), cols);
  dyt::DyT<float, dyt::cpu> cpu_no_alpha(nullptr, d.gamma.data(), d.beta.data(), cols);
  auto same = [](const dyt::status& a, const dyt::status& b) {
    CHECK(!a.ok());
    CHECK(a.code() == b.code());
    CHECK(std::string(a.message()) == b.message());
  };
  const auto x = d.x.cview();
  const auto qv = q.view();
  const dyt::per_row_scale<float> row{scales.p};
  same(gpu_ln.forward_quantized(x, qv, dyt::per_row_scale<float>{nullptr}, nullptr),
       cpu_ln.forward_quantized(x, qv, dyt::per_row_scale<float>{nullptr}));
  same(gpu_dyt.forward_quantized(x, qv, dyt::per_channel_scale<float>{nullptr}, nullptr),
       cpu_dyt.forward_quantized(x, qv, dyt::per_channel_scale<float>{nullptr}));
  const dyt::rows_view<std::int8_t> short_view(q.data(), rows - 1, cols);
  same(gpu_dyt.forward_quantized(x, short_view, row, nullptr), cpu_dyt.forward_quantized(x, short_view, row));
  const dyt::per_row_scale<float> over_x{d.x.data() + 5};
  same(gpu_dyt.forward_quantized(x, qv, over_x, nullptr), cpu_dyt.forward_quantized(x, qv, over_x));
  const dyt::per_row_scale<float> over_gamma{d.gamma.data()};
  same(gpu_ln.forward_quantized(x, qv, over_gamma, {d.x.data(), nullptr}, nullptr),
       cpu_ln.forward_quantized(x, qv, over_gamma, {d.x.data(), nullptr}));
  same(gpu_no_alpha.forward_quantized(x, qv, row, nullptr), cpu_no_alpha.forward_quantized(x, qv, row));
  same(gpu_dyt.template static_scales<std::int8_t>(nullptr, nullptr), cpu_dyt.template static_scales<std::int8_t>(nullptr));
  same(gpu_dyt.template static_scales<std::int8_t>(d.gamma.data() + 1, nullptr),
       cpu_dyt.template static_scales<std::int8_t>(d.gamma.data() + 1));
  // Nothing was launched: the codes and the scales keep their fills.
  const auto h = q.download();
  for (std::uint8_t b : h) REQUIRE(b == 0x5a);
  const guarded<float> sc = scales.get();
  for (index_t c = 0; c < cols; ++c) CHECK(std::isnan(sc.get(0, c)));
}

}  // namespace
