// A pre-norm Transformer block (causal multi-head self-attention and a GELU
// MLP, each behind a norm and inside a residual) written the way a small CPU
// inference engine would run it: bf16 weight matrices, float activations and
// float arithmetic, a KV cache for decoding one token at a time. The norm is a
// template parameter: the same block code runs with dyt::LayerNorm,
// dyt::RMSNorm or dyt::DyT.
//
// On a LayerNorm block with random (seeded) weights it shows
//   1. converting it to DyT: alpha0 from dyt::recommended_alpha0 for each site,
//      gamma and beta carried over from the LayerNorms;
//   2. folding DyT's gamma and beta into the linear layers that follow it when
//      the weights are loaded (W' = W diag(gamma), b' = W beta + b), so that
//      the engine runs tanh(alpha x) alone, and checking that the folded block
//      gives the unfolded block's outputs within bf16 rounding (exit 1 if not);
//   3. each norm's latency per token, decoding and prefilling, and the share of
//      it the norm layers themselves take.
//
//   transformer_block [--width N] [--heads N] [--mlp-ratio N] [--tokens N] [--repeats N] [--seed N]
#include <dyt/dyt.hpp>
#if DYT_EXAMPLES_HAVE_EIGEN
#include <dyt/eigen.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <limits>
#include <new>
#include <random>
#include <vector>

namespace {

using dyt::index_t;
using bf16 = dyt::bfloat16;

// ---------------------------------------------------------------------------
// Settings

struct settings {
  index_t width = 512;
  index_t heads = 8;
  index_t mlp_ratio = 4;
  index_t tokens = 128;
  index_t repeats = 20;  // timed rounds; each time reported is the fastest
  index_t seed = 2025;

  index_t head_dim() const { return width / heads; }
  index_t hidden() const { return width * mlp_ratio; }
};

void print_usage(std::FILE* to, const char* program) {
  std::fprintf(to,
               "usage: %s [--width N] [--heads N] [--mlp-ratio N] [--tokens N] [--repeats N] [--seed N]\n"
               "  defaults: --width 512 --heads 8 --mlp-ratio 4 --tokens 128 --repeats 20 --seed 2025\n"
               "  small:    --width 64 --heads 4 --tokens 16 --repeats 2\n",
               program);
}

// Fills `cfg` from the command line; false (after a message) on anything it
// does not understand, so a typo never runs a silently different setting.
bool parse_settings(int argc, char** argv, settings& cfg) {
  struct flag {
    const char* name;
    index_t* value;
    long long min, max;
  };
  const flag flags[] = {{"--width", &cfg.width, 1, 16384},       {"--heads", &cfg.heads, 1, 16384},
                        {"--mlp-ratio", &cfg.mlp_ratio, 1, 16},  {"--tokens", &cfg.tokens, 1, 16384},
                        {"--repeats", &cfg.repeats, 1, 100000}, {"--seed", &cfg.seed, 0, 0xffffffffLL}};
  for (int i = 1; i < argc; ++i) {
    const flag* match = nullptr;
    for (const flag& f : flags)
      if (std::strcmp(argv[i], f.name) == 0) match = &f;
    if (!match || i + 1 >= argc) {
      std::fprintf(stderr, "%s: %s\n", argv[i], match ? "needs a value" : "unknown argument");
      return false;
    }
    char* end = nullptr;
    const long long value = std::strtoll(argv[++i], &end, 10);
    if (*end != '\0' || end == argv[i] || value < match->min || value > match->max) {
      std::fprintf(stderr, "%s %s: expected an integer from %lld to %lld\n", match->name, argv[i], match->min,
                   match->max);
      return false;
    }
    *match->value = index_t(value);
  }
  if (cfg.width % cfg.heads != 0) {
    std::fprintf(stderr, "--width %lld is not a multiple of --heads %lld\n", static_cast<long long>(cfg.width),
                 static_cast<long long>(cfg.heads));
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Weights

// Uniform floats from a seeded Mersenne Twister, converted here rather than by
// std::uniform_real_distribution so that a seed gives the same model with any
// standard library.
class random_source {
 public:
  explicit random_source(index_t seed) : engine_(static_cast<std::mt19937::result_type>(seed)) {}
  float uniform(float lo, float hi) { return lo + (hi - lo) * float(engine_() >> 8) * 0x1p-24f; }

 private:
  std::mt19937 engine_;
};

float round_to_bf16(float v) { return float(bf16(v)); }

// Storage that starts on a 64-byte cache line. malloc's 16-byte alignment made
// one vector load in two straddle two lines, or none, depending on where a
// buffer happened to land: identical blocks differed by 10% in prefill.
template <class T>
struct line_aligned {
  using value_type = T;
  static constexpr std::align_val_t alignment{64};

  line_aligned() = default;
  template <class U>
  line_aligned(const line_aligned<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), alignment)); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, alignment); }
  template <class U>
  bool operator==(const line_aligned<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const line_aligned<U>&) const noexcept { return false; }
};

