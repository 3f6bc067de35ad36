// Byte-level BPE tokenization from a Hugging Face tokenizer.json (GPT-2 / Llama-3 style), so evaluation can start
// from text. Matches the `tokenizers` package for: model BPE (no dropout, no byte fallback), pre-tokenizer ByteLevel
// (with its GPT-2 regex) or Sequence[Split(regex, Isolated), ByteLevel(use_regex false)], no normalizer, and the
// added (special) tokens, which are matched verbatim before pre-tokenization. Anything else is refused by name.
// Needs ICU (the regexes use Unicode classes); a build without it refuses to load a tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hilo::text {

class BpeTokenizer {
 public:
  static BpeTokenizer load(const std::string& tokenizer_json);
  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  ~BpeTokenizer();

  // `text` must be valid UTF-8 (throws otherwise, naming the byte offset).
  std::vector<int32_t> encode(std::string_view text) const;
  int64_t vocab_size() const;  // the largest id + 1

 private:
  BpeTokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether this build can tokenize (was built with ICU).
bool tokenizer_available();

}  // namespace hilo::text
