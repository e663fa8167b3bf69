// `darkroom generate "prompt" --model FILE ...`: SD 1.x text-to-image on the CPU, written
// as PNGs named and annotated as ComfyUI's SaveImage names and annotates them.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>

#include "backend/device.h"
#include "cli/commands.h"
#include "core/error.h"
#include "io/png_writer.h"
#include "pipeline/comfy_workflow.h"
#include "pipeline/sd15_pipeline.h"
#include "sampling/registry.h"

namespace darkroom::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: darkroom generate PROMPT --model FILE [options]\n"
    "\n"
    "  --model FILE        SD 1.x single-file checkpoint (.safetensors)\n"
    "  --negative TEXT     negative prompt (default empty)\n"
    "  --steps N           sampling steps (20)\n"
    "  --cfg X             classifier-free guidance scale (7.0)\n"
    "  --sampler NAME      ComfyUI sampler name (euler)\n"
    "  --scheduler NAME    ComfyUI scheduler name (normal)\n"
    "  --seed N            noise seed (0)\n"
    "  --width N --height N  image size, multiples of 64 (512)\n"
    "  --batch N           images per run (1)\n"
    "  --clip-skip N       use the CLIP layer N from the end, as CLIPSetLastLayer -N (1)\n"
    "  --out DIR           output folder (.)\n"
    "  --prefix NAME       file name prefix (darkroom)\n"
    "  --clip-data DIR     CLIP vocabulary folder (sd1_tokenizer/ or "
    "bpe_simple_vocab_16e6.txt.gz;\n"
    "                      default $DARKROOM_CLIP_DATA or the source tree's data/clip)";

int parse_int(const std::string& opt, const std::string& v) {
  try {
    size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used == v.size() && x >= INT32_MIN && x <= INT32_MAX) return static_cast<int>(x);
  } catch (...) {
  }
  fail("generate", opt, " '", v, "' is not an integer");
}

uint64_t parse_seed(const std::string& v) {
  try {
    size_t used = 0;
    const unsigned long long x = std::stoull(v, &used);
    if (used == v.size() && !v.empty() && v[0] != '-') return x;
  } catch (...) {
  }
  fail("generate", "--seed '", v, "' is not a non-negative integer");
}

float parse_float(const std::string& opt, const std::string& v) {
  try {
    size_t used = 0;
    const float x = std::stof(v, &used);
    if (used == v.size()) return x;
  } catch (...) {
  }
  fail("generate", opt, " '", v, "' is not a number");
}

text::ClipTokenizer load_tokenizer(std::string dir) {
  if (dir.empty()) {
    const char* env = std::getenv("DARKROOM_CLIP_DATA");
    dir = env != nullptr ? env : DARKROOM_DEFAULT_CLIP_DATA;
  }
  return text::ClipTokenizer::load(fs::path(dir) / "sd1_tokenizer",
                                   fs::path(dir) / "bpe_simple_vocab_16e6.txt.gz");
}

// ComfyUI's SaveImage counter: one past the largest NNNNN of existing PREFIX_NNNNN_.png.
int next_counter(const fs::path& dir, const std::string& prefix) {
  int largest = 0;
  const std::regex re(R"(_(\d{5,})_\.png)");
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    std::smatch m;
    const std::string rest = name.substr(prefix.size());
    if (std::regex_match(rest, m, re)) largest = std::max(largest, std::stoi(m[1].str()));
  }
  return largest + 1;
}

// "  step 7/20 [=======>        ] 1.42 it/s" redrawn in place.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled) {}
  void operator()(int step, int steps) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (step == 1) start_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    // The first step's time includes warm-up; the rate counts the steps after it.
    const double rate = step > 1 && secs > 0 ? (step - 1) / secs : 0.0;
    constexpr int kWidth = 30;
    const int filled = kWidth * step / steps;
    std::string bar(static_cast<size_t>(kWidth), ' ');
    for (int i = 0; i < filled; ++i) bar[static_cast<size_t>(i)] = '=';
    if (filled < kWidth) bar[static_cast<size_t>(filled)] = '>';
    std::printf("\r  step %d/%d [%s] %.2f it/s", step, steps, bar.c_str(), rate);
    if (step == steps) std::printf("\n");
    std::fflush(stdout);
  }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

