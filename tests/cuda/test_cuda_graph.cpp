// CUDA graphs (backend/device_graph.h) and the UNet step run through them (UNetRunner):
// a captured sequence of ops replayed on new inputs must give what the same ops give
// eagerly; a capture that breaks the rules (a synchronisation inside) must fail cleanly
// and leave the device usable; and the tiny SDXL-layout UNet of data/models/sdxl_tiny/
// run as a replayed graph must match diffusers' outputs (tools/fixtures/sdxl_unet.py)
// and the eager GPU run.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backend/device.h"
#include "backend/device_graph.h"
#include "backend/ops.h"
#include "cuda_test_util.h"
#include "io/safetensors.h"
#include "models/unet.h"
#include "models/unet_diffusers_names.h"
#include "models/unet_runner.h"
#include "test_util.h"

namespace darkroom {
namespace {

using test::host;
using test::nchw_to_nhwc;

using test::random_tensor;
constexpr DeviceId kGpu{DeviceType::Cuda, 0};

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    m = std::isnan(d) ? INFINITY : std::max(m, d);
  }
  return m;
}

// A few ops of every kind a UNet step uses: group norm + SiLU, linear (cuBLASLt with
// its workspace), attention, elementwise, a 3×3 convolution (cuDNN) and concat.
struct Block {
  Tensor gn_w, gn_b, lin_w, lin_b, conv_w, conv_b;
  explicit Block(DType dt) {
    gn_w = ops::to_device(random_tensor({64}, dt, 1), kGpu);
    gn_b = ops::to_device(random_tensor({64}, dt, 2), kGpu);
    lin_w = ops::to_device(random_tensor({64, 64}, dt, 3, -0.2f, 0.2f), kGpu);
    lin_b = ops::to_device(random_tensor({64}, dt, 4), kGpu);
    conv_w = ops::to_device(random_tensor({32, 128, 3, 3}, dt, 5, -0.05f, 0.05f), kGpu);
    conv_b = ops::to_device(random_tensor({32}, dt, 6), kGpu);
  }
  // x [2, 16, 16, 64] → [2, 16, 16, 32]
  Tensor operator()(const Tensor& x) const {
    const Tensor h = ops::group_norm(x, 8, gn_w, gn_b, 1e-5f, /*silu=*/true);
    const Tensor tokens = ops::linear(h, lin_w, lin_b).reshape({2, 256, 64});
    const Tensor a = ops::attention(tokens, tokens, tokens, 4).reshape({2, 16, 16, 64});
    const Tensor s = ops::add(a, x);
    return ops::conv2d(ops::concat({s, h}, 3), conv_w, conv_b, {1, 1});
  }
};

TEST(CudaGraph, ReplayOnNewInputsMatchesEager) {
  for (DType dt : {DType::F32, DType::BF16}) {
    const Block f(dt);
    Device& dev = device_for(kGpu);
    const Tensor in1 = ops::to_device(random_tensor({2, 16, 16, 64}, dt, 10), kGpu);
    const Tensor in2 = ops::to_device(random_tensor({2, 16, 16, 64}, dt, 11), kGpu);
    const std::vector<float> eager1 = host(f(in1)), eager2 = host(f(in2));  // also the warm-up

    const Tensor in = Tensor::empty(in1.shape(), dt, kGpu);
    const Tensor out = Tensor::empty({2, 16, 16, 32}, dt, kGpu);
    GraphCapture cap = capture_graph(kGpu, [&] { dev.copy(f(in), out); });
    ASSERT_TRUE(cap.graph) << cap.error;
    for (int rep = 0; rep < 2; ++rep) {
      dev.copy(in1, in);
      cap.graph->replay();
      EXPECT_LE(max_abs_diff(host(out), eager1), 1e-6) << dtype_name(dt) << " rep " << rep;
      dev.copy(in2, in);
      cap.graph->replay();
      EXPECT_LE(max_abs_diff(host(out), eager2), 1e-6) << dtype_name(dt) << " rep " << rep;
    }
  }
}

TEST(CudaGraph, ForbiddenCallFailsTheCaptureCleanly) {
  Device& dev = device_for(kGpu);
  const Tensor x = ops::to_device(random_tensor({4, 8}, DType::F32, 20), kGpu);
  GraphCapture cap = capture_graph(kGpu, [&] {
    const Tensor y = ops::add(x, x);
    dev.synchronize();  // not allowed while capturing
  });
  EXPECT_FALSE(cap.graph);
  EXPECT_FALSE(cap.error.empty());
  // The device still works eagerly afterwards.
  const std::vector<float> got = host(ops::add(x, x)), xs = host(x);
  for (size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(got[i], 2 * xs[i]);
}

std::string fixture(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/models/sdxl_tiny/" + file;
}

UNet load_tiny_sdxl(DType dtype) {
  auto file = std::make_shared<const SafetensorsFile>(
      SafetensorsFile::open(fixture("diffusers/unet/diffusion_pytorch_model.safetensors")));
  const Weights w = unet_weights_from_diffusers(file, kGpu, dtype);
  UNetConfig c = UNetConfig::detect(w);
  std::ifstream in(fixture("diffusers/unet/config.json"));
  const nlohmann::json j = nlohmann::json::parse(in);
  c.groups = j.at("norm_num_groups").get<int>();
  c.num_heads = 0;
  c.head_dim = j.at("block_out_channels")[1].get<int>() / j.at("attention_head_dim")[1].get<int>();
  return UNet::load(w, c);
}

TEST(CudaGraph, TinySdxlUNetReplayMatchesDiffusersAndEager) {
  const SafetensorsFile ref = SafetensorsFile::open(fixture("unet_ref.safetensors"));
  const Tensor x_nchw = ref.tensor("x");
  const Shape& s = x_nchw.shape();
  const Tensor x =
      Tensor::from_floats(nchw_to_nhwc(x_nchw.to_floats(), s), {s[0], s[2], s[3], s[1]});
  auto f32 = [&](const char* name) {
    const Tensor t = ref.tensor(name);
    return Tensor::from_floats(t.to_floats(), t.shape());
  };
  const Tensor ctx = f32("context"), y = f32("y");
  const Tensor t[2] = {f32("t0"), f32("t1")};
  for (DType dt : {DType::F32, DType::BF16}) {
    const UNet unet = load_tiny_sdxl(dt);
    UNetRunner runner(unet, /*use_graphs=*/true);
    for (int rep = 0; rep < 2; ++rep)
      for (int k = 0; k < 2; ++k) {
        const Tensor got = runner.forward(x, t[k], ctx, y);  // CPU inputs, as the pipeline
        ASSERT_TRUE(runner.last_replayed()) << "the step was not captured (see the log)";
        const std::vector<float> g = host(got);
        const std::vector<float> eager = host(unet.forward(x, t[k], ctx, y));
        EXPECT_LE(max_abs_diff(g, eager), 1e-6) << dtype_name(dt) << " run " << k;
        if (dt == DType::F32) {
          // GPU f32 (no TF32) against diffusers on the CPU: summation orders differ.
          const std::vector<float> want =
              nchw_to_nhwc(ref.tensor(k == 0 ? "out0" : "out1").to_floats(), s);
          EXPECT_LE(max_abs_diff(g, want), 1e-3) << "run " << k;
        }
      }
  }
}

}  // namespace
}  // namespace darkroom
