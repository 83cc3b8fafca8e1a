// CPU benchmarks: every layer (DyT, Derf, DyISRU, LayerNorm, RMSNorm),
// forward and backward, f32, bf16 and f16, next to std::memcpy of the same bytes (the roofline) and the peers of peers.hpp,
// all measured in the same run. dyt runs on one thread, and on two driven
// through the row-range API (forward on subrows, backward through the chunk
// API and reduce_gradients) the way a caller's own thread pool would. The
// fused residual add (forward_residual, backward_residual) runs beside the
// unfused pair it replaces.
// bench/table.py runs this binary and prints the comparison table.
#include "common.hpp"
#include "peers.hpp"

namespace bench {
namespace {

template <class T>
void bm_memcpy(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  const std::size_t bytes = t.elements() * sizeof(T);
  for (auto _ : state) {
    std::memcpy(t.y.data(), t.x.data(), bytes);
    benchmark::DoNotOptimize(t.y.data());
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 2);
}

// The layers built over the same tensors, and their gradient buffers.
template <class T>
struct dyt_layer {
  static constexpr const char* name = "dyt";
  static dyt::DyT<T> make(tensors<T>& t) { return {&t.alpha, t.gamma.data(), t.beta.data(), t.cols}; }
  static typename dyt::DyT<T>::gradients grads(tensors<T>& t) { return {&t.dalpha, t.dgamma.data(), t.dbeta.data()}; }
};
// Derf and DyISRU: DyT's implementation with erf and u / sqrt(1 + u^2).
template <class T>
struct derf_layer {
  static constexpr const char* name = "derf";
  static dyt::Derf<T> make(tensors<T>& t) { return {&t.alpha, &t.shift, t.gamma.data(), t.beta.data(), t.cols}; }
  static typename dyt::Derf<T>::gradients grads(tensors<T>& t) {
    return {&t.dalpha, &t.dshift, t.dgamma.data(), t.dbeta.data()};
  }
};
template <class T>
struct dyisru_layer {
  static constexpr const char* name = "dyisru";
  static dyt::DyISRU<T> make(tensors<T>& t) { return {&t.alpha, t.gamma.data(), t.beta.data(), t.cols}; }
  static typename dyt::DyISRU<T>::gradients grads(tensors<T>& t) {
    return {&t.dalpha, t.dgamma.data(), t.dbeta.data()};
  }
};
template <class T>
struct layer_norm_layer {
  static constexpr const char* name = "layer_norm";
  static dyt::LayerNorm<T> make(tensors<T>& t) { return {t.gamma.data(), t.beta.data(), t.cols}; }
  static typename dyt::LayerNorm<T>::gradients grads(tensors<T>& t) { return {t.dgamma.data(), t.dbeta.data()}; }
};
template <class T>
struct rms_norm_layer {
  static constexpr const char* name = "rms_norm";
  static dyt::RMSNorm<T> make(tensors<T>& t) { return {t.gamma.data(), t.cols}; }
  static typename dyt::RMSNorm<T>::gradients grads(tensors<T>& t) { return {t.dgamma.data()}; }
};

// One thread: the whole-tensor calls.
template <class Layer, class T>
void bm_forward(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  const auto layer = Layer::make(t);
  for (auto _ : state) {
    dyt::check(layer.forward(t.in(t.x), t.out(t.y)));
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 2);
}

template <class Layer, class T>
void bm_backward(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  const auto layer = Layer::make(t);
  const auto grads = Layer::grads(t);
  for (auto _ : state) {
    dyt::check(layer.backward(t.in(t.x), t.in(t.dy), t.out(t.dx), grads));
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 3);
}

// Two threads through the row-range API.
constexpr int threads = 2;

template <class Layer, class T>
void bm_forward_threads(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  const auto layer = Layer::make(t);
  thread_pool pool(threads);
  const auto x = t.in(t.x);
  const auto y = t.out(t.y);
  const std::function<void(int)> part = [&](int i) {
    const auto rows = part_rows(t.rows, i, pool.size());
    if (rows.first < rows.second)
      dyt::check(layer.forward(x.subrows(rows.first, rows.second), y.subrows(rows.first, rows.second)));
  };
  for (auto _ : state) {
    pool.run(part);
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 2);
}

template <class Layer, class T>
void bm_backward_threads(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  const auto layer = Layer::make(t);
  const auto grads = Layer::grads(t);
  thread_pool pool(threads);
  const dyt::backward_plan plan = dyt::make_backward_plan(t.rows);
  const std::size_t bytes = layer.workspace_bytes(plan);
  std::vector<double> workspace(bytes / sizeof(double) + 1);  // double: aligned for any compute type
  const std::function<void(int)> part = [&](int i) {
    const auto chunks = part_rows(plan.chunks, i, pool.size());
    if (chunks.first < chunks.second)
      dyt::check(layer.backward_chunks(plan, chunks.first, chunks.second, t.in(t.x), t.in(t.dy), t.out(t.dx),
                                       workspace.data(), bytes));
  };
  for (auto _ : state) {
    pool.run(part);
    dyt::check(layer.reduce_gradients(plan, workspace.data(), bytes, grads));
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 3);
}

// ---- The fused residual add (issue 6) against the unfused pair ----------------
// The unfused pair's add runs the library's own row engine (the same vector
// conversions forward_residual's first sweep uses), so the comparison measures
// fusion, not a slower add. Bytes counted are what must move: forward x and
// the residual read, the new residual and y written (4 tensors); backward h,
// dy and dh read, dx written (4 tensors).
template <class T>
void add_into(dyt::rows_view<const T> x, dyt::rows_view<T> acc) {
  using C = dyt::compute_t<T>;
  const dyt::cpu_detail::row_engine<C, dyt::backend_traits<dyt::cpu, T>::vectorized> eng{x.cols};
  for (index_t r = 0; r < x.rows; ++r) {
    const T* x_row = x.row(r);
    T* acc_row = acc.row(r);
    eng.for_each([&](const auto& at) {
      auto h = at.load(x_row) + at.load(acc_row);
      at.store(acc_row, decltype(h)(h));
    });
  }
}

template <class Layer, class T, bool Fused>
void bm_residual_forward(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  const auto layer = Layer::make(t);
  std::vector<T> residual = t.dy;  // its own copy: it is written every iteration
  const auto res = dyt::make_view(residual.data(), t.rows, t.cols);
  for (auto _ : state) {
    if (Fused) {
      dyt::check(layer.forward_residual(t.in(t.x), res, t.out(t.y)));
    } else {
      add_into<T>(t.in(t.x), res);
      dyt::check(layer.forward(res, t.out(t.y)));
    }
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 4);
}

template <class Layer, class T, bool Fused>
void bm_residual_backward(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  const auto layer = Layer::make(t);
  const auto grads = Layer::grads(t);
  for (auto _ : state) {  // h = x, dh = y
    if (Fused) {
      dyt::check(layer.backward_residual(t.in(t.x), t.in(t.dy), t.in(t.y), t.out(t.dx), grads));
    } else {
      dyt::check(layer.backward(t.in(t.x), t.in(t.dy), t.out(t.dx), grads));
      add_into<T>(t.in(t.y), t.out(t.dx));
    }
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 4);
}

// ---- Quantized output (issue 6 part 2; ops/quantize.hpp) ---------------------
// Bytes that must move: x read, one byte of code per element written, and
// the scales (a row's worth per row for the dynamic scale, a column's worth
// for the static one). "static" divides by per-channel scales computed once
// at load time (DyT's static_scales: never clips); "dynamic" finds each
// row's largest |y| first, then encodes: the norms compute y again while the
// row is in cache, the point-wise layers hold it in a row buffer.
// memcpy_<q> copies half those bytes: the same bytes moved.
template <class Q>
const char* quant_name() {
  return std::is_same<Q, std::int8_t>::value ? "int8" : "e4m3";
}

inline void report_bytes(benchmark::State& state, std::size_t elements, double bytes) {
  state.SetBytesProcessed(int64_t(bytes) * state.iterations());
  state.counters["elements_per_second"] =
      benchmark::Counter(double(elements) * double(state.iterations()), benchmark::Counter::kIsRate);
  const double roofline = memcpy_bandwidth(std::size_t(bytes / 2));
  state.counters["x_memcpy"] =
      benchmark::Counter(bytes * double(state.iterations()) / roofline, benchmark::Counter::kIsRate);
}

template <class T>
double quantized_bytes(const tensors<T>& t, index_t scale_count) {
  using C = dyt::compute_t<T>;
  return double(t.elements()) * double(sizeof(T) + 1) + double(scale_count) * double(sizeof(C));
}

template <class T>
void bm_memcpy_quantized(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  const double bytes = quantized_bytes(t, t.rows);
  const std::size_t half = std::size_t(bytes / 2);
  static std::vector<char> src, dst;
  if (src.size() < half) {
    src.assign(half, 1);
    dst.assign(half, 2);
  }
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), half);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  report_bytes(state, t.elements(), bytes);
}

