// What validation, execution and /object_info share about a node's inputs: the
// /object_info form of an input, ComfyUI's conversion of literal values (int(), float(),
// str(), bool()), and how a prompt refers to other nodes ([node_id, slot]).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "workflow/node.h"

namespace darkroom::workflow {

// ["INT", {...}], [["a.safetensors", ...], {...}], ["MODEL"] (options omitted when
// empty), or for hidden inputs the bare type string "PROMPT".
json input_config(const InputSpec& spec, const FolderPaths& paths, bool hidden = false);

// The value after ComfyUI's validation-time conversion: int(v) for INT, float(v) for
// FLOAT, str(v) for STRING, bool(v) for BOOLEAN; COMBO values are kept. On failure,
// `error` holds the Python exception's message (e.g. "invalid literal for int() with base
// 10: 'abc'").
struct Coerced {
  json value;
  std::optional<std::string> error;
};
Coerced coerce_literal(const InputSpec& spec, const json& raw);

// A prompt input is a link when it is a JSON array (ComfyUI: isinstance(val, list)).
inline bool is_link(const json& v) {
  return v.is_array();
}
// The node id of a link's first element (a string, or a number written as one).
std::optional<std::string> link_node_id(const json& link);

// The inputs object of a prompt node ({} when absent or not an object).
const json& node_inputs_json(const json& node);

}  // namespace darkroom::workflow
