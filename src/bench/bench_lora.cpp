#include "bench/bench_lora.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include <fcntl.h>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "backend/ops.h"
#include "bench/bench_util.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "models/lora.h"
#include "pipeline/checkpoint_loader.h"
#include "pipeline/demo_weights.h"
#include "pipeline/lora_apply.h"
#include "pipeline/reference_tensors.h"

namespace darkroom::bench {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The linears kohya's default LoRA network trains: the UNet transformers' attention
// projections, feed-forward layers and proj_in/out; CLIP's attention and MLP.
bool kohya_target(const std::string& name, bool attention_only) {
  if (!ends_with(name, ".weight")) return false;
  const bool unet = name.rfind("model.diffusion_model.", 0) == 0;
  const bool clip = name.rfind("cond_stage_model.transformer.", 0) == 0;
  for (const char* p : {".to_q.", ".to_k.", ".to_v.", ".to_out.0."})
    if (unet && name.find(p) != std::string::npos) return true;
  if (attention_only) return false;
  for (const char* p : {".ff.net.0.proj.", ".ff.net.2.", ".proj_in.", ".proj_out."})
    if (unet && name.find(p) != std::string::npos) return true;
  for (const char* p : {".self_attn.q_proj.", ".self_attn.k_proj.", ".self_attn.v_proj.",
                        ".self_attn.out_proj.", ".mlp.fc1.", ".mlp.fc2."})
    if (clip && name.find(p) != std::string::npos) return true;
  return false;
}

// "model.diffusion_model.a.b.weight" → "lora_unet_a_b"; CLIP → "lora_te_…".
std::string kohya_name(const std::string& name) {
  std::string path = name.substr(0, name.size() - std::string(".weight").size());
  std::string prefix = "lora_unet_";
  if (path.rfind("model.diffusion_model.", 0) == 0) {
    path = path.substr(std::string("model.diffusion_model.").size());
  } else {
    path = path.substr(std::string("cond_stage_model.transformer.").size());
    prefix = "lora_te_";
  }
  std::replace(path.begin(), path.end(), '.', '_');
  return prefix + path;
}

// A kohya LoRA file: lora_down [r, I(, 1, 1)], lora_up [O, r(, 1, 1)], alpha = r/2, f16.
void write_lora(const std::string& path, const std::vector<std::pair<std::string, Shape>>& base,
                int rank, bool attention_only, uint64_t seed) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, shape] : base) {
    if (!kohya_target(name, attention_only)) continue;
    const std::string m = kohya_name(name);
    const int64_t out = shape[0], in = shape[1];
    const bool conv = shape.ndim() == 4;
    const Shape down = conv ? Shape{rank, in, 1, 1} : Shape{rank, in};
    const Shape up = conv ? Shape{out, rank, 1, 1} : Shape{out, rank};
    tensors.emplace_back(m + ".lora_down.weight",
                         pipeline::demo_tensor(m + "down", down, seed, DType::F16));
    tensors.emplace_back(m + ".lora_up.weight",
                         pipeline::demo_tensor(m + "up", up, seed, DType::F16));
    tensors.emplace_back(m + ".alpha",
                         Tensor::from_floats(std::vector<float>{rank / 2.0f}, Shape{}));
  }
  write_safetensors(path, tensors);
}

void evict_from_page_cache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  DR_CHECK(fd >= 0, "bench", "cannot open ", path);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

struct Options {
  std::string dtype = "f32";
  std::string dir;
  int rank = 32;
  int repeat = 3;
  bool json = false;
};

// CPU seconds of this process (all threads): less sensitive than wall time to other
// processes sharing the cores, so both are reported.
double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Timing {
  double wall = 1e30, cpu = 1e30;  // the best of the repeats
};

