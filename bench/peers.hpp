// The peers the CPU benchmark measures in the same run as dyt:
//   std_tanh   a plain loop over std::tanh, what DyT costs without a vector tanh;
//   tanh_only  dyt's own tanh policy alone over the same data (no alpha, gamma,
//              beta): the bound for DyT forward in cache;
//   eigen      the Eigen array expressions a user would write for each layer,
//              forward and backward (float math; 16-bit data cast on the fly);
//   onednn     oneDNN's layer normalization, forward (inference: no statistics
//              written) and backward (with the statistics its forward saved).
// Each registers benchmarks named like dyt's own (see common.hpp).
#pragma once

#include "common.hpp"

#include <cmath>
#include <type_traits>
#include <unordered_map>

#if DYT_BENCH_HAVE_EIGEN
#include <Eigen/Core>
#endif
#if DYT_BENCH_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace bench {

// ---------------------------------------------------------------- std::tanh
template <class T>
void dyt_forward_std_tanh(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  using traits = dyt::scalar_traits<T>;
  const float alpha = float(traits::load(t.alpha));
  for (auto _ : state) {
    for (index_t r = 0; r < t.rows; ++r) {
      const T* x = t.x.data() + r * t.cols;
      T* y = t.y.data() + r * t.cols;
      for (index_t j = 0; j < t.cols; ++j)
        y[j] = traits::store(float(traits::load(t.gamma[j])) * std::tanh(alpha * float(traits::load(x[j]))) +
                             float(traits::load(t.beta[j])));
    }
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 2);
}

// ---------------------------------------------------------------- tanh alone
template <class T>
void dyt_forward_tanh_only(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  using C = dyt::compute_t<T>;
  using Tanh = dyt::default_tanh_t<T>;
  const dyt::cpu_detail::row_engine<C, dyt::backend_traits<dyt::cpu, T>::vectorized, true> eng{t.cols};
  for (auto _ : state) {
    for (index_t r = 0; r < t.rows; ++r) {
      const T* x = t.x.data() + r * t.cols;
      T* y = t.y.data() + r * t.cols;
      eng.for_each([&](const auto& at) { at.store(y, Tanh::apply(at.load(x))); });
    }
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 2);
}

// ---------------------------------------------------------------- Eigen
#if DYT_BENCH_HAVE_EIGEN
template <class T>
struct eigen_scalar {
  using type = T;
};
template <>
struct eigen_scalar<dyt::bfloat16> {
  using type = Eigen::bfloat16;
};
template <>
struct eigen_scalar<dyt::half> {
  using type = Eigen::half;
};

// Row-major maps of the tensors, as a user holding raw buffers would write them.
template <class T>
struct eigen_maps {
  using E = typename eigen_scalar<T>::type;
  using array = Eigen::Array<E, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using row = Eigen::Array<E, 1, Eigen::Dynamic>;
  using float_array = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using float_col = Eigen::Array<float, Eigen::Dynamic, 1>;

  static Eigen::Map<const array> in(const tensors<T>& t, const std::vector<T>& v) {
    return {reinterpret_cast<const E*>(v.data()), t.rows, t.cols};
  }
  static Eigen::Map<array> out(tensors<T>& t, std::vector<T>& v) { return {reinterpret_cast<E*>(v.data()), t.rows, t.cols}; }
  static Eigen::Map<const row> vec(const std::vector<T>& v) {
    return {reinterpret_cast<const E*>(v.data()), Eigen::Index(v.size())};
  }
  static Eigen::Map<row> vec_out(std::vector<T>& v) { return {reinterpret_cast<E*>(v.data()), Eigen::Index(v.size())}; }
};

