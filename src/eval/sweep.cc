// `qaq sweep` as a library function (qaq/eval.h RunSweep): fp32 references once per protocol,
// then every (run, protocol) row against them, results rewritten after each row.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "eval/cache_memory.h"
#include "eval/progress_bar.h"
#include "eval/statistics.h"
#include "eval/sweep_output.h"

namespace qaq {
namespace {

std::string RowId(const std::string& model_id, std::uint64_t tokens, int context, int n_chunks,
                  EvalProtocol protocol, const std::string& args) {
  const std::string key = fmt::format("{}|{:016x}|{}|{}|{}|{}", model_id, tokens, context, n_chunks,
                                      EvalProtocolName(protocol), args);
  std::vector<int> bytes(key.begin(), key.end());
  return fmt::format("{:016x}", internal::Fingerprint(bytes));
}

SweepRow MakeRow(const SweepRun& run, const PerplexityResult& r, const std::string& id) {
  SweepRow row;
  row.id = id;
  row.series = run.series;
  row.label = run.label;
  row.args = run.args;
  row.protocol = r.protocol;
  row.x = run.x;
  row.cache_name = r.cache_name;
  row.memory = r.memory;
  row.compression_ratio = r.memory.compression_ratio();
  row.prompt_ratio = r.prompt_memory.compression_ratio();
  row.bits_per_value = internal::StoredBitsPerValue(r.memory);
  row.key_bits = internal::StoredBitsPerValue(r.key_memory);
  row.value_bits = internal::StoredBitsPerValue(r.value_memory);
  row.outlier_share = r.memory.cache_bytes() > 0
                          ? double(r.memory.outlier_bytes) / double(r.memory.cache_bytes())
                          : 0.0;
  row.mean_kl = r.kl->mean.value;
  row.mean_kl_error = r.kl->mean.error;
  row.median_kl = r.kl->median;
  row.p99_kl = r.kl->p99;
  row.max_kl = r.kl->max;
  row.top1 = r.kl->top1.value;
  row.top1_error = r.kl->top1.error;
  row.ppl = r.ppl.value;
  row.ppl_error = r.ppl.error;
  row.base_ppl = r.kl->base_ppl.value;
  row.n_chunks = r.chunks.n_chunks;
  row.context = r.chunks.context;
  row.seconds = r.seconds;
  return row;
}

}  // namespace

std::vector<SeriesBest> BestRatioPerSeries(std::span<const SweepRow> rows, double threshold) {
  std::vector<SeriesBest> best;
  for (const SweepRow& r : rows) {
    auto it = std::find_if(best.begin(), best.end(), [&](const SeriesBest& b) {
      return b.series == r.series && b.protocol == r.protocol;
    });
    if (it == best.end()) {
      best.push_back({r.series, r.protocol, nullptr});
      it = best.end() - 1;
    }
    if (r.mean_kl <= threshold &&
        (it->row == nullptr || r.compression_ratio > it->row->compression_ratio)) {
      it->row = &r;
    }
  }
  return best;
}

StatusOr<SweepResult> RunSweep(const Model& model, std::span<const int> tokens,
                               const SweepGrid& grid, const SweepOptions& options) {
  const auto start_time = std::chrono::steady_clock::now();
  if (options.out_dir.empty()) return InvalidArgumentError("sweep: no output folder given");
  if (grid.runs.empty() || grid.protocols.empty()) {
    return InvalidArgumentError("sweep: the grid has no runs or no protocols");
  }
  QAQ_ASSIGN_OR_RETURN(const TextChunks chunks, PlanChunks(tokens.size(), grid.context, grid.n_chunks));
  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  if (ec) return InternalError("cannot create {}: {}", options.out_dir, ec.message());

  internal::SweepHeader header{grid.title, options.model_id, chunks.context, chunks.n_chunks,
                               grid.kl_threshold, grid.x_label};
  std::map<std::string, SweepRow> previous;
  if (options.resume) {
    auto text = ReadTextFile(options.out_dir + "/results.json");
    if (text.ok()) previous = internal::ReadSweepJson(*text);
  }

  // Every (protocol, run) in order, with its id and, when resuming, its earlier row.
  struct Job {
    const SweepRun* run;
    EvalProtocol protocol;
    std::string id;
    std::optional<SweepRow> row;
  };
  const std::uint64_t fingerprint = internal::Fingerprint(tokens);
  std::vector<Job> jobs;
  int to_compute = 0;
  std::vector<EvalProtocol> protocols_to_compute;
  for (EvalProtocol protocol : grid.protocols) {
    for (const SweepRun& run : grid.runs) {
      Job job{&run, protocol,
              RowId(options.model_id, fingerprint, chunks.context, chunks.n_chunks, protocol, run.args),
              std::nullopt};
      if (auto it = previous.find(job.id); it != previous.end()) {
        job.row = it->second;
        job.row->series = run.series;  // names may change without changing the figures
        job.row->label = run.label;
        job.row->x = run.x;
      } else {
        ++to_compute;
        if (std::find(protocols_to_compute.begin(), protocols_to_compute.end(), protocol) ==
            protocols_to_compute.end()) {
          protocols_to_compute.push_back(protocol);
        }
      }
      jobs.push_back(std::move(job));
    }
  }
  SweepResult result;
  result.n_reused = int(jobs.size()) - to_compute;

  auto collect = [&jobs] {
    std::vector<SweepRow> rows;
    for (const Job& j : jobs) {
      if (j.row) rows.push_back(*j.row);
    }
    return rows;
  };
  QAQ_RETURN_IF_ERROR(internal::WriteSweepOutputs(options.out_dir, header, collect()));

  // Progress in chunks: references, then rows.
  const int total_units = (int(protocols_to_compute.size()) + to_compute) * chunks.n_chunks;
  internal::ProgressBar bar("sweep", total_units, options.progress);
  int units_done = 0;
  auto progress_from = [&](int offset) {
    return [&bar, offset](int done, int) { bar.Update(offset + done); };
  };
  if (options.progress != nullptr && result.n_reused > 0) {
    fmt::print(options.progress, "sweep: {} of {} rows reused from {}/results.json\n",
               result.n_reused, jobs.size(), options.out_dir);
  }

  std::map<EvalProtocol, ReferenceLogProbs> references;
  for (EvalProtocol protocol : protocols_to_compute) {
    TextEvalOptions o;
    o.context = chunks.context;
    o.n_chunks = chunks.n_chunks;
    o.protocol = protocol;
    o.n_threads = options.n_threads;
    o.progress = progress_from(units_done);
    QAQ_ASSIGN_OR_RETURN(ReferenceLogProbs ref, ComputeReference(model, tokens, o));
    references.emplace(protocol, std::move(ref));
    units_done += chunks.n_chunks;
  }

  int computed = 0;
  for (Job& job : jobs) {
    if (job.row) continue;
    TextEvalOptions o;
    o.context = chunks.context;
    o.n_chunks = chunks.n_chunks;
    o.protocol = job.protocol;
    o.n_threads = options.n_threads;
    o.progress = progress_from(units_done);
    auto r = EvaluatePerplexity(model, tokens, job.run->cache, o, &references.at(job.protocol));
    if (!r.ok()) {
      return r.status().WithContext(fmt::format("sweep row '{}' ({}, {})", job.run->label,
                                                job.run->args, EvalProtocolName(job.protocol)));
    }
    units_done += chunks.n_chunks;
    ++computed;
    job.row = MakeRow(*job.run, *r, job.id);
    if (options.progress != nullptr) {
      fmt::print(options.progress, "{}[{}/{}] {} ({}): ratio {:.2f}x, mean KL {:.6f}, top-1 {:.2f}%, {:.1f} s\n",
                 isatty(fileno(options.progress)) ? "\r\x1b[K" : "", computed, to_compute,
                 job.run->label, EvalProtocolName(job.protocol), job.row->compression_ratio,
                 job.row->mean_kl, 100.0 * job.row->top1, job.row->seconds);
    }
    QAQ_RETURN_IF_ERROR(internal::WriteSweepOutputs(options.out_dir, header, collect()));
  }
  bar.Finish();
  result.rows = collect();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return result;
}

}  // namespace qaq