template <class T>
using aligned_vector = std::vector<T, line_aligned<T>>;

// A linear layer y = W x + b as the engine stores it: W row-major, out x in,
// so output i is the dot product of row i with x, and a decode step streams W
// once from front to back. Biases stay in float: a few KB beside the matrices.
template <class Weight>
struct linear_layer {
  index_t out = 0, in = 0;
  aligned_vector<Weight> weight;
  aligned_vector<float> bias;

  const Weight* row(index_t i) const { return weight.data() + i * in; }
};

template <class Weight>
struct block_weights {
  linear_layer<Weight> qkv;       // width -> 3 width: [q | k | v], head h at h * head_dim in each
  linear_layer<Weight> attn_out;  // width -> width
  linear_layer<Weight> mlp_up;    // width -> hidden
  linear_layer<Weight> mlp_down;  // hidden -> width
};

// One norm's per-channel parameters, in float like the biases (and widened
// exactly from the bf16 checkpoint). alpha is DyT's alone.
struct norm_params {
  std::vector<float> gamma, beta;
  float alpha = 0.0f;
};

// The LayerNorm model as training left it: float matrices. The per-channel
// vectors and biases are drawn as bf16 values, so that exporting the model to
// bf16 (export_bf16) changes its matrices only.
struct trained_model {
  block_weights<float> weights;
  norm_params attn_norm, mlp_norm;
};

linear_layer<float> random_linear(index_t out, index_t in, random_source& rng) {
  linear_layer<float> layer{out, in, aligned_vector<float>(std::size_t(out * in)),
                            aligned_vector<float>(std::size_t(out))};
  // Uniform with variance 1/in: outputs keep about the scale of the inputs.
  const float limit = std::sqrt(3.0f / float(in));
  for (float& w : layer.weight) w = rng.uniform(-limit, limit);
  for (float& b : layer.bias) b = round_to_bf16(rng.uniform(-0.1f, 0.1f));
  return layer;
}

// gamma around 1 and beta around 0, but far enough from them that folding
// visibly changes the weights (all ones and zeros would fold to nothing).
norm_params random_layer_norm(index_t width, random_source& rng) {
  norm_params p{std::vector<float>(std::size_t(width)), std::vector<float>(std::size_t(width))};
  for (float& g : p.gamma) g = round_to_bf16(rng.uniform(0.5f, 1.5f));
  for (float& b : p.beta) b = round_to_bf16(rng.uniform(-0.3f, 0.3f));
  return p;
}

trained_model random_trained_model(const settings& cfg, random_source& rng) {
  trained_model m;
  m.attn_norm = random_layer_norm(cfg.width, rng);
  m.weights.qkv = random_linear(3 * cfg.width, cfg.width, rng);
  m.weights.attn_out = random_linear(cfg.width, cfg.width, rng);
  m.mlp_norm = random_layer_norm(cfg.width, rng);
  m.weights.mlp_up = random_linear(cfg.hidden(), cfg.width, rng);
  m.weights.mlp_down = random_linear(cfg.width, cfg.hidden(), rng);
  return m;
}

linear_layer<bf16> export_bf16(const linear_layer<float>& layer) {
  linear_layer<bf16> stored{layer.out, layer.in, aligned_vector<bf16>(layer.weight.size()), layer.bias};
  for (std::size_t k = 0; k < layer.weight.size(); ++k) stored.weight[k] = bf16(layer.weight[k]);
  return stored;
}

block_weights<bf16> export_bf16(const block_weights<float>& w) {
  return {export_bf16(w.qkv), export_bf16(w.attn_out), export_bf16(w.mlp_up), export_bf16(w.mlp_down)};
}

// The linear layer that follows a DyT, with that DyT's gamma and beta moved
// into it: W' = W diag(gamma), b' = W beta + b, so that
//   W' tanh(alpha x) + b' = W (gamma tanh(alpha x) + beta) + b.
// Each new value is computed in double from the stored ones and rounded once,
// W' to bf16 and b' to float, in the order dyt::eigen::fold_into_linear uses
// (which gives the same bits; main() checks that when Eigen is found). W'
// is exact before its rounding when gamma is a bf16 value, as here: the
// product of two 8-bit significands has at most 16 bits.
linear_layer<bf16> fold_into_linear(const norm_params& norm, const linear_layer<bf16>& next) {
  linear_layer<bf16> folded = next;
  for (index_t i = 0; i < next.out; ++i) {
    const bf16* w = next.row(i);
    double shift = 0.0;
    for (index_t j = 0; j < next.in; ++j) shift += double(float(w[j])) * double(norm.beta[std::size_t(j)]);
    folded.bias[std::size_t(i)] = float(double(next.bias[std::size_t(i)]) + shift);
    bf16* w_folded = folded.weight.data() + i * next.in;
    for (index_t j = 0; j < next.in; ++j)
      w_folded[j] = bf16(float(double(float(w[j])) * double(norm.gamma[std::size_t(j)])));
  }
  return folded;
}

