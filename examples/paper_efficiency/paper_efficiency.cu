// The paper's Table 7 measured with this library on the GPU: LLaMA 7B's 65
// norm layers in bf16, RMSNorm against DyT, inference (forward) and training
// (forward saving statistics, then backward with every parameter gradient),
// 100 passes, next to cudaMemcpyAsync moving the same bytes. The paper timed
// PyTorch on an H100; see workload.hpp for the workload and the report.
//
//   paper_efficiency [--tokens N] [--width N] [--layers N] [--passes N]   (default: 100 passes timed)
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include <dyt/cuda.cuh>

#include "workload.hpp"

namespace {

using bf16 = __nv_bfloat16;

void require(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}
void require(const dyt::status& s) {
  if (!s) {
    std::fprintf(stderr, "%s\n", s.message());
    std::exit(1);
  }
}

__global__ void fill_random(bf16* p, std::size_t n, std::uint64_t seed) {
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    std::uint64_t z = (std::uint64_t(i) + seed) * 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9u;
    p[i] = __float2bfloat16_rn(float(z >> 40) * (4.0f / 16777216.0f) - 2.0f);  // [-2, 2)
  }
}

template <class T>
T* device_alloc(std::size_t n) {
  T* p = nullptr;
  require(cudaMalloc(&p, n * sizeof(T)), "cudaMalloc");
  return p;
}

// Activations rotate over three sets of buffers: with 4096 x 4096 bf16 (32 MB
// a tensor) they exceed the L2, so every layer reads from HBM, as in a model.
constexpr int kSets = 3;

}  // namespace

