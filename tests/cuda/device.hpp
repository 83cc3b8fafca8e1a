// tests/cuda/device.hpp: what the CUDA test binaries share: a checked CUDA
// call, device mirrors of the tests' guarded host buffers, and the check of a
// device output against the float64 truth (truth.hpp) with the CPU tests'
// error model.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>

#include <dyt/cuda.cuh>

#include "../support.hpp"

namespace dyt_test {

#define CUDA_REQUIRE(expr)                                                                  \
  do {                                                                                      \
    const cudaError_t e_ = (expr);                                                          \
    REQUIRE_MESSAGE(e_ == cudaSuccess, #expr << ": " << cudaGetErrorString(e_));            \
  } while (0)

// DYT_CUDA_TEST_QUICK=1: a few shapes (for compute-sanitizer runs).
inline bool quick_from_env() {
  const char* q = std::getenv("DYT_CUDA_TEST_QUICK");
  return q && *q && *q != '0';
}

template <class Tanh>
constexpr double policy_ulps = std::is_same<dyt::cuda_detail::device_tanh_t<Tanh>, dyt::tanh_approx>::value ? 4133.0
                                                                                                         : 2.2;

// A device copy of a guarded host buffer: the view and `guard` elements either
// side, at the same address modulo 64 (so alignment cases carry over).
template <class T>
class mirror {
 public:
  explicit mirror(const guarded<T>& h) : rows_(h.rows()), cols_(h.cols()), stride_(h.stride()) {
    const std::size_t bytes = std::size_t(span() + 2 * guarded<T>::guard) * sizeof(T) + 128;
    CUDA_REQUIRE(cudaMalloc(&base_, bytes));
    const std::uintptr_t want = std::uintptr_t(h.data()) % 64;
    std::uintptr_t p = std::uintptr_t(base_) + guarded<T>::guard * sizeof(T);
    p = (p + 63) / 64 * 64 + want;
    data_ = reinterpret_cast<T*>(p);
    upload(h);
  }
  ~mirror() { cudaFree(base_); }
  mirror(const mirror&) = delete;
  mirror& operator=(const mirror&) = delete;

  void upload(const guarded<T>& h) {
    CUDA_REQUIRE(cudaMemcpy(data_ - guarded<T>::guard, h.data() - guarded<T>::guard, window(), cudaMemcpyHostToDevice));
  }
  void download(guarded<T>& h) const {
    CUDA_REQUIRE(cudaDeviceSynchronize());
    CUDA_REQUIRE(cudaMemcpy(h.data() - guarded<T>::guard, data_ - guarded<T>::guard, window(), cudaMemcpyDeviceToHost));
  }
  T* data() const { return data_; }
  dyt::rows_view<T> view() const { return {data_, rows_, cols_, stride_}; }
  dyt::rows_view<const T> cview() const { return {data_, rows_, cols_, stride_}; }

 private:
  index_t span() const { return (rows_ - 1) * stride_ + cols_; }
  std::size_t window() const { return std::size_t(span() + 2 * guarded<T>::guard) * sizeof(T); }
  index_t rows_, cols_, stride_;
  void* base_ = nullptr;
  T* data_ = nullptr;
};

// A plain device array of floats (statistics), NaN-filled.
struct dfloats {
  float* p = nullptr;
  index_t n;
  explicit dfloats(index_t n_) : n(n_) {
    CUDA_REQUIRE(cudaMalloc(&p, std::size_t(n) * 4));
    CUDA_REQUIRE(cudaMemset(p, 0xff, std::size_t(n) * 4));
  }
  ~dfloats() { cudaFree(p); }
  guarded<float> get() const {
    guarded<float> h(1, n);
    CUDA_REQUIRE(cudaDeviceSynchronize());
    CUDA_REQUIRE(cudaMemcpy(h.data(), p, std::size_t(n) * 4, cudaMemcpyDeviceToHost));
    return h;
  }
};

template <class T>
std::string tname() {
  if (std::is_same<T, float>::value) return "float";
  if (dyt::format_of<T>::value == dyt::format::bf16) return "bf16";
  return "half";
}

// support.hpp's check_against, labelled for the CUDA backend; NaN where the
// truth is NaN (special-value tests) must come out NaN.
template <class T, class U>
void check_cuda(const std::string& what, const guarded<U>& got, const expected_output& e, bool rounded = true) {
  using model = error_model<T, dyt::cuda>;
  const std::string label = what + " / " + tname<T>() + " / cuda";
  CHECK_MESSAGE(got.canaries_intact(), label << ": wrote outside its view");
  error_check check(label);
  for (index_t r = 0; r < got.rows(); ++r)
    for (index_t c = 0; c < got.cols(); ++c) {
      const double g = got.get(r, c), ref = e.ref(r, c);
      if (std::isnan(ref)) {
        check.add_exact(r, c, g, ref, std::isnan(g));
        continue;
      }
      if (std::isinf(ref)) {
        check.add_exact(r, c, g, ref, g == ref);
        continue;
      }
      const double k = e.k(r, c, model::u);
      check.add(r, c, g, ref, rounded ? model::bound(g, ref, k, e.scale(r, c)) : model::compute_bound(k, e.scale(r, c)));
    }
}

// A problem's inputs and parameters on the device.
template <class T>
struct device_problem {
  problem<T>& p;
  mirror<T> x, dy, alpha, gamma, beta;
  explicit device_problem(problem<T>& p_) : p(p_), x(p.x), dy(p.dy), alpha(p.alpha), gamma(p.gamma), beta(p.beta) {}
};

}  // namespace dyt_test
