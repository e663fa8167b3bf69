// The one list of backend ops. Everything per-op is generated from it: the Op enum,
// op names, and each backend's dispatch table (backend/op_table.h). A backend that
// lacks a kernel for an op fails to compile.
//
// X(Name, kernel_name): Name##Args in op_args.h is the kernel's argument struct.
#pragma once

#define DARKROOM_OPS(X)                    \
  X(Linear, linear)                        \
  X(Matmul, matmul)                        \
  X(Conv2d, conv2d)                        \
  X(GroupNorm, group_norm)                 \
  X(LayerNorm, layer_norm)                 \
  X(RmsNorm, rms_norm)                     \
  X(Attention, attention)                  \
  X(Softmax, softmax)                      \
  X(Unary, unary)                          \
  X(Geglu, geglu)                          \
  X(Binary, binary)                        \
  X(Concat, concat)                        \
  X(UpsampleNearest2x, upsample_nearest2x) \
  X(Resize, resize)                        \
  X(TimestepEmbedding, timestep_embedding) \
  X(Embedding, embedding)                  \
  X(Permute, permute)                      \
  X(Slice, slice)                          \
  X(Cast, cast)

namespace darkroom {

enum class Op : int {
#define DR_OP_ENUM(Name, name) Name,
  DARKROOM_OPS(DR_OP_ENUM)
#undef DR_OP_ENUM
      Count
};

inline constexpr int kOpCount = static_cast<int>(Op::Count);

const char* op_name(Op op);

}  // namespace darkroom
