#include "models/clip_text.h"

#include <algorithm>
#include <limits>
#include <string>

#include "backend/ops.h"

namespace darkroom {
namespace {

const char* kOp = "clip text";

std::string layer_prefix(int i) {
  return "encoder.layers." + std::to_string(i) + ".";
}

std::string open_clip_layer_prefix(int i) {
  return "transformer.resblocks." + std::to_string(i) + ".";
}

// heads = 0: width / 64, as every released CLIP.
int heads_for(int64_t width, int heads) {
  DR_CHECK(heads > 0 || width % 64 == 0, kOp, "width ", width,
           " is not a multiple of 64; pass the head count");
  const int h = heads > 0 ? heads : static_cast<int>(width / 64);
  DR_CHECK(width % h == 0, kOp, "width ", width, " does not split into ", h, " heads");
  return h;
}

// Row b's position of its largest id (the first one when it repeats, as torch.argmax).
std::vector<int64_t> argmax_rows(const Tensor& ids) {
  const int64_t b = ids.dim(0), t = ids.dim(1);
  std::vector<int64_t> out(static_cast<size_t>(b));
  for (int64_t r = 0; r < b; ++r) {
    int64_t best = 0, best_id = std::numeric_limits<int64_t>::min();
    for (int64_t j = 0; j < t; ++j) {
      const int64_t id = ids.dtype() == DType::I32 ? ids.data<int32_t>()[r * t + j]
                                                   : ids.data<int64_t>()[r * t + j];
      if (id > best_id) best_id = id, best = j;
    }
    out[static_cast<size_t>(r)] = best;
  }
  return out;
}

}  // namespace

ClipTextConfig ClipTextConfig::detect(const Weights& w, int heads, ClipActivation activation) {
  DR_CHECK(w.has("final_layer_norm.weight") && w.has("embeddings.position_embedding.weight"), kOp,
           "no CLIP text model under '", w.prefix(),
           "' (final_layer_norm.weight or embeddings.position_embedding.weight is missing)");
  ClipTextConfig c;
  // Only small tensors are read here (Weights has no shape query); all are loaded anyway.
  c.width = w.get("final_layer_norm.bias").dim(0);
  c.positions = w.get("embeddings.position_embedding.weight").dim(0);
  c.layers = 0;
  while (w.has(layer_prefix(c.layers) + "layer_norm1.weight")) ++c.layers;
  DR_CHECK(c.layers > 0, kOp, "no encoder.layers.0 under '", w.prefix(), "'");
  c.mlp_width = w.get(layer_prefix(0) + "mlp.fc1.bias").dim(0);
  c.heads = heads_for(c.width, heads);
  c.activation = activation;
  return c;
}

ClipTextConfig ClipTextConfig::detect_open_clip(const Weights& w, int heads) {
  DR_CHECK(w.has("ln_final.weight") && w.has("positional_embedding"), kOp,
           "no OpenCLIP text model under '", w.prefix(),
           "' (ln_final.weight or positional_embedding is missing)");
  ClipTextConfig c;
  c.width = w.shape("ln_final.weight")[0];
  c.positions = w.shape("positional_embedding")[0];
  c.layers = 0;
  while (w.has(open_clip_layer_prefix(c.layers) + "ln_1.weight")) ++c.layers;
  DR_CHECK(c.layers > 0, kOp, "no transformer.resblocks.0 under '", w.prefix(), "'");
  c.mlp_width = w.shape(open_clip_layer_prefix(0) + "mlp.c_fc.weight")[0];
  c.heads = heads_for(c.width, heads);
  c.activation = ClipActivation::Gelu;
  if (w.has("text_projection")) {
    const Shape p = w.shape("text_projection");  // [C, P]
    DR_CHECK(p.ndim() == 2 && p[0] == c.width, kOp, "text_projection has shape ", p, ", expected [",
             c.width, ", projection]");
    c.projection_dim = p[1];
  }
  return c;
}

ClipTextConfig ClipTextConfig::detect_hf_with_projection(const Weights& w, int heads,
                                                         ClipActivation activation) {
  ClipTextConfig c = detect(w.sub("text_model."), heads, activation);
  DR_CHECK(w.has("text_projection.weight"), kOp, "no text_projection.weight under '", w.prefix(),
           "' (not a CLIPTextModelWithProjection)");
  const Shape p = w.shape("text_projection.weight");  // [P, C]
  DR_CHECK(p.ndim() == 2 && p[1] == c.width, kOp, "text_projection.weight has shape ", p,
           ", expected [projection, ", c.width, "]");
  c.projection_dim = p[0];
  return c;
}

ClipTextEncoder ClipTextEncoder::load(const Weights& w, const ClipTextConfig& config) {
  DR_CHECK(config.projection_dim == 0, kOp,
           "a text projection is not under \"text_model.\"; load a CLIPTextModelWithProjection "
           "with load_hf_with_projection");
  const int64_t c = config.width, m = config.mlp_width;
  ClipTextEncoder e;
  e.config_ = config;
  e.device_ = w.device();
  e.token_embedding_ = w.get("embeddings.token_embedding.weight");
  DR_CHECK(e.token_embedding_.ndim() == 2 && e.token_embedding_.dim(1) == c, kOp,
           "embeddings.token_embedding.weight has shape ", e.token_embedding_.shape(),
           ", expected [vocab, ", c, "]");
  e.position_embedding_ = w.get("embeddings.position_embedding.weight", {config.positions, c});
  for (int i = 0; i < config.layers; ++i) {
    const Weights l = w.sub(layer_prefix(i));
    e.layers_.push_back({
        layers::LayerNorm::load(l, "layer_norm1", c, config.eps),
        layers::LayerNorm::load(l, "layer_norm2", c, config.eps),
        layers::Linear::load(l, "self_attn.q_proj", c, c),
        layers::Linear::load(l, "self_attn.k_proj", c, c),
        layers::Linear::load(l, "self_attn.v_proj", c, c),
        layers::Linear::load(l, "self_attn.out_proj", c, c),
        layers::Linear::load(l, "mlp.fc1", c, m),
        layers::Linear::load(l, "mlp.fc2", m, c),
    });
  }
  e.final_norm_ = layers::LayerNorm::load(w, "final_layer_norm", c, config.eps);
  return e;
}

ClipTextEncoder ClipTextEncoder::load_hf_with_projection(const Weights& w,
                                                         const ClipTextConfig& config) {
  DR_CHECK(config.projection_dim > 0, kOp, "load_hf_with_projection needs projection_dim > 0");
  ClipTextConfig text = config;
  text.projection_dim = 0;
  ClipTextEncoder e = load(w.sub("text_model."), text);
  e.config_ = config;
  e.projection_ =
      layers::Linear::load(w, "text_projection", config.width, config.projection_dim, false);
  return e;
}

// OpenCLIP's names for the same network (open_clip/transformer.py's TextTransformer):
//   token_embedding.weight [V, C], positional_embedding [P, C]
//   transformer.resblocks.N: ln_1, attn.in_proj_weight [3C, C] / in_proj_bias [3C] (q, k, v
//                            stacked), attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj
//   ln_final, text_projection [C, P] (applied as x @ text_projection)
ClipTextEncoder ClipTextEncoder::load_open_clip(const Weights& w, const ClipTextConfig& config) {
  const int64_t c = config.width, m = config.mlp_width;
  ClipTextEncoder e;
  e.config_ = config;
  e.device_ = w.device();
  e.token_embedding_ = w.get("token_embedding.weight");
  DR_CHECK(e.token_embedding_.ndim() == 2 && e.token_embedding_.dim(1) == c, kOp,
           "token_embedding.weight has shape ", e.token_embedding_.shape(), ", expected [vocab, ",
           c, "]");
  e.position_embedding_ = w.get("positional_embedding", {config.positions, c});
  for (int i = 0; i < config.layers; ++i) {
    const Weights l = w.sub(open_clip_layer_prefix(i));
    const Tensor in_w = l.get("attn.in_proj_weight", {3 * c, c});  // rows: q, k, v
    const Tensor in_b = l.get("attn.in_proj_bias", {3 * c});
    auto part = [&](int j) {  // rows [jC, (j+1)C): views sharing the loaded tensors
      return layers::Linear{in_w.narrow0(j * c, (j + 1) * c), in_b.narrow0(j * c, (j + 1) * c)};
    };
    e.layers_.push_back({
        layers::LayerNorm::load(l, "ln_1", c, config.eps),
        layers::LayerNorm::load(l, "ln_2", c, config.eps),
        part(0),
        part(1),
        part(2),
        layers::Linear::load(l, "attn.out_proj", c, c),
        layers::Linear::load(l, "mlp.c_fc", c, m),
        layers::Linear::load(l, "mlp.c_proj", m, c),
    });
  }
  e.final_norm_ = layers::LayerNorm::load(w, "ln_final", c, config.eps);
  if (config.projection_dim > 0) {
    // x @ text_projection [C, P] is a Linear with weight text_projectionᵀ [P, C].
    const Tensor p = w.get("text_projection", {c, config.projection_dim});
    e.projection_ = layers::Linear{ops::permute(p, {1, 0}), Tensor()};
  }
  return e;
}

Tensor ClipTextEncoder::embed(const Tensor& ids, const ClipTokenReplacement* replace) const {
  DR_CHECK(ids.defined() && ids.ndim() == 2, kOp, "ids must be [batch, tokens]");
  DR_CHECK(ids.dtype() == DType::I32 || ids.dtype() == DType::I64, kOp,
           "ids must be i32 or i64, got ", dtype_name(ids.dtype()));
  DR_CHECK(ids.device() == kCpu, kOp, "ids must be on the CPU");
  const int64_t t = ids.dim(1);
  DR_CHECK(t >= 1 && t <= config_.positions, kOp, ids.dim(1), " tokens; the model takes 1 to ",
           config_.positions);
  const int64_t vocab = vocab_size();
  const std::vector<float> values = ids.to_floats();  // exact: ids < 2^24
  for (float id : values)
    DR_CHECK(id >= 0 && id < static_cast<float>(vocab), kOp, "token id ", id,
             " is outside the vocabulary of ", vocab);
  // x [B, T, C] = token_embedding[ids] + position_embedding[0:T]
  Tensor tok = ops::embedding(ops::to_device(ids, device_), token_embedding_);
  if (replace && !replace->positions.empty()) {
    // Textual-inversion vectors over their positions' token embeddings, on the CPU in f32
    // (a few rows, once per prompt), then back in the table's dtype and device.
    const std::vector<int64_t>& pos = replace->positions;
    const Tensor& vec = replace->vectors;
    const int64_t c = config_.width, n = ids.numel();
    DR_CHECK(vec.defined() && vec.ndim() == 2 && vec.dim(1) == c &&
                 vec.dim(0) == static_cast<int64_t>(pos.size()),
             kOp, "replacement vectors must be [", pos.size(), ", ", c, "]");
    std::vector<float> rows = ops::to_device(tok, kCpu).to_floats();
    const std::vector<float> v = vec.to_floats();
    for (size_t i = 0; i < pos.size(); ++i) {
      DR_CHECK(pos[i] >= 0 && pos[i] < n, kOp, "replaced position ", pos[i], " is outside ", n);
      std::copy_n(v.data() + static_cast<int64_t>(i) * c, c, rows.data() + pos[i] * c);
    }
    tok = ops::to_device(Tensor::from_floats(rows, tok.shape(), tok.dtype()), device_);
  }
  return ops::add(tok, position_embedding_.narrow0(0, t));
}

Tensor ClipTextEncoder::causal_mask(int64_t tokens) const {
  // Token i sees tokens 0..i: -inf above the diagonal.
  std::vector<float> m(static_cast<size_t>(tokens * tokens), 0.0f);
  for (int64_t i = 0; i < tokens; ++i)
    for (int64_t j = i + 1; j < tokens; ++j)
      m[static_cast<size_t>(i * tokens + j)] = -std::numeric_limits<float>::infinity();
  return ops::to_device(Tensor::from_floats(m, {tokens, tokens}), device_);
}

Tensor ClipTextEncoder::run_layer(const Layer& l, const Tensor& x, const Tensor& mask) const {
  // x [B, T, C]
  const Tensor h = l.norm1(x);
  const Tensor a = ops::attention(l.q(h), l.k(h), l.v(h), config_.heads, mask);  // [B, T, C]
  const Tensor x1 = ops::add(x, l.out(a));
  Tensor f = l.fc1(l.norm2(x1));  // [B, T, M]
  f = config_.activation == ClipActivation::QuickGelu ? ops::quick_gelu(f) : ops::gelu(f);
  return ops::add(x1, l.fc2(f));  // [B, T, C]
}

Tensor ClipTextEncoder::pool(const Tensor& normed, const Tensor& ids) const {
  // normed [B, T, C] → rows at each sequence's end token → [B, C]
  const std::vector<int64_t> eos = argmax_rows(ids);
  std::vector<Tensor> rows;
  for (int64_t b = 0; b < normed.dim(0); ++b) {
    const int64_t e = eos[static_cast<size_t>(b)];
    rows.push_back(ops::slice(normed.narrow0(b, b + 1), 1, e, e + 1).reshape({1, -1}));
  }
  return rows.size() == 1 ? rows[0] : ops::concat(rows, 0);
}

ClipTextOutput ClipTextEncoder::encode(const Tensor& ids, const ClipEncodeOptions& o) const {
  return encode(ids, o, ClipTokenReplacement{});
}

ClipTextOutput ClipTextEncoder::encode(const Tensor& ids, const ClipEncodeOptions& o,
                                       const ClipTokenReplacement& replace) const {
  DR_CHECK(o.clip_skip >= 1, kOp, "clip_skip must be at least 1 (1 = last layer), got ",
           o.clip_skip);
  // ComfyUI: a layer index beyond the model means the last layer.
  const int chosen =
      o.clip_skip > config_.layers ? config_.layers - 1 : config_.layers - o.clip_skip;
  const int run = o.pooled ? config_.layers : chosen + 1;

  Tensor x = embed(ids, &replace);  // [B, T, C]
  const Tensor mask = causal_mask(ids.dim(1));
  ClipTextOutput out;
  for (int i = 0; i < run; ++i) {
    x = run_layer(layers_[static_cast<size_t>(i)], x, mask);
    if (i == chosen) out.hidden = o.norm_hidden ? final_norm_(x) : x;
  }
  if (o.pooled) {
    // When the chosen layer is the last and already normed, the norm is shared.
    const Tensor last = chosen == config_.layers - 1 && o.norm_hidden ? out.hidden : final_norm_(x);
    out.pooled = pool(last, ids);                                            // [B, C]
    if (projection_.weight.defined()) out.pooled = projection_(out.pooled);  // [B, P]
  }
  return out;
}

Weights clip_text_weights_from_hf(const std::shared_ptr<const SafetensorsFile>& file,
                                  DeviceId device, DType dtype) {
  const bool nested = file->find("text_model.final_layer_norm.weight") != nullptr;
  return Weights::from_file(file, nested ? "text_model." : "", device, dtype);
}

Weights clip_text_with_projection_weights_from_hf(
    const std::shared_ptr<const SafetensorsFile>& file, DeviceId device, DType dtype) {
  DR_CHECK(file->find("text_model.final_layer_norm.weight") != nullptr &&
               file->find("text_projection.weight") != nullptr,
           kOp,
           "not a CLIPTextModelWithProjection file (text_model.final_layer_norm.weight or "
           "text_projection.weight is missing)");
  return Weights::from_file(file, "", device, dtype);
}

std::vector<Tensor> ClipTextEncoder::hidden_states(const Tensor& ids) const {
  std::vector<Tensor> states{embed(ids)};
  const Tensor mask = causal_mask(ids.dim(1));
  for (const Layer& l : layers_) states.push_back(run_layer(l, states.back(), mask));
  return states;
}

}  // namespace darkroom