#if DYT_EXAMPLES_HAVE_EIGEN
// fold_into_linear above against the library's Eigen version, bit for bit.
bool same_as_eigen_fold(const norm_params& norm, const linear_layer<bf16>& next, const linear_layer<bf16>& folded) {
  using matrix = Eigen::Matrix<Eigen::bfloat16, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  matrix w(next.out, next.in);
  for (index_t i = 0; i < next.out; ++i)
    for (index_t j = 0; j < next.in; ++j)
      w(i, j) = Eigen::numext::bit_cast<Eigen::bfloat16>(next.row(i)[j].bits);
  Eigen::VectorXf b = Eigen::Map<const Eigen::VectorXf>(next.bias.data(), next.out);
  dyt::check(dyt::eigen::fold_into_linear(norm.gamma.data(), norm.beta.data(), next.in, w, b));
  for (index_t i = 0; i < next.out; ++i) {
    if (std::memcmp(&b(i), &folded.bias[std::size_t(i)], sizeof(float)) != 0) return false;
    for (index_t j = 0; j < next.in; ++j)
      if (Eigen::numext::bit_cast<std::uint16_t>(w(i, j)) != folded.row(i)[j].bits) return false;
  }
  return true;
}
#endif

// ---------------------------------------------------------------------------
// Matrix products

// Independent partial sums per dot product: a compiler may not reorder one
// float sum by itself, but it keeps these 16 in one AVX-512 or two AVX2
// registers and multiplies 16 products per instruction.
constexpr int lanes = 16;

inline float widen(float v) { return v; }
inline float widen(bf16 v) { return float(v); }  // exact: bf16 is a float's top half

// The partial sums added in a fixed tree order, so that every caller gets the
// same bits for the same inputs (decode and prefill agree exactly).
inline float sum_lanes(const float* partial) {
  float s[lanes / 2];
  for (int l = 0; l < lanes / 2; ++l) s[l] = partial[l] + partial[l + lanes / 2];
  for (int half = lanes / 4; half >= 1; half /= 2)
    for (int l = 0; l < half; ++l) s[l] += s[l + half];
  return s[0];
}

// y[t * ldy + r] = sum_j w[r * ldw + j] * x[t * ldx + j] for Rows rows of W
// and Tokens rows of x: the Rows x Tokens dot products share every load of w
// and of x. The lane loop is outermost in the body so that the compiler
// vectorizes along it and keeps every partial sum in a register (GCC 12 spills
// them or gathers x one float at a time with the other loop orders).
template <int Rows, int Tokens, class Weight>
inline void dot_tile(const Weight* w, index_t ldw, const float* x, index_t ldx, index_t n, float* y, index_t ldy) {
  float partial[Tokens][Rows][lanes] = {};
  index_t j = 0;
  for (; j + lanes <= n; j += lanes)
    for (int l = 0; l < lanes; ++l)
      for (int r = 0; r < Rows; ++r)
        for (int t = 0; t < Tokens; ++t) partial[t][r][l] += widen(w[r * ldw + j + l]) * x[t * ldx + j + l];
  for (int t = 0; t < Tokens; ++t)
    for (int r = 0; r < Rows; ++r) {
      float sum = sum_lanes(partial[t][r]);
      for (index_t k = j; k < n; ++k) sum += widen(w[r * ldw + k]) * x[t * ldx + k];
      y[t * ldy + r] = sum;
    }
}

// One dot product of length n (attention's q . k), summed like every other.
inline float dot(const float* a, const float* b, index_t n) {
  float result;
  dot_tile<1, 1>(a, 0, b, 0, n, &result, 0);
  return result;
}

// The most rows of W a prefill panel holds (linear_forward's scratch is
// prefill_rows x in floats).
constexpr int prefill_rows = 4;

