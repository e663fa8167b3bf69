// The pipeline benchmarks: text encoder(s), UNet and VAE decoder built from a reference
// tensor list (tests/data/reference/*.tsv) with seeded random weights, timed as the
// pipeline runs them at width = height = size:
//
//   text encode  the text encoder passes of two [1, 77] token-id rows (prompt, negative),
//                as CLIPTextEncode runs twice (SDXL: CLIP-L and bigG each); the
//                tokenizer (microseconds) is left out
//   step         UNet forward of x [2, s/8, s/8, 4] (cond + uncond in one batch), t [2],
//                context [2, 77, C] (SDXL: and y [2, 2816]), then the CFG combine of the
//                two halves: one sampler step (Euler's update is left out)
//   vae decode   z [1, s/8, s/8, 4] → image [1, s, s, 3]
//
// Each is run once to warm up (primitive creation, weight reorders) and then timed; the
// peak resident set is read from /proc/self/status (VmHWM), reset after loading so that
// it covers the runs, and separately over the load.
#include "bench/bench_pipeline.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "backend/device.h"
#include "backend/ops.h"
#include "bench/bench_util.h"
#include "core/thread_pool.h"
#include "models/clip_text.h"
#include "models/unet.h"
#include "models/vae.h"
#include "pipeline/demo_weights.h"
#include "pipeline/reference_tensors.h"

extern char** environ;

