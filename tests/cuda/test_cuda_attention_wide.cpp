// CUDA attention at the VAE's head width: SD's VAE mid-block attends with one head over
// all 512 channels (4096 tokens at 512²), wider than the flash kernel's 128, so the
// CUDA-core kernel runs it. Against the CPU backend in f32 (whose attention is tested
// against plain loops in test_ops_dense.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/device.h"
#include "backend/ops.h"
#include "test_util.h"

namespace darkroom {
namespace {

using test::random_tensor;
constexpr DeviceId kGpu{DeviceType::Cuda, 0};

TEST(CudaAttentionWide, OneHeadOf512MatchesCpu) {
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    // [1, 1024, 512] q, k, v; values as a VAE's normalised activations.
    const Tensor q = random_tensor({1, 1024, 512}, dt, 31);
    const Tensor k = random_tensor({1, 1024, 512}, dt, 32);
    const Tensor v = random_tensor({1, 1024, 512}, dt, 33);
    auto f32 = [](const Tensor& t) { return ops::cast(t, DType::F32); };
    const std::vector<float> want = ops::attention(f32(q), f32(k), f32(v), 1).to_floats();
    const Tensor got_gpu = ops::attention(ops::to_device(q, kGpu), ops::to_device(k, kGpu),
                                          ops::to_device(v, kGpu), 1);
    const std::vector<float> got = ops::to_device(ops::cast(got_gpu, DType::F32), kCpu).to_floats();
    ASSERT_EQ(got.size(), want.size());
    // Outputs are averages of values in [-1, 1]; the kernel accumulates in f32 and
    // rounds once to the output dtype (half an ulp of |x| < 1: 2^-9 for bf16, 2^-12 f16).
    const double tol = dt == DType::F32 ? 1e-5 : dt == DType::BF16 ? 4e-3 : 5e-4;
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - want[i]));
    EXPECT_LE(worst, tol) << dtype_name(dt);
  }
}

}  // namespace
}  // namespace darkroom
