#include "io/pickle_vm.h"

#include <cstring>
#include <unordered_map>

#include "core/error.h"

namespace darkroom {
namespace {

// Opcode bytes (Python's Lib/pickle.py names).
enum Op : uint8_t {
  kMark = '(',
  kStop = '.',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNone = 'N',
  kBinPersId = 'Q',
  kReduce = 'R',
  kShortBinString = 'U',
  kBinUnicode = 'X',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kEmptyDict = '}',
  kAppends = 'e',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kEmptyList = ']',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kEmptyTuple = ')',
  kSetItems = 'u',
  kBinFloat = 'G',
  kProto = 0x80,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kShortBinUnicode = 0x8c,
  kStackGlobal = 0x93,
  kMemoize = 0x94,
  kFrame = 0x95,
};

struct StorageType {
  const char* name;
  DType dtype;
};
// torch.storage._dtype_to_storage_type_map() for the dtypes darkroom has.
constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", DType::F32},  {"HalfStorage", DType::F16}, {"BFloat16Storage", DType::BF16},
    {"DoubleStorage", DType::F64}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
    {"ShortStorage", DType::I16},  {"CharStorage", DType::I8},  {"ByteStorage", DType::U8},
    {"BoolStorage", DType::Bool},
};

// torch.<name> dtypes that may appear as plain values (never called).
constexpr const char* kTorchDtypes[] = {
    "float32", "float", "float16", "half",  "bfloat16",      "float64",
    "double",  "int64", "long",    "int32", "int",           "int16",
    "short",   "int8",  "uint8",   "bool",  "float8_e4m3fn", "float8_e5m2",
};

bool allowed_global(std::string_view name) {
  if (name == "collections.OrderedDict" || name == "torch._utils._rebuild_tensor_v2" ||
      name == "torch._utils._rebuild_parameter" || name == "torch.storage.UntypedStorage")
    return true;
  if (name.starts_with("torch.")) {
    std::string_view rest = name.substr(6);
    DType unused;
    if (torch_storage_dtype(rest, &unused)) return true;
    for (const char* d : kTorchDtypes)
      if (rest == d) return true;
  }
  return false;
}

class Vm {
 public:
  Vm(std::span<const uint8_t> in, std::string_view source, const PickleLimits& limits)
      : in_(in), source_(source), limits_(limits) {}

  PickleResult run();

 private:
  template <class... Args>
  [[noreturn]] void bad(const Args&... args) const {
    fail("ckpt", source_, ": data.pkl: ", args..., " (at byte ", op_pos_, ")");
  }

