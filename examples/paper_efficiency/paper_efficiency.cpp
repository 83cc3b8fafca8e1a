// The paper's Table 7 measured with this library on the CPU: LLaMA 7B's 65
// norm layers, RMSNorm against DyT, inference (forward) and training (forward,
// then backward with every parameter gradient), next to a memory copy of the
// same bytes. One thread. See workload.hpp for the workload and the report.
//
//   paper_efficiency [--tokens N] [--width N] [--layers N] [--passes N]
//
// A pass over 65 layers of 4096 x 4096 bf16 moves 4.4 GB (inference) or 10.9 GB
// (training): seconds on one core, so by default one pass is timed and the
// report scales it to the paper's 100 (--passes times more).
#include <dyt/dyt.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "workload.hpp"

namespace {

using bf16 = dyt::bfloat16;
using clock_type = std::chrono::steady_clock;

// Activations rotate over three sets of buffers: together they are larger
// than any CPU's last-level cache, so every layer reads from memory, as it
// would in a model (a cached input would flatter both layers).
constexpr int kSets = 3;

struct buffers {
  std::vector<bf16> x, y, dy, dx;
};

void fill_random(std::vector<bf16>& v, std::uint64_t seed) {
  std::uint64_t s = seed * 0x9e3779b97f4a7c15u + 1;
  for (bf16& e : v) {
    s = s * 6364136223846793005u + 1442695040888963407u;
    e = bf16(float(s >> 40) * (4.0f / 16777216.0f) - 2.0f);  // [-2, 2)
  }
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

void require(const dyt::status& s) {
  if (!s) {
    std::fprintf(stderr, "%s\n", s.message());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const paper::workload w = paper::parse_args(argc, argv, 1);
  const dyt::index_t rows = w.tokens, cols = w.width;
  const std::size_t n = std::size_t(w.elements());

  std::vector<buffers> sets(kSets);
  for (int s = 0; s < kSets; ++s) {
    for (auto* v : {&sets[s].x, &sets[s].y, &sets[s].dy, &sets[s].dx}) v->resize(n);
    fill_random(sets[s].x, 1 + std::uint64_t(s));
    fill_random(sets[s].dy, 100 + std::uint64_t(s));
    fill_random(sets[s].y, 200 + std::uint64_t(s));  // touched before timing
    fill_random(sets[s].dx, 300 + std::uint64_t(s));
  }
  std::vector<bf16> gamma(static_cast<std::size_t>(cols)), dgamma(static_cast<std::size_t>(cols));
  fill_random(gamma, 7);
  std::vector<bf16> alphas(static_cast<std::size_t>(w.layers)), dalpha(1);
  for (int l = 0; l < w.layers; ++l) alphas[std::size_t(l)] = bf16(w.alpha0(l));
  std::vector<float> rstd(std::size_t(rows) * std::size_t(w.layers));  // RMSNorm's saved statistics, per layer

  auto x_of = [&](int l) { return dyt::make_view<const bf16>(sets[l % kSets].x.data(), rows, cols); };
  auto y_of = [&](int l) { return dyt::make_view(sets[l % kSets].y.data(), rows, cols); };
  auto dy_of = [&](int l) { return dyt::make_view<const bf16>(sets[l % kSets].dy.data(), rows, cols); };
  auto dx_of = [&](int l) { return dyt::make_view(sets[l % kSets].dx.data(), rows, cols); };

  const dyt::RMSNorm<bf16> rms(gamma.data(), cols);
  auto dyt_layer = [&](int l) { return dyt::DyT<bf16>(&alphas[std::size_t(l)], gamma.data(), nullptr, cols); };  // LLaMA: no beta
  auto stats_of = [&](int l) { return dyt::RMSNorm<bf16>::stats{nullptr, rstd.data() + std::size_t(l) * std::size_t(rows)}; };

  // One pass of each kind; the caller times `measured_passes` of them.
  auto rms_inference = [&] {
    for (int l = 0; l < w.layers; ++l) require(rms.forward(x_of(l), y_of(l)));
  };
  auto dyt_inference = [&] {
    for (int l = 0; l < w.layers; ++l) require(dyt_layer(l).forward(x_of(l), y_of(l)));
  };
  auto rms_training = [&] {
    for (int l = 0; l < w.layers; ++l) require(rms.forward(x_of(l), y_of(l), stats_of(l)));
    for (int l = w.layers - 1; l >= 0; --l)
      require(rms.backward(x_of(l), dy_of(l), dx_of(l), {dgamma.data()}, dyt::grad_mode::overwrite, stats_of(l)));
  };
  auto dyt_training = [&] {
    for (int l = 0; l < w.layers; ++l) require(dyt_layer(l).forward(x_of(l), y_of(l)));
    for (int l = w.layers - 1; l >= 0; --l)
      require(dyt_layer(l).backward(x_of(l), dy_of(l), dx_of(l), {dalpha.data(), dgamma.data(), nullptr}));
  };
  // The floor: a copy moving the same bytes (inference 2 tensors a layer;
  // training 2 in forward and 3 in backward, copied as 1.5 tensors each way).
  const std::size_t tensor_bytes = n * sizeof(bf16);
  auto copy = [&](int l, std::size_t bytes) {
    std::memcpy(sets[l % kSets].y.data(), sets[l % kSets].x.data(), bytes);
  };
  auto copy_inference = [&] {
    for (int l = 0; l < w.layers; ++l) copy(l, tensor_bytes);
  };
  std::vector<bf16> spill(n / 2 + 1);  // the half tensor beyond y for backward's 1.5
  auto copy_training = [&] {
    for (int l = 0; l < w.layers; ++l) copy(l, tensor_bytes);
    for (int l = w.layers - 1; l >= 0; --l) {
      copy(l, tensor_bytes);
      std::memcpy(spill.data(), sets[l % kSets].dy.data(), tensor_bytes / 2);
    }
  };

  auto time = [&](auto&& pass) {
    pass();  // warm-up: first touches, page faults
    const auto t0 = clock_type::now();
    for (int p = 0; p < w.measured_passes; ++p) pass();
    return seconds_since(t0) * double(w.passes) / double(w.measured_passes);
  };
  paper::timings t;
  t.rms_inference = time(rms_inference);
  t.dyt_inference = time(dyt_inference);
  t.copy_inference = time(copy_inference);
  t.rms_training = time(rms_training);
  t.dyt_training = time(dyt_training);
  t.copy_training = time(copy_training);
  paper::print_report("CPU, one thread, dyt's SIMD backend", w, t);
  return 0;
}