template <class F>
Timing best_of(int repeat, F&& f) {
  Timing best;
  for (int i = 0; i < repeat; ++i) {
    const double t0 = now_s(), c0 = cpu_s();
    f();
    best.wall = std::min(best.wall, now_s() - t0);
    best.cpu = std::min(best.cpu, cpu_s() - c0);
  }
  return best;
}

// This CPU's f32 multiply-add peak over the pool, GFLOP/s: every thread runs 12
// independent chains of 16-float fused multiply-adds on registers (no memory traffic),
// the kernel a rank update is made of at its best.
double fma_peak_gflops() {
  using V16 = float __attribute__((vector_size(64)));
  constexpr int kChains = 12;
  constexpr int64_t kIters = 20'000'000;
  ThreadPool& pool = ThreadPool::global();
  const double t0 = now_s();
  pool.run_on_all([&](int, int) {
    V16 a[kChains], b, c;
    for (int k = 0; k < 16; ++k) {
      b[k] = 0.9999999f;
      c[k] = 1e-7f;
      for (int j = 0; j < kChains; ++j) a[j][k] = 1.0f;
    }
    for (int64_t i = 0; i < kIters; ++i) {
      for (int j = 0; j < kChains; ++j) a[j] = a[j] * b + c;
      // Keeps the chains in registers and the loop from being folded away.
      asm volatile(""
                   : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]), "+v"(a[5]),
                     "+v"(a[6]), "+v"(a[7]), "+v"(a[8]), "+v"(a[9]), "+v"(a[10]), "+v"(a[11]));
    }
  });
  const double s = now_s() - t0;
  return static_cast<double>(pool.size()) * kIters * kChains * 16 * 2 / s / 1e9;
}

}  // namespace