template <class T>
void dyt_forward_eigen(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  using M = eigen_maps<T>;
  const float alpha = float(dyt::scalar_traits<T>::load(t.alpha));
  auto x = M::in(t, t.x).template cast<float>();
  auto y = M::out(t, t.y);
  auto gamma = M::vec(t.gamma).template cast<float>();
  auto beta = M::vec(t.beta).template cast<float>();
  for (auto _ : state) {
    y = (((alpha * x).tanh().rowwise() * gamma).rowwise() + beta).template cast<typename M::E>();
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 2);
}

template <class T>
void dyt_backward_eigen(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  using M = eigen_maps<T>;
  using E = typename M::E;
  const float alpha = float(dyt::scalar_traits<T>::load(t.alpha));
  auto x = M::in(t, t.x).template cast<float>();
  auto dy = M::in(t, t.dy).template cast<float>();
  auto dx = M::out(t, t.dx);
  auto gamma = M::vec(t.gamma).template cast<float>();
  for (auto _ : state) {
    const typename M::float_array th = (alpha * x).tanh();
    const typename M::float_array g = (dy.rowwise() * gamma) * (1.0f - th.square());
    dx = (alpha * g).template cast<E>();
    t.dalpha = dyt::scalar_traits<T>::store((x * g).sum());
    M::vec_out(t.dgamma) = (dy * th).colwise().sum().template cast<E>();
    M::vec_out(t.dbeta) = dy.colwise().sum().template cast<E>();
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 3);
}

template <class T>
void layer_norm_forward_eigen(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  using M = eigen_maps<T>;
  auto x = M::in(t, t.x).template cast<float>();
  auto y = M::out(t, t.y);
  auto gamma = M::vec(t.gamma).template cast<float>();
  auto beta = M::vec(t.beta).template cast<float>();
  for (auto _ : state) {
    const typename M::float_col mean = x.rowwise().mean();
    const typename M::float_col rstd = ((x.colwise() - mean).square().rowwise().mean() + 1e-5f).rsqrt();
    y = ((((x.colwise() - mean).colwise() * rstd).rowwise() * gamma).rowwise() + beta).template cast<typename M::E>();
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 2);
}

template <class T>
void layer_norm_backward_eigen(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  using M = eigen_maps<T>;
  using E = typename M::E;
  auto x = M::in(t, t.x).template cast<float>();
  auto dy = M::in(t, t.dy).template cast<float>();
  auto dx = M::out(t, t.dx);
  auto gamma = M::vec(t.gamma).template cast<float>();
  for (auto _ : state) {
    const typename M::float_col mean = x.rowwise().mean();
    const typename M::float_col rstd = ((x.colwise() - mean).square().rowwise().mean() + 1e-5f).rsqrt();
    const typename M::float_array xh = (x.colwise() - mean).colwise() * rstd;
    const typename M::float_array gh = dy.rowwise() * gamma;
    const typename M::float_col mean_gh = gh.rowwise().mean();
    const typename M::float_col mean_gh_xh = (gh * xh).rowwise().mean();
    dx = (((gh.colwise() - mean_gh) - xh.colwise() * mean_gh_xh).colwise() * rstd).template cast<E>();
    M::vec_out(t.dgamma) = (dy * xh).colwise().sum().template cast<E>();
    M::vec_out(t.dbeta) = dy.colwise().sum().template cast<E>();
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 3);
}

template <class T>
void rms_norm_forward_eigen(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  using M = eigen_maps<T>;
  auto x = M::in(t, t.x).template cast<float>();
  auto y = M::out(t, t.y);
  auto gamma = M::vec(t.gamma).template cast<float>();
  for (auto _ : state) {
    const typename M::float_col rstd = (x.square().rowwise().mean() + 1e-6f).rsqrt();
    y = ((x.colwise() * rstd).rowwise() * gamma).template cast<typename M::E>();
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 2);
}

