// conv2d through cuDNN: NHWC activations, the OIHW weight converted once to cuDNN's
// NHWC filter layout (KRSC = [O, kh, kw, C]) and cached per weight storage, and the
// bias added by our own kernel (as torch does after its cuDNN call). Math: fp32
// accumulation; f16/bf16 on tensor cores, f32 restricted to FMA kernels (no silent
// TF32) unless cuDNN offers nothing else.
//
// Per shape, once: the descriptors are built and kept, and the algorithm is picked
// by timing every candidate (cudnnFindConvolutionForwardAlgorithmEx, what
// torch.backends.cudnn.benchmark does) with a generous workspace; the heuristic's
// first choice was measured 2–3× slower than torch on an H100 for bf16 NHWC UNet
// shapes. The heuristic list remains the fallback when timing is impossible (e.g. the
// find workspace cannot be allocated), and im2col + GEMM when cuDNN runs nothing.
#include <cudnn.h>

#include <array>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/kernels.h"
#include "core/log.h"

namespace darkroom::cuda {
namespace {

constexpr int kMaxDevices = 64;
constexpr size_t kMaxWorkspace = size_t{1} << 30;
// Workspace offered to the algorithms while timing them (and so the most a timed
// winner can need); torch's benchmark mode likewise tries large workspaces.
constexpr size_t kFindWorkspace = size_t{256} << 20;

std::mutex g_mu;
std::array<cudnnHandle_t, kMaxDevices> g_handles{};

cudnnHandle_t dnn_handle(int device) {
  DR_CHECK(device >= 0 && device < kMaxDevices, "conv2d", "device index ", device);
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_handles[static_cast<size_t>(device)])
    CUDNN_CHECK(cudnnCreate(&g_handles[static_cast<size_t>(device)]));
  return g_handles[static_cast<size_t>(device)];
}

cudnnDataType_t dnn_type(DType t) {
  switch (t) {
    case DType::F32:
      return CUDNN_DATA_FLOAT;
    case DType::F16:
      return CUDNN_DATA_HALF;
    case DType::BF16:
      return CUDNN_DATA_BFLOAT16;
    default:
      fail("conv2d", "no cuDNN type for ", dtype_name(t));
  }
}

// RAII owners of one call's descriptors.
struct ConvDescriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ConvDescriptors() {
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
  }
  ~ConvDescriptors() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
  ConvDescriptors(const ConvDescriptors&) = delete;
  ConvDescriptors& operator=(const ConvDescriptors&) = delete;
};

struct ConvPlan {
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

// One shape's descriptors and chosen algorithm (nullopt: cuDNN ran nothing, use the
// GEMM fallback). Shared read-only between calls once published in g_plans.
struct ShapePlan {
  ConvDescriptors d;
  std::optional<ConvPlan> plan;
};
using PlanKey = std::array<int64_t, 14>;
std::map<PlanKey, std::shared_ptr<const ShapePlan>> g_plans;

// Weights in KRSC, keyed by (storage id, byte offset, dtype); the weak pointer lets
// entries of freed weights be dropped.
struct CachedWeight {
  std::weak_ptr<Storage> source;
  Tensor krsc;
};
std::map<std::array<uint64_t, 3>, CachedWeight> g_weights;

Tensor krsc_weight(const Tensor& w) {
  const std::array<uint64_t, 3> key{w.storage()->id(), w.byte_offset(),
                                    static_cast<uint64_t>(w.dtype())};
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_weights.find(key);
    if (it != g_weights.end() && !it->second.source.expired()) return it->second.krsc;
  }
  // [O, C, kh, kw] → [O, kh, kw, C]
  Tensor krsc = Tensor::empty({w.dim(0), w.dim(2), w.dim(3), w.dim(1)}, w.dtype(), w.device());
  permute_into(w, krsc, {0, 2, 3, 1});
  std::lock_guard<std::mutex> lock(g_mu);
  for (auto it = g_weights.begin(); it != g_weights.end();)
    it = it->second.source.expired() ? g_weights.erase(it) : std::next(it);
  g_weights[key] = CachedWeight{w.storage(), krsc};
  return krsc;
}

