// train_tiny_lm: a character-level Transformer language model trained on the
// CPU with LayerNorm, RMSNorm and DyT (the paper's alpha0 rule and a sweep of
// alpha0), same seeds, same data, same steps; prints a table and writes the
// loss curves as CSV and SVG. `--gradcheck` checks every gradient of a tiny
// model in double against finite differences instead.
//
//   train_tiny_lm                         the default comparison (7 configurations)
//   train_tiny_lm --small                 a small, fast setting
//   train_tiny_lm --gradcheck             the gradient check
//   train_tiny_lm --help                  every option
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "data.hpp"
#include "gradcheck.hpp"
#include "plot.hpp"
#include "train.hpp"

#ifndef DYT_TINY_LM_REPO_ROOT
#define DYT_TINY_LM_REPO_ROOT "."
#endif

namespace {

using namespace tiny_lm;

struct options {
  std::string data_file;  // empty: the repository's README, docs and headers
  std::string out_dir = "train_tiny_lm_out";
  train_settings train;
  int jobs = 2;
  int eval_windows = 128;
  std::string embed_scale = "auto";  // auto: DyT configurations only (see configurations())
  double embed_std = 0;              // 0: per norm (see configurations())
  std::vector<std::string> only;     // train only configurations whose label contains one of these
  bool gradcheck = false;
};

void usage(const char* program) {
  std::printf(
      "usage: %s [options]\n"
      "  --data FILE        train on FILE (default: the dyt repository's README.md, docs/*.md,\n"
      "                     include/dyt/**/*.hpp and *.cuh, from " DYT_TINY_LM_REPO_ROOT
      ")\n"
      "  --out DIR          where losses.csv, losses.svg and table.txt go (default train_tiny_lm_out)\n"
      "  --steps N          training steps per configuration (default 400)\n"
      "  --batch N          windows per step (default 16)\n"
      "  --layers N --width N --heads N --context N   the model (default 4, 128, 4, 64)\n"
      "  --lr X             peak learning rate (default 3e-3; warmup, then cosine to 10%%)\n"
      "  --eval-every N     steps between loss points (default 25)\n"
      "  --eval-windows N   validation windows (default 128)\n"
      "  --tied             tie the output head to the token embedding\n"
      "  --embed-scale auto|on|off   the learnable scalar sqrt(width) on the token embedding:\n"
      "                     auto = DyT configurations only, as in the paper's LLaMA (default)\n"
      "  --embed-std X      initial std of the embeddings, for every configuration (default:\n"
      "                     0.02 for LayerNorm/RMSNorm, 1/sqrt(width) for DyT; see main.cpp)\n"
      "  --jobs N           configurations trained at once, one thread each (default 2)\n"
      "  --only A,B,...     only the configurations whose label contains A or B ...\n"
      "  --seed N           seed of the weights and batches (default 1234)\n"
      "  --small            2 layers, width 32, 2 heads, context 32, 300 steps: a few seconds\n"
      "                     (options after it override it)\n"
      "  --gradcheck        check every gradient of a tiny double model by finite differences\n",
      program);
}

bool parse(int argc, char** argv, options& opt) {
  train_settings& t = opt.train;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    auto positive = [&]() {
      const char* text = value();
      const long v = std::strtol(text, nullptr, 10);
      if (v < 1 || v > 1000000) {
        std::fprintf(stderr, "%s: '%s' is not a positive integer\n", arg.c_str(), text);
        std::exit(2);
      }
      return int(v);
    };
    if (arg == "--help" || arg == "-h") {
      usage(argv[0]);
      std::exit(0);
    } else if (arg == "--data")
      opt.data_file = value();
    else if (arg == "--out")
      opt.out_dir = value();
    else if (arg == "--steps")
      t.steps = positive();
    else if (arg == "--batch")
      t.batch_rows = positive();
    else if (arg == "--layers")
      t.model.layers = positive();
    else if (arg == "--width")
      t.model.width = positive();
    else if (arg == "--heads")
      t.model.heads = positive();
    else if (arg == "--context")
      t.model.context = positive();
    else if (arg == "--lr")
      t.optimizer.lr = std::strtod(value(), nullptr);
    else if (arg == "--eval-every")
      t.eval_every = positive();
    else if (arg == "--eval-windows")
      opt.eval_windows = positive();
    else if (arg == "--tied")
      t.model.tied_output = true;
    else if (arg == "--embed-std")
      opt.embed_std = std::strtod(value(), nullptr);
    else if (arg == "--embed-scale")
      opt.embed_scale = value();
    else if (arg == "--jobs")
      opt.jobs = positive();
    else if (arg == "--only") {
      std::stringstream list(value());
      for (std::string item; std::getline(list, item, ',');)
        if (!item.empty()) opt.only.push_back(item);
    } else if (arg == "--seed")
      t.seed = std::uint64_t(positive());
    else if (arg == "--small") {
      t.model.layers = 2;
      t.model.width = 32;
      t.model.heads = 2;
      t.model.context = 32;
      t.steps = 300;
      t.eval_every = 25;
      opt.eval_windows = 32;
    } else if (arg == "--gradcheck")
      opt.gradcheck = true;
    else {
      std::fprintf(stderr, "unknown option %s\n", arg.c_str());
      usage(argv[0]);
      return false;
    }
  }
  if (t.model.width % t.model.heads != 0) {
    std::fprintf(stderr, "--width (%d) must be a multiple of --heads (%d)\n", t.model.width, t.model.heads);
    return false;
  }
  if (opt.embed_scale != "auto" && opt.embed_scale != "on" && opt.embed_scale != "off") {
    std::fprintf(stderr, "--embed-scale takes auto, on or off\n");
    return false;
  }
  if (!(opt.embed_std >= 0)) {
    std::fprintf(stderr, "--embed-std must be positive (0: the default per norm)\n");
    return false;
  }
  if (!(t.optimizer.lr > 0)) {
    std::fprintf(stderr, "--lr must be positive\n");
    return false;
  }
  return true;
}

