// core/: tensor views, dtype conversions, arena, thread pool, errors and logging.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <set>
#include <stdexcept>

#include "core/arena.h"
#include "core/half.h"
#include "core/log.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace darkroom {
namespace {

TEST(Half, Bf16RoundsToNearestEven) {
  EXPECT_EQ(to_bf16(1.0f).bits, 0x3F80);
  EXPECT_EQ(to_bf16(bits_to_f32(0x3F808000)).bits, 0x3F80);  // tie, even stays
  EXPECT_EQ(to_bf16(bits_to_f32(0x3F818000)).bits, 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(to_bf16(bits_to_f32(0x3F808001)).bits, 0x3F81);  // above the tie
  EXPECT_EQ(to_bf16(-2.0f).bits, 0xC000);
  EXPECT_TRUE(std::isnan(to_f32(to_bf16(NAN))));
  EXPECT_EQ(to_f32(to_bf16(INFINITY)), INFINITY);
}

TEST(Half, F16KnownValues) {
  EXPECT_EQ(to_f16(1.0f).bits, 0x3C00);
  EXPECT_EQ(to_f16(65504.0f).bits, 0x7BFF);  // largest finite half
  EXPECT_EQ(to_f16(-0.5f).bits, 0xB800);
  EXPECT_EQ(to_f32(f16{0x0001}), std::ldexp(1.0f, -24));  // smallest subnormal
}

TEST(Half, Fp8E4M3KnownValuesAndRoundTrip) {
  EXPECT_EQ(f8e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(f8e4m3_to_f32(0xB8), -1.0f);
  EXPECT_EQ(f8e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(f8e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(f8e4m3_to_f32(0x7F)));
  EXPECT_EQ(f32_to_f8e4m3(1000.0f), 0x7E);  // saturates
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F || c == 0x80) continue;  // NaNs; -0 encodes as +0's sign
    EXPECT_EQ(f32_to_f8e4m3(f8e4m3_to_f32(static_cast<uint8_t>(c))), c) << "code " << c;
  }
}

TEST(Half, Fp8E5M2IsTheTopByteOfAHalf) {
  EXPECT_EQ(f8e5m2_to_f32(0x3C), 1.0f);
  EXPECT_EQ(f8e5m2_to_f32(0x7C), INFINITY);
  EXPECT_EQ(f8e5m2_to_f32(0xC0), -2.0f);
}

TEST(TensorTest, ReshapeInfersAndSharesStorage) {
  Tensor t = Tensor::zeros({2, 3, 4}, DType::F32);
  Tensor r = t.reshape({6, -1});
  EXPECT_EQ(r.shape(), (Shape{6, 4}));
  EXPECT_EQ(r.raw(), t.raw());
  try {
    t.reshape({5, -1});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "[reshape] cannot reshape [2, 3, 4] to [5, -1]");
  }
  EXPECT_THROW(t.reshape({-1, -1}), Error);
}

TEST(TensorTest, Narrow0ViewsRows) {
  std::vector<float> v{0, 1, 2, 3, 4, 5};
  Tensor t = Tensor::from_floats(v, {3, 2});
  Tensor mid = t.narrow0(1, 2);
  EXPECT_EQ(mid.shape(), (Shape{1, 2}));
  EXPECT_EQ(mid.to_floats(), (std::vector<float>{2, 3}));
  EXPECT_THROW(t.narrow0(2, 4), Error);
}

TEST(TensorTest, StorageIdsAreUniqueAndMemoryAligned) {
  std::set<uint64_t> ids;
  for (int i = 0; i < 100; ++i) {
    Tensor t = Tensor::empty({7}, DType::BF16);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % kTensorAlignment, 0u);
    ids.insert(t.storage()->id());
  }
  EXPECT_EQ(ids.size(), 100u);
}

