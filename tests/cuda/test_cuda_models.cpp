// Models that the CPU suite checks against PyTorch, run on the CUDA device against the
// same references: ControlNet (diffusers' ControlNetModel residuals and the UNet given
// them; tests/models/test_controlnet.cpp's fixtures), RRDBNet (spandrel's forward, the
// descriptor call and ComfyUI's tiled_scale; tests/models/test_rrdbnet.cpp's), and a
// LoRA merged into a checkpoint loaded on CUDA (pipeline::load_checkpoint + with_loras:
// the patched copies are merged on the CPU and must be uploaded by the rebuild) against
// diffusers' UNet with the adapter and the same merge on the CPU, the base model's output
// unchanged by the merge.
//
// Tolerances. f32 on the GPU differs from the CPU references in summation order and in
// cuDNN's and cuBLAS's algorithms (no TF32 where the backend can avoid it): 1e-3 of the
// output's scale (max(1, peak |ref|)), as CudaGraph's tiny SDXL UNet uses against
// diffusers; outputs are of order 1 and a wrong index, a missing term or weights that
// did not reach the GPU give errors ≳ 5e-2 (checked below where a test has such a
// contrast; these tests run on the CPU backend, device swapped, give ≤ 1e-6). bf16 (the
// device's compute dtype): every op rounds its output to 8 mantissa bits, so the error
// against the f32 reference is about the error torch's own bf16 run of the same model has
// (the generators store it: *_bf16), as the CPU suite's bf16 tests use it; here ours must
// stay within 3× torch's in max and in rms. On the CPU backend these tests measure
// 0.93–1.26× torch's; the GPU rounds at other points (flash attention's probabilities,
// cuDNN's own algorithms), hence 3× rather than the CPU suite's 2×. A bug is still far
// outside: the LoRA at strength 0.9 instead of 1 gives 9.5× torch's max error, ControlNet
// timesteps off by one 3.9× (sd15) and 7.3× (sdxl); the LoRA changes the UNet's output
// by 1.49 (max) where torch's bf16 error is 0.019.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "backend/device.h"
#include "backend/ops.h"
#include "cuda/cuda_test_util.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "models/controlnet.h"
#include "models/lora.h"
#include "models/rrdbnet.h"
#include "models/unet.h"
#include "models/unet_diffusers_names.h"
#include "models/unet_runner.h"
#include "models/weights.h"
#include "pipeline/checkpoint.h"
#include "pipeline/checkpoint_loader.h"
#include "pipeline/controlnet_loader.h"
#include "pipeline/lora_apply.h"
#include "pipeline/upscale_model.h"
#include "pipeline/upscale_tiled.h"
#include "test_util.h"

