// model.hpp: a small pre-norm decoder-only Transformer (GPT-2's layout), with
// its forward pass and its backward pass written out by hand.
//
//   x = s * tok_emb[token] + pos_emb[position]          s: see embed_scale below
//   per block:  x += proj(attention(norm_attn(x)))      causal, multi-head
//               x += down(gelu(up(norm_ffn(x))))
//   logits = norm_final(x) * out^T                      out = tok_emb when tied
//   loss = mean over positions of -log softmax(logits)[next token]
//
// The scalar type T (float to train, double for the gradient check) and the
// norm (layer_norm_site, rms_norm_site or dyt_site from norms.hpp) are template
// parameters, so one text serves all six models. Matrix products are Eigen's
// (single-threaded: the program runs whole models on separate threads);
// every norm, forward and backward, is dyt's.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "data.hpp"
#include "norms.hpp"
#include "tensor.hpp"

namespace tiny_lm {

struct model_config {
  int vocab = 0;
  int layers = 4;
  int width = 128;  // d_model
  int heads = 4;
  int context = 64;
  int mlp_ratio = 4;  // hidden width of the MLP = mlp_ratio * width
  bool tied_output = false;
  // A learnable scalar on the token embedding, initialised to sqrt(width), as
  // the DyT paper's LLaMA does (main.cpp says when this program uses it).
  bool embed_scale = false;
  double embed_std = 0.02;  // initial std of the token and position embeddings (GPT-2: 0.02)
  norm_init norms;
};

template <class T, template <class> class Norm>
class transformer {
 public:
  using norm_type = Norm<T>;

  transformer(const model_config& cfg, std::uint64_t seed) : cfg_(cfg) {
    const int d = cfg.width, hidden = cfg.mlp_ratio * cfg.width;
    rng random(seed);
    // GPT-2's initialisation: N(0, 0.02) for every matrix, the two that write
    // into the residual stream scaled down by sqrt(2 * layers) so the stream's
    // variance does not grow with depth; biases 0; norms at identity.
    const double std_in = 0.02, std_out = 0.02 / std::sqrt(2.0 * cfg.layers);
    auto normal = [&random](int rows, int cols, double std_dev) {
      Mat<T> m(rows, cols);
      for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = T(std_dev * random.normal());
      return m;
    };
    tok_emb_ = normal(cfg.vocab, d, cfg.embed_std);
    pos_emb_ = normal(cfg.context, d, cfg.embed_std);
    emb_scale_ = Mat<T>::Constant(1, 1, T(std::sqrt(double(d))));
    for (int l = 0; l < cfg.layers; ++l) {
      blocks_.emplace_back(d, cfg.norms);
      block& b = blocks_.back();
      b.w_qkv = normal(d, 3 * d, std_in);
      b.b_qkv = Mat<T>::Zero(1, 3 * d);
      b.w_proj = normal(d, d, std_out);
      b.b_proj = Mat<T>::Zero(1, d);
      b.w_up = normal(d, hidden, std_in);
      b.b_up = Mat<T>::Zero(1, hidden);
      b.w_down = normal(hidden, d, std_out);
      b.b_down = Mat<T>::Zero(1, d);
    }
    out_w_ = cfg.tied_output ? Mat<T>() : normal(cfg.vocab, d, std_in);
    // Gradients start as zeros of each parameter's shape.
    for_each_param([](const param_ref<T>& p) { *p.grad = Mat<T>::Zero(p.value->rows(), p.value->cols()); });
  }

  const model_config& config() const { return cfg_; }