template <class T>
void rms_norm_backward_eigen(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  using M = eigen_maps<T>;
  using E = typename M::E;
  auto x = M::in(t, t.x).template cast<float>();
  auto dy = M::in(t, t.dy).template cast<float>();
  auto dx = M::out(t, t.dx);
  auto gamma = M::vec(t.gamma).template cast<float>();
  for (auto _ : state) {
    const typename M::float_col rstd = (x.square().rowwise().mean() + 1e-6f).rsqrt();
    const typename M::float_array xh = x.colwise() * rstd;
    const typename M::float_array gh = dy.rowwise() * gamma;
    const typename M::float_col mean_gh_xh = (gh * xh).rowwise().mean();
    dx = ((gh - xh.colwise() * mean_gh_xh).colwise() * rstd).template cast<E>();
    M::vec_out(t.dgamma) = (dy * xh).colwise().sum().template cast<E>();
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 3);
}
#endif  // DYT_BENCH_HAVE_EIGEN

// ---------------------------------------------------------------- oneDNN
#if DYT_BENCH_HAVE_ONEDNN
template <class T>
constexpr dnnl::memory::data_type onednn_type() {
  return std::is_same<T, float>::value ? dnnl::memory::data_type::f32
         : std::is_same<T, dyt::bfloat16>::value ? dnnl::memory::data_type::bf16
                                                 : dnnl::memory::data_type::f16;
}

// oneDNN's CPU engine and stream (one each per process), and its layer
// normalization descriptors in the 2.x API (Debian's 2.6) or the 3.x API.
struct onednn {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  static onednn& get() {
    static onednn instance;
    return instance;
  }

  using fwd = dnnl::layer_normalization_forward;
  using bwd = dnnl::layer_normalization_backward;
  static dnnl::normalization_flags flags() {
    return dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  }

  fwd::primitive_desc forward_pd(dnnl::prop_kind kind, const dnnl::memory::desc& data, float eps) {
#if DNNL_VERSION_MAJOR >= 3
    return fwd::primitive_desc(engine, kind, data, data, eps, flags());
#else
    return fwd::primitive_desc(fwd::desc(kind, data, eps, flags()), engine);
#endif
  }
  bwd::primitive_desc backward_pd(const dnnl::memory::desc& data, float eps, const fwd::primitive_desc& hint) {
#if DNNL_VERSION_MAJOR >= 3
    return bwd::primitive_desc(engine, dnnl::prop_kind::backward, data, data, data, eps, flags(), hint);
#else
    return bwd::primitive_desc(bwd::desc(dnnl::prop_kind::backward, data, data, eps, flags()), engine, hint);
#endif
  }
};

// The buffers of one oneDNN layer normalization: dyt's tensors as memory
// objects, float scale and shift (oneDNN wants them in f32 for every data type).
template <class T>
struct onednn_layer_norm {
  tensors<T>& t;
  onednn& dnn = onednn::get();
  dnnl::memory::desc data_md{{t.rows, t.cols}, onednn_type<T>(), dnnl::memory::format_tag::ab};
  dnnl::memory::desc param_md{{t.cols}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a};
  std::vector<float> scale, shift, dscale, dshift;
  onednn::fwd::primitive_desc train_pd = dnn.forward_pd(dnnl::prop_kind::forward_training, data_md, 1e-5f);
  dnnl::memory mean{train_pd.mean_desc(), dnn.engine}, variance{train_pd.variance_desc(), dnn.engine};

  explicit onednn_layer_norm(tensors<T>& tensors_) : t(tensors_) {
    for (index_t j = 0; j < t.cols; ++j) {
      scale.push_back(float(dyt::scalar_traits<T>::load(t.gamma[std::size_t(j)])));
      shift.push_back(float(dyt::scalar_traits<T>::load(t.beta[std::size_t(j)])));
    }
    dscale.resize(scale.size());
    dshift.resize(shift.size());
  }
  dnnl::memory data(std::vector<T>& v) { return {data_md, dnn.engine, v.data()}; }
  dnnl::memory param(std::vector<float>& v) { return {param_md, dnn.engine, v.data()}; }
};

