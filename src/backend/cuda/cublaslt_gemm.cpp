// cuBLASLt GEMMs and the linear / matmul kernels built on them.
//
// Row-major ↔ column-major: a row-major [R, C] matrix is a column-major [C, R] one, so
// the row-major product out = X · Wᵀ is computed as the column-major outᵀ = W · Xᵀ:
// cuBLASLt's A is our right operand and its B our left one, with m = N, n = M.
#include "backend/cuda/cublaslt_gemm.h"

#include <cublasLt.h>
#include <cublas_v2.h>

#include <array>
#include <map>
#include <mutex>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/kernels.h"

namespace darkroom::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // cuBLAS's advice for Hopper
constexpr int kMaxDevices = 64;

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32:
      return CUDA_R_32F;
    case DType::F16:
      return CUDA_R_16F;
    case DType::BF16:
      return CUDA_R_16BF;
    default:
      fail("gemm", "no cuBLAS type for ", dtype_name(t));
  }
}

// Per-device library handles, created on first use and kept for the process.
std::mutex g_handle_mu;
std::array<cublasLtHandle_t, kMaxDevices> g_lt{};
std::array<cublasHandle_t, kMaxDevices> g_blas{};

cublasLtHandle_t lt_handle(int device) {
  DR_CHECK(device >= 0 && device < kMaxDevices, "gemm", "device index ", device);
  std::lock_guard<std::mutex> lock(g_handle_mu);
  if (!g_lt[static_cast<size_t>(device)])
    CUBLAS_CHECK(cublasLtCreate(&g_lt[static_cast<size_t>(device)]));
  return g_lt[static_cast<size_t>(device)];
}

cublasHandle_t blas_handle(int device) {
  DR_CHECK(device >= 0 && device < kMaxDevices, "gemm", "device index ", device);
  std::lock_guard<std::mutex> lock(g_handle_mu);
  if (!g_blas[static_cast<size_t>(device)])
    CUBLAS_CHECK(cublasCreate(&g_blas[static_cast<size_t>(device)]));
  return g_blas[static_cast<size_t>(device)];
}

// Largest power of two (≤ 256) dividing the address: what the algorithm may assume.
uint32_t alignment_of(const void* p) {
  const auto u = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && (u % a) != 0) a >>= 1;
  return a;
}

// RAII owners of the cuBLASLt descriptors of one call.
struct LtDescriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtDescriptors() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

void set_batch(cublasLtMatrixLayout_t layout, int64_t batch, int64_t stride) {
  if (batch <= 1) return;
  const int32_t count = static_cast<int32_t>(batch);
  CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                                sizeof count));
  CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                &stride, sizeof stride));
}

// Cache of chosen algorithms, keyed by everything the heuristic looked at.
using AlgoKey = std::array<int64_t, 20>;
struct CachedAlgo {
  bool found = false;
  cublasLtMatmulAlgo_t algo{};
};
std::mutex g_algo_mu;
std::map<AlgoKey, CachedAlgo> g_algos;

AlgoKey key_of(const GemmProblem& p, int device) {
  return {device,
          static_cast<int64_t>(p.dtype),
          p.m,
          p.n,
          p.k,
          p.trans_a,
          p.trans_b,
          p.lda,
          p.ldb,
          p.ldd,
          p.batch,
          p.stride_a,
          p.stride_b,
          p.stride_d,
          p.bias != nullptr,
          alignment_of(p.a),
          alignment_of(p.b),
          alignment_of(p.d),
          p.bias ? alignment_of(p.bias) : 0,
          0};
}

// cublasGemmStridedBatchedEx, then the bias as a separate kernel.
void fallback_gemm(const GemmProblem& p, const Tensor& like, cudaStream_t stream) {
  cublasHandle_t h = blas_handle(like.device().index);
  CUBLAS_CHECK(cublasSetStream(h, stream));
  const float alpha = 1.0f, beta = 0.0f;
  const cudaDataType_t t = cuda_type(p.dtype);
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      h, p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
      static_cast<int>(p.m), static_cast<int>(p.n), static_cast<int>(p.k), &alpha, p.a, t,
      static_cast<int>(p.lda), p.stride_a, p.b, t, static_cast<int>(p.ldb), p.stride_b, &beta, p.d,
      t, static_cast<int>(p.ldd), p.stride_d, static_cast<int>(p.batch), CUBLAS_COMPUTE_32F,
      CUBLAS_GEMM_DEFAULT));
  if (p.bias) {
    // D is column-major [m, n·batch] = row-major [n·batch, m] with ldd == m.
    DR_ASSERT(p.ldd == p.m, "bias fallback needs a packed output");
    const int64_t rows = p.n * p.batch;
    Tensor d_view = Tensor::view_of(
        std::make_shared<Storage>(p.d, static_cast<size_t>(rows * p.m) * dtype_size(p.dtype),
                                  like.device(), nullptr),
        0, {rows, p.m}, p.dtype);
    Tensor bias_view =
        Tensor::view_of(std::make_shared<Storage>(const_cast<void*>(p.bias),
                                                  static_cast<size_t>(p.m) * dtype_size(p.dtype),
                                                  like.device(), nullptr),
                        0, {p.m}, p.dtype);
    add_bias_rows(d_view, bias_view);
  }
}

}  // namespace