template <class Layer, class T, class Q, bool Static>
void bm_forward_quantized(benchmark::State& state) {
  using C = dyt::compute_t<T>;
  tensors<T>& t = shared_tensors<T>(state);
  const auto layer = Layer::make(t);
  std::vector<Q> codes(t.elements());
  const auto y = dyt::make_view(codes.data(), t.rows, t.cols);
  std::vector<C> scales(std::size_t(Static ? t.cols : t.rows));
  if constexpr (Static) dyt::check(layer.template static_scales<Q>(scales.data()));
  for (auto _ : state) {
    if constexpr (Static)
      dyt::check(layer.forward_quantized(t.in(t.x), y, dyt::per_channel_scale<C>{scales.data()}));
    else
      dyt::check(layer.forward_quantized(t.in(t.x), y, dyt::per_row_scale<C>{scales.data()}));
    benchmark::ClobberMemory();
  }
  report_bytes(state, t.elements(), quantized_bytes(t, Static ? t.cols : t.rows));
}

template <class T, class Q>
void register_quantized() {
  const std::string q = quant_name<Q>();
  const char* type = type_name<T>();
  add("memcpy_" + q, type, "std", bm_memcpy_quantized<T>);
  add("dyt_forward_" + q, type, "static", bm_forward_quantized<dyt_layer<T>, T, Q, true>);
  add("dyt_forward_" + q, type, "dynamic", bm_forward_quantized<dyt_layer<T>, T, Q, false>);
  add("layer_norm_forward_" + q, type, "dynamic", bm_forward_quantized<layer_norm_layer<T>, T, Q, false>);
  add("rms_norm_forward_" + q, type, "dynamic", bm_forward_quantized<rms_norm_layer<T>, T, Q, false>);
}