namespace darkroom::bench {
namespace {

struct Options {
  std::string model = "sd15";  // sd15 or sdxl
  std::string dtype = "both";  // f32, bf16 or both (one child process each)
  int size = 0;                // 0: the model's native size (512 / 1024)
  int steps = 3;               // timed UNet steps
  int threads = 0;
  bool json = false;
};

// Random weights for the tensors of `prefix` (f16 in host memory, as a checkpoint file
// holds them), viewed by a Weights that casts to `dtype` on load.
Weights demo_weights(const Options& o, const std::string& prefix, DType dtype) {
  std::map<std::string, Tensor> tensors;
  const std::string_view tsv =
      o.model == "sdxl" ? pipeline::sdxl_sgm_tensor_tsv() : pipeline::sd15_ldm_tensor_tsv();
  for (const auto& [name, shape] : pipeline::parse_tensor_list(tsv))
    if (name.rfind(prefix, 0) == 0)
      tensors.emplace(name, pipeline::demo_tensor(name, shape, 1, DType::F16));
  return Weights::from_tensors(std::move(tensors), prefix, kCpu, dtype);
}

// [1, 77] i64: start token, a few words, end token padded with end tokens (SD 1.x pads
// with the end token).
Tensor prompt_ids(int words, int64_t first_word) {
  Tensor ids = Tensor::empty({1, 77}, DType::I64);
  int64_t* p = ids.data<int64_t>();
  p[0] = 49406;
  for (int i = 1; i < 77; ++i) p[i] = i <= words ? first_word + 37 * i : 49407;
  return ids;
}

bool all_finite(const Tensor& t) {
  for (float v : ops::to_device(t, kCpu).to_floats())
    if (!std::isfinite(v)) return false;
  return true;
}

// The text side of one model: prompt ids [1, 77] → context [1, 77, C] (and SDXL's
// pooled bigG output [1, 1280]).
struct TextSide {
  std::optional<ClipTextEncoder> clip_l, clip_g;
  std::pair<Tensor, Tensor> encode(const Tensor& ids) const {
    if (!clip_g) return {clip_l->encode(ids, ClipEncodeOptions{1, true, false}).hidden, {}};
    // SDXL (ComfyUI's SDXLClipModel): both penultimate layers without the final norm,
    // joined on channels; the pooled output from bigG's last layer, projected.
    const Tensor l = clip_l->encode(ids, ClipEncodeOptions{2, false, false}).hidden;
    ClipTextOutput g = clip_g->encode(ids, ClipEncodeOptions{2, false, true});
    return {ops::concat({l, g.hidden}, 2), g.pooled};
  }
};

std::vector<float> cpu_floats(const Tensor& t) {
  return ops::to_device(ops::cast(t, DType::F32), kCpu).to_floats();
}

// One dtype, in this process; prints one JSON line (or a text summary).
int run_one(const Options& o) {
  const DType dtype = parse_dtype(o.dtype);
  const std::string where = "bench " + o.model;
  DR_CHECK(dtype == DType::F32 || dtype == DType::BF16, where, "--dtype must be f32, bf16 or both");
  Device& dev = cpu_device();
  const bool xl = o.model == "sdxl";

  // Each model's f16 source dies after its load; only the copies in `dtype` stay.
  const double t_load = now_s();
  TextSide text;
  std::optional<UNet> unet;
  std::optional<Vae> vae;
  {
    const Weights w = demo_weights(o,
                                   xl ? "conditioner.embedders.0.transformer.text_model."
                                      : "cond_stage_model.transformer.text_model.",
                                   dtype);
    text.clip_l.emplace(ClipTextEncoder::load(w, ClipTextConfig::detect(w)));
  }
  if (xl) {
    const Weights w = demo_weights(o, "conditioner.embedders.1.model.", dtype);
    text.clip_g.emplace(ClipTextEncoder::load_open_clip(w, ClipTextConfig::detect_open_clip(w)));
  }
  {
    const Weights w = demo_weights(o, "model.diffusion_model.", dtype);
    unet.emplace(UNet::load(w, UNetConfig::detect(w)));
  }
  {
    const Weights w = demo_weights(o, "first_stage_model.", dtype);
    vae.emplace(Vae::load(w, VaeConfig::detect(w), /*with_encoder=*/false));
  }
  const double load_s = now_s() - t_load;
  const double load_peak = peak_rss_mib();
  reset_peak_rss();

  // Text: prompt and negative prompt, one pass each (the sampler's context is their
  // concatenation).
  const Tensor pos_ids = prompt_ids(12, 320), neg_ids = prompt_ids(3, 2000);
  auto encode_both = [&] { return std::make_pair(text.encode(pos_ids), text.encode(neg_ids)); };
  encode_both();
  double t0 = now_s();
  const auto [cond, uncond] = encode_both();
  const double text_s = now_s() - t0;

  // UNet step with CFG: x [2, h, w, 4], context [2, 77, C] = [cond; uncond].
  const int64_t lat = o.size / 8;
  std::vector<float> xs(static_cast<size_t>(2 * lat * lat * 4));
  for (size_t i = 0; i < xs.size() / 2; ++i)
    xs[i] = xs[i + xs.size() / 2] = static_cast<float>((i * 7919) % 200) / 100 - 1;
  const Tensor x = Tensor::from_floats(xs, {2, lat, lat, 4});
  std::vector<float> ctx_v = cpu_floats(cond.first);
  const std::vector<float> u_v = cpu_floats(uncond.first);
  ctx_v.insert(ctx_v.end(), u_v.begin(), u_v.end());
  const Tensor ctx = Tensor::from_floats(ctx_v, {2, 77, cond.first.dim(2)});
  Tensor y;
  if (xl) {  // label_emb's y: pooled [2, 1280] and the sizes (original = target = size)
    std::vector<float> pooled = cpu_floats(cond.second);
    const std::vector<float> pu = cpu_floats(uncond.second);
    pooled.insert(pooled.end(), pu.begin(), pu.end());
    const float s = static_cast<float>(o.size);
    const std::array<float, 6> sizes{s, s, 0, 0, s, s};
    y = sdxl_vector_y(Tensor::from_floats(pooled, {2, cond.second.dim(1)}), {sizes, sizes});
  }
  const Tensor t = Tensor::from_floats(std::vector<float>{500.0f, 500.0f}, {2});
  const float cfg = 7.0f;
  std::vector<float> guided(static_cast<size_t>(lat * lat * 4));
  auto step = [&] {
    const std::vector<float> eps = ops::to_device(unet->forward(x, t, ctx, y), kCpu).to_floats();
    const size_t half = guided.size();
    for (size_t i = 0; i < half; ++i) guided[i] = eps[half + i] + cfg * (eps[i] - eps[half + i]);
  };
  step();
  t0 = now_s();
  for (int i = 0; i < o.steps; ++i) step();
  const double step_s = (now_s() - t0) / o.steps;
  bool finite = true;
  for (float v : guided) finite = finite && std::isfinite(v);

  // VAE decode of one latent.
  const Tensor z =
      Tensor::from_floats(std::vector<float>(guided.begin(), guided.end()), {1, lat, lat, 4});
  Tensor image = vae->decode(z);
  t0 = now_s();
  image = ops::to_device(vae->decode(z), kCpu);
  dev.synchronize();
  const double vae_s = now_s() - t0;
  finite = finite && all_finite(image) && all_finite(cond.first);
  const double run_peak = peak_rss_mib();
  const double total_20 = text_s + 20 * step_s + vae_s;

  const char* omp = std::getenv("OMP_NUM_THREADS");
  if (o.json) {
    std::printf(
        "{\"impl\":\"darkroom\",\"model\":\"%s\",\"device\":\"cpu\",\"dtype\":\"%s\","
        "\"size\":%d,\"batch\":2,\"threads\":%d,\"omp_threads\":\"%s\",\"load_s\":%.2f,"
        "\"text_encode_s\":%.4f,\"step_s\":%.4f,\"steps_timed\":%d,\"vae_decode_s\":%.4f,"
        "\"total_20_steps_s\":%.2f,\"peak_rss_mib\":%.0f,\"load_peak_rss_mib\":%.0f,"
        "\"finite\":%s,\"cpu\":\"%s\"}\n",
        o.model.c_str(), std::string(dtype_name(dtype)).c_str(), o.size,
        ThreadPool::global().size(), omp ? omp : "", load_s, text_s, step_s, o.steps, vae_s,
        total_20, run_peak, load_peak, finite ? "true" : "false", dev.description().c_str());
  } else {
    std::printf(
        "%s\n%s %dx%d, %s, %d threads: text encode %.3f s, step (UNet batch 2 + CFG) "
        "%.3f s (mean of %d), VAE decode %.3f s; 20 steps ≈ %.1f s; peak RSS %.0f MiB "
        "(%.0f MiB while loading in %.1f s); output %s\n",
        dev.description().c_str(), o.model.c_str(), o.size, o.size,
        std::string(dtype_name(dtype)).c_str(), ThreadPool::global().size(), text_s, step_s,
        o.steps, vae_s, total_20, run_peak, load_peak, load_s, finite ? "finite" : "NOT FINITE");
  }
  std::fflush(stdout);
  return finite ? 0 : 1;
}

// Runs this executable again for one dtype and returns its JSON line.
nlohmann::json run_child(const Options& o, const std::string& dtype) {
  const std::string where = "bench " + o.model;
  std::vector<std::string> args = {"/proc/self/exe",
                                   "bench",
                                   o.model,
                                   "--dtype",
                                   dtype,
                                   "--size",
                                   std::to_string(o.size),
                                   "--steps",
                                   std::to_string(o.steps),
                                   "--json"};
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    if (o.threads > 0 &&
        (kv.rfind("DARKROOM_THREADS=", 0) == 0 || kv.rfind("OMP_NUM_THREADS=", 0) == 0))
      continue;
    env_store.push_back(kv);
  }
  if (o.threads > 0) {
    env_store.push_back("DARKROOM_THREADS=" + std::to_string(o.threads));
    env_store.push_back("OMP_NUM_THREADS=" + std::to_string(o.threads));
  }
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  int pipe_fd[2];
  DR_CHECK(pipe(pipe_fd) == 0, where, "pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fd[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fd[0]);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fd[1]);
  DR_CHECK(rc == 0, where, "could not start a child process (error ", rc, ")");
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(pipe_fd[0], buf, sizeof buf)) > 0;) out.append(buf, buf + n);
  close(pipe_fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') return nlohmann::json::parse(line);
  fail(where, "the ", dtype, " run printed no result (exit status ", status, ")");
}

}  // namespace