// y = x W^T + b for `rows` tokens (x: rows x in, y: rows x out, row-major).
// Every output is the same sum in the same order whatever the tiling (lane
// partial sums over j, then sum_lanes), so decode and prefill give the same
// bits. The tile sizes are the fastest measured here (Zen 4, GCC 12).
template <class Weight>
void linear_forward(const linear_layer<Weight>& layer, const float* x, index_t rows, float* y, float* panel) {
  const index_t in = layer.in, out = layer.out;
  index_t i = 0;
  if (rows == 1) {
    // Decode: W streams once from its bf16 storage, widened in registers; the
    // step is bound by that stream, which 8 rows at a time keeps busiest.
    constexpr int decode_rows = 8;
    for (; i + decode_rows <= out; i += decode_rows) dot_tile<decode_rows, 1>(layer.row(i), in, x, in, in, y + i, out);
  } else {
    // Prefill: each panel of W's rows is widened to float once and then read
    // by every token, 4 tokens at a time: 16 multiply-adds per 4 loads of w
    // and 4 of x.
    constexpr int prefill_tokens = 4;
    for (; i + prefill_rows <= out; i += prefill_rows) {
      const Weight* w = layer.row(i);
      for (index_t k = 0; k < prefill_rows * in; ++k) panel[k] = widen(w[k]);
      index_t t = 0;
      for (; t + prefill_tokens <= rows; t += prefill_tokens)
        dot_tile<prefill_rows, prefill_tokens>(panel, in, x + t * in, in, in, y + t * out + i, out);
      for (; t < rows; ++t) dot_tile<prefill_rows, 1>(panel, in, x + t * in, in, in, y + t * out + i, out);
    }
  }
  for (; i < out; ++i)  // the rows a whole tile did not cover
    for (index_t t = 0; t < rows; ++t) dot_tile<1, 1>(layer.row(i), in, x + t * in, in, in, y + t * out + i, out);
  for (index_t t = 0; t < rows; ++t)
    for (index_t o = 0; o < out; ++o) y[t * out + o] += layer.bias[std::size_t(o)];
}

// GELU, tanh form (GPT-2's): x sigmoid(2 u) = x / (1 + exp(-2 u)), u = sqrt(2/pi) (x + 0.044715 x^3).
// For very negative x, exp overflows to inf and the result is -0, as it should be.
void gelu_in_place(float* v, index_t n) {
  for (index_t k = 0; k < n; ++k) {
    const float x = v[k];
    const float u = 0.7978845608f * (x + 0.044715f * x * x * x);
    v[k] = x / (1.0f + std::exp(-2.0f * u));
  }
}

// ---------------------------------------------------------------------------
// The block

// x <- x + Attention(Norm(x)); x <- x + MLP(Norm(x)), in place on the residual
// stream, for tokens that attend to themselves and to every earlier token.
// Norm is a dyt layer over float rows; the block holds the weights by
// reference (whoever loaded them keeps them) and owns its scratch and its KV
// cache, sized for max_tokens.
template <class Norm, class Weight>
class transformer_block {
 public:
  transformer_block(const block_weights<Weight>& weights, Norm attn_norm, Norm mlp_norm, index_t heads,
                    index_t max_tokens)
      : weights_(weights),
        attn_norm_(attn_norm),
        mlp_norm_(mlp_norm),
        width_(weights.attn_out.out),
        heads_(heads),
        head_dim_(width_ / heads),
        max_tokens_(max_tokens),
        normed_(buffer(max_tokens * width_)),
        qkv_(buffer(max_tokens * 3 * width_)),
        attended_(buffer(max_tokens * width_)),
        hidden_(buffer(max_tokens * weights.mlp_up.out)),
        sublayer_out_(buffer(max_tokens * width_)),
        scores_(buffer(max_tokens)),
        panel_(buffer(prefill_rows * std::max(width_, weights.mlp_down.in))),
        keys_(buffer(max_tokens * width_)),
        values_(buffer(max_tokens * width_)) {}

  const Norm& attn_norm() const { return attn_norm_; }
  const Norm& mlp_norm() const { return mlp_norm_; }
  void clear_cache() { cached_ = 0; }

