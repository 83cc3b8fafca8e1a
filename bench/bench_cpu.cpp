// CPU benchmarks of every layer, forward and backward, with std::memcpy of the
// same bytes measured in the same run as the roofline.
//
// Bytes that must move: forward reads x and writes y (2 passes); backward
// reads x and dy and writes dx (3 passes). Parameters and their gradients are
// a row's worth and are not counted. `bytes_per_second` is that count over the
// time; `x_memcpy` divides it by memcpy's bandwidth on a buffer of the same
// size, measured once per shape at start-up.
#include <benchmark/benchmark.h>

#include <dyt/dyt.hpp>

#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace {

using dyt::index_t;

template <class T>
const char* type_name();
template <>
const char* type_name<float>() { return "f32"; }
template <>
const char* type_name<dyt::bfloat16>() { return "bf16"; }
template <>
const char* type_name<dyt::half>() { return "f16"; }

// Random, never-zero inputs, touched before timing so page faults stay out.
template <class T>
struct tensors {
  index_t rows, cols;
  std::vector<T> x, y, dy, dx, gamma, beta, dgamma, dbeta;
  T alpha{}, dalpha{};

  tensors(index_t rows_, index_t cols_) : rows(rows_), cols(cols_) {
    const std::size_t n = std::size_t(rows) * std::size_t(cols);
    std::mt19937 rng(12345);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto fill = [&](std::vector<T>& v, std::size_t size, float mean, float spread) {
      v.resize(size);
      for (T& e : v) e = T(mean + spread * normal(rng));
    };
    fill(x, n, 0.0f, 1.0f);
    fill(dy, n, 0.0f, 1.0f);
    fill(y, n, 0.0f, 1.0f);
    fill(dx, n, 0.0f, 1.0f);
    fill(gamma, std::size_t(cols), 1.0f, 0.1f);
    fill(beta, std::size_t(cols), 0.0f, 0.1f);
    fill(dgamma, std::size_t(cols), 0.0f, 1.0f);
    fill(dbeta, std::size_t(cols), 0.0f, 1.0f);
    alpha = T(0.5f);
  }
  dyt::rows_view<const T> in(const std::vector<T>& v) const { return dyt::make_view<const T>(v.data(), rows, cols); }
  dyt::rows_view<T> out(std::vector<T>& v) { return dyt::make_view(v.data(), rows, cols); }
};

// memcpy bandwidth (bytes read + written per second) for a buffer of `bytes`,
// best of several repetitions, cached per size.
double memcpy_bandwidth(std::size_t bytes) {
  static std::map<std::size_t, double> cache;
  auto found = cache.find(bytes);
  if (found != cache.end()) return found->second;
  std::vector<char> src(bytes, 1), dst(bytes, 2);
  double best = 1e300;
  const int reps = bytes > (64u << 20) ? 5 : 50;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    std::memcpy(dst.data(), src.data(), bytes);
    benchmark::DoNotOptimize(dst.data());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = s < best ? s : best;
  }
  return cache[bytes] = 2.0 * double(bytes) / best;
}

void report(benchmark::State& state, std::size_t elements, std::size_t elem_bytes, int passes) {
  const double bytes = double(elements) * double(elem_bytes) * passes;
  state.SetBytesProcessed(int64_t(bytes) * state.iterations());
  state.counters["elements_per_second"] =
      benchmark::Counter(double(elements) * double(state.iterations()), benchmark::Counter::kIsRate);
  // A rate counter is divided by the elapsed time, so this is the byte rate
  // over memcpy's on a tensor of the same size: the fraction of the roofline.
  const double roofline = memcpy_bandwidth(elements * elem_bytes);
  state.counters["x_memcpy"] = benchmark::Counter(bytes * double(state.iterations()) / roofline,
                                                  benchmark::Counter::kIsRate);
}

template <class T>
void bm_memcpy(benchmark::State& state) {
  tensors<T> t(state.range(0), state.range(1));
  const std::size_t bytes = t.x.size() * sizeof(T);
  for (auto _ : state) {
    std::memcpy(t.y.data(), t.x.data(), bytes);
    benchmark::DoNotOptimize(t.y.data());
    benchmark::ClobberMemory();
  }
  report(state, t.x.size(), sizeof(T), 2);
}