  // Every parameter tensor with its gradient, always in the same order.
  template <class F>
  void for_each_param(F&& f) {
    f(param_ref<T>{"tok_emb", &tok_emb_, &d_tok_emb_, true});
    f(param_ref<T>{"pos_emb", &pos_emb_, &d_pos_emb_, true});
    if (cfg_.embed_scale) f(param_ref<T>{"emb_scale", &emb_scale_, &d_emb_scale_, false});
    for (std::size_t l = 0; l < blocks_.size(); ++l) {
      block& b = blocks_[l];
      const std::string at = "block" + std::to_string(l) + ".";
      visit_norm(b.norm_attn, at + "norm_attn.", f);
      f(param_ref<T>{at + "w_qkv", &b.w_qkv, &b.d_w_qkv, true});
      f(param_ref<T>{at + "b_qkv", &b.b_qkv, &b.d_b_qkv, false});
      f(param_ref<T>{at + "w_proj", &b.w_proj, &b.d_w_proj, true});
      f(param_ref<T>{at + "b_proj", &b.b_proj, &b.d_b_proj, false});
      visit_norm(b.norm_ffn, at + "norm_ffn.", f);
      f(param_ref<T>{at + "w_up", &b.w_up, &b.d_w_up, true});
      f(param_ref<T>{at + "b_up", &b.b_up, &b.d_b_up, false});
      f(param_ref<T>{at + "w_down", &b.w_down, &b.d_w_down, true});
      f(param_ref<T>{at + "b_down", &b.b_down, &b.d_b_down, false});
    }
    visit_norm(norm_final_, "norm_final.", f);
    if (!cfg_.tied_output) f(param_ref<T>{"out_w", &out_w_, &d_out_w_, true});
  }

  std::size_t parameter_count() {
    std::size_t n = 0;
    for_each_param([&n](const param_ref<T>& p) { n += std::size_t(p.value->size()); });
    return n;
  }

  // The mean cross-entropy of the batch; keeps every activation backward() needs.
  double forward(const batch& in) {
    const int seq = in.context, d = cfg_.width;
    const Eigen::Index n = Eigen::Index(in.tokens.size());
    tokens_ = in.tokens;
    targets_ = in.targets;
    seq_ = seq;
    const T scale = cfg_.embed_scale ? emb_scale_(0, 0) : T(1);
    x_.resize(n, d);
    for (Eigen::Index r = 0; r < n; ++r)
      x_.row(r) = scale * tok_emb_.row(tokens_[std::size_t(r)]) + pos_emb_.row(r % seq);

    for (block& b : blocks_) {
      b.x_in = x_;
      b.norm_attn.forward(b.x_in, b.h_attn);
      b.qkv.noalias() = b.h_attn * b.w_qkv;
      b.qkv.rowwise() += b.b_qkv.row(0);
      attention_forward(b, in.rows);
      x_.noalias() += b.att * b.w_proj;
      x_.rowwise() += b.b_proj.row(0);

      b.x_mid = x_;
      b.norm_ffn.forward(b.x_mid, b.h_ffn);
      b.up.noalias() = b.h_ffn * b.w_up;
      b.up.rowwise() += b.b_up.row(0);
      gelu_forward(b);
      x_.noalias() += b.act * b.w_down;
      x_.rowwise() += b.b_down.row(0);
    }

    norm_final_.forward(x_, h_final_);
    probs_.noalias() = h_final_ * output_matrix().transpose();
    // Softmax per row, shifted by the row's maximum so exp never overflows;
    // the loss is log(sum) + max - logit[target], summed in double.
    double loss = 0;
    for (Eigen::Index r = 0; r < n; ++r) {
      auto row = probs_.row(r);
      const T top = row.maxCoeff();
      const T target_logit = row(targets_[std::size_t(r)]);
      row = (row.array() - top).exp();
      const T sum = row.sum();
      row /= sum;
      loss += std::log(double(sum)) + double(top) - double(target_logit);
    }
    return loss / double(n);
  }

