// data.hpp: the text, its character vocabulary, the train/validation split and
// the batches of windows the model reads.
#pragma once

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor.hpp"

namespace tiny_lm {

namespace fs = std::filesystem;

// A byte-level vocabulary: every distinct byte of the text is one token.
// Built from the whole text (train and validation), so validation never meets
// an unknown character; the repository's sources are plain ASCII (~95 bytes).
struct corpus {
  std::string description;  // where the text came from, for the report
  std::vector<unsigned char> byte_of_token;
  std::vector<int> train, val;  // token ids

  int vocab_size() const { return int(byte_of_token.size()); }
};

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The default text: the repository's own README, docs and headers, in sorted
// path order so every machine trains on the same bytes.
inline std::string repository_text(const fs::path& root, std::size_t& file_count) {
  std::vector<fs::path> files;
  if (fs::exists(root / "README.md")) files.push_back(root / "README.md");
  for (const char* dir : {"docs", "include/dyt"}) {
    if (!fs::is_directory(root / dir)) continue;
    std::vector<fs::path> found;
    for (const auto& entry : fs::recursive_directory_iterator(root / dir)) {
      const std::string ext = entry.path().extension().string();
      if (entry.is_regular_file() && (ext == ".md" || ext == ".hpp" || ext == ".cuh")) found.push_back(entry.path());
    }
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  if (files.empty()) throw std::runtime_error("no README.md, docs/ or include/dyt/ under " + root.string());
  std::string text;
  for (const fs::path& f : files) text += read_file(f);
  file_count = files.size();
  return text;
}

// Tokenizes `text` and keeps its last `val_fraction` as validation: the split
// is by position, not at random, so no validation window overlaps training text.
inline corpus make_corpus(const std::string& text, std::string description, double val_fraction) {
  std::array<int, 256> token_of_byte;
  token_of_byte.fill(-1);
  for (unsigned char c : text) token_of_byte[c] = 0;
  corpus c;
  c.description = std::move(description);
  for (int b = 0; b < 256; ++b)
    if (token_of_byte[std::size_t(b)] == 0) {
      token_of_byte[std::size_t(b)] = int(c.byte_of_token.size());
      c.byte_of_token.push_back(static_cast<unsigned char>(b));
    }
  const std::size_t val_start = text.size() - std::size_t(double(text.size()) * val_fraction);
  for (std::size_t i = 0; i < text.size(); ++i)
    (i < val_start ? c.train : c.val).push_back(token_of_byte[static_cast<unsigned char>(text[i])]);
  return c;
}

// `rows` windows of `context` tokens; each position's target is the next token.
struct batch {
  int rows = 0, context = 0;
  std::vector<int> tokens, targets;  // rows * context each, row-major
};

inline void add_window(batch& b, const std::vector<int>& split, std::size_t start) {
  b.tokens.insert(b.tokens.end(), split.begin() + std::ptrdiff_t(start),
                  split.begin() + std::ptrdiff_t(start + std::size_t(b.context)));
  b.targets.insert(b.targets.end(), split.begin() + std::ptrdiff_t(start + 1),
                   split.begin() + std::ptrdiff_t(start + std::size_t(b.context) + 1));
  ++b.rows;
}

// A training batch: windows starting at uniformly random positions.
inline batch random_batch(const std::vector<int>& split, int rows, int context, rng& random) {
  batch b;
  b.context = context;
  const std::size_t starts = split.size() - std::size_t(context);  // last start leaves a target for every position
  for (int r = 0; r < rows; ++r) add_window(b, split, random.below(starts));
  return b;
}

// A fixed evaluation set: up to `max_windows` windows spread evenly over the
// split (all of it when it is short), cut into batches of `rows` windows. The
// same windows at every evaluation, so a curve's points are comparable.
inline std::vector<batch> evaluation_batches(const std::vector<int>& split, int rows, int context, int max_windows) {
  const std::size_t usable = split.size() - 1;  // the last token has no target
  const std::size_t fit = usable / std::size_t(context);
  const std::size_t windows = std::min(fit, std::size_t(max_windows));
  const std::size_t spacing = usable / windows;  // >= context, so windows never overlap
  std::vector<batch> batches;
  for (std::size_t w = 0; w < windows; ++w) {
    if (w % std::size_t(rows) == 0) {
      batches.emplace_back();
      batches.back().context = context;
    }
    add_window(batches.back(), split, w * spacing);
  }
  return batches;
}

}  // namespace tiny_lm