int run_lora_bench(const std::vector<std::string>& args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> std::string {
      DR_CHECK(i + 1 < args.size(), "bench", args[i], " needs a value");
      return args[++i];
    };
    if (args[i] == "--dtype") {
      o.dtype = value();
    } else if (args[i] == "--dir") {
      o.dir = value();
    } else if (args[i] == "--rank") {
      o.rank = std::stoi(value());
    } else if (args[i] == "--repeat") {
      o.repeat = std::max(1, std::stoi(value()));
    } else if (args[i] == "--json") {
      o.json = true;
    } else {
      fail("bench", "unknown option '", args[i],
           "' (--dtype f32|bf16, --dir DIR, --rank N, --repeat N, --json)");
    }
  }
  DR_CHECK(o.dtype == "f32" || o.dtype == "bf16", "bench", "--dtype f32 or bf16");
  const DType dtype = o.dtype == "bf16" ? DType::BF16 : DType::F32;
  if (o.dir.empty()) o.dir = (fs::temp_directory_path() / "darkroom-bench-lora").string();
  fs::create_directories(o.dir);

  // The files (written once per directory and reused).
  const auto list = pipeline::parse_tensor_list(pipeline::sd15_ldm_tensor_tsv());
  const std::string ckpt = o.dir + "/sd15-random-f16.safetensors";
  if (!fs::exists(ckpt)) {
    std::fprintf(stderr, "writing %s ...\n", ckpt.c_str());
    pipeline::write_demo_checkpoint(ckpt, list, 1, DType::F16);
  }
  const std::string r = std::to_string(o.rank);
  const std::string a1 = o.dir + "/lora-a1-r" + r + ".safetensors",
                    a2 = o.dir + "/lora-a2-r16-attn.safetensors",
                    b1 = o.dir + "/lora-b1-r" + r + ".safetensors",
                    b2 = o.dir + "/lora-b2-r16-attn.safetensors";
  if (!fs::exists(a1)) write_lora(a1, list, o.rank, false, 101);
  if (!fs::exists(a2)) write_lora(a2, list, 16, true, 102);
  if (!fs::exists(b1)) write_lora(b1, list, o.rank, false, 201);
  if (!fs::exists(b2)) write_lora(b2, list, 16, true, 202);

  // A full load from disk: the file's pages dropped from the page cache first
  // (posix_fadvise DONTNEED drops the clean pages of a file that nothing maps).
  const Timing cold = best_of(1, [&] {
    evict_from_page_cache(ckpt);
    pipeline::load_checkpoint(ckpt, nullptr, dtype);
  });
  // A full load from the page cache, after one that warms it.
  pipeline::load_checkpoint(ckpt, nullptr, dtype);
  const Timing load = best_of(o.repeat, [&] { pipeline::load_checkpoint(ckpt, nullptr, dtype); });

  const pipeline::LoadedCheckpoint base = pipeline::load_checkpoint(ckpt, nullptr, dtype);
  const auto shapes = pipeline::lora_base_shapes(&base.model, &base.clip);
  auto open = [&](const std::string& path) {
    return std::make_shared<const LoraFile>(LoraFile::open(path, shapes));
  };
  bool patched = false;
  auto apply = [&](const std::vector<std::shared_ptr<const LoraFile>>& files) {
    std::vector<pipeline::LoraUse> stack;
    for (const auto& f : files) stack.push_back({f, 0.8f});
    const pipeline::ModelHandle m = pipeline::with_loras(base.model, stack);
    const pipeline::ClipHandle c = pipeline::with_loras(base.clip, stack);
    patched = m.unet != base.model.unet && c.encoder != base.clip.encoder;
  };
  // Files read (cold for darkroom's caches, warm in the page cache) and applied.
  std::vector<std::shared_ptr<const LoraFile>> set_a, set_b;
  const Timing open_a = best_of(1, [&] { set_a = {open(a1), open(a2)}; });
  const Timing apply_a = best_of(1, [&] { apply(set_a); });
  const Timing open_b = best_of(1, [&] { set_b = {open(b1), open(b2)}; });
  const Timing apply_b = best_of(1, [&] { apply(set_b); });
  // Switching with both sets' files already read (the server keeps them in its model cache).
  const Timing to_a = best_of(o.repeat, [&] { apply(set_a); });
  const Timing to_b = best_of(o.repeat, [&] { apply(set_b); });
  DR_CHECK(patched, "bench", "the LoRAs patched nothing");
  size_t modules = 0;
  for (const auto& f : set_a) modules += f->patches().size();
  // The floor of any merge into copies: the checkpoint load's own work for just the
  // tensors set A patches (each decoded from the file into a fresh tensor of the compute
  // dtype, as load_checkpoint does), with no update added; and the multiply-adds of set
  // A's rank updates (2·rows·cols·rank per module) beside this CPU's peak rate for them.
  std::set<std::string> targets;
  double update_flop = 0;
  for (const auto& f : set_a)
    for (const LoraPatch& p : f->patches()) {
      targets.insert(p.target.name);
      const auto down = p.parts.find("down");
      if (down != p.parts.end())
        update_flop +=
            2.0 * static_cast<double>(p.shape.numel()) * static_cast<double>(down->second.dim(0));
    }
  const SafetensorsFile file = SafetensorsFile::open(ckpt);
  size_t target_params = 0;
  for (const std::string& t : targets) target_params += file.tensor(t).numel();
  const Timing floor = best_of(o.repeat, [&] {
    for (const std::string& t : targets) ops::cast(file.tensor(t), dtype);
  });
  const double peak_gflops = fma_peak_gflops();
  size_t all_params = 0;
  for (const auto& info : file.tensors()) all_params += info.shape.numel();
  const double sw = std::max(to_a.wall, to_b.wall), sw_cpu = std::max(to_a.cpu, to_b.cpu);
  const double peak = peak_rss_mib();
  if (o.json) {
    std::printf(
        "{\"bench\":\"lora\",\"model\":\"sd15\",\"dtype\":\"%s\",\"rank\":%d,"
        "\"modules_set_a\":%zu,\"checkpoint_load_s\":%.3f,\"checkpoint_load_cpu_s\":%.3f,"
        "\"open_a_s\":%.3f,\"apply_a_first_s\":%.3f,\"open_b_s\":%.3f,"
        "\"apply_b_first_s\":%.3f,\"switch_to_a_s\":%.3f,\"switch_to_b_s\":%.3f,"
        "\"switch_cpu_s\":%.3f,\"switch_over_load\":%.3f,\"switch_over_load_cpu\":%.3f,"
        "\"checkpoint_load_from_disk_s\":%.3f,\"switch_over_load_from_disk\":%.3f,"
        "\"patched_params\":%zu,\"checkpoint_params\":%zu,\"decode_patched_s\":%.3f,"
        "\"decode_patched_over_load\":%.3f,\"update_gflop\":%.2f,\"fma_peak_gflops\":%.1f,"
        "\"peak_rss_mib\":%.0f}\n",
        o.dtype.c_str(), o.rank, modules, load.wall, load.cpu, open_a.wall, apply_a.wall,
        open_b.wall, apply_b.wall, to_a.wall, to_b.wall, sw_cpu, sw / load.wall, sw_cpu / load.cpu,
        cold.wall, sw / cold.wall, target_params, all_params, floor.wall, floor.wall / load.wall,
        update_flop / 1e9, peak_gflops, peak);
  } else {
    std::printf(
        "darkroom bench lora: SD 1.5 full size, random weights (f16 file), %s, LoRA sets of 2 "
        "stacked files (rank %d on all kohya targets + rank 16 on the UNet attention), %zu "
        "modules in set A\n"
        "                               wall s    cpu s\n"
        "  full checkpoint load        %7.3f  %7.3f   (best of %d)\n"
        "  set A: read the files       %7.3f  %7.3f\n"
        "  set A: merge + rebuild      %7.3f  %7.3f\n"
        "  set B: read the files       %7.3f  %7.3f\n"
        "  set B: merge + rebuild      %7.3f  %7.3f\n"
        "  switch to A (files cached)  %7.3f  %7.3f\n"
        "  switch to B (files cached)  %7.3f  %7.3f\n"
        "  switch / full load          %6.1f%%  %6.1f%%\n"
        "  full load from disk         %7.3f  %7.3f   (page cache dropped first)\n"
        "  switch / load from disk     %6.1f%%\n"
        "  set A patches %.0f M of the checkpoint's %.0f M parameters (%.1f%%)\n"
        "  load of those tensors alone %7.3f  %7.3f   (the floor of a merge into copies)\n"
        "  that load / full load       %6.1f%%  %6.1f%%\n"
        "  switch / that load          %6.2fx\n"
        "  set A's rank updates        %.1f GFLOP, %.0f GFLOP/s in a switch\n"
        "  this CPU's f32 FMA peak     %.0f GFLOP/s (%d threads): the updates alone %.3f s\n"
        "  peak RSS                    %.0f MiB\n",
        o.dtype.c_str(), o.rank, modules, load.wall, load.cpu, o.repeat, open_a.wall, open_a.cpu,
        apply_a.wall, apply_a.cpu, open_b.wall, open_b.cpu, apply_b.wall, apply_b.cpu, to_a.wall,
        to_a.cpu, to_b.wall, to_b.cpu, 100.0 * sw / load.wall, 100.0 * sw_cpu / load.cpu, cold.wall,
        cold.cpu, 100.0 * sw / cold.wall, target_params / 1e6, all_params / 1e6,
        100.0 * static_cast<double>(target_params) / static_cast<double>(all_params), floor.wall,
        floor.cpu, 100.0 * floor.wall / load.wall, 100.0 * floor.cpu / load.cpu, sw / floor.wall,
        update_flop / 1e9, update_flop / 1e9 / sw, peak_gflops, ThreadPool::global().size(),
        update_flop / 1e9 / peak_gflops, peak);
  }
  return 0;
}

}  // namespace darkroom::bench
