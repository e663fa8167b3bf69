// A backend's dispatch table: one kernel pointer per op of op_list.h, in order.
#pragma once

#include "backend/op_args.h"
#include "backend/op_list.h"

namespace darkroom {

struct OpTable {
#define DR_OP_FIELD(Name, name) void (*name)(const Name##Args&);
  DARKROOM_OPS(DR_OP_FIELD)
#undef DR_OP_FIELD
};

static_assert(sizeof(OpTable) == kOpCount * sizeof(void (*)()),
              "OpTable must hold exactly one kernel per op in op_list.h");

// Builds a backend's table from a namespace holding one function per op:
//   constexpr OpTable kCpuOps = DR_MAKE_OP_TABLE(cpu);
// A missing function is a compile error, so no op can be forgotten.
#define DR_OP_ENTRY(Name, name) &DR_OP_NS::name,
#define DR_MAKE_OP_TABLE()    \
  OpTable {                   \
    DARKROOM_OPS(DR_OP_ENTRY) \
  }

}  // namespace darkroom