int to_int(int64_t v) {
  DR_CHECK(v < (int64_t{1} << 31), "conv2d", "dimension ", v, " is too large for cuDNN");
  return static_cast<int>(v);
}

// cuDNN's candidates for this shape, best first: for f32 the FMA-only ones (no silent
// TF32) before any others.
std::vector<ConvPlan> candidate_plans(cudnnHandle_t h, const ConvDescriptors& d, DType dtype) {
  cudnnConvolutionFwdAlgoPerf_t perfs[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int returned = 0;
  const cudnnStatus_t st = cudnnGetConvolutionForwardAlgorithm_v7(
      h, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perfs);
  if (st != CUDNN_STATUS_SUCCESS) {
    DR_LOG(Debug) << "conv2d: cuDNN heuristic failed: " << cudnnGetErrorString(st);
    return {};
  }
  std::vector<ConvPlan> first, rest;
  for (int i = 0; i < returned; ++i) {
    const cudnnConvolutionFwdAlgoPerf_t& p = perfs[i];
    if (p.status != CUDNN_STATUS_SUCCESS || p.memory > kMaxWorkspace) continue;
    const bool preferred = dtype != DType::F32 || p.mathType == CUDNN_FMA_MATH;
    (preferred ? first : rest).push_back(ConvPlan{p.algo, p.mathType, p.memory});
  }
  first.insert(first.end(), rest.begin(), rest.end());
  return first;
}

// cuDNN's candidates timed on the real operands, fastest first (f32: FMA-only ones
// first); empty if timing is impossible. Overwrites `out`.
std::vector<ConvPlan> timed_plans(cudnnHandle_t h, const ConvDescriptors& d, const Tensor& x,
                                  const Tensor& krsc, const Tensor& out) {
  Tensor workspace;
  try {
    workspace = scratch(x, {static_cast<int64_t>(kFindWorkspace)}, DType::U8);
  } catch (const Error& e) {
    DR_LOG(Debug) << "conv2d: no workspace for timing cuDNN algorithms: " << e.what();
    return {};
  }
  cudnnConvolutionFwdAlgoPerf_t perfs[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int returned = 0;
  const cudnnStatus_t st = cudnnFindConvolutionForwardAlgorithmEx(
      h, d.x, x.raw(), d.w, krsc.raw(), d.conv, d.y, out.raw(), CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
      &returned, perfs, workspace.raw(), kFindWorkspace);
  if (st != CUDNN_STATUS_SUCCESS) {
    DR_LOG(Debug) << "conv2d: cuDNN algorithm search failed: " << cudnnGetErrorString(st);
    return {};
  }
  // perfs come sorted by time; keep that order within each group.
  std::vector<ConvPlan> first, rest;
  for (int i = 0; i < returned; ++i) {
    const cudnnConvolutionFwdAlgoPerf_t& p = perfs[i];
    if (p.status != CUDNN_STATUS_SUCCESS || p.memory > kFindWorkspace) continue;
    const bool preferred = x.dtype() != DType::F32 || p.mathType == CUDNN_FMA_MATH;
    (preferred ? first : rest).push_back(ConvPlan{p.algo, p.mathType, p.memory});
  }
  first.insert(first.end(), rest.begin(), rest.end());
  return first;
}

// Runs one plan; false if cuDNN refuses it at execution time. The descriptor's math
// type must already be plan.math.
bool run_plan(cudnnHandle_t h, const ConvDescriptors& d, const ConvPlan& plan, const Tensor& x,
              const Tensor& krsc, const Tensor& out) {
  Tensor workspace;
  if (plan.workspace > 0) workspace = scratch(x, {static_cast<int64_t>(plan.workspace)}, DType::U8);
  const float alpha = 1.0f, beta = 0.0f;
  const cudnnStatus_t st = cudnnConvolutionForward(
      h, &alpha, d.x, x.raw(), d.w, krsc.raw(), d.conv, plan.algo,
      workspace.defined() ? workspace.raw() : nullptr, plan.workspace, &beta, d.y, out.raw());
  if (st == CUDNN_STATUS_SUCCESS) return true;
  DR_LOG(Debug) << "conv2d: cuDNN algorithm " << static_cast<int>(plan.algo)
                << " refused: " << cudnnGetErrorString(st);
  return false;
}

// The fallback: im2col, then one GEMM against the KRSC weight viewed as [O, kh·kw·C].
void conv_by_gemm(const Conv2dArgs& args, const Tensor& krsc) {
  const Tensor& out = args.out;
  const int64_t rows = out.dim(0) * out.dim(1) * out.dim(2), o = out.dim(3);
  const int64_t width = krsc.numel() / o;
  Tensor cols = scratch(args.x, {rows, width}, args.x.dtype());
  im2col(args, cols);
  linear(LinearArgs{cols, krsc.reshape({o, width}), args.bias, out.reshape({rows, o})});
}

}  // namespace

void conv2d(const Conv2dArgs& args) {
  const Tensor &x = args.x, &w = args.weight, &out = args.out;
  if (out.numel() == 0) return;
  const int device = x.device().index;
  cudaStream_t stream = stream_for(x);
  cudnnHandle_t h = dnn_handle(device);
  CUDNN_CHECK(cudnnSetStream(h, stream));
  const int64_t n = x.dim(0), ih = x.dim(1), iw = x.dim(2), c = x.dim(3);
  const int64_t o = w.dim(0), kh = w.dim(2), kw = w.dim(3);
  const PlanKey key{device,
                    static_cast<int64_t>(x.dtype()),
                    n,
                    ih,
                    iw,
                    c,
                    o,
                    kh,
                    kw,
                    args.stride_h,
                    args.stride_w,
                    args.pad_h,
                    args.pad_w,
                    0};
  const Tensor krsc = krsc_weight(w);
  std::shared_ptr<const ShapePlan> cached;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_plans.find(key);
    if (it != g_plans.end()) cached = it->second;
  }
  if (cached) {
    if (!cached->plan) {  // cuDNN could not run this shape
      conv_by_gemm(args, krsc);
      return;
    }
    if (run_plan(h, cached->d, *cached->plan, x, krsc, out)) {
      if (args.bias.defined()) add_bias_rows(out.reshape({-1, o}), args.bias);
      return;
    }
    // Refused now although it ran before (should not happen): search again below.
  }

  auto entry = std::make_shared<ShapePlan>();
  ConvDescriptors& d = entry->d;
  const cudnnDataType_t type = dnn_type(x.dtype());
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NHWC, type, to_int(n), to_int(c),
                                         to_int(ih), to_int(iw)));
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(d.w, type, CUDNN_TENSOR_NHWC, to_int(o), to_int(c),
                                         to_int(kh), to_int(kw)));
  CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d.conv, args.pad_h, args.pad_w, args.stride_h,
                                              args.stride_w, 1, 1, CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_FLOAT));
  CUDNN_CHECK(cudnnSetConvolutionMathType(
      d.conv, x.dtype() == DType::F32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(d.y, CUDNN_TENSOR_NHWC, type, to_int(n), to_int(o),
                                         to_int(out.dim(1)), to_int(out.dim(2))));

  std::vector<ConvPlan> candidates = timed_plans(h, d, x, krsc, out);
  for (const ConvPlan& p : candidate_plans(h, d, x.dtype())) candidates.push_back(p);
  for (const ConvPlan& candidate : candidates) {
    CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, candidate.math));
    if (!run_plan(h, d, candidate, x, krsc, out)) continue;
    entry->plan = candidate;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      g_plans[key] = entry;
    }
    if (args.bias.defined()) add_bias_rows(out.reshape({-1, o}), args.bias);
    return;
  }
  DR_LOG(Warn) << "conv2d: cuDNN has no working algorithm for x " << x.shape() << ", weight "
               << w.shape() << " (" << dtype_name(x.dtype()) << "); using im2col + GEMM";
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_plans[key] = entry;  // plan stays nullopt
  }
  conv_by_gemm(args, krsc);
}

}  // namespace darkroom::cuda