TEST(ArenaTest, ReusesMemoryAfterReset) {
  Arena arena(1 << 20);
  void* first = nullptr;
  {
    ArenaScope scope(arena);
    Tensor a = Tensor::empty({1000}, DType::F32);
    Tensor b = Tensor::empty({1000}, DType::F32);
    first = a.raw();
    EXPECT_NE(a.raw(), b.raw());
    EXPECT_EQ(arena.live_allocations(), 2u);
  }
  EXPECT_EQ(arena.live_allocations(), 0u);
  const size_t reserved = arena.bytes_reserved();
  arena.reset();
  {
    ArenaScope scope(arena);
    Tensor a = Tensor::empty({1000}, DType::F32);
    EXPECT_EQ(a.raw(), first);
  }
  EXPECT_EQ(arena.bytes_reserved(), reserved);  // no new block
  EXPECT_GE(arena.high_water(), 8000u);
  // Outside the scope, tensors come from the system again.
  Tensor outside = Tensor::empty({1000}, DType::F32);
  EXPECT_EQ(arena.live_allocations(), 0u);
}

TEST(ArenaTest, RewindsWhenTheLastTensorDies) {
  Arena arena(1 << 20);
  ArenaScope scope(arena);
  void* first = nullptr;
  for (int run = 0; run < 10; ++run) {
    Tensor a = Tensor::empty({100000}, DType::F32);  // 400 KB: two would not fit twice
    Tensor b = Tensor::empty({100000}, DType::F32);
    if (run == 0) first = a.raw();
    EXPECT_EQ(a.raw(), first);
  }
  EXPECT_EQ(arena.bytes_reserved(), size_t{1} << 20);
}

TEST(ArenaTest, LargeRequestGetsItsOwnBlock) {
  Arena arena(1 << 12);
  ArenaScope scope(arena);
  Tensor big = Tensor::empty({1 << 16}, DType::F32);
  EXPECT_GE(arena.bytes_reserved(), size_t{1} << 18);
}

TEST(ArenaDeathTest, ResetWithLiveTensorAborts) {
  EXPECT_DEATH(
      {
        Arena arena;
        ArenaScope scope(arena);
        Tensor t = Tensor::empty({4}, DType::F32);
        arena.reset();
      },
      "arena reset with 1 live tensors");
}

TEST(ThreadPoolTest, CoversEveryIndexOnce) {
  ThreadPool pool(3);
  for (int64_t n : {1, 2, 7, 100, 1001}) {
    for (int64_t chunk : {1, 4, 64}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(
          n,
          [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) hits[i]++;
          },
          chunk);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << n << " " << chunk << " " << i;
    }
  }
}

TEST(ThreadPoolTest, UsesSeveralThreadsAndNestsInline) {
  ThreadPool pool(2);
  std::atomic<int> inner{0};
  pool.parallel_for(8, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      pool.parallel_for(10, [&](int64_t b2, int64_t e2) { inner += static_cast<int>(e2 - b2); });
  });
  EXPECT_EQ(inner.load(), 80);
}

TEST(ThreadPoolTest, RethrowsTheFirstException) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(100,
                                 [&](int64_t b, int64_t) {
                                   if (b >= 50) throw std::runtime_error("boom");
                                 }),
               std::runtime_error);
  // Still usable afterwards.
  std::atomic<int64_t> sum{0};
  pool.parallel_for(100, [&](int64_t b, int64_t e) { sum += e - b; });
  EXPECT_EQ(sum.load(), 100);
}

TEST(Errors, FailPrefixesTheOp) {
  try {
    fail("conv2d", "x has ", 3, " channels");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "[conv2d] x has 3 channels");
  }
}

TEST(Logging, ParsesLevels) {
  EXPECT_EQ(parse_log_level("warn"), LogLevel::Warn);
  EXPECT_THROW(parse_log_level("loud"), Error);
  const LogLevel old = log_level();
  set_log_level(LogLevel::Error);
  EXPECT_EQ(log_level(), LogLevel::Error);
  set_log_level(old);
}

TEST(DTypeTest, NamesRoundTrip) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::F8E4M3, DType::I64, DType::Bool})
    EXPECT_EQ(parse_dtype(dtype_name(t)), t);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_THROW(parse_dtype("f12"), Error);
}

}  // namespace
}  // namespace darkroom