  // Gradients of the last forward()'s loss for every parameter (overwritten).
  void backward() {
    const Eigen::Index n = x_.rows();
    // d loss / d logits = (softmax - onehot) / n; probs_ becomes that in place.
    for (Eigen::Index r = 0; r < n; ++r) probs_(r, targets_[std::size_t(r)]) -= T(1);
    probs_ /= T(n);
    const Mat<T>& dlogits = probs_;

    // The output head; with tied weights its gradient is the start of tok_emb's.
    Mat<T>& d_out = cfg_.tied_output ? d_tok_emb_ : d_out_w_;
    d_out.noalias() = dlogits.transpose() * h_final_;
    dh_.noalias() = dlogits * output_matrix();
    norm_final_.backward(x_, dh_, dx_);  // dx_: the gradient along the residual stream from here on

    for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) {
      block& b = *it;
      // x_out = x_mid + gelu(up) * w_down + b_down
      b.d_w_down.noalias() = b.act.transpose() * dx_;
      b.d_b_down = dx_.colwise().sum();
      d_hidden_.noalias() = dx_ * b.w_down.transpose();
      gelu_backward(b);  // d_hidden_: d act -> d up
      b.d_w_up.noalias() = b.h_ffn.transpose() * d_hidden_;
      b.d_b_up = d_hidden_.colwise().sum();
      dh_.noalias() = d_hidden_ * b.w_up.transpose();
      b.norm_ffn.backward(b.x_mid, dh_, d_norm_in_);
      dx_ += d_norm_in_;  // the residual path and the norm's path both reach x_mid

      // x_mid = x_in + attention(qkv) * w_proj + b_proj
      b.d_w_proj.noalias() = b.att.transpose() * dx_;
      b.d_b_proj = dx_.colwise().sum();
      d_att_.noalias() = dx_ * b.w_proj.transpose();
      attention_backward(b, n / seq_);
      b.d_w_qkv.noalias() = b.h_attn.transpose() * d_qkv_;
      b.d_b_qkv = d_qkv_.colwise().sum();
      dh_.noalias() = d_qkv_ * b.w_qkv.transpose();
      b.norm_attn.backward(b.x_in, dh_, d_norm_in_);
      dx_ += d_norm_in_;
    }

    // The embeddings: scatter-add each position's gradient into its rows.
    if (!cfg_.tied_output) d_tok_emb_.setZero();
    d_pos_emb_.setZero();
    const T scale = cfg_.embed_scale ? emb_scale_(0, 0) : T(1);
    double d_scale = 0;
    for (Eigen::Index r = 0; r < n; ++r) {
      const int token = tokens_[std::size_t(r)];
      d_tok_emb_.row(token) += scale * dx_.row(r);
      d_pos_emb_.row(r % seq_) += dx_.row(r);
      d_scale += double(dx_.row(r).dot(tok_emb_.row(token)));
    }
    if (cfg_.embed_scale) d_emb_scale_(0, 0) = T(d_scale);
  }

 private:
  struct block {
    block(int width, const norm_init& init)
        : norm_attn(width, dyt::norm_site::attention, init), norm_ffn(width, dyt::norm_site::ffn, init) {}

    Norm<T> norm_attn, norm_ffn;
    Mat<T> w_qkv, b_qkv, w_proj, b_proj, w_up, b_up, w_down, b_down;
    Mat<T> d_w_qkv, d_b_qkv, d_w_proj, d_b_proj, d_w_up, d_b_up, d_w_down, d_b_down;
    // What forward keeps for backward.
    Mat<T> x_in, h_attn, qkv, probs, att;  // probs: (rows * heads * seq) x seq, one seq x seq block per head
    Mat<T> x_mid, h_ffn, up, tanh_up, act;
  };

  template <class N, class F>
  static void visit_norm(N& norm, const std::string& prefix, F& f) {
    norm.for_each_param([&](const param_ref<T>& p) { f(param_ref<T>{prefix + p.name, p.value, p.grad, p.decay}); });
  }

  const Mat<T>& output_matrix() const { return cfg_.tied_output ? tok_emb_ : out_w_; }

  // Causal softmax attention, head by head, on blocks of qkv (no copies).
  void attention_forward(block& b, int rows) {
    const int seq = seq_, d = cfg_.width, heads = cfg_.heads, dh = d / heads;
    const T scale = T(1) / std::sqrt(T(dh));
    b.probs.resize(Eigen::Index(rows) * heads * seq, seq);
    b.att.resize(Eigen::Index(rows) * seq, d);
    for (int r = 0; r < rows; ++r)
      for (int h = 0; h < heads; ++h) {
        const Eigen::Index r0 = Eigen::Index(r) * seq;
        const auto q = b.qkv.block(r0, h * dh, seq, dh);
        const auto k = b.qkv.block(r0, d + h * dh, seq, dh);
        const auto v = b.qkv.block(r0, 2 * d + h * dh, seq, dh);
        auto p = b.probs.block((Eigen::Index(r) * heads + h) * seq, 0, seq, seq);
        p.noalias() = q * k.transpose();
        for (int i = 0; i < seq; ++i) {
          auto seen = p.row(i).head(i + 1);  // position i attends to 0..i
          const T top = seen.maxCoeff();
          seen = ((seen.array() - top) * scale).exp();
          seen /= seen.sum();
          p.row(i).tail(seq - i - 1).setZero();
        }
        b.att.block(r0, h * dh, seq, dh).noalias() = p * v;
      }
  }

