// numpy.random.SeedSequence (NumPy >= 1.19): hashes integer entropy and a spawn key into
// a pool of 32-bit words and derives seed words from it. torchsde seeds every node of its
// Brownian tree this way, so darkroom needs it bit for bit.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace darkroom::sampling {

class SeedSequence {
 public:
  // `entropy` and `spawn_key` as NumPy's _coerce_to_uint32_array makes them: each
  // integer split into little-endian 32-bit words (0 -> one zero word).
  SeedSequence(std::span<const uint32_t> entropy, std::span<const uint32_t> spawn_key,
               size_t pool_size = 4);

  // SeedSequence.generate_state(n_words) with dtype uint32.
  std::vector<uint32_t> generate_state(size_t n_words) const;

  // A non-negative integer as NumPy's words.
  static std::vector<uint32_t> words(uint64_t value);

 private:
  std::vector<uint32_t> pool_;
};

}  // namespace darkroom::sampling