namespace darkroom {
namespace {

namespace fs = std::filesystem;
using test::error_stats;
using test::ErrorStats;
using test::host;
using test::nchw_to_nhwc;
constexpr DeviceId kGpu = test::kCudaDevice;

constexpr double kF32Tol = 1e-3;      // × max(1, peak |ref|); see the top
constexpr double kBf16VsTorch = 3.0;  // × torch's bf16 error, max and rms; see the top

std::string data(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/" + file;
}

double peak(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

// got (GPU, f32) within kF32Tol of the reference's scale.
void expect_f32_close(const std::vector<float>& got, const std::vector<float>& want,
                      const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const ErrorStats e = error_stats(got, want);
  EXPECT_LE(e.max_abs, kF32Tol * std::max(1.0, peak(want))) << what << ", rms " << e.rms;
}

// ours (GPU bf16) and torch's bf16 run, each against the f32 reference `want`.
void expect_bf16_like_torch(const std::vector<float>& ours, const std::vector<float>& torch,
                            const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(ours.size(), want.size()) << what;
  const ErrorStats e_ours = error_stats(ours, want);
  const ErrorStats e_torch = error_stats(torch, want);
  ASSERT_GT(e_torch.max_abs, 0.0) << what << ": the bf16 reference equals the f32 one";
  EXPECT_LE(e_ours.max_abs, kBf16VsTorch * e_torch.max_abs)
      << what << ": max error " << e_ours.max_abs << ", torch's bf16 " << e_torch.max_abs;
  EXPECT_LE(e_ours.rms, kBf16VsTorch * e_torch.rms)
      << what << ": rms error " << e_ours.rms << ", torch's bf16 " << e_torch.rms;
}

using test::f32;
using test::nhwc;

// ---- ControlNet ------------------------------------------------------------------------

// tools/fixtures/controlnet.py's inputs and diffusers' outputs (NHWC where darkroom is).
struct ControlReference {
  Tensor x, hint, t, context, y;
  std::vector<Tensor> down, down_bf16;  // residual i; then the middle one last
  Tensor unet_out;                      // diffusers' UNet given the f32 residuals, or undefined
};

ControlReference control_reference(const std::string& file) {
  const SafetensorsFile f = SafetensorsFile::open(data("controlnet/" + file));
  ControlReference r;
  r.x = nhwc(f.tensor("x"));
  r.hint = nhwc(f.tensor("hint"));
  r.t = f32(f.tensor("t"));
  r.context = f32(f.tensor("context"));
  if (f.find("y")) r.y = f32(f.tensor("y"));
  for (int i = 0; f.find("down" + std::to_string(i)); ++i) {
    r.down.push_back(nhwc(f.tensor("down" + std::to_string(i))));
    r.down_bf16.push_back(nhwc(f.tensor("down" + std::to_string(i) + "_bf16")));
  }
  r.down.push_back(nhwc(f.tensor("mid")));
  r.down_bf16.push_back(nhwc(f.tensor("mid_bf16")));
  if (f.find("unet_out")) r.unet_out = nhwc(f.tensor("unet_out"));
  return r;
}

ControlResiduals run_control(const ControlNet& net, const ControlReference& r) {
  return net.forward(r.x, r.hint, r.t, r.context, r.y);  // CPU inputs, as the sampler's
}

// The skips then the middle residual, checked to live on the GPU in `dtype`.
std::vector<Tensor> residuals(const ControlResiduals& c, DType dtype) {
  std::vector<Tensor> all = c.skips;
  all.push_back(c.middle);
  for (const Tensor& t : all) {
    EXPECT_EQ(t.device(), kGpu);
    EXPECT_EQ(t.dtype(), dtype);
  }
  return all;
}

void expect_residuals_f32(const ControlResiduals& got, const ControlReference& r) {
  const std::vector<Tensor> g = residuals(got, DType::F32);
  ASSERT_EQ(g.size(), r.down.size());
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_EQ(g[i].shape(), r.down[i].shape()) << "residual " << i;
    expect_f32_close(host(g[i]), r.down[i].to_floats(),
                     i + 1 == g.size() ? "middle" : "skip " + std::to_string(i));
  }
}

// The UNet (f32, on the GPU) given the residuals, against diffusers' UNet2DConditionModel
// with down_block_additional_residuals / mid_block_additional_residual; without them the
// output must be far off (the residuals reach the GPU UNet).
void expect_unet_with_residuals(const UNet& unet, const ControlResiduals& control,
                                const ControlReference& r) {
  const Tensor out = unet.forward(r.x, r.t, r.context, r.y, &control);
  EXPECT_EQ(out.device(), kGpu);
  ASSERT_EQ(out.shape(), r.unet_out.shape());
  const std::vector<float> want = r.unet_out.to_floats();
  expect_f32_close(host(out), want, "UNet with residuals");
  const std::vector<float> plain = host(unet.forward(r.x, r.t, r.context, r.y));
  EXPECT_GT(error_stats(plain, want).max_abs, 0.05);
}

TEST(CudaControlNet, Sd15ResidualsAndUnetMatchDiffusersF32) {
  const ControlReference r = control_reference("sd15_ref.safetensors");
  ASSERT_EQ(r.down.size(), 13u);  // 12 skips + middle
  const auto net = pipeline::load_controlnet(data("controlnet/sd15.safetensors"), kGpu, DType::F32);
  EXPECT_EQ(net->device(), kGpu);
  const ControlResiduals control = run_control(*net, r);
  expect_residuals_f32(control, r);

  // tests/data/models/sd15_tiny's UNet, for which the fixture's ControlNet was made
  // (tools/fixtures/unet.py's TINY: 4 groups, 4 heads).
  auto file = std::make_shared<const SafetensorsFile>(
      SafetensorsFile::open(data("models/sd15_tiny/unet.safetensors")));
  const Weights w = Weights::from_file(file, "model.diffusion_model.", kGpu, DType::F32);
  UNetConfig c = UNetConfig::detect(w);
  c.groups = 4;
  c.num_heads = 4;
  c.head_dim = 0;
  expect_unet_with_residuals(UNet::load(w, c), control, r);
}

TEST(CudaControlNet, SdxlResidualsAndUnetMatchDiffusersF32) {
  const ControlReference r = control_reference("sdxl_ref.safetensors");
  ASSERT_EQ(r.down.size(), 10u);  // 9 skips + middle
  for (const char* name : {"sdxl_diffusers.pth", "sdxl_ldm.safetensors"}) {
    SCOPED_TRACE(name);
    const auto net =
        pipeline::load_controlnet(data(std::string("controlnet/") + name), kGpu, DType::F32);
    expect_residuals_f32(run_control(*net, r), r);
  }
  const auto net =
      pipeline::load_controlnet(data("controlnet/sdxl_diffusers.pth"), kGpu, DType::F32);
  auto file = std::make_shared<const SafetensorsFile>(
      SafetensorsFile::open(data("controlnet/sdxl_unet.safetensors")));
  const Weights w = unet_weights_from_diffusers(file, kGpu, DType::F32);
  UNetConfig c = UNetConfig::detect(w);
  c.groups = 2;  // the generator's SDXL_UNET: 2 groups, heads of 4 channels
  c.num_heads = 0;
  c.head_dim = 4;
  expect_unet_with_residuals(UNet::load(w, c), run_control(*net, r), r);
}

// The device's own dtype: all residuals together against diffusers' f32 ones, with
// torch's bf16 run as the yardstick.
TEST(CudaControlNet, Bf16ResidualsWithinThriceTorchsBf16Error) {
  const std::pair<const char*, const char*> cases[] = {
      {"sd15.safetensors", "sd15_ref.safetensors"},        // diffusers names
      {"sd15_mini_ldm.pth", "sd15_mini_ref.safetensors"},  // ldm names under control_model.
      {"sdxl_diffusers.pth", "sdxl_ref.safetensors"}};
  for (const auto& [model, ref] : cases) {
    SCOPED_TRACE(model);
    const ControlReference r = control_reference(ref);
    const auto net =
        pipeline::load_controlnet(data(std::string("controlnet/") + model), kGpu, DType::BF16);
    const std::vector<Tensor> g = residuals(run_control(*net, r), DType::BF16);
    ASSERT_EQ(g.size(), r.down.size());
    std::vector<float> ours, torch, want;
    for (size_t i = 0; i < g.size(); ++i) {
      ASSERT_EQ(g[i].shape(), r.down[i].shape()) << "residual " << i;
      for (float v : host(g[i])) ours.push_back(v);
      for (float v : r.down_bf16[i].to_floats()) torch.push_back(v);
      for (float v : r.down[i].to_floats()) want.push_back(v);
    }
    expect_bf16_like_torch(ours, torch, want, model);
  }
}

// ---- RRDBNet (ESRGAN-family upscalers) --------------------------------------------------

std::string rrdb_file(const std::string& name) {
  return data("models/rrdbnet/" + name);
}

// tools/fixtures/rrdbnet.py's inputs and spandrel's outputs (NHWC, CPU f32).
Tensor rrdb_ref(const std::string& name) {
  static const SafetensorsFile f = SafetensorsFile::open(rrdb_file("ref.safetensors"));
  return f32(f.tensor(name));
}

struct RrdbCase {
  const char* name;    // in ref.safetensors
  const char* file;    // the model
  const char* prefix;  // where the network lives in it
};

// As tests/models/test_rrdbnet.cpp: Real-ESRGAN x4 (BasicSR names), x2plus (pixel
// unshuffle by 2, under params_ema.), 4x-UltraSharp-like (old ESRGAN names, 2 blocks),
// x1 (unshuffle by 4, f16 file).
const RrdbCase kRrdbCases[] = {{"x4", "x4.safetensors", ""},
                               {"x2plus", "x2plus.pth", "params_ema."},
                               {"ultrasharp", "ultrasharp.pth", ""},
                               {"x1", "x1.safetensors", ""}};

Rrdbnet load_rrdbnet(const RrdbCase& c, DType dtype) {
  const pipeline::CheckpointFile f = pipeline::CheckpointFile::open(rrdb_file(c.file));
  const Weights w = f.weights(c.prefix, kGpu, dtype);
  return Rrdbnet::load(w, RrdbnetConfig::detect(w));
}

TEST(CudaRrdbnet, ForwardMatchesSpandrelF32) {
  for (const RrdbCase& c : kRrdbCases) {
    SCOPED_TRACE(c.name);
    const Rrdbnet net = load_rrdbnet(c, DType::F32);
    EXPECT_EQ(net.device(), kGpu);
    const Tensor out = net.forward(rrdb_ref(std::string(c.name) + ".input"));  // CPU f32 in
    EXPECT_EQ(out.device(), kGpu);
    EXPECT_EQ(out.dtype(), DType::F32);
    const Tensor want = rrdb_ref(std::string(c.name) + ".forward");
    ASSERT_EQ(out.shape(), want.shape());
    expect_f32_close(host(out), want.to_floats(), "forward");
  }
}

TEST(CudaRrdbnet, Bf16WithinThriceTorchsBf16Error) {
  for (const RrdbCase& c : kRrdbCases) {
    SCOPED_TRACE(c.name);
    const Rrdbnet net = load_rrdbnet(c, DType::BF16);
    const Tensor out = net.forward(rrdb_ref(std::string(c.name) + ".input"));
    EXPECT_EQ(out.device(), kGpu);
    const std::string key = std::string(c.name) + ".forward";
    ASSERT_EQ(out.shape(), rrdb_ref(key).shape());
    expect_bf16_like_torch(host(out), rrdb_ref(key + "_bf16").to_floats(),
                           rrdb_ref(key).to_floats(), c.name);
  }
}

// The model as the UpscaleModelLoader node loads it onto the GPU: spandrel's descriptor
// call (padding to the size requirements, clamp), and ImageUpscaleWithModel's tiled path
// (comfy.utils.tiled_scale restated in PyTorch by the generator), several tiles per image.
TEST(CudaRrdbnet, DescriptorCallAndTiledUpscaleMatchReferencesF32) {
  for (const char* name : {"x4", "x2plus"}) {
    SCOPED_TRACE(name);
    const std::string n = name;
    const pipeline::UpscaleModel m = pipeline::load_upscale_model(
        rrdb_file(n == "x4" ? "x4.safetensors" : "x2plus.pth"), DType::F32, kGpu);
    ASSERT_EQ(m.net->device(), kGpu);
    const Tensor call = pipeline::upscale_call(m, rrdb_ref(n + ".input"));
    expect_f32_close(call.to_floats(), rrdb_ref(n + ".call").to_floats(), "descriptor call");

    const std::vector<float> tiling = rrdb_ref("tiled." + n + ".tiling").to_floats();
    const Tensor input = rrdb_ref("tiled." + n + ".input");
    pipeline::UpscaleOptions o;
    o.tile = static_cast<int64_t>(tiling[0]);
    o.overlap = static_cast<int64_t>(tiling[1]);
    o.min_tile = 1;
    int64_t tiles = 0;
    o.on_tile = [&](int64_t done, int64_t) { tiles = done; };
    const Tensor out = pipeline::upscale_image(m, input, o);
    EXPECT_GT(tiles, 2 * input.dim(0));
    const Tensor want = rrdb_ref("tiled." + n + ".output");
    ASSERT_EQ(out.shape(), want.shape());
    expect_f32_close(out.to_floats(), want.to_floats(), "tiled");
  }
}

// ---- LoRA on a model that lives on the GPU ----------------------------------------------

// tests/data/models/sd15_tiny's UNet and VAE with pipeline/clip32's text encoder (the
// UNet's 32-wide context) as one SD 1.5 checkpoint, as tests/workflow/test_lora_nodes.cpp
// assembles it; its token table is any [vocab, 32] (no text is encoded here). Written
// once per process, removed at exit.
class TinyCheckpoint {
 public:
  TinyCheckpoint()
      : path_((fs::temp_directory_path() /
               ("darkroom_cuda_lora_" + std::to_string(::getpid()) + ".safetensors"))
                  .string()) {
    std::vector<std::pair<std::string, Tensor>> tensors;
    auto add = [&](const std::string& file, const std::string& prefix) {
      const SafetensorsFile f = SafetensorsFile::open(data(file));
      for (const TensorInfo& t : f.tensors())
        if (t.name.rfind(prefix, 0) == 0) tensors.emplace_back(t.name, f.tensor(t.name));
    };
    add("models/sd15_tiny/unet.safetensors", "model.diffusion_model.");
    add("models/sd15_tiny/clip_vae.safetensors", "first_stage_model.");
    add("pipeline/clip32.safetensors", "cond_stage_model.transformer.");
    tensors.emplace_back(
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
        test::random_tensor({512, 32}, DType::F32, 77));
    write_safetensors(path_, tensors,
                      {{"darkroom.family", "sd15"},
                       {"darkroom.unet.groups", "4"},
                       {"darkroom.unet.num_heads", "4"},
                       {"darkroom.vae.groups", "8"},
                       {"darkroom.clip.heads", "2"}});
  }
  ~TinyCheckpoint() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const std::string& tiny_checkpoint() {
  static const TinyCheckpoint c;
  return c.path();
}

// diffusers' inputs and outputs for that UNet (tools/fixtures/unet.py, lora.py).
struct UnetReference {
  Tensor x, t, context;                // x NHWC
  std::vector<float> base, base_bf16;  // the UNet's output (NHWC), f32 and torch's bf16
  std::vector<float> lora;             // with sd15_kohya's LoRA at strength 1
};

UnetReference unet_reference() {
  const SafetensorsFile io = SafetensorsFile::open(data("models/sd15_tiny/unet_ref.safetensors"));
  const SafetensorsFile lr = SafetensorsFile::open(data("lora/sd15_ref.safetensors"));
  UnetReference r;
  const Tensor x = io.tensor("x");  // [2, 4, 16, 16]
  const Shape& s = x.shape();
  r.x = nhwc(x);
  r.t = f32(io.tensor("t0"));
  r.context = f32(io.tensor("context"));
  r.base = nchw_to_nhwc(io.tensor("out0").to_floats(), s);
  r.base_bf16 = nchw_to_nhwc(io.tensor("out0_bf16").to_floats(), s);
  r.lora = nchw_to_nhwc(lr.tensor("unet.out").to_floats(), s);
  return r;
}

// A MODEL's UNet step as the sampler runs it: through its UNetRunner on CUDA (a CUDA
// graph), UNet::forward on the CPU; CPU inputs.
std::vector<float> step(const pipeline::ModelHandle& m, const UnetReference& r) {
  if (m.runner) return host(m.runner->forward(r.x, r.t, r.context));
  return host(m.unet->forward(r.x, r.t, r.context));
}

std::shared_ptr<const LoraFile> kohya_lora(const pipeline::ModelHandle& m) {
  // The UNet's names only: the file's text-encoder keys are for another CLIP's width.
  auto f = std::make_shared<const LoraFile>(
      LoraFile::open(data("lora/sd15_kohya.safetensors"), pipeline::lora_base_shapes(&m, nullptr)));
  EXPECT_EQ(f->patches().size(), 32u);  // the UNet's 32 modules (test_lora.cpp)
  return f;
}

// The CPU f32 merge, itself within 1e-4 of diffusers as the CPU suite checks it: the
// reference for the GPU's bf16 merge.
std::vector<float> cpu_lora_step(const UnetReference& r) {
  const pipeline::LoadedCheckpoint ck =
      pipeline::load_checkpoint(tiny_checkpoint(), nullptr, DType::F32, kCpu);
  const pipeline::ModelHandle m = pipeline::with_loras(ck.model, {{kohya_lora(ck.model), 1.0f}});
  const std::vector<float> out = step(m, r);
  EXPECT_LE(error_stats(out, r.lora).max_abs, 1e-4) << "the CPU merge against diffusers";
  return out;
}

TEST(CudaLora, MergeOnAGpuModelMatchesDiffusersAndLeavesTheBaseAsIs) {
  const UnetReference r = unet_reference();
  const std::vector<float> cpu_lora = cpu_lora_step(r);
  for (DType dt : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dt));
    const pipeline::LoadedCheckpoint ck =
        pipeline::load_checkpoint(tiny_checkpoint(), nullptr, dt, kGpu);
    ASSERT_EQ(ck.model.unet->device(), kGpu);
    ASSERT_TRUE(ck.model.runner);
    const std::vector<float> base_before = step(ck.model, r);

