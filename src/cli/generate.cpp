// `darkroom generate "prompt" --model FILE ...`: text-to-image with a checkpoint of any
// family that pipeline/checkpoint.h detects (SD 1.x, SD 2.x, SDXL, SDXL refiner) on a CUDA
// device (the first, or --cuda-device N) or the CPU (--cpu, or when there is no GPU),
// written as PNGs named and annotated as ComfyUI's SaveImage names and annotates them.
// It runs ComfyUI's default graph: CheckpointLoaderSimple → CLIPTextEncode ×2 →
// EmptyLatentImage → KSampler → VAEDecode → SaveImage, through the same pipeline calls as
// those nodes (load_checkpoint, encode_text, ksample).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>

#include "backend/device.h"
#include "backend/device_graph.h"
#include "backend/ops.h"
#include "cli/commands.h"
#include "cli/device_choice.h"
#include "core/error.h"
#include "io/png_writer.h"
#include "models/unet_runner.h"
#include "pipeline/checkpoint_loader.h"
#include "pipeline/clip_encode.h"
#include "pipeline/comfy_workflow.h"
#include "pipeline/ksampler.h"
#include "pipeline/sd15_pipeline.h"
#include "sampling/registry.h"

namespace darkroom::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: darkroom generate PROMPT --model FILE|DIR [options]\n"
    "\n"
    "  --model FILE|DIR    single-file checkpoint (.safetensors or .ckpt: SD 1.x, SD 2.x,\n"
    "                      SDXL or SDXL refiner, detected from its tensors) or a diffusers\n"
    "                      folder with model_index.json (SD 1.x, SDXL, SDXL refiner)\n"
    "  --negative TEXT     negative prompt (default empty)\n"
    "  --steps N           sampling steps (20)\n"
    "  --cfg X             classifier-free guidance scale (7.0)\n"
    "  --sampler NAME      ComfyUI sampler name (euler)\n"
    "  --scheduler NAME    ComfyUI scheduler name (normal)\n"
    "  --seed N            noise seed (0)\n"
    "  --width N --height N  image size, multiples of 8 (the family's: SD 1.x 512, SD 2.x\n"
    "                      768, SDXL 1024)\n"
    "  --batch N           images per run (1)\n"
    "  --clip-skip N       use the CLIP layer N from the end, as CLIPSetLastLayer -N\n"
    "                      (default: the family's; SD 1.x the last, SD 2.x / SDXL the\n"
    "                      penultimate)\n"
    "  --cuda-device N     run on CUDA device N (default: the first; the CPU when none)\n"
    "  --cpu               run on the CPU\n"
    "  --cuda-graphs on|off  replay the UNet step as a CUDA graph (on)\n"
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

