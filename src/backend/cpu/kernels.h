// The CPU backend's kernels, one per op of op_list.h (see op_args.h for contracts).
// Dense math (linear, matmul, conv2d and attention's tile products) runs on oneDNN;
// the rest are our own loops, threaded over rows with core/thread_pool.
#pragma once

#include "backend/op_args.h"
#include "backend/op_list.h"

namespace darkroom::cpu {

#define DR_CPU_KERNEL_DECL(Name, name) void name(const Name##Args& args);
DARKROOM_OPS(DR_CPU_KERNEL_DECL)
#undef DR_CPU_KERNEL_DECL

}  // namespace darkroom::cpu