  // Runs `rows` new tokens (x: rows x width, their residual stream, updated in
  // place), the first at position cached tokens + 0. rows == 1 is a decode
  // step; the whole prompt at once is prefill. Both fill the KV cache.
  void forward(float* x, index_t rows) {
    if (cached_ + rows > max_tokens_) {
      std::fprintf(stderr, "transformer_block: %lld tokens do not fit the KV cache of %lld\n",
                   static_cast<long long>(cached_ + rows), static_cast<long long>(max_tokens_));
      std::abort();
    }
    const index_t d = width_;
    const auto in_view = dyt::make_view<const float>(x, rows, d);
    const auto normed = dyt::make_view(normed_.data(), rows, d);

    // Attention sublayer: x += W_o attention(q, k, v) + b_o, [q k v] = W_qkv Norm(x) + b_qkv.
    dyt::check(attn_norm_.forward(in_view, normed));
    linear_forward(weights_.qkv, normed_.data(), rows, qkv_.data(), panel_.data());
    for (index_t t = 0; t < rows; ++t) {
      const float* qkv_row = qkv_.data() + t * 3 * d;
      std::copy(qkv_row + d, qkv_row + 2 * d, keys_.data() + (cached_ + t) * d);
      std::copy(qkv_row + 2 * d, qkv_row + 3 * d, values_.data() + (cached_ + t) * d);
    }
    for (index_t t = 0; t < rows; ++t) attend(qkv_.data() + t * 3 * d, cached_ + t, attended_.data() + t * d);
    linear_forward(weights_.attn_out, attended_.data(), rows, sublayer_out_.data(), panel_.data());
    add_to(x, sublayer_out_.data(), rows * d);

    // MLP sublayer: x += W_down GELU(W_up Norm(x) + b_up) + b_down.
    dyt::check(mlp_norm_.forward(in_view, normed));
    linear_forward(weights_.mlp_up, normed_.data(), rows, hidden_.data(), panel_.data());
    gelu_in_place(hidden_.data(), rows * weights_.mlp_up.out);
    linear_forward(weights_.mlp_down, hidden_.data(), rows, sublayer_out_.data(), panel_.data());
    add_to(x, sublayer_out_.data(), rows * d);

    cached_ += rows;
  }

 private:
  static aligned_vector<float> buffer(index_t n) { return aligned_vector<float>(std::size_t(n)); }

  static void add_to(float* x, const float* delta, index_t n) {
    for (index_t k = 0; k < n; ++k) x[k] += delta[k];
  }

  // Causal attention of the token at `position` (its q in q_row, its k and v
  // already in the cache) over positions 0..position, every head: softmax(q k^T
  // / sqrt(head_dim)) v, written to out (width values, head h at h * head_dim).
  void attend(const float* q_row, index_t position, float* out) {
    const index_t d = width_, keys = position + 1;
    const float scale = 1.0f / std::sqrt(float(head_dim_));
    float* scores = scores_.data();
    for (index_t h = 0; h < heads_; ++h) {
      const float* q = q_row + h * head_dim_;
      float max_score = -std::numeric_limits<float>::infinity();
      for (index_t s = 0; s < keys; ++s) {
        scores[s] = scale * dot(keys_.data() + s * d + h * head_dim_, q, head_dim_);
        max_score = std::max(max_score, scores[s]);
      }
      float total = 0.0f;
      for (index_t s = 0; s < keys; ++s) total += scores[s] = std::exp(scores[s] - max_score);
      float* o = out + h * head_dim_;
      std::fill(o, o + head_dim_, 0.0f);
      for (index_t s = 0; s < keys; ++s) {
        const float* v = values_.data() + s * d + h * head_dim_;
        for (index_t c = 0; c < head_dim_; ++c) o[c] += scores[s] * v[c];
      }
      const float inv_total = 1.0f / total;
      for (index_t c = 0; c < head_dim_; ++c) o[c] *= inv_total;
    }
  }

  const block_weights<Weight>& weights_;
  Norm attn_norm_, mlp_norm_;
  index_t width_, heads_, head_dim_, max_tokens_;
  index_t cached_ = 0;
  // Scratch for up to max_tokens rows: the norm's output, q k v, attention's
  // output, the MLP's hidden layer, a sublayer's output before the residual add,
  // one row of attention scores, a panel of widened weights.
  aligned_vector<float> normed_, qkv_, attended_, hidden_, sublayer_out_, scores_, panel_;
  aligned_vector<float> keys_, values_;  // the KV cache: max_tokens x width each
};

// ---------------------------------------------------------------------------
// Running, checking and timing

// The sequence entering the block: its residual stream, with channels of
// different scales and offsets, as a trained model's are.
aligned_vector<float> random_tokens(const settings& cfg, random_source& rng) {
  const index_t d = cfg.width;
  std::vector<float> scale, offset;
  for (index_t j = 0; j < d; ++j) {
    scale.push_back(rng.uniform(0.5f, 2.0f));
    offset.push_back(rng.uniform(-0.2f, 0.2f));
  }
  aligned_vector<float> tokens;
  for (index_t k = 0; k < cfg.tokens * d; ++k)
    tokens.push_back(offset[std::size_t(k % d)] + scale[std::size_t(k % d)] * rng.uniform(-1.7f, 1.7f));
  return tokens;
}

// The block's outputs for the whole sequence at once (prefill), from an empty cache.
template <class Block>
aligned_vector<float> prefill(Block& block, const aligned_vector<float>& tokens, index_t rows) {
  aligned_vector<float> x = tokens;
  block.clear_cache();
  block.forward(x.data(), rows);
  return x;
}