  // From d_att_ to d_qkv_. With P = softmax(S), S = scale * Q K^T, O = P V:
  //   dP = dO V^T,  dV = P^T dO,  dS = P .* (dP - rowsum(P .* dP)),
  //   dQ = scale * dS K,  dK = scale * dS^T Q.
  void attention_backward(block& b, Eigen::Index rows) {
    const int seq = seq_, d = cfg_.width, heads = cfg_.heads, dh = d / heads;
    const T scale = T(1) / std::sqrt(T(dh));
    d_qkv_.resize(rows * seq, 3 * d);
    d_scores_.resize(seq, seq);
    for (Eigen::Index r = 0; r < rows; ++r)
      for (int h = 0; h < heads; ++h) {
        const Eigen::Index r0 = r * seq;
        const auto q = b.qkv.block(r0, h * dh, seq, dh);
        const auto k = b.qkv.block(r0, d + h * dh, seq, dh);
        const auto v = b.qkv.block(r0, 2 * d + h * dh, seq, dh);
        const auto p = b.probs.block((r * heads + h) * seq, 0, seq, seq);
        const auto d_out = d_att_.block(r0, h * dh, seq, dh);
        d_scores_.noalias() = d_out * v.transpose();  // dP
        d_qkv_.block(r0, 2 * d + h * dh, seq, dh).noalias() = p.transpose() * d_out;
        for (int i = 0; i < seq; ++i) {
          // Masked entries have P = 0, so dS is 0 there without a test.
          const T weighted = p.row(i).dot(d_scores_.row(i));
          d_scores_.row(i) = (p.row(i).array() * (d_scores_.row(i).array() - weighted) * scale).matrix();
        }
        d_qkv_.block(r0, h * dh, seq, dh).noalias() = d_scores_ * k;
        d_qkv_.block(r0, d + h * dh, seq, dh).noalias() = d_scores_.transpose() * q;
      }
  }

  // GELU, tanh form (GPT-2's): act = u/2 (1 + tanh(c (u + 0.044715 u^3))),
  // c = sqrt(2/pi). Eigen vectorizes tanh, which erf it does not in Core.
  static constexpr double gelu_c = 0.7978845608028654, gelu_k = 0.044715;
  void gelu_forward(block& b) {
    const auto u = b.up.array();
    b.tanh_up = ((u + T(gelu_k) * u.cube()) * T(gelu_c)).tanh().matrix();
    b.act = (T(0.5) * u * (T(1) + b.tanh_up.array())).matrix();
  }
  // d act / du = (1 + t)/2 + u/2 (1 - t^2) c (1 + 3 * 0.044715 u^2), t the saved tanh.
  void gelu_backward(const block& b) {
    const auto u = b.up.array();
    const auto t = b.tanh_up.array();
    d_hidden_.array() *=
        T(0.5) * (T(1) + t) + T(0.5) * u * (T(1) - t.square()) * T(gelu_c) * (T(1) + T(3 * gelu_k) * u.square());
  }

  model_config cfg_;
  Mat<T> tok_emb_, pos_emb_, emb_scale_, out_w_;
  Mat<T> d_tok_emb_, d_pos_emb_, d_emb_scale_, d_out_w_;
  std::vector<block> blocks_;
  Norm<T> norm_final_{cfg_.width, dyt::norm_site::final_norm, cfg_.norms};

  // The last batch, and activations outside the blocks.
  std::vector<int> tokens_, targets_;
  int seq_ = 0;
  Mat<T> x_, h_final_, probs_;
  // Backward's scratch, kept between steps to reuse the memory.
  Mat<T> dx_, dh_, d_norm_in_, d_hidden_, d_att_, d_qkv_, d_scores_;
};

}  // namespace tiny_lm