int main(int argc, char** argv) {
  const paper::workload w = paper::parse_args(argc, argv, 100);
  const dyt::index_t rows = w.tokens, cols = w.width;
  const std::size_t n = std::size_t(w.elements());
  cudaStream_t stream;
  require(cudaStreamCreate(&stream), "stream");

  bf16 *x[kSets], *y[kSets], *dy[kSets], *dx[kSets];
  for (int s = 0; s < kSets; ++s) {
    bf16** all[] = {&x[s], &y[s], &dy[s], &dx[s]};
    for (int k = 0; k < 4; ++k) {
      *all[k] = device_alloc<bf16>(n);
      fill_random<<<1024, 256, 0, stream>>>(*all[k], n, std::uint64_t(1 + 10 * s + k));
    }
  }
  bf16* gamma = device_alloc<bf16>(std::size_t(cols));
  bf16* dgamma = device_alloc<bf16>(std::size_t(cols));
  bf16* alphas = device_alloc<bf16>(std::size_t(w.layers));
  bf16* dalpha = device_alloc<bf16>(1);
  float* rstd = device_alloc<float>(std::size_t(rows) * std::size_t(w.layers));
  fill_random<<<64, 256, 0, stream>>>(gamma, std::size_t(cols), 99);
  std::vector<bf16> host_alphas(std::size_t(w.layers));
  for (int l = 0; l < w.layers; ++l) host_alphas[std::size_t(l)] = __float2bfloat16_rn(w.alpha0(l));
  require(cudaMemcpy(alphas, host_alphas.data(), host_alphas.size() * sizeof(bf16), cudaMemcpyHostToDevice), "alphas");
  require(cudaGetLastError(), "fill");

  const dyt::RMSNorm<bf16, dyt::cuda> rms(gamma, cols);
  auto dyt_layer = [&](int l) { return dyt::DyT<bf16, dyt::cuda>(alphas + l, gamma, nullptr, cols); };  // LLaMA: no beta
  // One workspace for every backward: the larger of the two layers' needs.
  const std::size_t ws_bytes = std::max(rms.workspace_bytes(rows), dyt_layer(0).workspace_bytes(rows));
  void* ws = ws_bytes ? device_alloc<unsigned char>(ws_bytes) : nullptr;
  const dyt::device_workspace workspace{ws, ws_bytes};

  auto xv = [&](int l) { return dyt::rows_view<const bf16>(x[l % kSets], rows, cols); };
  auto yv = [&](int l) { return dyt::rows_view<bf16>(y[l % kSets], rows, cols); };
  auto dyv = [&](int l) { return dyt::rows_view<const bf16>(dy[l % kSets], rows, cols); };
  auto dxv = [&](int l) { return dyt::rows_view<bf16>(dx[l % kSets], rows, cols); };
  auto stats = [&](int l) { return dyt::RMSNorm<bf16, dyt::cuda>::stats{nullptr, rstd + std::size_t(l) * std::size_t(rows)}; };

  auto rms_inference = [&] {
    for (int l = 0; l < w.layers; ++l) require(rms.forward(xv(l), yv(l), stream));
  };
  auto dyt_inference = [&] {
    for (int l = 0; l < w.layers; ++l) require(dyt_layer(l).forward(xv(l), yv(l), stream));
  };
  auto rms_training = [&] {
    for (int l = 0; l < w.layers; ++l) require(rms.forward(xv(l), yv(l), stats(l), stream));
    for (int l = w.layers - 1; l >= 0; --l)
      require(rms.backward(xv(l), dyv(l), dxv(l), {dgamma}, stream, dyt::grad_mode::overwrite, stats(l), workspace));
  };
  auto dyt_training = [&] {
    for (int l = 0; l < w.layers; ++l) require(dyt_layer(l).forward(xv(l), yv(l), stream));
    for (int l = w.layers - 1; l >= 0; --l)
      require(dyt_layer(l).backward(xv(l), dyv(l), dxv(l), {dalpha, dgamma, nullptr}, stream, dyt::grad_mode::overwrite,
                                  workspace));
  };
  // The floor: copies moving the same bytes (training's backward: 3 tensors,
  // copied as 1.5 tensors each way).
  const std::size_t bytes = n * sizeof(bf16);
  auto copy = [&](int l, std::size_t b) {
    require(cudaMemcpyAsync(y[l % kSets], x[l % kSets], b, cudaMemcpyDeviceToDevice, stream), "copy");
  };
  auto copy_inference = [&] {
    for (int l = 0; l < w.layers; ++l) copy(l, bytes);
  };
  auto copy_training = [&] {
    for (int l = 0; l < w.layers; ++l) copy(l, bytes);
    for (int l = w.layers - 1; l >= 0; --l) {
      copy(l, bytes);
      require(cudaMemcpyAsync(dx[l % kSets], dy[l % kSets], bytes / 2, cudaMemcpyDeviceToDevice, stream), "copy");
    }
  };

  cudaEvent_t start, stop;
  require(cudaEventCreate(&start), "event");
  require(cudaEventCreate(&stop), "event");
  auto time = [&](auto&& pass) {
    pass();  // warm-up
    require(cudaStreamSynchronize(stream), "warm-up");
    require(cudaEventRecord(start, stream), "record");
    for (int p = 0; p < w.measured_passes; ++p) pass();
    require(cudaEventRecord(stop, stream), "record");
    require(cudaEventSynchronize(stop), "sync");
    float ms = 0;
    require(cudaEventElapsedTime(&ms, start, stop), "elapsed");
    return double(ms) * 1e-3 * double(w.passes) / double(w.measured_passes);
  };
  paper::timings t;
  t.rms_inference = time(rms_inference);
  t.dyt_inference = time(dyt_inference);
  t.copy_inference = time(copy_inference);
  t.rms_training = time(rms_training);
  t.dyt_training = time(dyt_training);
  t.copy_training = time(copy_training);

  cudaDeviceProp prop;
  require(cudaGetDeviceProperties(&prop, 0), "properties");
  char where[320];
  std::snprintf(where, sizeof where, "GPU: %s, dyt's CUDA backend, one stream", prop.name);
  paper::print_report(where, w, t);
  return 0;
}