int run_generate(const std::vector<std::string>& args) {
  pipeline::GenerateParams p;
  std::string model, out_dir = ".", prefix = "darkroom", clip_data;
  bool have_prompt = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) fail("generate", a, " needs a value");
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      std::puts(kUsage);
      return 0;
    } else if (a == "--model") {
      model = value();
    } else if (a == "--negative") {
      p.negative = value();
    } else if (a == "--steps") {
      p.steps = parse_int(a, value());
    } else if (a == "--cfg") {
      p.cfg = parse_float(a, value());
    } else if (a == "--sampler") {
      p.sampler = value();
    } else if (a == "--scheduler") {
      p.scheduler = value();
    } else if (a == "--seed") {
      p.seed = parse_seed(value());
    } else if (a == "--width") {
      p.width = parse_int(a, value());
    } else if (a == "--height") {
      p.height = parse_int(a, value());
    } else if (a == "--batch") {
      p.batch = parse_int(a, value());
    } else if (a == "--clip-skip") {
      p.clip_skip = parse_int(a, value());
      DR_CHECK(p.clip_skip >= 1, "generate", "--clip-skip must be at least 1 (1 = last layer)");
    } else if (a == "--out") {
      out_dir = value();
    } else if (a == "--prefix") {
      prefix = value();
    } else if (a == "--clip-data") {
      clip_data = value();
    } else if (a.rfind("--", 0) == 0) {
      fail("generate", "unknown option '", a, "' (see darkroom generate --help)");
    } else if (!have_prompt) {
      p.prompt = a;
      have_prompt = true;
    } else {
      fail("generate", "more than one prompt given ('", p.prompt, "' and '", a,
           "'); quote the prompt");
    }
  }
  DR_CHECK(have_prompt, "generate", "no prompt given\n", kUsage);
  DR_CHECK(!model.empty(), "generate", "--model FILE is required\n", kUsage);
  // Fail on names before minutes of loading.
  sampling::get_sampler(p.sampler);
  DR_CHECK(sampling::find_scheduler(p.scheduler) != nullptr, "generate", "unknown scheduler '",
           p.scheduler, "'");
  fs::create_directories(out_dir);

  const bool tty = isatty(fileno(stdout)) != 0;
  const DType dtype = cpu_device().compute_dtype();
  if (tty) std::printf("loading %s (%s)\n", model.c_str(), std::string(dtype_name(dtype)).c_str());
  const auto pipe =
      pipeline::Sd15Pipeline::from_checkpoint(model, load_tokenizer(clip_data), dtype);
  ProgressBar bar(tty);
  const std::vector<pipeline::RgbImage> images =
      pipe.generate(p, [&](int step, int steps) { bar(step, steps); });

  pipeline::WorkflowInfo info;
  info.ckpt_name = fs::path(model).filename().string();
  info.filename_prefix = prefix;
  const std::vector<PngText> text = {{"prompt", pipeline::comfy_api_prompt(p, info)},
                                     {"workflow", pipeline::comfy_ui_workflow(p, info)}};
  int counter = next_counter(out_dir, prefix);
  for (const pipeline::RgbImage& img : images) {
    char name[64];
    std::snprintf(name, sizeof(name), "_%05d_.png", counter++);
    const std::string path = (fs::path(out_dir) / (prefix + name)).string();
    write_png_rgb8(path, img.pixels, img.width, img.height, text);
    std::printf("%s\n", path.c_str());
  }
  return 0;
}

}  // namespace darkroom::cli
