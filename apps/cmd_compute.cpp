// `orbitrain train-local | eval | generate | bench compute`: single-process
// use of the compute engine. Each callback parses nothing itself (CLI11 does),
// reads its files, runs compute/ and prints progress to stdout; any error is
// printed to stderr and turned into CLI::RuntimeError(1).
#include "apps/cmd_compute.hpp"

#include "compute/model.hpp"
#include "compute/safetensors.hpp"
#include "compute/tokenizer.hpp"
#include "compute/trainer.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fmt/core.h>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <omp.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

namespace orbitrain::apps {
namespace {

namespace cp = orbitrain::compute;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void set_threads(int threads) {
  if (threads < 1)
    throw std::invalid_argument("--threads must be >= 1");
  omp_set_num_threads(threads);
}

// Runs body; on an exception prints "orbitrain <cmd>: error: ..." and raises
// CLI::RuntimeError(1) so main returns non-zero.
template <class F> void guarded(const char* cmd, F&& body) {
  try {
    body();
  } catch (const CLI::Error&) {
    throw;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "orbitrain %s: error: %s\n", cmd, e.what());
    throw CLI::RuntimeError(1);
  }
}

std::string progress_bar(int done, int total, int width = 20) {
  const int fill = total > 0 ? int(int64_t(done) * width / total) : width;
  return "[" + std::string(size_t(fill), '#') + std::string(size_t(width - fill), '.') + "]";
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0; // ru_maxrss is in KiB on Linux
}

// ---- train-local -------------------------------------------------------------

struct TrainArgs {
  std::string data, model = "baby", init, out, precision = "f32", sampler = "random";
  int steps = 2000, batch = 12, accum = 1, warmup = 100, decay_steps = -1, threads = 0;
  int eval_every = 250, eval_batches = 20, log_every = 10;
  float lr = 1e-3f, min_lr = 1e-4f, weight_decay = 0.1f, beta1 = 0.9f, beta2 = 0.99f, eps = 1e-8f,
        grad_clip = 1.f;
  uint64_t seed = 1337;
};

void run_train(const TrainArgs& a) {
  set_threads(a.threads > 0 ? a.threads : omp_get_num_procs());
  const std::string text = read_file(a.data);
  const cp::Precision prec = cp::parse_precision(a.precision);
  std::unique_ptr<cp::Gpt> model;
  cp::Tokenizer tok;
  if (!a.init.empty()) {
    cp::LoadedModel m = cp::load_model(a.init, prec);
    model = std::move(m.model);
    tok = m.info.tokenizer;
  } else {
    tok = cp::Tokenizer::from_text(text);
    cp::GptConfig cfg = cp::GptConfig::from_name_or_file(a.model);
    if (cfg.vocab_size != 0 && cfg.vocab_size != tok.size())
      throw std::invalid_argument(fmt::format("model config has vocab_size {} but {} has {} "
                                              "distinct bytes",
                                              cfg.vocab_size, a.data, tok.size()));
    cfg.vocab_size = tok.size();
    model = std::make_unique<cp::Gpt>(cfg, cp::StageRange::whole(), prec);
    model->init_weights(a.seed);
  }
  const cp::GptConfig& cfg = model->config();
  const cp::Split split = cp::split_90_10(tok.encode(text));
  cp::TrainOptions o;
  o.steps = a.steps, o.batch = a.batch, o.accum = a.accum;
  o.schedule = {a.lr, a.min_lr, a.warmup, a.decay_steps >= 0 ? a.decay_steps : a.steps};
  o.adamw = {a.beta1, a.beta2, a.eps, a.weight_decay};
  o.grad_clip = a.grad_clip, o.eval_every = a.eval_every, o.eval_batches = a.eval_batches;
  o.sampler = cp::parse_sampler(a.sampler);
  o.seed = a.seed;
  fmt::print("train-local: {} ({} layers, {} heads, {} embd, block {}, vocab {}, {:.2f}M "
             "params), {} train / {} val tokens, batch {} x accum {}, {} threads, {}\n",
             a.init.empty() ? a.model : a.init, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size,
             cfg.vocab_size, double(cp::num_parameters(cfg)) / 1e6, split.train.size(),
             split.val.size(), a.batch, a.accum, omp_get_max_threads(), a.precision);
  std::fflush(stdout);
  const auto t0 = std::chrono::steady_clock::now();
  double tok_s_sum = 0;
  int tok_s_n = 0;
  cp::train(*model, split, o, [&](const cp::StepReport& r) {
    if (r.step > 1) // the first step includes primitive creation
      tok_s_sum += r.tokens_per_s, ++tok_s_n;
    const bool log = a.log_every > 0 && (r.step % a.log_every == 0 || r.step == 1);
    if (log || r.val_loss) {
      fmt::print("step {:>5}/{} {} loss {:.4f}", r.step, a.steps, progress_bar(r.step, a.steps),
                 r.loss);
      if (r.val_loss)
        fmt::print(" val {:.4f}", *r.val_loss);
      fmt::print(" lr {:.2e} norm {:.3f} {:.0f} tok/s\n", r.lr, r.grad_norm, r.tokens_per_s);
      std::fflush(stdout);
    }
    if (r.step == a.steps && r.val_loss)
      fmt::print("final: train loss {:.4f} val loss {:.4f}\n", r.loss, *r.val_loss);
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("done: {} steps in {:.1f} s, mean {:.0f} tok/s\n", a.steps, secs,
             tok_s_n ? tok_s_sum / tok_s_n : 0.0);
  if (!a.out.empty()) {
    cp::save_model(a.out, *model, tok);
    fmt::print("saved {}\n", a.out);
  }
}

// ---- eval --------------------------------------------------------------------

struct EvalArgs {
  std::string model, data, precision = "f32";
  int windows = 0, batch = 8, threads = 0;
};

void run_eval(const EvalArgs& a) {
  set_threads(a.threads > 0 ? a.threads : omp_get_num_procs());
  cp::LoadedModel m = cp::load_model(a.model, cp::parse_precision(a.precision));
  const int T = m.info.config.block_size;
  const std::vector<int32_t> toks = m.info.tokenizer.encode(read_file(a.data));
  // Non-overlapping windows of T+1 tokens: inputs are the first T, targets the last T.
  const int64_t avail = int64_t(toks.size()) / (T + 1);
  const int64_t n = a.windows > 0 ? std::min<int64_t>(a.windows, avail) : avail;
  if (n < 1)
    throw std::invalid_argument(
        fmt::format("{} has {} bytes, fewer than one window of {}", a.data, toks.size(), T + 1));
  if (a.windows > avail)
    std::fprintf(stderr, "eval: %s holds only %lld windows\n", a.data.c_str(), (long long)avail);
  std::vector<int32_t> x, y;
  double total = 0;
  for (int64_t i = 0; i < n; i += a.batch) {
    const int B = int(std::min<int64_t>(a.batch, n - i));
    x.resize(size_t(B) * T), y.resize(size_t(B) * T);
    for (int b = 0; b < B; ++b) {
      const auto s = toks.begin() + (i + b) * (T + 1);
      std::copy_n(s, T, x.begin() + b * T);
      std::copy_n(s + 1, T, y.begin() + b * T);
    }
    total += double(m.model->forward(x.data(), nullptr, y.data(), B, T)) * B;
  }
  fmt::print("eval: {} windows of {} bytes, mean cross-entropy {:.4f}\n", n, T + 1, total / n);
}

// ---- generate ----------------------------------------------------------------

struct GenArgs {
  std::string model, prompt = "\n";
  int tokens = 200, top_k = 200, threads = 0;
  float temperature = 0.8f;
  uint64_t seed = 1337;
};

void run_generate(const GenArgs& a) {
  set_threads(a.threads > 0 ? a.threads : omp_get_num_procs());
  cp::LoadedModel m = cp::load_model(a.model);
  std::vector<int32_t> prompt = m.info.tokenizer.encode(a.prompt);
  const auto out = cp::generate(*m.model, prompt, a.tokens, a.temperature, a.top_k, a.seed);
  std::cout << m.info.tokenizer.decode(out) << std::endl;
}

// ---- bench compute -----------------------------------------------------------

struct BenchArgs {
  std::string model = "small", precision = "f32", turns;
  int threads = 2, batch = 8, steps = 10, warmup = 3, vocab = 65;
  double peak_gflops = 0;
  bool json = false, profile = false;
};

// Lockstep with a peer benchmark (tools/compare_speed.sh --lockstep): before
// each step, wait for one byte on the `in` pipe; after it, pass one on to
// `out`. The two programs' steps then alternate, so each pair of steps
// meets the same machine conditions.
class Turns {
public:
  explicit Turns(const std::string& spec) {
    if (spec.empty())
      return;
    const size_t comma = spec.find(',');
    if (comma == std::string::npos)
      throw std::invalid_argument("--turns wants IN,OUT (two pipe paths), got '" + spec + "'");
    in_ = open_pipe(spec.substr(0, comma), O_RDONLY);
    out_ = open_pipe(spec.substr(comma + 1), O_WRONLY);
  }
  Turns(const Turns&) = delete;
  Turns& operator=(const Turns&) = delete;
  ~Turns() {
    for (int fd : {in_, out_})
      if (fd >= 0)
        ::close(fd);
  }
  void wait() {
    if (in_ < 0)
      return;
    char c;
    ssize_t n;
    while ((n = ::read(in_, &c, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1)
      throw std::runtime_error("--turns: the peer closed its pipe");
  }
  void pass() {
    if (out_ >= 0 && ::write(out_, "t", 1) != 1)
      throw std::runtime_error(std::string("--turns: cannot write: ") + std::strerror(errno));
  }

private:
  static int open_pipe(const std::string& path, int mode) {
    const int fd = ::open(path.c_str(), mode | O_CLOEXEC);
    if (fd < 0)
      throw std::runtime_error("--turns: cannot open " + path + ": " + std::strerror(errno));
    return fd;
  }
  int in_ = -1, out_ = -1;
};

void run_bench(const BenchArgs& a) {
  set_threads(a.threads);
  Turns turns(a.turns);
  cp::GptConfig cfg = cp::GptConfig::from_name_or_file(a.model);
  if (cfg.vocab_size == 0)
    cfg.vocab_size = a.vocab;
  const cp::Precision prec = cp::parse_precision(a.precision);
  cp::Gpt model(cfg, cp::StageRange::whole(), prec);
  model.init_weights(1337);
  cp::AdamW adam(model.specs(), {});
  const int B = a.batch, T = cfg.block_size;
  std::vector<int32_t> x(size_t(B) * T), y(size_t(B) * T);
  cp::Rng rng(42);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = int32_t(rng.next_u64() % uint64_t(cfg.vocab_size)),
    y[i] = int32_t(rng.next_u64() % uint64_t(cfg.vocab_size));
  std::vector<double> times;
  float loss = 0;
  cp::Engine& engine = model.engine();
  for (int i = 0; i < a.warmup + a.steps; ++i) {
    if (i == a.warmup && a.profile)
      engine.set_profiling(true);
    turns.wait();
    const auto t0 = std::chrono::steady_clock::now();
    model.zero_grad();
    loss = model.forward(x.data(), nullptr, y.data(), B, T);
    model.backward(nullptr);
    engine.timed("optimizer", [&] {
      const double norm = cp::grad_norm(model.grads().data(), model.grads().size());
      adam.step(model.params().data(), model.grads().data(), 1e-4f, nullptr,
                cp::clip_scale(norm, 1.0));
    });
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    turns.pass();
    if (i >= a.warmup)
      times.push_back(dt);
  }
  const std::vector<double> in_order = times;
  std::sort(times.begin(), times.end());
  const double tmin = times.front(), tmed = times[times.size() / 2];
  const double tokens = double(B) * T, tok_s = tokens / tmed;
  const double gflops = cp::flops_per_token(cfg) * tok_s / 1e9;
  // Default peak: 2 FMA units x 16 f32 lanes x 2 flops x ~4.2 GHz ~ 270 GFLOP/s per
  // core for f32 on this machine (stack notes), twice that for bf16.
  const double peak =
      a.peak_gflops > 0 ? a.peak_gflops : 270.0 * a.threads * (prec == cp::Precision::bf16 ? 2 : 1);
  const double nparam = double(cp::num_parameters(cfg));
  const double state_mib = (nparam * 4 + double(model.activation_floats())) * 4 / 1048576.0;
  nlohmann::json j = {{"model", a.model},
                      {"precision", a.precision},
                      {"threads", a.threads},
                      {"batch", B},
                      {"block_size", T},
                      {"params", int64_t(nparam)},
                      {"steps", a.steps},
                      {"warmup", a.warmup},
                      {"step_time_min_s", tmin},
                      {"step_time_median_s", tmed},
                      {"step_times_s", in_order},
                      {"lockstep", !a.turns.empty()},
                      {"tokens_per_s", tok_s},
                      {"gflops", gflops},
                      {"peak_gflops", peak},
                      {"mfu", gflops / peak},
                      {"flops_per_token", cp::flops_per_token(cfg)},
                      {"peak_rss_mib", peak_rss_mib()},
                      {"state_mib", state_mib},
                      {"final_loss", loss}};
  // Per operation: milliseconds per step (mean over the timed steps).
  std::vector<std::pair<double, std::string>> ops;
  if (a.profile) {
    double sum = 0, mean_step = 0;
    for (double t : times)
      mean_step += t / double(times.size());
    for (const auto& [op, sec] : engine.op_seconds()) {
      ops.emplace_back(1e3 * sec / double(times.size()), op);
      sum += sec / double(times.size());
    }
    ops.emplace_back(1e3 * (mean_step - sum), "other");
    std::sort(ops.rbegin(), ops.rend());
    for (const auto& [ms, op] : ops)
      j["profile_ms"][op] = ms;
  }
  if (a.json) {
    std::cout << j.dump(2) << std::endl;
  } else {
    fmt::print("bench compute: {} {} threads {} batch {}x{}: step min {:.4f} s median {:.4f} s, "
               "{:.0f} tokens/s, {:.1f} GFLOP/s, MFU {:.1f}% of {:.0f}, peak RSS {:.1f} MiB "
               "(params+grads+adam+activations {:.1f} MiB)\n",
               a.model, a.precision, a.threads, B, T, tmin, tmed, tok_s, gflops,
               100 * gflops / peak, peak, peak_rss_mib(), state_mib);
    for (const auto& [ms, op] : ops)
      fmt::print("  {:>20} {:8.2f} ms/step\n", op, ms);
  }
}

} // namespace

void add_compute_commands(CLI::App& app) {
  {
    auto a = std::make_shared<TrainArgs>();
    CLI::App* c = app.add_subcommand("train-local", "Train a model in this process on a text file");
    c->add_option("--data", a->data, "Training text (90% train, 10% val)")->required();
    c->add_option("--model", a->model, "baby, small or a JSON config file")->capture_default_str();
    c->add_option("--init", a->init, "Start from this safetensors model");
    c->add_option("--steps", a->steps, "Optimizer steps")->capture_default_str();
    c->add_option("--batch", a->batch, "Sequences per micro-batch")->capture_default_str();
    c->add_option("--accum", a->accum, "Micro-batches per step")->capture_default_str();
    c->add_option("--lr", a->lr, "Peak learning rate")->capture_default_str();
    c->add_option("--min-lr", a->min_lr, "Learning rate after cosine decay")->capture_default_str();
    c->add_option("--warmup", a->warmup, "Linear warmup steps")->capture_default_str();
    c->add_option("--decay-steps", a->decay_steps, "Cosine decay ends here (default: --steps)");
    c->add_option("--weight-decay", a->weight_decay, "AdamW weight decay")->capture_default_str();
    c->add_option("--beta1", a->beta1, "AdamW beta1")->capture_default_str();
    c->add_option("--beta2", a->beta2, "AdamW beta2")->capture_default_str();
    c->add_option("--eps", a->eps, "AdamW eps")->capture_default_str();
    c->add_option("--grad-clip", a->grad_clip, "Max gradient norm (0: off)")->capture_default_str();
    c->add_option("--threads", a->threads, "OpenMP threads (default: all cores)");
    c->add_option("--precision", a->precision, "f32 or bf16 matmuls")
        ->check(CLI::IsMember({"f32", "bf16"}))
        ->capture_default_str();
    c->add_option("--sampler", a->sampler, "random or sequential batches")
        ->check(CLI::IsMember({"random", "sequential"}))
        ->capture_default_str();
    c->add_option("--seed", a->seed, "Seed of the initial weights and the sampler")
        ->capture_default_str();
    c->add_option("--eval-every", a->eval_every, "Validation loss every E steps (0: at the end)")
        ->capture_default_str();
    c->add_option("--eval-batches", a->eval_batches, "Validation batches per evaluation")
        ->capture_default_str();
    c->add_option("--log-every", a->log_every, "Print the training loss every N steps")
        ->capture_default_str();
    c->add_option("--out", a->out, "Write the trained model here (safetensors)");
    c->callback([a] { guarded("train-local", [&] { run_train(*a); }); });
  }
  {
    auto a = std::make_shared<EvalArgs>();
    CLI::App* c = app.add_subcommand("eval", "Mean cross-entropy of a model on a text file");
    c->add_option("--model", a->model, "safetensors model")->required();
    c->add_option("--data", a->data, "Text file (all of it, no split)")->required();
    c->add_option("--windows", a->windows,
                  "First N non-overlapping windows of block_size+1 bytes (default: all)");
    c->add_option("--batch", a->batch, "Windows per forward pass")->capture_default_str();
    c->add_option("--threads", a->threads, "OpenMP threads (default: all cores)");
    c->add_option("--precision", a->precision, "f32 or bf16 matmuls")
        ->check(CLI::IsMember({"f32", "bf16"}))
        ->capture_default_str();
    c->callback([a] { guarded("eval", [&] { run_eval(*a); }); });
  }
  {
    auto a = std::make_shared<GenArgs>();
    CLI::App* c = app.add_subcommand("generate", "Sample text from a model");
    c->add_option("--model", a->model, "safetensors model")->required();
    c->add_option("--prompt", a->prompt, "Text to continue")->capture_default_str();
    c->add_option("--tokens", a->tokens, "Tokens to generate")->capture_default_str();
    c->add_option("--temperature", a->temperature, "Sampling temperature (0: greedy)")
        ->capture_default_str();
    c->add_option("--top-k", a->top_k, "Sample from the K most likely tokens (0: all)")
        ->capture_default_str();
    c->add_option("--seed", a->seed, "Sampling seed")->capture_default_str();
    c->add_option("--threads", a->threads, "OpenMP threads (default: all cores)");
    c->callback([a] { guarded("generate", [&] { run_generate(*a); }); });
  }
  {
    CLI::App* bench = nullptr;
    try {
      bench = app.get_subcommand("bench");
    } catch (const CLI::OptionNotFound&) {
      bench = app.add_subcommand("bench", "Benchmarks");
      bench->require_subcommand(1);
    }
    auto a = std::make_shared<BenchArgs>();
    CLI::App* c = bench->add_subcommand("compute", "Training-step speed of the compute engine");
    c->add_option("--model", a->model, "baby, small or a JSON config file")->capture_default_str();
    c->add_option("--threads", a->threads, "OpenMP threads")->capture_default_str();
    c->add_option("--precision", a->precision, "f32 or bf16 matmuls")
        ->check(CLI::IsMember({"f32", "bf16"}))
        ->capture_default_str();
    c->add_option("--batch", a->batch, "Sequences per step")->capture_default_str();
    c->add_option("--steps", a->steps, "Timed steps")->capture_default_str();
    c->add_option("--warmup", a->warmup, "Untimed steps first")->capture_default_str();
    c->add_option("--vocab", a->vocab, "Vocabulary size when the config has none")
        ->capture_default_str();
    c->add_option("--peak-gflops", a->peak_gflops,
                  "Peak for MFU (default 270 per thread f32, 540 bf16)");
    c->add_option("--turns", a->turns,
                  "IN,OUT: two pipes; take turns with a peer benchmark, one step each "
                  "(tools/compare_speed.sh --lockstep)");
    c->add_flag("--json", a->json, "Print a JSON object");
    c->add_flag("--profile", a->profile,
                "Also time each kind of operation (ms per step; adds a clock read per call)");
    c->callback([a] { guarded("bench compute", [&] { run_bench(*a); }); });
  }
}

} // namespace orbitrain::apps