template <class T>
void bm_dyt_forward(benchmark::State& state) {
  tensors<T> t(state.range(0), state.range(1));
  dyt::DyT<T> layer(&t.alpha, t.gamma.data(), t.beta.data(), t.cols);
  for (auto _ : state) {
    dyt::check(layer.forward(t.in(t.x), t.out(t.y)));
    benchmark::ClobberMemory();
  }
  report(state, t.x.size(), sizeof(T), 2);
}

template <class T>
void bm_dyt_backward(benchmark::State& state) {
  tensors<T> t(state.range(0), state.range(1));
  dyt::DyT<T> layer(&t.alpha, t.gamma.data(), t.beta.data(), t.cols);
  for (auto _ : state) {
    dyt::check(layer.backward(t.in(t.x), t.in(t.dy), t.out(t.dx), {&t.dalpha, t.dgamma.data(), t.dbeta.data()}));
    benchmark::ClobberMemory();
  }
  report(state, t.x.size(), sizeof(T), 3);
}

template <class T>
void bm_layer_norm_forward(benchmark::State& state) {
  tensors<T> t(state.range(0), state.range(1));
  dyt::LayerNorm<T> layer(t.gamma.data(), t.beta.data(), t.cols);
  for (auto _ : state) {
    dyt::check(layer.forward(t.in(t.x), t.out(t.y)));
    benchmark::ClobberMemory();
  }
  report(state, t.x.size(), sizeof(T), 2);
}

template <class T>
void bm_layer_norm_backward(benchmark::State& state) {
  tensors<T> t(state.range(0), state.range(1));
  dyt::LayerNorm<T> layer(t.gamma.data(), t.beta.data(), t.cols);
  for (auto _ : state) {
    dyt::check(layer.backward(t.in(t.x), t.in(t.dy), t.out(t.dx), {t.dgamma.data(), t.dbeta.data()}));
    benchmark::ClobberMemory();
  }
  report(state, t.x.size(), sizeof(T), 3);
}

template <class T>
void bm_rms_norm_forward(benchmark::State& state) {
  tensors<T> t(state.range(0), state.range(1));
  dyt::RMSNorm<T> layer(t.gamma.data(), t.cols);
  for (auto _ : state) {
    dyt::check(layer.forward(t.in(t.x), t.out(t.y)));
    benchmark::ClobberMemory();
  }
  report(state, t.x.size(), sizeof(T), 2);
}

template <class T>
void bm_rms_norm_backward(benchmark::State& state) {
  tensors<T> t(state.range(0), state.range(1));
  dyt::RMSNorm<T> layer(t.gamma.data(), t.cols);
  for (auto _ : state) {
    dyt::check(layer.backward(t.in(t.x), t.in(t.dy), t.out(t.dx), {t.dgamma.data()}));
    benchmark::ClobberMemory();
  }
  report(state, t.x.size(), sizeof(T), 3);
}

// The shapes of ANCHORS.md: decode (1 and 16 rows), in-cache, and DRAM-sized.
void shapes(benchmark::internal::Benchmark* b) {
  for (auto shape : {std::pair<int, int>{1, 4096}, {16, 4096}, {1024, 768}, {4096, 4096}, {2048, 8192}})
    b->Args({shape.first, shape.second});
  b->ArgNames({"rows", "cols"});
  // Bandwidth is bytes over wall-clock time: CPU time would hide memory stalls
  // and overstate every rate on a busy machine.
  b->UseRealTime();
}

template <class T>
void register_type() {
  const std::string t = type_name<T>();
  benchmark::RegisterBenchmark(("memcpy/" + t).c_str(), bm_memcpy<T>)->Apply(shapes);
  benchmark::RegisterBenchmark(("dyt_forward/" + t).c_str(), bm_dyt_forward<T>)->Apply(shapes);
  benchmark::RegisterBenchmark(("dyt_backward/" + t).c_str(), bm_dyt_backward<T>)->Apply(shapes);
  benchmark::RegisterBenchmark(("layer_norm_forward/" + t).c_str(), bm_layer_norm_forward<T>)->Apply(shapes);
  benchmark::RegisterBenchmark(("layer_norm_backward/" + t).c_str(), bm_layer_norm_backward<T>)->Apply(shapes);
  benchmark::RegisterBenchmark(("rms_norm_forward/" + t).c_str(), bm_rms_norm_forward<T>)->Apply(shapes);
  benchmark::RegisterBenchmark(("rms_norm_backward/" + t).c_str(), bm_rms_norm_backward<T>)->Apply(shapes);
}

}  // namespace

int main(int argc, char** argv) {
  register_type<float>();
  register_type<dyt::bfloat16>();
  register_type<dyt::half>();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