float max_abs_difference(const aligned_vector<float>& a, const aligned_vector<float>& b) {
  float m = 0.0f;
  for (std::size_t k = 0; k < a.size(); ++k) m = std::max(m, std::fabs(a[k] - b[k]));
  return m;
}

float max_abs(const aligned_vector<float>& a) {
  float m = 0.0f;
  for (float v : a) m = std::max(m, std::fabs(v));
  return m;
}

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// The fastest time seen for each measurement of one block, in seconds for
// the whole sequence, and the outputs of its last decode and prefill.
struct timings {
  double decode = 1e30, prefill = 1e30;              // one token at a time with the KV cache; all at once
  double decode_norms = 1e30, prefill_norms = 1e30;  // the block's norm calls alone
  aligned_vector<float> decoded, prefilled;
  aligned_vector<float> normed;  // where the norms alone write
};

// One run of each measurement. The norms are timed apart from the block,
// making the calls the block makes (two norms per token: one row each when
// decoding, all rows when prefilling) on the same rows, so that no clock
// reads inside the block inflate them. A warm-up run (caches, page faults,
// clock ramp-up) times nothing.
template <class Block>
void time_run(Block& block, const aligned_vector<float>& tokens, const settings& cfg, bool warm_up, timings& best) {
  const index_t d = cfg.width, rows = cfg.tokens;
  best.decoded = tokens;
  block.clear_cache();
  auto start = clock_type::now();
  for (index_t t = 0; t < rows; ++t) block.forward(best.decoded.data() + t * d, 1);
  const double decode = seconds_since(start);

  best.prefilled = tokens;
  block.clear_cache();
  start = clock_type::now();
  block.forward(best.prefilled.data(), rows);
  const double prefill_time = seconds_since(start);

  best.normed.resize(tokens.size());
  const auto input = dyt::make_view<const float>(tokens.data(), rows, d);
  const auto output = dyt::make_view(best.normed.data(), rows, d);
  start = clock_type::now();
  for (index_t t = 0; t < rows; ++t) {
    dyt::check(block.attn_norm().forward(input.subrows(t, t + 1), output.subrows(t, t + 1)));
    dyt::check(block.mlp_norm().forward(input.subrows(t, t + 1), output.subrows(t, t + 1)));
  }
  const double decode_norms = seconds_since(start);

  start = clock_type::now();
  dyt::check(block.attn_norm().forward(input, output));
  dyt::check(block.mlp_norm().forward(input, output));
  const double prefill_norms = seconds_since(start);

  if (warm_up) return;
  best.decode = std::min(best.decode, decode);
  best.prefill = std::min(best.prefill, prefill_time);
  best.decode_norms = std::min(best.decode_norms, decode_norms);
  best.prefill_norms = std::min(best.prefill_norms, prefill_norms);
}

long long as_ll(index_t v) { return static_cast<long long>(v); }

}  // namespace

