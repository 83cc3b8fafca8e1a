// adamw.hpp: AdamW with decoupled weight decay, global gradient-norm clipping,
// and the learning-rate schedule (linear warmup, then cosine decay).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor.hpp"

namespace tiny_lm {

struct adamw_config {
  double lr = 3e-3;
  double min_lr_ratio = 0.1;  // the cosine ends at lr * min_lr_ratio
  int warmup_steps = 30;
  double beta1 = 0.9, beta2 = 0.95;  // GPT-style betas: the second moment forgets faster
  double eps = 1e-8;
  double weight_decay = 0.1;
  double clip_norm = 1.0;  // global L2 norm of all gradients
};

inline double learning_rate(const adamw_config& cfg, int step, int total_steps) {
  if (step < cfg.warmup_steps) return cfg.lr * double(step + 1) / double(cfg.warmup_steps);
  const double progress = double(step - cfg.warmup_steps) / double(std::max(1, total_steps - cfg.warmup_steps));
  const double cosine = 0.5 * (1.0 + std::cos(3.141592653589793 * std::min(1.0, progress)));
  return cfg.lr * (cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * cosine);
}

template <class T>
class adamw {
 public:
  explicit adamw(const adamw_config& cfg) : cfg_(cfg) {}

  // One update of every parameter the model visits; returns the gradient
  // norm before clipping (a diverging run shows there first).
  template <class Model>
  double step(Model& model, double lr) {
    double sum_sq = 0;
    model.for_each_param([&](const param_ref<T>& p) { sum_sq += double(p.grad->squaredNorm()); });
    const double norm = std::sqrt(sum_sq);
    const double clip = norm > cfg_.clip_norm ? cfg_.clip_norm / norm : 1.0;

    ++t_;
    const double bias1 = 1.0 - std::pow(cfg_.beta1, double(t_)), bias2 = 1.0 - std::pow(cfg_.beta2, double(t_));
    std::size_t index = 0;
    model.for_each_param([&](const param_ref<T>& p) {
      if (index == m_.size()) {  // first step: moments start at zero
        m_.push_back(Mat<T>::Zero(p.value->rows(), p.value->cols()));
        v_.push_back(Mat<T>::Zero(p.value->rows(), p.value->cols()));
      }
      Mat<T>& m = m_[index];
      Mat<T>& v = v_[index];
      ++index;
      const auto g = p.grad->array() * T(clip);
      m.array() = T(cfg_.beta1) * m.array() + T(1 - cfg_.beta1) * g;
      v.array() = T(cfg_.beta2) * v.array() + T(1 - cfg_.beta2) * g.square();
      // Decoupled decay: shrink the weight itself, not through the gradient.
      if (p.decay) *p.value *= T(1 - lr * cfg_.weight_decay);
      p.value->array() -= T(lr / bias1) * m.array() / ((v.array() / T(bias2)).sqrt() + T(cfg_.eps));
    });
    return norm;
  }

 private:
  adamw_config cfg_;
  long t_ = 0;
  std::vector<Mat<T>> m_, v_;
};

}  // namespace tiny_lm