template <template <class> class Layer, class T>
void register_layer() {
  using L = Layer<T>;
  const std::string name = L::name;
  const char* type = type_name<T>();
  add(name + "_forward", type, "dyt", bm_forward<L, T>);
  add(name + "_backward", type, "dyt", bm_backward<L, T>);
  add(name + "_forward", type, "dyt_2threads", bm_forward_threads<L, T>);
  add(name + "_backward", type, "dyt_2threads", bm_backward_threads<L, T>);
  add(name + "_residual_forward", type, "dyt", bm_residual_forward<L, T, true>);
  add(name + "_residual_forward", type, "unfused", bm_residual_forward<L, T, false>);
  add(name + "_residual_backward", type, "dyt", bm_residual_backward<L, T, true>);
  add(name + "_residual_backward", type, "unfused", bm_residual_backward<L, T, false>);
}

template <class T>
void register_type() {
  add("memcpy", type_name<T>(), "std", bm_memcpy<T>);
  register_layer<dyt_layer, T>();
  register_layer<derf_layer, T>();
  register_layer<dyisru_layer, T>();
  register_layer<layer_norm_layer, T>();
  register_layer<rms_norm_layer, T>();
  register_peers<T>();
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  bench::register_type<float>();
  bench::register_type<dyt::bfloat16>();
  bench::register_type<dyt::half>();
  bench::register_quantized<float, std::int8_t>();
  bench::register_quantized<float, dyt::float8_e4m3>();
  bench::register_quantized<dyt::bfloat16, std::int8_t>();
  bench::register_quantized<dyt::bfloat16, dyt::float8_e4m3>();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