int main(int argc, char** argv) {
  settings cfg;
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    print_usage(stdout, argv[0]);
    return 0;
  }
  if (!parse_settings(argc, argv, cfg)) {
    print_usage(stderr, argv[0]);
    return 2;
  }
  const index_t d = cfg.width, rows = cfg.tokens;
  random_source rng(cfg.seed);
  const trained_model trained = random_trained_model(cfg, rng);
  const block_weights<bf16> checkpoint = export_bf16(trained.weights);  // what the engine loads
  const aligned_vector<float> tokens = random_tokens(cfg, rng);

  std::printf("pre-norm Transformer block: width %lld, %lld heads of %lld, MLP %lld (GELU), causal, %lld tokens\n",
              as_ll(d), as_ll(cfg.heads), as_ll(cfg.head_dim()), as_ll(cfg.hidden()), as_ll(rows));
  std::printf("engine: bf16 weight matrices (%.2f MiB), float activations and arithmetic, one thread, seed %lld\n\n",
              double(2 * (4 * d * d + 2 * d * cfg.hidden())) / (1 << 20), as_ll(cfg.seed));

  // The LayerNorm block as trained, and for comparison an RMSNorm block with
  // the same gammas (RMSNorm has no beta).
  using layer_norm = dyt::LayerNorm<float>;
  using rms_norm = dyt::RMSNorm<float>;
  using dyt_norm = dyt::DyT<float>;
  transformer_block<layer_norm, bf16> layer_norm_block(
      checkpoint, layer_norm(trained.attn_norm.gamma.data(), trained.attn_norm.beta.data(), d, 1e-5),
      layer_norm(trained.mlp_norm.gamma.data(), trained.mlp_norm.beta.data(), d, 1e-5), cfg.heads, rows);
  transformer_block<rms_norm, bf16> rms_norm_block(checkpoint, rms_norm(trained.attn_norm.gamma.data(), d, 1e-6),
                                                   rms_norm(trained.mlp_norm.gamma.data(), d, 1e-6), cfg.heads, rows);

  // Conversion to DyT: each LayerNorm becomes gamma * tanh(alpha x) + beta
  // with its own gamma and beta, alpha starting at the paper's alpha0 for its
  // site. (Below width 1024 the paper's table gives 1.0 at both sites.)
  norm_params attn_dyt = trained.attn_norm, mlp_dyt = trained.mlp_norm;
  attn_dyt.alpha = dyt::recommended_alpha0(std::size_t(d), dyt::norm_site::attention);
  mlp_dyt.alpha = dyt::recommended_alpha0(std::size_t(d), dyt::norm_site::ffn);
  transformer_block<dyt_norm, bf16> dyt_block(
      checkpoint, dyt_norm(&attn_dyt.alpha, attn_dyt.gamma.data(), attn_dyt.beta.data(), d),
      dyt_norm(&mlp_dyt.alpha, mlp_dyt.gamma.data(), mlp_dyt.beta.data(), d), cfg.heads, rows);
  std::printf("LayerNorm -> DyT: gamma and beta carried over, alpha0 = dyt::recommended_alpha0(%lld, site):\n"
              "  %.3f before attention, %.3f before the MLP\n",
              as_ll(d), double(attn_dyt.alpha), double(mlp_dyt.alpha));

  // Folding at load time: W_qkv and W_up take the gammas and betas, and the
  // engine's DyT layers have neither. The other two matrices are unchanged.
  block_weights<bf16> folded_weights = checkpoint;
  folded_weights.qkv = fold_into_linear(attn_dyt, checkpoint.qkv);
  folded_weights.mlp_up = fold_into_linear(mlp_dyt, checkpoint.mlp_up);
  transformer_block<dyt_norm, bf16> folded_block(folded_weights, dyt_norm(&attn_dyt.alpha, nullptr, nullptr, d),
                                                 dyt_norm(&mlp_dyt.alpha, nullptr, nullptr, d), cfg.heads, rows);
  // The same folded block with the fast tanh policy (dyt's default for 16-bit
  // storage; a few float ulps, far below the bf16 weights' rounding).
  using dyt_fast_tanh = dyt::DyT<float, dyt::cpu, dyt::tanh_fast>;
  transformer_block<dyt_fast_tanh, bf16> folded_fast_block(
      folded_weights, dyt_fast_tanh(&attn_dyt.alpha, nullptr, nullptr, d),
      dyt_fast_tanh(&mlp_dyt.alpha, nullptr, nullptr, d), cfg.heads, rows);
  std::printf("folded at load: W_qkv' = W_qkv diag(gamma), b_qkv' = W_qkv beta + b_qkv, the same for W_up;\n"
              "  W' rounded to bf16, b' kept in float; the engine runs tanh(alpha x) alone\n");

  bool ok = true;
#if DYT_EXAMPLES_HAVE_EIGEN
  const bool same_as_eigen = same_as_eigen_fold(attn_dyt, checkpoint.qkv, folded_weights.qkv) &&
                             same_as_eigen_fold(mlp_dyt, checkpoint.mlp_up, folded_weights.mlp_up);
  std::printf("  the fold %s dyt::eigen::fold_into_linear bit for bit (W_qkv' %lldx%lld, W_up' %lldx%lld)\n",
              same_as_eigen ? "matches" : "DIFFERS FROM", as_ll(3 * d), as_ll(d), as_ll(cfg.hidden()), as_ll(d));
  ok = ok && same_as_eigen;
#else
  std::printf("  (no Eigen: the cross-check against dyt::eigen::fold_into_linear is skipped)\n");
