// Byte-level BPE (see include/hilo/tokenizer.hpp). Steps per text: split off added tokens; split the rest with the
// pre-tokenizer's regex (ICU, for \p{L} / \p{N}); map each piece's bytes to GPT-2's printable byte alphabet; merge
// adjacent symbols lowest merge rank first; look the symbols up in the vocabulary.
#include "hilo/tokenizer.hpp"

#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "../core/check.hpp"
#include "../core/mapped_file.hpp"

#ifdef HILO_WITH_ICU
#include <unicode/regex.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>
#endif

namespace hilo::text {
namespace {
using nlohmann::json;

// transformers / tokenizers' ByteLevel pre-tokenizer regex (GPT-2's).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to U+0100.. in order; as UTF-8.
std::vector<std::string> byte_alphabet() {
  std::vector<std::string> out(256);
  auto utf8 = [](unsigned cp) {
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
  };
  unsigned extra = 0;
  for (unsigned b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    out[b] = utf8(printable ? b : 256 + extra++);
  }
  return out;
}

// One UTF-8 character's length at `s[i]`, or 0 where the sequence is invalid.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return 0;
  return n;
}

}  // namespace

struct BpeTokenizer::Impl {
  std::unordered_map<std::string, int32_t> vocab;
  std::unordered_map<std::string, int> merge_rank;  // "left right" -> rank
  std::vector<std::pair<std::string, int32_t>> added;  // longest first
  std::vector<std::string> bytes = byte_alphabet();
  std::string pattern;  // empty: no regex split
  bool add_prefix_space = false;
  int64_t vocab_size = 0;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;  // pieces seen before (single-threaded use)
#ifdef HILO_WITH_ICU
  std::unique_ptr<icu::RegexPattern> regex;
#endif

  void bpe(const std::string& piece, std::vector<int32_t>& out) const {
    if (auto it = cache.find(piece); it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
    std::vector<std::string> symbols;
    for (unsigned char b : piece) symbols.push_back(bytes[b]);
    while (symbols.size() > 1) {
      int best = std::numeric_limits<int>::max();
      std::size_t at = 0;
      for (std::size_t i = 0; i + 1 < symbols.size(); ++i)
        if (auto it = merge_rank.find(symbols[i] + " " + symbols[i + 1]); it != merge_rank.end() && it->second < best) {
          best = it->second;
          at = i;
        }
      if (best == std::numeric_limits<int>::max()) break;
      symbols[at] += symbols[at + 1];
      symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(at) + 1);
    }
    std::vector<int32_t> ids;
    for (const auto& s : symbols) {
      auto it = vocab.find(s);
      HILO_CHECK(it != vocab.end(), "tokenizer: symbol '{}' of '{}' is not in the vocabulary", s, piece);
      ids.push_back(it->second);
    }
    out.insert(out.end(), ids.begin(), ids.end());
    cache.emplace(piece, std::move(ids));
  }

  void encode_plain(std::string_view text, std::vector<int32_t>& out) const {
    std::string s(text);
    if (add_prefix_space && !s.empty() && s[0] != ' ') s.insert(s.begin(), ' ');
    if (pattern.empty()) {
      bpe(s, out);
      return;
    }
#ifdef HILO_WITH_ICU
    UErrorCode status = U_ZERO_ERROR;
    const icu::UnicodeString u = icu::UnicodeString::fromUTF8(s);
    std::unique_ptr<icu::RegexMatcher> m(regex->matcher(u, status));
    HILO_CHECK(U_SUCCESS(status), "tokenizer: regex matcher: {}", u_errorName(status));
    int32_t last = 0;
    auto piece = [&](int32_t a, int32_t b) {
      std::string p;
      u.tempSubStringBetween(a, b).toUTF8String(p);
      bpe(p, out);
    };
    while (m->find(status)) {
      const int32_t a = m->start(status), b = m->end(status);
      if (a > last) piece(last, a);  // Isolated: text between matches is its own piece
      if (b > a) piece(a, b);
      last = b;
    }
    if (last < u.length()) piece(last, u.length());
#endif
  }
};

BpeTokenizer::BpeTokenizer() : impl_(std::make_unique<Impl>()) {}
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

bool tokenizer_available() {
#ifdef HILO_WITH_ICU
  return true;
#else
  return false;
#endif
}

