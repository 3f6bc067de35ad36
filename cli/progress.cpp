#include "progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace hilo::cli {

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {
  last_draw_ = start_ - std::chrono::seconds(1);
  update(0.0);
}

ProgressBar::~ProgressBar() { done(); }

void ProgressBar::update(double fraction, const std::string& detail) {
  if (!enabled_ || finished_) return;
  if (!detail.empty()) detail_ = detail;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(50) && fraction < 1.0) return;
  last_draw_ = now;
  draw(fraction);
}

void ProgressBar::draw(double fraction) {
  constexpr int kWidth = 30;
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int filled = static_cast<int>(fraction * kWidth);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  // "\x1b[K" clears what a longer previous detail left on the line.
  std::fprintf(stderr, "\r%-12s [%s%s] %3d%% %6.1fs %s\x1b[K", label_.c_str(), std::string(filled, '#').c_str(),
               std::string(kWidth - filled, ' ').c_str(), static_cast<int>(fraction * 100), secs, detail_.c_str());
  std::fflush(stderr);
}

void ProgressBar::done() {
  if (!enabled_ || finished_) return;
  draw(1.0);
  std::fprintf(stderr, "\n");
  finished_ = true;
}

}  // namespace hilo::cli