int run_pipeline_bench(const std::string& model, const std::vector<std::string>& args) {
  DR_CHECK(model == "sd15" || model == "sdxl", "bench", "unknown model '", model, "'");
  Options o;
  o.model = model;
  const std::string where = "bench " + model;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) fail(where, args[i], " needs a value");
      return args[++i];
    };
    if (args[i] == "--dtype") {
      o.dtype = value();
    } else if (args[i] == "--size") {
      o.size = std::stoi(value());
    } else if (args[i] == "--steps") {
      o.steps = std::max(1, std::stoi(value()));
    } else if (args[i] == "--threads") {
      o.threads = std::stoi(value());
    } else if (args[i] == "--json") {
      o.json = true;
    } else {
      fail(where, "unknown option '", args[i],
           "' (--dtype f32|bf16|both, --size N, --steps N, --threads N, --json)");
    }
  }
  if (o.size == 0) o.size = model == "sdxl" ? 1024 : 512;
  DR_CHECK(o.size % 64 == 0 && o.size >= 64, where, "--size must be a multiple of 64");
  if (o.dtype != "both" && o.threads == 0) return run_one(o);

  // One child process per dtype: its own peak RSS, thread settings from the environment.
  std::vector<nlohmann::json> results;
  int rc = 0;
  for (const std::string dt : {"f32", "bf16"}) {
    if (o.dtype != "both" && o.dtype != dt) continue;
    results.push_back(run_child(o, dt));
    if (!results.back().value("finite", false)) rc = 1;
    if (o.json) std::printf("%s\n", results.back().dump().c_str());
    std::fflush(stdout);
  }
  if (!o.json) {
    std::printf("%s\n%s, %dx%d, CFG (UNet batch 2), %d timed steps, %s threads\n\n",
                results[0].value("cpu", "").c_str(), model.c_str(), o.size, o.size, o.steps,
                std::to_string(results[0].value("threads", 0)).c_str());
    std::printf(
        "| dtype | text encode s | s / step | VAE decode s | 20 steps s | peak RSS MiB |\n"
        "|---|---|---|---|---|---|\n");
    for (const auto& r : results)
      std::printf("| %s | %.3f | %.3f | %.3f | %.1f | %.0f |\n", r.value("dtype", "").c_str(),
                  r.value("text_encode_s", 0.0), r.value("step_s", 0.0),
                  r.value("vae_decode_s", 0.0), r.value("total_20_steps_s", 0.0),
                  r.value("peak_rss_mib", 0.0));
  }
  return rc;
}

}  // namespace darkroom::bench
