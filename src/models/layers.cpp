#include "models/layers.h"

#include <string>

namespace darkroom::layers {
namespace {
std::string key(std::string_view name, const char* leaf) {
  return std::string(name) + leaf;
}
}  // namespace

Linear Linear::load(const Weights& w, std::string_view name, int64_t in, int64_t out, bool bias) {
  Linear l;
  l.weight = w.get(key(name, ".weight"), {out, in});
  if (bias) l.bias = w.get(key(name, ".bias"), {out});
  return l;
}

Conv2d Conv2d::load(const Weights& w, std::string_view name, int64_t in, int64_t out, int k,
                    int stride, int padding) {
  Conv2d c;
  c.weight = w.get(key(name, ".weight"), {out, in, k, k});
  c.bias = w.get(key(name, ".bias"), {out});
  c.stride = stride;
  c.padding = padding < 0 ? k / 2 : padding;
  return c;
}

GroupNorm GroupNorm::load(const Weights& w, std::string_view name, int64_t channels, int groups,
                          float eps) {
  return {w.get(key(name, ".weight"), {channels}), w.get(key(name, ".bias"), {channels}), groups,
          eps};
}

LayerNorm LayerNorm::load(const Weights& w, std::string_view name, int64_t channels, float eps) {
  return {w.get(key(name, ".weight"), {channels}), w.get(key(name, ".bias"), {channels}), eps};
}

}  // namespace darkroom::layers
