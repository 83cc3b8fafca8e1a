// norms.hpp: the three normalization layers of the model, each a thin owner of
// its parameters and gradients around one of dyt's layers. They share one
// interface, so the model is written once and takes the norm as a template
// parameter:
//
//   Norm(cols, site, init)             parameters at their usual initial values
//   forward(x, y)                      y = norm(x); keeps what backward needs
//   backward(x, dy, dx)                dx, and the parameter gradients (overwritten)
//   for_each_param(f)                  f(param_ref) for every parameter tensor
//
// dyt's layers hold pointers to the caller's parameters and own nothing, so a
// layer object is made on each call from the current parameter storage: it is
// three pointers and an integer, and no pointer can outlive a reallocation.
#pragma once

#include <dyt/alpha0.hpp>
#include <dyt/dyt.hpp>
#include <dyt/eigen.hpp>
#include <vector>

#include "tensor.hpp"

namespace tiny_lm {

// DyT's initial alpha at each site; the other norms ignore it.
struct norm_init {
  float alpha0_attention = 1.0f;
  float alpha0_ffn = 1.0f;
  float alpha0_final = 1.0f;

  float alpha0(dyt::norm_site site) const {
    switch (site) {
      case dyt::norm_site::attention:
        return alpha0_attention;
      case dyt::norm_site::ffn:
        return alpha0_ffn;
      case dyt::norm_site::final_norm:
        break;
    }
    return alpha0_final;
  }
};

// A refused call would mean a shape bug in the model: stop with dyt's message.
inline void require(const dyt::status& s) { dyt::check(s); }

template <class T>
class layer_norm_site {
 public:
  static constexpr const char* name = "LayerNorm";
  using stats_type = typename dyt::LayerNorm<T>::compute_type;

  layer_norm_site(int cols, dyt::norm_site, const norm_init&)
      : gamma_(Mat<T>::Ones(1, cols)), beta_(Mat<T>::Zero(1, cols)), dgamma_(gamma_), dbeta_(beta_) {}

  void forward(const Mat<T>& x, Mat<T>& y) {
    mean_.resize(std::size_t(x.rows()));
    rstd_.resize(std::size_t(x.rows()));
    y.resize(x.rows(), x.cols());
    require(layer().forward(dyt::eigen::view(x), dyt::eigen::view(y), {mean_.data(), rstd_.data()}));
  }
  // Reuses forward's per-row mean and rstd instead of recomputing them.
  void backward(const Mat<T>& x, const Mat<T>& dy, Mat<T>& dx) {
    dx.resize(x.rows(), x.cols());
    require(layer().backward(dyt::eigen::view(x), dyt::eigen::view(dy), dyt::eigen::view(dx),
                             {dgamma_.data(), dbeta_.data()}, dyt::grad_mode::overwrite, {mean_.data(), rstd_.data()}));
  }
  template <class F>
  void for_each_param(F&& f) {
    f(param_ref<T>{"gamma", &gamma_, &dgamma_, false});
    f(param_ref<T>{"beta", &beta_, &dbeta_, false});
  }

 private:
  dyt::LayerNorm<T> layer() const { return {gamma_.data(), beta_.data(), gamma_.cols(), 1e-5}; }

  Mat<T> gamma_, beta_, dgamma_, dbeta_;
  std::vector<stats_type> mean_, rstd_;
};

// RMSNorm as in LLaMA: a gain, no bias.
template <class T>
class rms_norm_site {
 public:
  static constexpr const char* name = "RMSNorm";
  using stats_type = typename dyt::RMSNorm<T>::compute_type;

  rms_norm_site(int cols, dyt::norm_site, const norm_init&) : gamma_(Mat<T>::Ones(1, cols)), dgamma_(gamma_) {}

  void forward(const Mat<T>& x, Mat<T>& y) {
    rstd_.resize(std::size_t(x.rows()));
    y.resize(x.rows(), x.cols());
    require(layer().forward(dyt::eigen::view(x), dyt::eigen::view(y), {nullptr, rstd_.data()}));
  }
  void backward(const Mat<T>& x, const Mat<T>& dy, Mat<T>& dx) {
    dx.resize(x.rows(), x.cols());
    require(layer().backward(dyt::eigen::view(x), dyt::eigen::view(dy), dyt::eigen::view(dx), {dgamma_.data()},
                             dyt::grad_mode::overwrite, {nullptr, rstd_.data()}));
  }
  template <class F>
  void for_each_param(F&& f) {
    f(param_ref<T>{"gamma", &gamma_, &dgamma_, false});
  }

 private:
  dyt::RMSNorm<T> layer() const { return {gamma_.data(), gamma_.cols(), 1e-6}; }

  Mat<T> gamma_, dgamma_;
  std::vector<stats_type> rstd_;
};

// DyT in its general form, gamma * tanh(alpha x) + beta: it replaces the
// LayerNorm of a GPT-style block (whose linear layers have biases), so it
// keeps LayerNorm's beta. alpha starts at the site's alpha0.
template <class T>
class dyt_site {
 public:
  static constexpr const char* name = "DyT";

  dyt_site(int cols, dyt::norm_site site, const norm_init& init)
      : alpha_(Mat<T>::Constant(1, 1, T(init.alpha0(site)))),
        gamma_(Mat<T>::Ones(1, cols)),
        beta_(Mat<T>::Zero(1, cols)),
        dalpha_(alpha_),
        dgamma_(gamma_),
        dbeta_(beta_) {}

  // No statistics: DyT is element-wise, backward needs only x.
  void forward(const Mat<T>& x, Mat<T>& y) {
    y.resize(x.rows(), x.cols());
    require(dyt::eigen::forward(layer(), x, y));
  }
  void backward(const Mat<T>& x, const Mat<T>& dy, Mat<T>& dx) {
    dx.resize(x.rows(), x.cols());
    require(dyt::eigen::backward(layer(), x, dy, dx, {dalpha_.data(), dgamma_.data(), dbeta_.data()}));
  }
  template <class F>
  void for_each_param(F&& f) {
    f(param_ref<T>{"alpha", &alpha_, &dalpha_, false});
    f(param_ref<T>{"gamma", &gamma_, &dgamma_, false});
    f(param_ref<T>{"beta", &beta_, &dbeta_, false});
  }

 private:
  dyt::DyT<T> layer() const { return {alpha_.data(), gamma_.data(), beta_.data(), gamma_.cols()}; }

  Mat<T> alpha_, gamma_, beta_, dalpha_, dgamma_, dbeta_;
};

}  // namespace tiny_lm