void gemm(const GemmProblem& p, const Tensor& like) {
  if (p.m == 0 || p.n == 0 || p.batch == 0) return;
  const int device = like.device().index;
  cudaStream_t stream = stream_for(like);
  if (p.k == 0) fail("gemm", "k = 0 is not supported");
  const cudaDataType_t type = cuda_type(p.dtype);

  LtDescriptors desc;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  if (p.bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias,
                                                sizeof p.bias));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &type,
                                                sizeof type));
  }
  // Stored shapes: op(A) is m×k, so A is k×m when transposed.
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&desc.a, type, p.trans_a ? p.k : p.m,
                                          p.trans_a ? p.m : p.k, p.lda));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&desc.b, type, p.trans_b ? p.n : p.k,
                                          p.trans_b ? p.k : p.n, p.ldb));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&desc.d, type, p.m, p.n, p.ldd));
  set_batch(desc.a, p.batch, p.stride_a);
  set_batch(desc.b, p.batch, p.stride_b);
  set_batch(desc.d, p.batch, p.stride_d);

  const AlgoKey key = key_of(p, device);
  CachedAlgo chosen;
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(g_algo_mu);
    auto it = g_algos.find(key);
    if (it != g_algos.end()) {
      chosen = it->second;
      cached = true;
    }
  }
  cublasLtHandle_t h = lt_handle(device);
  if (!cached) {
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&desc.pref));
    const uint64_t ws = kWorkspaceBytes;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        desc.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    const uint32_t al_a = alignment_of(p.a), al_b = alignment_of(p.b), al_d = alignment_of(p.d);
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        desc.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        desc.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        desc.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_d, sizeof al_d));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        desc.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d, sizeof al_d));
    cublasLtMatmulHeuristicResult_t result{};
    int returned = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
        h, desc.op, desc.a, desc.b, desc.d, desc.d, desc.pref, 1, &result, &returned);
    chosen.found =
        st == CUBLAS_STATUS_SUCCESS && returned > 0 && result.state == CUBLAS_STATUS_SUCCESS;
    if (chosen.found) chosen.algo = result.algo;
    std::lock_guard<std::mutex> lock(g_algo_mu);
    g_algos[key] = chosen;
  }
  if (!chosen.found) {
    fallback_gemm(p, like, stream);
    return;
  }
  Tensor workspace = scratch(like, {static_cast<int64_t>(kWorkspaceBytes)}, DType::U8);
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(h, desc.op, &alpha, p.a, desc.a, p.b, desc.b, &beta, p.d, desc.d, p.d,
                              desc.d, &chosen.algo, workspace.raw(), kWorkspaceBytes, stream));
}

// out[M, N] = x[M, K] · weight[N, K]ᵀ + bias  ⇔  outᵀ = weight · xᵀ (column-major)
void linear(const LinearArgs& args) {
  const int64_t m = args.x.dim(0), k = args.x.dim(1), n = args.weight.dim(0);
  GemmProblem p;
  p.dtype = args.x.dtype();
  p.m = n;
  p.n = m;
  p.k = k;
  p.trans_a = true;  // weight [N, K] row-major = column-major K×N; op = T
  p.a = args.weight.raw();
  p.lda = k;
  p.b = args.x.raw();  // x [M, K] row-major = column-major K×M
  p.ldb = k;
  p.d = args.out.raw();
  p.ldd = n;
  p.bias = args.bias.defined() ? args.bias.raw() : nullptr;
  gemm(p, args.out);
}

// out[B, M, N] = op(a) · op(b)  ⇔  outᵀ = op(b)ᵀ · op(a)ᵀ (column-major)
void matmul(const MatmulArgs& args) {
  const Tensor &a = args.a, &b = args.b, &out = args.out;
  const int64_t batch = out.dim(0), m = out.dim(1), n = out.dim(2);
  const int64_t k = args.trans_a ? a.dim(1) : a.dim(2);
  const int64_t ba = a.dim(0), bb = b.dim(0);
  const size_t elem = dtype_size(out.dtype());
  GemmProblem p;
  p.dtype = out.dtype();
  p.m = n;
  p.n = m;
  p.k = k;
  // cuBLAS A = our b: [K, N] row-major is column-major N×K (op N, ld N); [N, K]
  // (trans_b) is column-major K×N (op T, ld K).
  p.trans_a = args.trans_b;
  p.lda = args.trans_b ? k : n;
  // cuBLAS B = our a: [M, K] is column-major K×M (op N, ld K); [K, M] (trans_a) is
  // column-major M×K (op T, ld M).
  p.trans_b = args.trans_a;
  p.ldb = args.trans_a ? m : k;
  p.ldd = n;
  const int64_t size_a = a.dim(1) * a.dim(2), size_b = b.dim(1) * b.dim(2), size_out = m * n;
  if (ba == bb) {
    p.batch = batch;
    p.a = b.raw();
    p.b = a.raw();
    p.d = out.raw();
    p.stride_a = size_b;
    p.stride_b = size_a;
    p.stride_d = size_out;
    gemm(p, out);
  } else if (bb == 1 && !args.trans_a) {
    // b is shared and a's batches are stacked rows: one GEMM with n = B·M.
    p.n = batch * m;
    p.a = b.raw();
    p.b = a.raw();
    p.d = out.raw();
    gemm(p, out);
  } else {
    // The remaining broadcasts (a shared, or a transposed): one GEMM per batch.
    for (int64_t i = 0; i < batch; ++i) {
      p.a = static_cast<const char*>(b.raw()) +
            static_cast<size_t>((bb == 1 ? 0 : i) * size_b) * elem;
      p.b = static_cast<const char*>(a.raw()) +
            static_cast<size_t>((ba == 1 ? 0 : i) * size_a) * elem;
      p.d = static_cast<char*>(out.raw()) + static_cast<size_t>(i * size_out) * elem;
      gemm(p, out);
    }
  }
}

}  // namespace darkroom::cuda
