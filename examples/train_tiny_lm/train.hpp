// train.hpp: one training run: a model, AdamW, the batches, periodic
// evaluation, and the time per step.
#pragma once

#include <chrono>
#include <cmath>
#include <ctime>
#include <string>
#include <vector>

#include "adamw.hpp"
#include "data.hpp"
#include "model.hpp"
#include "plot.hpp"

namespace tiny_lm {

enum class norm_kind { layer_norm, rms_norm, dyt };

// One configuration of the comparison.
struct run_config {
  std::string label;
  norm_kind kind = norm_kind::layer_norm;
  norm_init init;            // DyT's alpha0 per site
  bool embed_scale = false;  // the learnable scalar on the token embedding
  double embed_std = 0.02;   // initial std of the embeddings
};

// What is the same for every configuration.
struct train_settings {
  model_config model;  // vocab, shape, tying; the norms and the embedding's set-up come from run_config
  adamw_config optimizer;
  int steps = 400;
  int batch_rows = 16;
  int eval_every = 25;
  std::uint64_t seed = 1234;
};

struct run_result {
  curve losses;
  double initial_loss = 0;  // the first batch, before any update
  double final_train = 0;   // mean minibatch loss over the last evaluation interval
  double final_val = 0;
  double cpu_ms_per_step = 0, wall_ms_per_step = 0;
  std::vector<double> alphas;  // DyT's alpha per site after training, in model order
  std::size_t parameters = 0;
};

// CPU time of the calling thread: what one training step costs this thread,
// whatever else the machine runs at the same time (the other configuration's
// thread, other users). Wall time is reported beside it.
inline double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

template <class Model>
double evaluate(Model& model, const std::vector<batch>& batches) {
  double sum = 0;
  std::size_t windows = 0;
  for (const batch& b : batches) {
    sum += model.forward(b) * b.rows;
    windows += std::size_t(b.rows);
  }
  return sum / double(windows);
}

// Trains one configuration. Every configuration gets the same seed, so the
// same batches in the same order and the same random draws for the weights:
// the matrices start identical, the embeddings differ only by the std the
// configuration asks for, and the norms start at their own identity.
template <template <class> class Norm>
run_result train(const run_config& rc, const train_settings& s, const corpus& data,
                 const std::vector<batch>& val_batches) {
  model_config mc = s.model;
  mc.norms = rc.init;
  mc.embed_scale = rc.embed_scale;
  mc.embed_std = rc.embed_std;
  transformer<float, Norm> model(mc, s.seed);
  adamw<float> optimizer(s.optimizer);
  rng sampler(s.seed * 0x9E3779B97F4A7C15ull + 1);

  run_result result;
  result.losses.label = rc.label;
  result.parameters = model.parameter_count();
  double cpu_seconds = 0, wall_seconds = 0, interval_sum = 0;
  int interval_steps = 0;
  const double initial_val = evaluate(model, val_batches);
  for (int step = 0; step < s.steps; ++step) {
    const batch in = random_batch(data.train, s.batch_rows, mc.context, sampler);
    const double cpu_start = thread_cpu_seconds();
    const auto wall_start = std::chrono::steady_clock::now();
    const double loss = model.forward(in);
    model.backward();
    optimizer.step(model, learning_rate(s.optimizer, step, s.steps));
    cpu_seconds += thread_cpu_seconds() - cpu_start;
    wall_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();

    if (step == 0) {
      result.initial_loss = loss;
      result.losses.points.push_back({0, loss, initial_val});
    }
    interval_sum += loss;
    ++interval_steps;
    if ((step + 1) % s.eval_every == 0 || step + 1 == s.steps) {
      result.losses.points.push_back({step + 1, interval_sum / interval_steps, evaluate(model, val_batches)});
      interval_sum = 0;
      interval_steps = 0;
    }
  }
  result.final_train = result.losses.points.back().train_loss;
  result.final_val = result.losses.points.back().val_loss;
  result.cpu_ms_per_step = 1e3 * cpu_seconds / s.steps;
  result.wall_ms_per_step = 1e3 * wall_seconds / s.steps;
  model.for_each_param([&](const param_ref<float>& p) {
    if (p.name.size() >= 5 && p.name.compare(p.name.size() - 5, 5, "alpha") == 0)
      result.alphas.push_back(double((*p.value)(0, 0)));
  });
  return result;
}

inline run_result train(const run_config& rc, const train_settings& s, const corpus& data,
                        const std::vector<batch>& val_batches) {
  switch (rc.kind) {
    case norm_kind::layer_norm:
      return train<layer_norm_site>(rc, s, data, val_batches);
    case norm_kind::rms_norm:
      return train<rms_norm_site>(rc, s, data, val_batches);
    case norm_kind::dyt:
      break;
  }
  return train<dyt_site>(rc, s, data, val_batches);
}

}  // namespace tiny_lm
