// numpy.random.SeedSequence's hash mixing (numpy/random/bit_generator.pyx).
#include "sampling/seed_sequence.h"

#include "core/error.h"

namespace darkroom::sampling {
namespace {

constexpr uint32_t kInitA = 0x43b0d7e5u;
constexpr uint32_t kMultA = 0x931e8875u;
constexpr uint32_t kInitB = 0x8b51f9ddu;
constexpr uint32_t kMultB = 0x58f38dedu;
constexpr uint32_t kMixMultL = 0xca01f9ddu;
constexpr uint32_t kMixMultR = 0x4973f715u;
constexpr int kXShift = 16;

uint32_t hashmix(uint32_t value, uint32_t& hash_const) {
  value ^= hash_const;
  hash_const *= kMultA;
  value *= hash_const;
  value ^= value >> kXShift;
  return value;
}

uint32_t mix(uint32_t x, uint32_t y) {
  uint32_t result = kMixMultL * x - kMixMultR * y;
  result ^= result >> kXShift;
  return result;
}

}  // namespace

std::vector<uint32_t> SeedSequence::words(uint64_t value) {
  std::vector<uint32_t> out;
  if (value == 0) out.push_back(0);
  for (; value > 0; value >>= 32) out.push_back(static_cast<uint32_t>(value & 0xffffffffu));
  return out;
}

SeedSequence::SeedSequence(std::span<const uint32_t> entropy, std::span<const uint32_t> spawn_key,
                           size_t pool_size)
    : pool_(pool_size, 0) {
  DR_CHECK(pool_size >= 4, "SeedSequence", "pool size must be at least 4");
  DR_CHECK(!entropy.empty(), "SeedSequence", "entropy is required");
  // The run entropy is zero-padded to the pool size when there is a spawn key, so
  // spawned children never collide with a longer run entropy (NumPy 1.19+).
  std::vector<uint32_t> assembled(entropy.begin(), entropy.end());
  if (!spawn_key.empty() && assembled.size() < pool_size) assembled.resize(pool_size, 0);
  assembled.insert(assembled.end(), spawn_key.begin(), spawn_key.end());

  uint32_t hash_const = kInitA;
  for (size_t i = 0; i < pool_.size(); ++i)
    pool_[i] = hashmix(i < assembled.size() ? assembled[i] : 0u, hash_const);
  // Every word affects every other.
  for (size_t src = 0; src < pool_.size(); ++src)
    for (size_t dst = 0; dst < pool_.size(); ++dst)
      if (src != dst) pool_[dst] = mix(pool_[dst], hashmix(pool_[src], hash_const));
  // Entropy beyond the pool size is mixed into every word.
  for (size_t src = pool_.size(); src < assembled.size(); ++src)
    for (size_t dst = 0; dst < pool_.size(); ++dst)
      pool_[dst] = mix(pool_[dst], hashmix(assembled[src], hash_const));
}

std::vector<uint32_t> SeedSequence::generate_state(size_t n_words) const {
  std::vector<uint32_t> out(n_words);
  uint32_t hash_const = kInitB;
  for (size_t i = 0; i < n_words; ++i) {
    uint32_t v = pool_[i % pool_.size()];
    v ^= hash_const;
    hash_const *= kMultB;
    v *= hash_const;
    v ^= v >> kXShift;
    out[i] = v;
  }
  return out;
}

}  // namespace darkroom::sampling
