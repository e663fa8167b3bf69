// merged_weights: every patched tensor rebuilt in one pass over its rows. For each row of
// a target: the base row decoded to f32, then every patch of every LoRA on that row added
// (a LoRA / LoCon module as its rank-r update Σ_r (s·up[o, r])·down[r, :], straight from
// its factors, so ΔW is never materialised; LoHa, LoKr and Tucker modules as their dense
// delta from lora_delta), and the sum written once in the compute dtype. Rows are spread
// over the thread pool. That keeps a LoRA switch to about one read of the base tensors,
// one write of the copies and the update's multiply-adds.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/vec.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "models/lora.h"

namespace darkroom {
namespace {

constexpr const char* kOp = "lora";

// One patch on one target, ready for the row loop.
struct Update {
  int64_t row_begin = 0, rows = 0;  // the target rows it covers
  // A rank-r update: up_scaled [rows, r] (strength · alpha/r folded in), down [r, cols].
  std::vector<float> up_scaled;
  int64_t rank = 0;
  Tensor down;
  Tensor dense;  // or ΔW [rows, cols] f32, already scaled
};

Tensor as_f32(const Tensor& t) {
  if (t.dtype() == DType::F32) return t;
  const std::vector<float> v = t.to_floats();
  return Tensor::from_floats(v, t.shape());
}

Update make_update(const LoraPatch& p, float strength, int64_t cols) {
  Update u;
  u.row_begin = p.target.row_end > 0 ? p.target.row_begin : 0;
  u.rows = p.shape[0];
  const auto up = p.parts.find("up"), down = p.parts.find("down");
  if (p.kind == LoraKind::Lora && !p.parts.count("mid") && up != p.parts.end() &&
      down != p.parts.end() && down->second.numel() / down->second.dim(0) == cols &&
      up->second.dim(0) == u.rows) {
    u.rank = down->second.dim(0);
    const float scale = strength * (p.has_alpha ? p.alpha / static_cast<float>(u.rank) : 1.0f);
    u.up_scaled = as_f32(up->second).to_floats();  // [rows, r(, 1, 1)]
    for (float& v : u.up_scaled) v *= scale;
    u.down = as_f32(down->second);
    return u;
  }
  u.dense = lora_delta(p, strength);
  return u;
}

// For the rows of a block (acc[j] for row j, its factors w[j]): acc[j][c] +=
// Σ_r w[j][r] · down[r, c]. A GEMM micro-kernel: four rows × 64 columns of acc live in
// sixteen 16-float registers while r runs over the rank (four loads of `down` feed sixteen
// multiply-adds); columns past the last multiple of 64 and rows past the last multiple of
// four go through plain loops.
using V16 = float __attribute__((vector_size(64)));
constexpr int kTileCols = 64;

inline V16 load16(const float* p) {
  V16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void store16(float* p, V16 v) {
  std::memcpy(p, &v, sizeof(v));
}

void add_rank_update(float* const* acc, const float* const* w, int rows, const float* down,
                     int64_t rank, int64_t cols) {
  const int64_t tiled = cols / kTileCols * kTileCols;
  int j = 0;
  for (; j + 4 <= rows; j += 4) {
    for (int64_t c = 0; c < tiled; c += kTileCols) {
      V16 t[4][4];
      for (int i = 0; i < 4; ++i)
        for (int k = 0; k < 4; ++k) t[i][k] = load16(acc[j + i] + c + 16 * k);
      for (int64_t r = 0; r < rank; ++r) {
        const float* d = down + r * cols + c;
        const V16 d0 = load16(d), d1 = load16(d + 16), d2 = load16(d + 32), d3 = load16(d + 48);
        for (int i = 0; i < 4; ++i) {
          const float wi = w[j + i][r];
          t[i][0] += wi * d0;
          t[i][1] += wi * d1;
          t[i][2] += wi * d2;
          t[i][3] += wi * d3;
        }
      }
      for (int i = 0; i < 4; ++i)
        for (int k = 0; k < 4; ++k) store16(acc[j + i] + c + 16 * k, t[i][k]);
    }
    for (int i = 0; i < 4; ++i)
      for (int64_t r = 0; r < rank; ++r)
        for (int64_t c = tiled; c < cols; ++c) acc[j + i][c] += w[j + i][r] * down[r * cols + c];
  }
  for (; j < rows; ++j)
    for (int64_t r = 0; r < rank; ++r) {
      const float wr = w[j][r];
      const float* __restrict d = down + r * cols;
      float* __restrict a = acc[j];
      for (int64_t c = 0; c < cols; ++c) a[c] += wr * d[c];
    }
}

void load_row(const Tensor& base, int64_t offset, int64_t n, float* dst) {
  const DType t = base.dtype();
  DR_CHECK(t == DType::F32 || t == DType::F16 || t == DType::BF16, kOp, "a base tensor of dtype ",
           dtype_name(t), " (LoRAs patch f32, f16 and bf16 weights)");
  cpu::load_f32(static_cast<const char*>(base.raw()) + offset * dtype_size(t), t, dst, n);
}

void store_row(const float* src, int64_t n, Tensor& out, int64_t offset) {
  const DType t = out.dtype();
  DR_CHECK(t == DType::F32 || t == DType::F16 || t == DType::BF16, kOp, "cannot merge into dtype ",
           dtype_name(t));
  cpu::store_f32(src, t, static_cast<char*>(out.raw()) + offset * dtype_size(t), n);
}

// base + Σ updates, in `dtype`, one pass over the rows (in blocks of kBlockRows).
constexpr int kBlockRows = 4;

Tensor merge_target(const Tensor& base, const std::vector<Update>& updates, DType dtype) {
  const int64_t rows = base.dim(0), cols = base.numel() / rows;
  Tensor out = Tensor::empty(base.shape(), dtype);
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  ThreadPool::global().parallel_for(
      blocks,
      [&](int64_t begin, int64_t end) {
        std::vector<float> buf(static_cast<size_t>(kBlockRows * cols));
        float* acc[kBlockRows];
        const float* w[kBlockRows];
        for (int64_t b = begin; b < end; ++b) {
          const int64_t o0 = b * kBlockRows;
          const int n = static_cast<int>(std::min<int64_t>(kBlockRows, rows - o0));
          for (int j = 0; j < n; ++j) {
            acc[j] = buf.data() + j * cols;
            load_row(base, (o0 + j) * cols, cols, acc[j]);
          }
          for (const Update& u : updates) {
            // The block's rows that this update covers: [first, first + count).
            const int64_t lo = std::max(o0, u.row_begin);
            const int64_t hi = std::min(o0 + n, u.row_begin + u.rows);
            if (lo >= hi) continue;
            const int first = static_cast<int>(lo - o0), count = static_cast<int>(hi - lo);
            if (u.dense.defined()) {
              for (int j = first; j < first + count; ++j) {
                const float* d = u.dense.data<float>() + (o0 + j - u.row_begin) * cols;
                for (int64_t c = 0; c < cols; ++c) acc[j][c] += d[c];
              }
            } else {
              for (int j = first; j < first + count; ++j)
                w[j] = u.up_scaled.data() + (o0 + j - u.row_begin) * u.rank;
              add_rank_update(acc + first, w + first, count, u.down.data<float>(), u.rank, cols);
            }
          }
          for (int j = 0; j < n; ++j) store_row(acc[j], cols, out, (o0 + j) * cols);
        }
      },
      std::max<int64_t>(1, 4096 / std::max<int64_t>(cols, 1)));
  return out;
}

}  // namespace

std::map<std::string, Tensor> merged_weights(
    const std::function<Tensor(const std::string&)>& base_tensor,
    const std::vector<std::pair<const LoraFile*, float>>& loras, DType dtype) {
  // Target → its base tensor and every patch on it, in stacking order.
  struct Target {
    Tensor base;
    std::vector<Update> updates;
  };
  std::map<std::string, Target> targets;
  for (const auto& [lora, strength] : loras)
    for (const LoraPatch& p : lora->patches()) {
      auto it = targets.find(p.target.name);
      if (it == targets.end()) {
        Tensor t = base_tensor(p.target.name);
        if (!t.defined()) continue;  // e.g. a CLIP patch on a UNet-only file
        // The row loop reads f32, f16 and bf16; other stored dtypes (fp8, f64) are
        // decoded whole first.
        if (t.dtype() != DType::F32 && t.dtype() != DType::F16 && t.dtype() != DType::BF16)
          t = as_f32(t);
        Shape rows = t.shape();
        if (p.target.row_end > 0) rows[0] = p.target.row_end - p.target.row_begin;
        DR_CHECK(rows == p.shape && t.dim(0) >= p.target.row_end, kOp, p.target.name, " is ",
                 t.shape(), ", not the shape the LoRA was opened against (", p.shape, ")");
        it = targets.emplace(p.target.name, Target{std::move(t), {}}).first;
      }
      const int64_t cols = it->second.base.numel() / it->second.base.dim(0);
      it->second.updates.push_back(make_update(p, strength, cols));
    }
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : targets) out.emplace(name, merge_target(t.base, t.updates, dtype));
  return out;
}

std::map<std::string, Tensor> merged_weights(
    const SafetensorsFile& base, const std::vector<std::pair<const LoraFile*, float>>& loras,
    DType dtype) {
  return merged_weights(
      [&](const std::string& name) { return base.find(name) ? base.tensor(name) : Tensor(); },
      loras, dtype);
}

}  // namespace darkroom
