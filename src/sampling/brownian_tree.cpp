// torchsde's BrownianInterval (halfway tree, no Lévy area) and ComfyUI's noise sampler
// on top of it.
#include "sampling/brownian_tree.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "core/error.h"
#include "sampling/noise.h"
#include "sampling/seed_sequence.h"

namespace darkroom::sampling {
namespace {

constexpr size_t kPoolSize = 24;
constexpr size_t kCacheSize = 45;

// Python's round(x, 6): correctly rounded to 6 decimals, back to the nearest double.
// printf rounds the exact binary value, as Python does; exact ties cannot occur.
double round6(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", x);
  return std::strtod(buf, nullptr);
}

}  // namespace

BrownianTree::BrownianTree(double t0, double t1, const Shape& shape, uint64_t entropy,
                           BoxMuller box_muller)
    : shape_(shape),
      numel_(static_cast<size_t>(shape.numel())),
      entropy_(SeedSequence::words(entropy)),
      box_muller_(box_muller) {
  DR_CHECK(t0 <= t1, "brownian_tree", "need t0 <= t1, got ", t0, " and ", t1);
  nodes_.push_back(Node{round6(t0), round6(t1), -1, false, std::nullopt});
  const std::vector<uint32_t> seeds = SeedSequence(entropy_, {}, kPoolSize).generate_state(3);
  // W over the whole interval uses the unrounded ends.
  top_w_ = randn(seeds[0]);
  const auto scale = static_cast<float>(std::sqrt(t1 - t0));
  for (float& v : top_w_) v = v * scale;
}

std::vector<float> BrownianTree::randn(uint32_t seed) const {
  std::vector<float> out(numel_);
  TorchGenerator(seed, box_muller_).randn(out);
  return out;
}

void BrownianTree::split_exact(int index, double midway) {
  Node& node = nodes_[static_cast<size_t>(index)];
  node.midway = round6(midway);
  if (node.parent >= 0) {
    const Node& parent = nodes_[static_cast<size_t>(node.parent)];
    node.spawn_key = 2 * parent.spawn_key + (node.is_left ? 0 : 1);
    node.depth = parent.depth + 1;
  }
  DR_CHECK(node.depth < 63, "brownian_tree", "tree too deep (sigma range too large for tol 1e-6)");
  std::vector<uint32_t> spawn = SeedSequence::words(node.spawn_key);
  const std::vector<uint32_t> depth = SeedSequence::words(node.depth);
  spawn.insert(spawn.end(), depth.begin(), depth.end());
  node.w_seed = SeedSequence(entropy_, spawn, kPoolSize).generate_state(4)[0];
  const double start = node.start, end = node.end;
  const auto left = static_cast<int>(nodes_.size());
  nodes_.push_back(Node{start, round6(midway), index, true, std::nullopt});
  nodes_.push_back(Node{round6(midway), end, index, false, std::nullopt});
  // push_back may have moved the nodes: index again.
  nodes_[static_cast<size_t>(index)].left = left;
  nodes_[static_cast<size_t>(index)].right = left + 1;
}

void BrownianTree::split(int index, double midway) {
  const Node& node = nodes_[static_cast<size_t>(index)];
  split_exact(index, 0.5 * (node.end + node.start));
  const Node& n = nodes_[static_cast<size_t>(index)];
  if (midway > *n.midway) {
    split(n.right, midway);
  } else if (midway < *n.midway) {
    split(n.left, midway);
  }
}

void BrownianTree::locate(int index, double ta, double tb, std::vector<int>& out) {
  const Node node = nodes_[static_cast<size_t>(index)];
  if (ta == node.start && tb == node.end) {
    out.push_back(index);
    return;
  }
  if (!node.midway) {
    // Split so that a split point lands on ta (or on tb when ta is our start), then
    // route again from here. torchsde continues in one child and climbs back to this
    // node when the query does not fit it, which comes to the same.
    split(index, ta == node.start ? tb : ta);
    locate(index, ta, tb, out);
    return;
  }
  if (tb <= *node.midway) {
    locate(node.left, ta, tb, out);
  } else if (ta >= *node.midway) {
    locate(node.right, ta, tb, out);
  } else {
    locate(node.left, ta, *node.midway, out);
    locate(node.right, *node.midway, tb, out);
  }
}

const std::vector<float>& BrownianTree::w_of(int index) {
  if (index == 0) return top_w_;
  if (auto it = cache_.find(index); it != cache_.end()) {
    lru_.remove(index);
    lru_.push_back(index);
    return it->second;
  }
  const Node node = nodes_[static_cast<size_t>(index)];
  const Node parent = nodes_[static_cast<size_t>(node.parent)];
  const std::vector<float> w = w_of(node.parent);  // a copy: the cache may evict it
  const double h_reciprocal = 1 / (parent.end - parent.start);
  const double left_diff = *parent.midway - parent.start;
  const double right_diff = parent.end - *parent.midway;
  const auto left_f = static_cast<float>(left_diff);
  const auto h_f = static_cast<float>(h_reciprocal);
  const auto std_f = static_cast<float>(std::sqrt(left_diff * right_diff * h_reciprocal));
  const std::vector<float> noise = randn(parent.w_seed);
  std::vector<float> out(numel_);
  for (size_t i = 0; i < numel_; ++i) {
    const float mean = (left_f * w[i]) * h_f;
    const float left_w = mean + std_f * noise[i];
    out[i] = node.is_left ? left_w : w[i] - left_w;
  }
  if (cache_.size() >= kCacheSize) {
    cache_.erase(lru_.front());
    lru_.pop_front();
  }
  lru_.push_back(index);
  return cache_[index] = std::move(out);
}

std::vector<float> BrownianTree::increment(double ta, double tb) {
  const Node& top = nodes_[0];
  ta = std::clamp(ta, top.start, top.end);
  tb = std::clamp(tb, top.start, top.end);
  DR_CHECK(ta <= tb, "brownian_tree", "query times must satisfy ta <= tb, got ", ta, " and ", tb);
  ta = round6(ta);
  tb = round6(tb);
  // torchsde returns zeros for ta == tb (it would recurse forever on ends that only
  // become equal after rounding, which sampling never asks for).
  if (ta == tb) return std::vector<float>(numel_, 0.0f);
  std::vector<int> parts;
  locate(0, ta, tb, parts);
  std::vector<float> w = w_of(parts[0]);
  for (size_t k = 1; k < parts.size(); ++k) {
    const std::vector<float>& wk = w_of(parts[k]);
    for (size_t i = 0; i < numel_; ++i) w[i] = w[i] + wk[i];
  }
  return w;
}

NoiseSampler brownian_tree_noise_sampler(const Shape& x_shape, float sigma_min, float sigma_max,
                                         uint64_t seed, BoxMuller box_muller) {
  const bool nhwc = x_shape.ndim() == 4;
  const Shape tree_shape = nhwc ? Shape{x_shape[0], x_shape[3], x_shape[1], x_shape[2]} : x_shape;
  const float lo = std::min(sigma_min, sigma_max), hi = std::max(sigma_min, sigma_max);
  auto tree = std::make_shared<BrownianTree>(lo, hi, tree_shape, seed, box_muller);
  return [tree, tree_shape, nhwc](float sigma, float sigma_next) {
    const bool reversed = sigma > sigma_next;
    std::vector<float> w =
        tree->increment(reversed ? sigma_next : sigma, reversed ? sigma : sigma_next);
    const float scale = std::sqrt(std::fabs(sigma_next - sigma));
    for (float& v : w) v = (reversed ? -v : v) / scale;
    Tensor t = Tensor::from_floats(w, tree_shape);
    return nhwc ? nchw_to_nhwc(t) : t;
  };
}

}  // namespace darkroom::sampling