  const uint8_t* take(size_t n) {
    if (n > in_.size() - pos_) bad("truncated (needs ", n, " more bytes)");
    const uint8_t* p = in_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint64_t read_le(size_t n) {
    const uint8_t* p = take(n);
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= uint64_t{p[k]} << (8 * k);
    return v;
  }
  std::string read_string(size_t n) {
    if (n > limits_.max_string) bad("string of ", n, " bytes is longer than ", limits_.max_string);
    const uint8_t* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  // GLOBAL's "module\nname\n" lines.
  std::string read_line() {
    size_t end = pos_;
    while (end < in_.size() && in_[end] != '\n') ++end;
    if (end == in_.size()) bad("GLOBAL without a newline");
    std::string s = read_string(end - pos_);
    ++pos_;
    return s;
  }

  PickleValue* make(PickleKind kind) {
    if (out_.heap.size() >= limits_.max_objects) bad("more than ", limits_.max_objects, " objects");
    PickleValue& v = out_.heap.emplace_back();
    v.kind = kind;
    return &v;
  }
  void push(const PickleValue* v) {
    if (stack_.size() >= limits_.max_stack) bad("stack deeper than ", limits_.max_stack);
    stack_.push_back(v);
  }
  const PickleValue* pop() {
    if (stack_.size() <= floor()) bad("pops an empty stack");
    const PickleValue* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  const PickleValue* top() {
    if (stack_.size() <= floor()) bad("reads an empty stack");
    return stack_.back();
  }
  // The stack below the innermost MARK belongs to the enclosing frame.
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // Pops everything above the innermost MARK, and the MARK.
  std::vector<const PickleValue*> pop_mark() {
    if (marks_.empty()) bad("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<const PickleValue*> items(stack_.begin() + static_cast<ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  // Containers are built only by this VM, so modifying them through the heap is safe.
  PickleValue* mut(const PickleValue* v) { return const_cast<PickleValue*>(v); }

  void memo_put(uint64_t index) {
    const PickleValue* v = top();
    if (memo_.size() >= limits_.max_memo && !memo_.contains(index))
      bad("memo larger than ", limits_.max_memo);
    memo_[index] = v;
  }
  void memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) bad("memo index ", index, " was never stored");
    push(it->second);
  }

  void push_tuple(std::vector<const PickleValue*> items) {
    PickleValue* t = make(PickleKind::Tuple);
    t->items = std::move(items);
    push(t);
  }
  void global(const std::string& module, const std::string& name);
  void reduce();
  void build();
  void persistent_id();
  const PickleValue* rebuild_tensor(const std::vector<const PickleValue*>& args);
  std::vector<int64_t> int_tuple(const PickleValue* v, const char* what);

  std::span<const uint8_t> in_;
  std::string_view source_;
  PickleLimits limits_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  PickleResult out_;
  std::vector<const PickleValue*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, const PickleValue*> memo_;
};

void Vm::global(const std::string& module, const std::string& name) {
  std::string full = module + "." + name;
  if (!allowed_global(full)) {
    // The name is attacker-chosen: cut it and hide control bytes in the message.
    std::string shown;
    for (char c : full.substr(0, 200)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
    fail("ckpt", source_, ": refuses global '", shown,
         "' (only PyTorch state-dict types are allowed)");
  }
  PickleValue* g = make(PickleKind::Global);
  g->s = std::move(full);
  push(g);
}

std::vector<int64_t> Vm::int_tuple(const PickleValue* v, const char* what) {
  if (v->kind != PickleKind::Tuple) bad("tensor ", what, " is not a tuple");
  if (v->items.size() > limits_.max_ndim) bad("tensor has ", v->items.size(), " dimensions");
  std::vector<int64_t> out;
  for (const PickleValue* e : v->items) {
    if (e->kind != PickleKind::Int || e->i < 0) bad("tensor ", what, " holds a non-count");
    out.push_back(e->i);
  }
  return out;
}

const PickleValue* Vm::rebuild_tensor(const std::vector<const PickleValue*>& args) {
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  if (args.size() != 6 && args.size() != 7)
    bad("_rebuild_tensor_v2 takes 6 or 7 arguments, got ", args.size());
  if (args[0]->kind != PickleKind::Storage) bad("_rebuild_tensor_v2 without a storage");
  if (args[1]->kind != PickleKind::Int || args[1]->i < 0) bad("bad tensor storage offset");
  PickleValue* t = make(PickleKind::Tensor);
  t->tensor.storage = args[0]->tensor.storage;
  t->tensor.storage_offset = args[1]->i;
  t->tensor.size = int_tuple(args[2], "size");
  t->tensor.stride = int_tuple(args[3], "stride");
  if (t->tensor.size.size() != t->tensor.stride.size())
    bad("tensor size and stride differ in rank");
  // The last element read must lie inside the storage: offset + Σ (size-1)·stride < numel
  // (an empty tensor reads nothing). Overflow-checked: every term is non-negative.
  int64_t last = t->tensor.storage_offset;
  bool empty = false;
  for (size_t d = 0; d < t->tensor.size.size(); ++d) {
    if (t->tensor.size[d] == 0) empty = true;
    int64_t term = 0;
    if (t->tensor.size[d] > 0 &&
        (__builtin_mul_overflow(t->tensor.size[d] - 1, t->tensor.stride[d], &term) ||
         __builtin_add_overflow(last, term, &last)))
      bad("tensor extent overflows");
  }
  if (!empty && last >= t->tensor.storage.numel)
    bad("tensor reads element ", last, " of a storage of ", t->tensor.storage.numel);
  return t;
}

void Vm::reduce() {
  const PickleValue* args = pop();
  const PickleValue* fn = pop();
  if (fn->kind != PickleKind::Global) bad("REDUCE calls something that is not a global");
  if (args->kind != PickleKind::Tuple) bad("REDUCE arguments are not a tuple");
  const std::string& f = fn->s;
  if (f == "collections.OrderedDict") {
    if (!args->items.empty()) bad("OrderedDict called with arguments");
    push(make(PickleKind::Dict));
  } else if (f == "torch._utils._rebuild_tensor_v2") {
    push(rebuild_tensor(args->items));
  } else if (f == "torch._utils._rebuild_parameter") {
    // (data, requires_grad, backward_hooks): the parameter is its tensor.
    if (args->items.size() != 3 || args->items[0]->kind != PickleKind::Tensor)
      bad("_rebuild_parameter takes (tensor, requires_grad, hooks)");
    push(args->items[0]);
  } else {
    fail("ckpt", source_, ": refuses to call '", f,
         "' (only PyTorch state-dict types are allowed)");
  }
}

void Vm::build() {
  // Only the no-op form: an OrderedDict given empty (or no) state.
  const PickleValue* state = pop();
  const PickleValue* obj = top();
  const bool empty_state = state->kind == PickleKind::None ||
                           (state->kind == PickleKind::Dict && state->entries.empty());
  if (obj->kind != PickleKind::Dict || !empty_state) bad("BUILD with state is not allowed");
}

void Vm::persistent_id() {
  const PickleValue* pid = pop();
  // ('storage', storage_type, key, location, numel)
  if (pid->kind != PickleKind::Tuple || pid->items.size() != 5 ||
      pid->items[0]->kind != PickleKind::String || pid->items[0]->s != "storage")
    bad("persistent id is not ('storage', type, key, location, numel)");
  const PickleValue* type = pid->items[1];
  const PickleValue* key = pid->items[2];
  const PickleValue* numel = pid->items[4];
  if (type->kind != PickleKind::Global || key->kind != PickleKind::String ||
      numel->kind != PickleKind::Int || numel->i < 0)
    bad("malformed storage persistent id");
  PickleValue* s = make(PickleKind::Storage);
  const std::string_view name = std::string_view(type->s).substr(type->s.rfind('.') + 1);
  if (type->s == "torch.storage.UntypedStorage") {
    s->tensor.storage.dtype = DType::U8;
  } else if (!type->s.starts_with("torch.") ||
             !torch_storage_dtype(name, &s->tensor.storage.dtype)) {
    bad("'", type->s, "' is not a storage type");
  }
  s->tensor.storage.key = key->s;
  s->tensor.storage.numel = numel->i;
  push(s);
}

PickleResult Vm::run() {
  for (;;) {
    op_pos_ = pos_;
    const uint8_t op = *take(1);
    switch (op) {
      case kProto: {
        const uint8_t v = *take(1);
        if (v < 2 || v > 5) bad("pickle protocol ", int{v}, " is not supported");
        break;
      }
      case kFrame:
        take(8);  // a length hint; the frame's opcodes follow inline
        break;
      case kStop: {
        if (!marks_.empty() || stack_.size() != 1)
          bad("STOP with ", stack_.size(), " values on the stack");
        out_.root = stack_.back();
        return std::move(out_);
      }
      case kMark:
        if (marks_.size() >= limits_.max_marks) bad("MARKs nested deeper than ", limits_.max_marks);
        marks_.push_back(stack_.size());
        break;
      case kNone:
        push(make(PickleKind::None));
        break;
      case kNewTrue:
      case kNewFalse: {
        PickleValue* v = make(PickleKind::Bool);
        v->b = op == kNewTrue;
        push(v);
        break;
      }
      case kBinInt: {
        PickleValue* v = make(PickleKind::Int);
        v->i = static_cast<int32_t>(static_cast<uint32_t>(read_le(4)));
        push(v);
        break;
      }
      case kBinInt1:
      case kBinInt2: {
        PickleValue* v = make(PickleKind::Int);
        v->i = static_cast<int64_t>(read_le(op == kBinInt1 ? 1 : 2));
        push(v);
        break;
      }
      case kLong1: {
        // Little-endian two's complement of n bytes; darkroom keeps what fits in 64 bits.
        const size_t n = *take(1);
        if (n > 8) bad("integer of ", n, " bytes is too large");
        uint64_t u = n ? read_le(n) : 0;
        if (n > 0 && n < 8 && (u >> (8 * n - 1)) & 1) u |= ~uint64_t{0} << (8 * n);
        PickleValue* v = make(PickleKind::Int);
        v->i = static_cast<int64_t>(u);
        push(v);
        break;
      }
      case kBinFloat: {
        // Big-endian IEEE double.
        const uint8_t* p = take(8);
        uint64_t u = 0;
        for (int k = 0; k < 8; ++k) u = (u << 8) | p[k];
        PickleValue* v = make(PickleKind::Float);
        std::memcpy(&v->f, &u, 8);
        push(v);
        break;
      }
      case kBinUnicode:
      case kShortBinUnicode:
      case kShortBinString: {
        const size_t n = op == kBinUnicode ? read_le(4) : *take(1);
        PickleValue* v = make(PickleKind::String);
        v->s = read_string(n);
        push(v);
        break;
      }
      case kEmptyDict:
        push(make(PickleKind::Dict));
        break;
      case kEmptyList:
        push(make(PickleKind::List));
        break;
      case kEmptyTuple:
        push(make(PickleKind::Tuple));
        break;
      case kTuple:
        push_tuple(pop_mark());
        break;
      case kTuple1:
      case kTuple2:
      case kTuple3: {
        const size_t n = op - kTuple1 + 1;
        if (stack_.size() < floor() + n)
          bad("TUPLE", n, " on a stack of ", stack_.size() - floor());
        std::vector<const PickleValue*> items(stack_.end() - static_cast<ptrdiff_t>(n),
                                              stack_.end());
        stack_.resize(stack_.size() - n);
        push_tuple(std::move(items));
        break;
      }
      case kAppend: {
        const PickleValue* v = pop();
        const PickleValue* list = top();
        if (list->kind != PickleKind::List) bad("APPEND to a non-list");
        mut(list)->items.push_back(v);
        break;
      }
      case kAppends: {
        std::vector<const PickleValue*> items = pop_mark();
        const PickleValue* list = top();
        if (list->kind != PickleKind::List) bad("APPENDS to a non-list");
        mut(list)->items.insert(mut(list)->items.end(), items.begin(), items.end());
        break;
      }
      case kSetItem: {
        const PickleValue* value = pop();
        const PickleValue* key = pop();
        const PickleValue* dict = top();
        if (dict->kind != PickleKind::Dict) bad("SETITEM on a non-dict");
        mut(dict)->entries.emplace_back(key, value);
        break;
      }
      case kSetItems: {
        std::vector<const PickleValue*> items = pop_mark();
        const PickleValue* dict = top();
        if (dict->kind != PickleKind::Dict) bad("SETITEMS on a non-dict");
        if (items.size() % 2 != 0) bad("SETITEMS with an odd number of values");
        for (size_t k = 0; k < items.size(); k += 2)
          mut(dict)->entries.emplace_back(items[k], items[k + 1]);
        break;
      }
      case kBinPut:
        memo_put(*take(1));
        break;
      case kLongBinPut:
        memo_put(read_le(4));
        break;
      case kMemoize:
        memo_put(memo_.size());
        break;
      case kBinGet:
        memo_get(*take(1));
        break;
      case kLongBinGet:
        memo_get(read_le(4));
        break;
      case kGlobal: {
        std::string module = read_line();
        std::string name = read_line();
        global(module, name);
        break;
      }
      case kStackGlobal: {
        const PickleValue* name = pop();
        const PickleValue* module = pop();
        if (name->kind != PickleKind::String || module->kind != PickleKind::String)
          bad("STACK_GLOBAL needs two strings");
        global(module->s, name->s);
        break;
      }
      case kReduce:
        reduce();
        break;
      case kBuild:
        build();
        break;
      case kBinPersId:
        persistent_id();
        break;
      default:
        bad("unsupported pickle opcode 0x", "0123456789abcdef"[op >> 4],
            "0123456789abcdef"[op & 15]);
    }
  }
}

}  // namespace

bool torch_storage_dtype(std::string_view storage_type, DType* dtype) {
  for (const StorageType& t : kStorageTypes) {
    if (storage_type == t.name) {
      *dtype = t.dtype;
      return true;
    }
  }
  return false;
}

PickleResult run_restricted_pickle(std::span<const uint8_t> pickle, std::string_view source,
                                   const PickleLimits& limits) {
  return Vm(pickle, source, limits).run();
}

}  // namespace darkroom
