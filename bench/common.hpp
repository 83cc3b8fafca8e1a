// What every CPU benchmark shares: the tensors, the byte counters, the
// memcpy roofline, the shapes and a small thread pool for the 2-thread runs.
//
// Bytes that must move: forward reads x and writes y (2 passes); backward
// reads x and dy and writes dx (3 passes). Parameters and their gradients are
// a row's worth and are not counted. `bytes_per_second` is that count over the
// wall-clock time; `x_memcpy` divides it by memcpy's bandwidth on a buffer of
// the same size, measured once per shape at start-up.
#pragma once

#include <benchmark/benchmark.h>

#include <dyt/dyt.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bench {

using dyt::index_t;

template <class T>
const char* type_name();
template <>
inline const char* type_name<float>() { return "f32"; }
template <>
inline const char* type_name<dyt::bfloat16>() { return "bf16"; }
template <>
inline const char* type_name<dyt::half>() { return "f16"; }

// Random, never-zero inputs, written before timing so page faults stay out.
template <class T>
struct tensors {
  index_t rows, cols;
  std::vector<T> x, y, dy, dx, gamma, beta, dgamma, dbeta;
  T alpha{}, dalpha{};
  T shift{}, dshift{};  // Derf's

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
    shift = T(0.125f);
  }
  std::size_t elements() const { return x.size(); }
  dyt::rows_view<const T> in(const std::vector<T>& v) const { return dyt::make_view<const T>(v.data(), rows, cols); }
  dyt::rows_view<T> out(std::vector<T>& v) { return dyt::make_view(v.data(), rows, cols); }
};

// The tensors of one shape, made once and shared by every benchmark of that
// shape and type: filling DRAM-sized buffers with random numbers takes longer
// than timing them. Benchmarks only write outputs (y, dx, gradients).
template <class T>
tensors<T>& shared_tensors(const benchmark::State& state) {
  static std::map<std::pair<index_t, index_t>, std::unique_ptr<tensors<T>>> made;
  const std::pair<index_t, index_t> shape{index_t(state.range(0)), index_t(state.range(1))};
  auto& slot = made[shape];
  if (!slot) slot.reset(new tensors<T>(shape.first, shape.second));
  return *slot;
}

// memcpy bandwidth (bytes read + written per second) for a buffer of `bytes`,
// the best of several repetitions, cached per size.
inline double memcpy_bandwidth(std::size_t bytes) {
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

inline void report(benchmark::State& state, std::size_t elements, std::size_t elem_bytes, int passes) {
  const double bytes = double(elements) * double(elem_bytes) * passes;
  state.SetBytesProcessed(int64_t(bytes) * state.iterations());
  state.counters["elements_per_second"] =
      benchmark::Counter(double(elements) * double(state.iterations()), benchmark::Counter::kIsRate);
  // A rate counter is divided by the elapsed time, so this is the byte rate
  // over memcpy's on a tensor of the same size: the fraction of the roofline.
  const double roofline = memcpy_bandwidth(elements * elem_bytes);
  state.counters["x_memcpy"] =
      benchmark::Counter(bytes * double(state.iterations()) / roofline, benchmark::Counter::kIsRate);
}

// Benchmarks are named  <layer>_<pass>/<type>/<implementation>/rows:M/cols:N[/threads:K]
// (bench/table.py reads them back). The shapes of the issue: decode (1 and 16
// rows), in cache (1024 x 768) and DRAM-sized (4096 x 4096, 2048 x 8192).
inline void shapes(benchmark::internal::Benchmark* b) {
  for (auto shape : {std::pair<int, int>{1, 4096}, {16, 4096}, {1024, 768}, {4096, 4096}, {2048, 8192}})
    b->Args({shape.first, shape.second});
  b->ArgNames({"rows", "cols"});
  // Bandwidth is bytes over wall-clock time: CPU time would hide memory stalls.
  b->UseRealTime();
}

template <class Fn>
void add(const std::string& layer_pass, const char* type, const char* impl, Fn fn) {
  benchmark::RegisterBenchmark((layer_pass + "/" + type + "/" + impl).c_str(), fn)->Apply(shapes);
}

// A fixed set of worker threads that run `part(i)` for i in [0, parts), the
// calling thread taking part 0: how a caller's own pool drives the row-range
// API. Threads start once, not per iteration.
class thread_pool {
 public:
  explicit thread_pool(int threads) {
    for (int t = 1; t < threads; ++t) workers_.emplace_back([this, t] { work(t); });
  }
  ~thread_pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int size() const { return int(workers_.size()) + 1; }

  void run(const std::function<void(int)>& part) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      part_ = &part;
      pending_ = int(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    part(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
  }

 private:
  void work(int t) {
    long seen = 0;
    for (;;) {
      const std::function<void(int)>* part;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        part = part_;
      }
      (*part)(t);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* part_ = nullptr;
  int pending_ = 0;
  long generation_ = 0;
  bool stop_ = false;
};

// Rows [begin, end) of part `i` of `parts` near-equal ranges.
inline std::pair<index_t, index_t> part_rows(index_t rows, int i, int parts) {
  return {rows * i / parts, rows * (i + 1) / parts};
}

}  // namespace bench