// 1.0 rather than 1, 0.25 rather than 0.25000001.
std::string format_alpha(float a) {
  char text[32];
  if (std::abs(a * 10 - std::round(a * 10)) < 1e-4f)
    std::snprintf(text, sizeof text, "%.1f", double(a));
  else
    std::snprintf(text, sizeof text, "%.3g", double(a));
  return text;
}

// The seven configurations: LayerNorm, RMSNorm, DyT with the paper's alpha0
// rule, DyT with alpha0 0.1, 0.5, 1.0 and 2.0 at every site.
//
// The embedding is the one thing set up differently for DyT, and why:
// a norm rescales whatever reaches it to unit size; DyT does not, so the
// size of the residual stream at the start, and how fast the embedding can
// change it, are up to the embedding. The paper's LLaMA multiplies its DyT
// model's token embedding (not its RMSNorm baseline's) by a learnable scalar
// initialised to sqrt(d_model), because without it training "struggles to
// progress". Measured here (--embed-scale, --embed-std):
//   - GPT-2's embedding, N(0, 0.02), without the scalar: every DyT model stops
//     at the unigram loss (3.52, the entropy of the training text's character
//     frequencies: it ignores its input; the small setting, 600 steps);
//   - the same with the scalar (0.02 * sqrt(128) = 0.23 at the start): still
//     stuck at width 128 (3.57 after 300 steps, LayerNorm 2.51);
//   - N(0, 1/sqrt(d)) with the scalar, so s * tok_emb starts at unit RMS, the
//     size a norm's output has: DyT trains (2.72 after 300 steps);
//   - N(0, 1) without the scalar (the same unit start, but no scalar): stuck
//     again in the small setting (3.29), so the learnable scalar matters, not
//     only the starting size: it lets one parameter move the whole
//     embedding's scale, which per-entry Adam steps of ~lr cannot do quickly.
// So DyT configurations get the scalar and N(0, 1/sqrt(d)); LayerNorm and
// RMSNorm keep GPT-2's N(0, 0.02) and no scalar, which trained them best of
// the three starts tried (2.51 vs 2.59 with 1/sqrt(d) and 2.69 with 1 after
// 300 steps): each norm gets the best start found for it, not one that
// handicaps either. --embed-std and --embed-scale set one choice for all.
std::vector<run_config> configurations(const options& opt) {
  const int width = opt.train.model.width;
  // The embedding's set-up for a norm (see above); --embed-scale/--embed-std override it.
  auto make = [&](std::string label, norm_kind kind, norm_init init) {
    const bool dyt_kind = kind == norm_kind::dyt;
    const bool scaled = opt.embed_scale == "auto" ? dyt_kind : opt.embed_scale == "on";
    const double embed_std = opt.embed_std > 0 ? opt.embed_std : dyt_kind ? 1.0 / std::sqrt(double(width)) : 0.02;
    return run_config{std::move(label), kind, init, scaled, embed_std};
  };
  auto alpha_label = [](const char* text, float a, float b, float c) {
    if (a == b && b == c) return std::string(text) + " " + format_alpha(a);
    return std::string(text) + " " + format_alpha(a) + "/" + format_alpha(b) + "/" + format_alpha(c);
  };
  std::vector<run_config> list;
  list.push_back(make("LayerNorm", norm_kind::layer_norm, {}));
  list.push_back(make("RMSNorm", norm_kind::rms_norm, {}));
  const norm_init paper{dyt::recommended_alpha0(std::size_t(width), dyt::norm_site::attention),
                        dyt::recommended_alpha0(std::size_t(width), dyt::norm_site::ffn),
                        dyt::recommended_alpha0(std::size_t(width), dyt::norm_site::final_norm)};
  list.push_back(make(alpha_label("DyT paper alpha0", paper.alpha0_attention, paper.alpha0_ffn, paper.alpha0_final),
                      norm_kind::dyt, paper));
  for (float a : {0.1f, 0.5f, 1.0f, 2.0f})
    list.push_back(make(alpha_label("DyT alpha0", a, a, a), norm_kind::dyt, {a, a, a}));
  if (!opt.only.empty()) {
    std::vector<run_config> chosen;
    for (const run_config& rc : list)
      for (const std::string& part : opt.only)
        if (rc.label.find(part) != std::string::npos) {
          chosen.push_back(rc);
          break;
        }
    list = chosen;
  }
  return list;
}