template <class T>
void layer_norm_forward_onednn(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  onednn_layer_norm<T> ln(t);
  const auto pd = ln.dnn.forward_pd(dnnl::prop_kind::forward_inference, ln.data_md, 1e-5f);
  const dnnl::layer_normalization_forward prim(pd);
  const std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, ln.data(t.x)},
                                                   {DNNL_ARG_DST, ln.data(t.y)},
                                                   {DNNL_ARG_SCALE, ln.param(ln.scale)},
                                                   {DNNL_ARG_SHIFT, ln.param(ln.shift)}};
  for (auto _ : state) {
    prim.execute(ln.dnn.stream, args);
    ln.dnn.stream.wait();
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 2);
}

template <class T>
void layer_norm_backward_onednn(benchmark::State& state) {
  tensors<T>& t = shared_tensors<T>(state);
  onednn_layer_norm<T> ln(t);
  // Statistics from a training forward, outside the timed loop.
  dnnl::layer_normalization_forward(ln.train_pd)
      .execute(ln.dnn.stream, {{DNNL_ARG_SRC, ln.data(t.x)},
                               {DNNL_ARG_DST, ln.data(t.y)},
                               {DNNL_ARG_SCALE, ln.param(ln.scale)},
                               {DNNL_ARG_SHIFT, ln.param(ln.shift)},
                               {DNNL_ARG_MEAN, ln.mean},
                               {DNNL_ARG_VARIANCE, ln.variance}});
  ln.dnn.stream.wait();
  const auto pd = ln.dnn.backward_pd(ln.data_md, 1e-5f, ln.train_pd);
  const dnnl::layer_normalization_backward prim(pd);
  const std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, ln.data(t.x)},          {DNNL_ARG_DIFF_DST, ln.data(t.dy)},
      {DNNL_ARG_DIFF_SRC, ln.data(t.dx)},    {DNNL_ARG_MEAN, ln.mean},
      {DNNL_ARG_VARIANCE, ln.variance},      {DNNL_ARG_SCALE, ln.param(ln.scale)},
      {DNNL_ARG_SHIFT, ln.param(ln.shift)},  // unused, but 2.6 refuses to run without it
      {DNNL_ARG_DIFF_SCALE, ln.param(ln.dscale)}, {DNNL_ARG_DIFF_SHIFT, ln.param(ln.dshift)}};
  for (auto _ : state) {
    prim.execute(ln.dnn.stream, args);
    ln.dnn.stream.wait();
    benchmark::ClobberMemory();
  }
  report(state, t.elements(), sizeof(T), 3);
}
#endif  // DYT_BENCH_HAVE_ONEDNN

// Registers every peer available in this build for storage type T.
template <class T>
void register_peers() {
  const char* type = type_name<T>();
  add("dyt_forward", type, "std_tanh", dyt_forward_std_tanh<T>);
  add("dyt_forward", type, "tanh_only", dyt_forward_tanh_only<T>);
#if DYT_BENCH_HAVE_EIGEN
  add("dyt_forward", type, "eigen", dyt_forward_eigen<T>);
  add("dyt_backward", type, "eigen", dyt_backward_eigen<T>);
  add("layer_norm_forward", type, "eigen", layer_norm_forward_eigen<T>);
  add("layer_norm_backward", type, "eigen", layer_norm_backward_eigen<T>);
  add("rms_norm_forward", type, "eigen", rms_norm_forward_eigen<T>);
  add("rms_norm_backward", type, "eigen", rms_norm_backward_eigen<T>);
#endif
#if DYT_BENCH_HAVE_ONEDNN
  // oneDNN 2.6's CPU layer normalization has no f16.
  if (!std::is_same<T, dyt::half>::value) {
    add("layer_norm_forward", type, "onednn", layer_norm_forward_onednn<T>);
    add("layer_norm_backward", type, "onednn", layer_norm_backward_onednn<T>);
  }
#endif
}

}  // namespace bench