    const pipeline::ModelHandle lora =
        pipeline::with_loras(ck.model, {{kohya_lora(ck.model), 1.0f}});
    ASSERT_EQ(lora.unet->device(), kGpu);
    ASSERT_TRUE(lora.runner);
    ASSERT_TRUE(lora.lora_weights);
    EXPECT_EQ(lora.lora_weights->size(), 32u);
    const std::vector<float> got = step(lora, r);
    const std::vector<float> base_after = step(ck.model, r);

    // The base network is shared, not written: the same kernels on the same weights.
    EXPECT_LE(error_stats(base_after, base_before).max_abs, 1e-6) << "the base changed";
    // The merged tensors reached the GPU: the LoRA moves the output by 1.49 at most.
    EXPECT_GT(error_stats(got, base_after).max_abs, 0.5) << "the LoRA changed nothing";
    if (dt == DType::F32) {
      expect_f32_close(got, r.lora, "LoRA'd UNet against diffusers");
      expect_f32_close(base_after, r.base, "base UNet against diffusers");
    } else {
      // Against the CPU's f32 merge; torch's bf16 error of this UNet on this input is
      // measured on the base network (the LoRA'd one has the same layers and widths).
      const ErrorStats e_torch = error_stats(r.base_bf16, r.base);
      const ErrorStats e = error_stats(got, cpu_lora);
      EXPECT_LE(e.max_abs, kBf16VsTorch * e_torch.max_abs)
          << "LoRA'd UNet against the CPU merge, torch's bf16 error " << e_torch.max_abs;
      EXPECT_LE(e.rms, kBf16VsTorch * e_torch.rms)
          << "LoRA'd UNet against the CPU merge, torch's bf16 rms error " << e_torch.rms;
      expect_bf16_like_torch(base_after, r.base_bf16, r.base, "base UNet");
    }
  }
}

}  // namespace
}  // namespace darkroom