#endif

  // The fold check. The folded block computes the unfolded block's function
  // except that W' = W diag(gamma) (exact in float: 8 significant bits times
  // 8) is rounded to bf16, moving each of its weights by at most half a bf16
  // ulp, 2^-8 of the weight; b' in float and the float arithmetic add ~2^-24,
  // negligible. Only the sublayers use W'; the residual stream passes through
  // unchanged, so only what the sublayers add to it can move. Perturbing every
  // weight of a dot product by up to 2^-8 relative, with independent signs,
  // moves the sum by about 2^-8 / sqrt(3) of its typical size (the errors
  // cancel like a random walk), and softmax and GELU pass that on without much
  // gain (their slopes are about 1 or less over these inputs). So the
  // bound is 2^-8 times the largest value the sublayers add to the residual
  // stream over the sequence. Measured: 0.3 to 0.6 of it (seeds 1 to 6,
  // widths 40 to 2048), while a wrong fold (b' without W beta, or gamma on the
  // wrong index) misses it by 50 times or more. For scale, the line after it
  // shows what exporting the float model to bf16 did to the same outputs:
  // folding re-rounds W_qkv and W_up (7/12 of the weights at MLP ratio 4),
  // the export rounded them all.
  transformer_block<dyt_norm, float> float_block(
      trained.weights, dyt_norm(&attn_dyt.alpha, attn_dyt.gamma.data(), attn_dyt.beta.data(), d),
      dyt_norm(&mlp_dyt.alpha, mlp_dyt.gamma.data(), mlp_dyt.beta.data(), d), cfg.heads, rows);
  const aligned_vector<float> unfolded_out = prefill(dyt_block, tokens, rows);
  const aligned_vector<float> folded_out = prefill(folded_block, tokens, rows);
  const float sublayers_add = max_abs_difference(unfolded_out, tokens);  // what attention and the MLP added
  const float fold_bound = 0x1p-8f * sublayers_add;
  const float fold_error = max_abs_difference(folded_out, unfolded_out);
  const bool fold_ok = fold_error <= fold_bound;
  ok = ok && fold_ok;
  std::printf("fold check: max |folded - unfolded| = %.2e over %lld x %lld outputs, bound %.2e -> %s\n",
              double(fold_error), as_ll(rows), as_ll(d), double(fold_bound),
              fold_ok ? "within bound" : "OUT OF BOUND");
  std::printf("  bound = 2^-8 (half a bf16 ulp, relative) x %.3f, the largest value the sublayers add to x\n",
              double(sublayers_add));
  std::printf("  for scale: storing the float model's matrices in bf16 moved the same outputs by up to %.2e\n",
              double(max_abs_difference(prefill(float_block, tokens, rows), unfolded_out)));
  std::printf("  (the converted block is not the LayerNorm block: their outputs differ by up to %.2f;\n"
              "   a converted model is fine-tuned before use)\n",
              double(max_abs_difference(prefill(layer_norm_block, tokens, rows), unfolded_out)));

  // Every block runs once per round, so that whatever else the machine is
  // doing slows them alike, and each time is the fastest of cfg.repeats
  // rounds: the least disturbed.
  timings layer_norm_times, rms_norm_times, dyt_times, folded_times, folded_fast_times;
  for (index_t round = 0; round <= cfg.repeats; ++round) {
    const bool warm_up = round == 0;
    time_run(layer_norm_block, tokens, cfg, warm_up, layer_norm_times);
    time_run(rms_norm_block, tokens, cfg, warm_up, rms_norm_times);
    time_run(dyt_block, tokens, cfg, warm_up, dyt_times);
    time_run(folded_block, tokens, cfg, warm_up, folded_times);
    time_run(folded_fast_block, tokens, cfg, warm_up, folded_fast_times);
  }

  std::printf("\nlatency per token, fastest of %lld runs; norms: the block's two norm calls alone, same rows\n",
              as_ll(cfg.repeats));
  std::printf("                       decode (1 token, KV cache)          prefill (%lld tokens at once)\n",
              as_ll(rows));
  std::printf("norm                   ms/token  norms us/token  share     ms/token  norms us/token  share\n");
  float decode_vs_prefill = 0.0f, output_size = 0.0f;
  const auto report = [&](const char* name, const timings& t) {
    const double per_token = 1.0 / double(rows);
    std::printf("%-21s  %8.4f  %14.3f  %4.2f%%    %8.4f  %14.3f  %4.2f%%\n", name, 1e3 * t.decode * per_token,
                1e6 * t.decode_norms * per_token, 100.0 * t.decode_norms / t.decode, 1e3 * t.prefill * per_token,
                1e6 * t.prefill_norms * per_token, 100.0 * t.prefill_norms / t.prefill);
    decode_vs_prefill = std::max(decode_vs_prefill, max_abs_difference(t.decoded, t.prefilled));
    output_size = std::max(output_size, max_abs(t.prefilled));
  };
  report("LayerNorm", layer_norm_times);
  report("RMSNorm", rms_norm_times);
  report("DyT unfolded", dyt_times);
  report("DyT folded", folded_times);
  report("DyT folded, fast tanh", folded_fast_times);

  // Decode and prefill add the same products in the same order (see
  // linear_forward), so they should agree to the bit; the bound leaves room
  // for a compiler that contracts a multiply-add in one path and not the other.
  const float decode_bound = 1e-5f * output_size;
  const bool decode_ok = decode_vs_prefill <= decode_bound;
  ok = ok && decode_ok;
  std::printf("decode vs prefill, every block: max |difference| = %.2e, bound %.2e -> %s\n",
              double(decode_vs_prefill), double(decode_bound), decode_ok ? "within bound" : "OUT OF BOUND");
  return ok ? 0 : 1;
}