BpeTokenizer BpeTokenizer::load(const std::string& path) {
  HILO_CHECK(tokenizer_available(), "{}: this build of hilo has no tokenizer (built without ICU)", path);
  const std::string text = read_file(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON ({})", path, e.what());
  }
  BpeTokenizer t;
  Impl& impl = *t.impl_;
  try {
    HILO_CHECK(j.contains("normalizer") && j["normalizer"].is_null(), "{}: normalizer {} is not supported (only null)",
               path, j.value("normalizer", json()).dump());
    const json& model = j.at("model");
    HILO_CHECK(model.at("type") == "BPE", "{}: model type {} is not supported (only BPE)", path, model["type"].dump());
    HILO_CHECK(model.value("dropout", json()).is_null() && !model.value("byte_fallback", false) &&
                   model.value("continuing_subword_prefix", json()).is_null() &&
                   model.value("end_of_word_suffix", json()).is_null() && !model.value("ignore_merges", false),
               "{}: BPE options (dropout, byte_fallback, subword prefix/suffix, ignore_merges) are not supported", path);
    for (const auto& [token, id] : model.at("vocab").items()) {
      impl.vocab[token] = id.get<int32_t>();
      impl.vocab_size = std::max<int64_t>(impl.vocab_size, id.get<int64_t>() + 1);
    }
    int rank = 0;
    for (const auto& m : model.at("merges"))
      impl.merge_rank.emplace(m.is_string() ? m.get<std::string>() : m.at(0).get<std::string>() + " " + m.at(1).get<std::string>(),
                              rank++);
    for (const auto& a : j.value("added_tokens", json::array())) {
      impl.added.emplace_back(a.at("content").get<std::string>(), a.at("id").get<int32_t>());
      impl.vocab_size = std::max<int64_t>(impl.vocab_size, a.at("id").get<int64_t>() + 1);
    }
    std::sort(impl.added.begin(), impl.added.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

    const json& pre = j.at("pre_tokenizer");
    auto byte_level = [&](const json& p, bool regex_allowed) {
      impl.add_prefix_space = p.value("add_prefix_space", false);
      if (p.value("use_regex", true)) {
        HILO_CHECK(regex_allowed, "{}: ByteLevel with use_regex after a Split is not supported", path);
        impl.pattern = kGpt2Pattern;
      }
    };
    if (pre.at("type") == "ByteLevel") {
      byte_level(pre, true);
    } else if (pre.at("type") == "Sequence") {
      const json& list = pre.at("pretokenizers");
      HILO_CHECK(list.size() == 2 && list[0].at("type") == "Split" && list[1].at("type") == "ByteLevel",
                 "{}: pre_tokenizer Sequence must be [Split, ByteLevel]", path);
      const json& split = list[0];
      HILO_CHECK(split.at("behavior") == "Isolated" && !split.value("invert", false) &&
                     split.at("pattern").contains("Regex"),
                 "{}: Split must be a non-inverted Regex with behavior Isolated", path);
      impl.pattern = split["pattern"]["Regex"].get<std::string>();
      byte_level(list[1], false);
    } else {
      fail("{}: pre_tokenizer {} is not supported (ByteLevel, or Sequence[Split, ByteLevel])", path,
           pre["type"].dump());
    }
  } catch (const json::exception& e) {
    fail("{}: malformed tokenizer ({})", path, e.what());
  }
#ifdef HILO_WITH_ICU
  if (!impl.pattern.empty()) {
    UErrorCode status = U_ZERO_ERROR;
    UParseError parse{};
    impl.regex.reset(icu::RegexPattern::compile(icu::UnicodeString::fromUTF8(impl.pattern), 0, parse, status));
    HILO_CHECK(U_SUCCESS(status), "{}: pre-tokenizer regex does not compile ({} at offset {})", path,
               u_errorName(status), parse.offset);
  }
#endif
  return t;
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_length(text, i);
    HILO_CHECK(n > 0, "tokenizer: the text is not valid UTF-8 at byte {}", i);
    i += n;
  }
  std::vector<int32_t> out;
  // Next occurrence of each added token at or after `start`, searched again only once passed: one scan of the text
  // per added token in all, however many occurrences there are.
  const auto& added = impl_->added;
  std::vector<std::size_t> next(added.size());
  for (std::size_t i = 0; i < added.size(); ++i) next[i] = text.find(added[i].first);
  std::size_t start = 0;
  while (start <= text.size()) {
    // The next added token (longest first at the same position).
    std::size_t at = std::string_view::npos;
    const std::pair<std::string, int32_t>* found = nullptr;
    for (std::size_t i = 0; i < added.size(); ++i) {
      if (next[i] != std::string_view::npos && next[i] < start) next[i] = text.find(added[i].first, start);
      if (next[i] != std::string_view::npos && next[i] < at) {
        at = next[i];
        found = &added[i];
      }
    }
    const std::size_t end = found ? at : text.size();
    if (end > start) impl_->encode_plain(text.substr(start, end - start), out);
    if (!found) break;
    out.push_back(found->second);
    start = at + found->first.size();
  }
  return out;
}

int64_t BpeTokenizer::vocab_size() const { return impl_->vocab_size; }

}  // namespace hilo::text
