#include <gtest/gtest.h>

#include "core/tensor.h"

TEST(Tensor, Placeholder) { EXPECT_EQ(darkroom::Tensor::empty({2, 3}, darkroom::DType::F32).numel(), 6); }
