#include "eval/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace qaq::internal {

std::string FormatDuration(double seconds) {
  if (!(seconds >= 0.0) || !std::isfinite(seconds)) return "?";
  if (seconds < 60.0) return fmt::format("{:.1f} s", seconds);
  const long s = std::lround(seconds);
  if (s < 3600) return fmt::format("{} min {:02d} s", s / 60, int(s % 60));
  return fmt::format("{} h {:02d} min", s / 3600, int((s % 3600) / 60));
}

std::string FormatProgress(const std::string& label, int done, int total, double elapsed_seconds,
                           int width) {
  const double fraction = total > 0 ? std::clamp(double(done) / double(total), 0.0, 1.0) : 1.0;
  const int filled = int(std::floor(fraction * width));
  std::string bar(std::size_t(filled), '#');
  bar.append(std::size_t(width - filled), '.');
  std::string eta = "?";
  if (done >= total) {
    eta = "0.0 s";
  } else if (done > 0) {
    eta = FormatDuration(elapsed_seconds / double(done) * double(total - done));
  }
  return fmt::format("{} [{}] {}/{} ({:.0f}%) {}, ETA {}", label, bar, done, total,
                     100.0 * fraction, FormatDuration(elapsed_seconds), eta);
}

ProgressBar::ProgressBar(std::string label, int total, std::FILE* out)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      terminal_(out != nullptr && isatty(fileno(out)) == 1),
      start_(std::chrono::steady_clock::now()) {}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::Update(int done) {
  done_ = std::max(done_, done);
  if (out_ == nullptr) return;
  const std::string line = FormatProgress(label_, done_, total_, elapsed_seconds());
  if (terminal_) {
    fmt::print(out_, "\r{}\x1b[K", line);
    std::fflush(out_);
    return;
  }
  const int decile = total_ > 0 ? done_ * 10 / total_ : 10;
  if (decile == last_decile_) return;
  last_decile_ = decile;
  fmt::print(out_, "{}\n", line);
  std::fflush(out_);
}

void ProgressBar::Finish() {
  if (out_ == nullptr || finished_) return;
  finished_ = true;
  if (terminal_) {
    fmt::print(out_, "\r{}\x1b[K\n", FormatProgress(label_, done_, total_, elapsed_seconds()));
  } else if (last_decile_ != 10) {
    fmt::print(out_, "{}\n", FormatProgress(label_, done_, total_, elapsed_seconds()));
  }
  std::fflush(out_);
}

}  // namespace qaq::internal