// The image side a family was trained at (ComfyUI's templates use the same).
int default_size(pipeline::ModelFamily family) {
  switch (family) {
    case pipeline::ModelFamily::Sd15:
      return 512;
    case pipeline::ModelFamily::Sd2:
      return 768;
    case pipeline::ModelFamily::Sdxl:
    case pipeline::ModelFamily::SdxlRefiner:
      return 1024;
  }
  return 512;
}

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int run_generate(const std::vector<std::string>& args) {
  pipeline::GenerateParams p;
  std::string model, out_dir = ".", prefix = "darkroom", clip_data;
  bool have_prompt = false, force_cpu = false, cuda_graphs = true, clip_skip_given = false;
  p.width = p.height = 0;  // the family's size unless given
  int cuda_index = -1;
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
      clip_skip_given = true;
      DR_CHECK(p.clip_skip >= 1, "generate", "--clip-skip must be at least 1 (1 = last layer)");
    } else if (a == "--cuda-device") {
      cuda_index = parse_cuda_device("generate", value());
    } else if (a == "--cpu") {
      force_cpu = true;
    } else if (a == "--cuda-graphs") {
      const std::string& v = value();
      DR_CHECK(v == "on" || v == "off", "generate", "--cuda-graphs takes on or off, got '", v, "'");
      cuda_graphs = v == "on";
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
  DR_CHECK(!model.empty(), "generate", "--model FILE|DIR is required\n", kUsage);
  // Fail on names before minutes of loading.
  sampling::get_sampler(p.sampler);
  DR_CHECK(sampling::find_scheduler(p.scheduler) != nullptr, "generate", "unknown scheduler '",
           p.scheduler, "'");
  fs::create_directories(out_dir);

  DR_CHECK(!(force_cpu && cuda_index >= 0), "generate",
           "--cpu and --cuda-device exclude each other");

  const bool tty = isatty(fileno(stdout)) != 0;
  const DeviceId device = force_cpu ? kCpu : choose_device(cuda_index);
  const DType dtype = device_for(device).compute_dtype();
  if (tty)
    std::printf("loading %s (%s on %s)\n", model.c_str(), std::string(dtype_name(dtype)).c_str(),
                device.str().c_str());
  pipeline::LoadedCheckpoint ck = pipeline::load_checkpoint(
      model, std::make_shared<const text::ClipTokenizer>(load_tokenizer(clip_data)), dtype, device);
  if (ck.model.runner && !cuda_graphs) {
    std::shared_ptr<const UNet> unet = ck.model.unet;
    ck.model.runner = std::shared_ptr<UNetRunner>(new UNetRunner(*unet, /*use_graphs=*/false),
                                                  [unet](UNetRunner* r) { delete r; });
  }
  const int size = default_size(ck.model.family);
  if (p.width == 0) p.width = size;
  if (p.height == 0) p.height = size;
  const int scale = ck.vae.scale();
  DR_CHECK(p.width > 0 && p.height > 0 && p.width % scale == 0 && p.height % scale == 0, "generate",
           "width and height must be positive multiples of ", scale, ", got ", p.width, "x",
           p.height);
  DR_CHECK(p.batch >= 1, "generate", "batch must be at least 1, got ", p.batch);
  // CLIPSetLastLayer only when asked: each family has its own default layer.
  if (clip_skip_given) ck.clip.clip_skip = p.clip_skip;
  if (tty)
    std::printf("%s model; %dx%d\n", pipeline::family_name(ck.model.family), p.width, p.height);
  ProgressBar bar(tty);
  // Sampling and decoding timed apart; "it/s" counts every step (the first includes the
  // UNet's first-use set-up and, on CUDA, the graph capture).
  const double t0 = seconds_now();
  double t_first = 0;  // end of the first step
  int done = 0;
  const pipeline::Conditioning positive = {pipeline::encode_text(ck.clip, p.prompt)};
  const pipeline::Conditioning negative = {pipeline::encode_text(ck.clip, p.negative)};
  pipeline::Latent latent;  // EmptyLatentImage
  latent.samples = Tensor::zeros(
      {p.batch, p.height / scale, p.width / scale, ck.vae.vae->config().z_channels}, DType::F32);
  pipeline::KSamplerParams kp;
  kp.seed = p.seed;
  kp.steps = p.steps;
  kp.cfg = p.cfg;
  kp.sampler = p.sampler;
  kp.scheduler = p.scheduler;
  kp.denoise = p.denoise;
  pipeline::KSamplerHooks hooks;
  hooks.on_step = [&](int step, int steps, const Tensor&) {
    if (step == 0) t_first = seconds_now();
    done = step + 1;
    bar(step + 1, steps);
  };
  const Tensor z = pipeline::ksample(ck.model, positive, negative, latent, kp, hooks).samples;
  const double t1 = seconds_now();
  const std::vector<pipeline::RgbImage> images =
      pipeline::Sd15Pipeline::to_rgb8(ops::to_device(ck.vae.vae->decode(z), kCpu));
  const double t2 = seconds_now();
  std::fprintf(stderr,
               "darkroom: %s, %d steps in %.2f s (%.2f it/s; %.2f it/s after the first), VAE "
               "decode %.2f s\n",
               device.str().c_str(), done, t1 - t0, done / (t1 - t0),
               done > 1 ? (done - 1) / (t1 - t_first) : 0.0, t2 - t1);
  if (device.type == DeviceType::Cuda) {
    const DeviceMemoryStats mem = device_memory_stats(device);
    std::fprintf(stderr,
                 "darkroom: peak memory: tensors %.2f GiB, CUDA graphs %.2f GiB; device in use "
                 "%.2f GiB\n",
                 mem.tensors_peak / 1073741824.0, mem.graphs_peak / 1073741824.0,
                 mem.device_used / 1073741824.0);
  }

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