bool same_run(const run_config& a, const run_config& b) {
  return a.kind == b.kind && a.embed_scale == b.embed_scale && a.embed_std == b.embed_std &&
         a.init.alpha0_attention == b.init.alpha0_attention && a.init.alpha0_ffn == b.init.alpha0_ffn &&
         a.init.alpha0_final == b.init.alpha0_final;
}

std::string same_note(const run_config& first) { return "  (the same model as " + first.label + ": trained once)"; }

std::string format_alphas(const std::vector<double>& alphas, int layers) {
  // Model order: per block attention then FFN, then the final norm.
  if (alphas.empty()) return "-";
  double attention = 0, ffn = 0;
  for (int l = 0; l < layers; ++l) {
    attention += alphas[std::size_t(2 * l)];
    ffn += alphas[std::size_t(2 * l + 1)];
  }
  char text[64];
  std::snprintf(text, sizeof text, "%.2f/%.2f/%.2f", attention / layers, ffn / layers, alphas.back());
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  if (!parse(argc, argv, opt)) return 2;

  if (opt.gradcheck) {
    const bool ok = run_gradcheck(opt.train.seed);
    std::printf(ok ? "gradient check: all three norms passed\n" : "gradient check: FAILED\n");
    return ok ? 0 : 1;
  }

  const auto run_start = std::chrono::steady_clock::now();
  corpus data;
  try {
    if (opt.data_file.empty()) {
      std::size_t files = 0;
      const std::string text = repository_text(DYT_TINY_LM_REPO_ROOT, files);
      data = make_corpus(text, std::to_string(files) + " files of the dyt repository (" DYT_TINY_LM_REPO_ROOT ")", 0.1);
    } else {
      data = make_corpus(read_file(opt.data_file), opt.data_file, 0.1);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_tiny_lm: %s\n", e.what());
    return 2;
  }
  train_settings& settings = opt.train;
  settings.model.vocab = data.vocab_size();
  if (data.val.size() < std::size_t(settings.model.context) + 1 ||
      data.train.size() < std::size_t(settings.model.context) + 1) {
    std::fprintf(stderr, "train_tiny_lm: the text is too short for context %d\n", settings.model.context);
    return 2;
  }
  settings.optimizer.warmup_steps = std::max(1, std::min(settings.optimizer.warmup_steps, settings.steps / 10));
  const std::vector<batch> val_batches =
      evaluation_batches(data.val, settings.batch_rows, settings.model.context, opt.eval_windows);
  const double uniform_loss = std::log(double(data.vocab_size()));

  const std::vector<run_config> configs = configurations(opt);
  if (configs.empty()) {
    std::fprintf(stderr, "train_tiny_lm: --only matches no configuration\n");
    return 2;
  }
  // Configurations that are the same model (at width 128 the paper's rule
  // gives alpha0 = 1.0 at every site, which the sweep also has) train once.
  std::vector<int> trained_as(configs.size());
  std::vector<int> unique;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    trained_as[i] = int(i);
    for (std::size_t j = 0; j < i; ++j)
      if (same_run(configs[i], configs[j])) {
        trained_as[i] = trained_as[j];
        break;
      }
    if (trained_as[i] == int(i)) unique.push_back(int(i));
  }

  const model_config& m = settings.model;
  std::printf("data: %s: %zu characters, vocabulary %d, %zu train / %zu validation (the last 10%%)\n",
              data.description.c_str(), data.train.size() + data.val.size(), data.vocab_size(), data.train.size(),
              data.val.size());
  std::printf("model: %d layers, width %d, %d heads, context %d, MLP %dx GELU, learned positions, %s output head\n",
              m.layers, m.width, m.heads, m.context, m.mlp_ratio, m.tied_output ? "tied" : "untied");
  std::printf(
      "training: %d steps of %d windows (%d tokens), AdamW lr %g (warmup %d, cosine to %g), wd %g, clip %g,"
      " seed %llu; validation on %zu fixed windows\n",
      settings.steps, settings.batch_rows, settings.batch_rows * m.context, settings.optimizer.lr,
      settings.optimizer.warmup_steps, settings.optimizer.lr * settings.optimizer.min_lr_ratio,
      settings.optimizer.weight_decay, settings.optimizer.clip_norm, static_cast<unsigned long long>(settings.seed),
      evaluation_batches(data.val, 1, m.context, opt.eval_windows).size());
  const int jobs = std::max(1, std::min(opt.jobs, int(unique.size())));
  std::printf("%zu configurations, %zu distinct models, %d at a time (one thread each, Eigen single-threaded)\n\n",
              configs.size(), unique.size(), jobs);
  std::fflush(stdout);

  // Whole configurations run on separate threads; each thread takes the next
  // one not yet started. A model never spans threads, so its time per step is
  // its own thread's CPU time.
  std::vector<run_result> results(configs.size());
  std::atomic<std::size_t> next{0};
  std::mutex print_lock;
  auto worker = [&]() {
    for (std::size_t k; (k = next++) < unique.size();) {
      const run_config& rc = configs[std::size_t(unique[k])];
      const auto start = std::chrono::steady_clock::now();
      run_result r = train(rc, settings, data, val_batches);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::lock_guard<std::mutex> guard(print_lock);
      std::printf("  trained %-24s %7zu parameters  in %5.1f s  (val %.4f)\n", rc.label.c_str(), r.parameters, seconds,
                  r.final_val);
      std::fflush(stdout);
      results[std::size_t(unique[k])] = std::move(r);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < jobs; ++t) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();

  // The table.
  std::ostringstream table;
  char line[320];
  std::snprintf(line, sizeof line, "%-24s %7s %6s %9s %11s %9s %8s %8s  %s\n", "config", "emb std", "scalar",
                "init loss", "final train", "final val", "CPU ms", "wall ms", "alpha after training (attn/ffn/final)");
  table << line;
  bool all_ok = true;
  std::vector<curve> curves;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const run_config& rc = configs[i];
    const run_result& r = results[std::size_t(trained_as[i])];
    std::snprintf(line, sizeof line, "%-24s %7.3f %6s %9.4f %11.4f %9.4f %8.1f %8.1f  %s%s\n", rc.label.c_str(),
                  rc.embed_std, rc.embed_scale ? "sqrtd" : "-", r.initial_loss, r.final_train, r.final_val,
                  r.cpu_ms_per_step, r.wall_ms_per_step, format_alphas(r.alphas, m.layers).c_str(),
                  trained_as[i] != int(i) ? same_note(configs[std::size_t(trained_as[i])]).c_str() : "");
    table << line;
    curve c = r.losses;
    c.label = rc.label;
    c.dashed = trained_as[i] != int(i);
    curves.push_back(std::move(c));
    if (!std::isfinite(r.final_train) || !(r.final_train < uniform_loss)) all_ok = false;
  }
  std::printf("\n%s", table.str().c_str());
  std::printf(
      "(losses in nats per character; final train: mean minibatch loss over the last %d steps; final val:\n"
      " the fixed validation windows; CPU ms / wall ms: one step (forward + backward + AdamW, no evaluation),\n"
      " mean over all steps, as the training thread's CPU time and as wall time, %d configurations at once)\n\n",
      settings.eval_every, jobs);

  for (std::size_t i = 0; i < configs.size(); ++i) {
    const run_result& r = results[std::size_t(trained_as[i])];
    const bool ok = std::isfinite(r.final_train) && r.final_train < uniform_loss;
    if (ok)
      std::printf("%-24s loss fell from %.4f to %.4f\n", configs[i].label.c_str(), r.initial_loss, r.final_train);
    else
      std::printf("%-24s loss went from %.4f to %.4f: NOT below ln(vocab), training failed\n", configs[i].label.c_str(),
                  r.initial_loss, r.final_train);
  }

  std::error_code ec;
  std::filesystem::create_directories(opt.out_dir, ec);
  const std::string csv = opt.out_dir + "/losses.csv", svg = opt.out_dir + "/losses.svg",
                    txt = opt.out_dir + "/table.txt";
  char title[256];
  std::snprintf(title, sizeof title, "char-level LM, %d layers, width %d, context %d, %d steps x %d tokens: %s",
                m.layers, m.width, m.context, settings.steps, settings.batch_rows * m.context,
                opt.data_file.empty() ? "dyt repository text" : opt.data_file.c_str());
  bool written = write_csv(csv, curves) && write_svg(svg, curves, title);
  {
    std::ofstream out(txt);
    out << table.str();
    written = written && bool(out);
  }
  std::printf("\nwrote %s, %s, %s%s\n", csv.c_str(), svg.c_str(), txt.c_str(), written ? "" : "  <- FAILED to write");

  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  std::printf("total %.1f s\n", total);
  if (!all_ok) {
    std::printf("FAILED: a configuration's final training loss is not below ln(vocab) = %.4f\n", uniform_loss);
    return 1;
  }
  std::printf("all %zu configurations trained: every final training loss is below ln(vocab) = %.4f\n", configs.size(),
              uniform_loss);
  return written ? 0 : 1;
}
