// torchsde's Brownian tree, which ComfyUI's dpmpp_sde / dpmpp_2m_sde(_heun) draw their
// noise from (BrownianTreeNoiseSampler with cpu=True), reproduced bit for bit.
//
// torchsde.BrownianTree(t0, w0, t1, entropy) is a BrownianInterval with tol = 1e-6,
// pool_size = 24 and halfway_tree = True:
//  - W over the whole [t0, t1] is randn(shape) · sqrt(t1 - t0), with torch's CPU
//    generator seeded by SeedSequence(entropy, pool_size=24).generate_state(3)[0].
//  - Every node splits at the midpoint of its ends (times are rounded to 6 decimals);
//    a node at depth d with spawn key k gets seeds
//    SeedSequence(entropy, spawn_key=(k, d), pool_size=24).generate_state(4), and its
//    children's increments are the Brownian bridge of its own:
//      left = left_diff·W/h + sqrt(left_diff·right_diff/h)·randn(W_seed),
//      right = W - left.
//  - A query [ta, tb] is split into existing/new nodes (creating splits as needed) and
//    their increments are summed left to right.
// float32 arithmetic follows torch's (scalars rounded to float, one rounding per op), and
// the increments match torchsde bit for bit. The noise sampler then divides by
// sqrt(|σ_next - σ|): torch takes that float sqrt through MKL, which is not always
// correctly rounded, so about one call in 70 differs from ComfyUI's by one ulp there.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/shape.h"
#include "sampling/sampler.h"
#include "sampling/torch_rng.h"

namespace darkroom::sampling {

class BrownianTree {
 public:
  // W has `shape` (torch's order) and lives on [t0, t1], t0 <= t1 (equal ends give a
  // tree whose increments are all zero, as in torchsde).
  BrownianTree(double t0, double t1, const Shape& shape, uint64_t entropy,
               BoxMuller box_muller = BoxMuller::Avx2);

  // W(tb) - W(ta) for ta <= tb (clamped to [t0, t1] as torchsde does), row-major.
  std::vector<float> increment(double ta, double tb);

 private:
  struct Node {
    double start, end;
    int parent;
    bool is_left;
    std::optional<double> midway;
    uint64_t spawn_key = 0, depth = 0;
    uint32_t w_seed = 0;
    int left = -1, right = -1;
  };

  void split(int node, double midway);
  void split_exact(int node, double midway);
  void locate(int node, double ta, double tb, std::vector<int>& out);
  const std::vector<float>& w_of(int node);
  std::vector<float> randn(uint32_t seed) const;

  Shape shape_;
  size_t numel_;
  std::vector<uint32_t> entropy_;
  BoxMuller box_muller_;
  std::vector<Node> nodes_;  // nodes_[0] is the whole interval
  std::vector<float> top_w_;
  // torchsde's LRU cache of recent node increments (45 entries); values do not depend
  // on it, only the speed does.
  std::unordered_map<int, std::vector<float>> cache_;
  std::list<int> lru_;
};

// ComfyUI's BrownianTreeNoiseSampler for a CPU latent: a tree over
// [sigma_min, sigma_max] seeded with `seed`; noise(σ, σ_next) = ±W(σ_next) - W(σ) over
// sqrt(|σ_next - σ|). `x_shape` as in torch_noise_sampler: 4-D is NHWC, drawn in NCHW.
NoiseSampler brownian_tree_noise_sampler(const Shape& x_shape, float sigma_min, float sigma_max,
                                         uint64_t seed, BoxMuller box_muller = BoxMuller::Avx2);

}  // namespace darkroom::sampling
