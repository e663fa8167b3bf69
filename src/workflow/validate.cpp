// validate_prompt: ComfyUI's execution.py validate_prompt / validate_inputs, with the
// same error types, messages, details and node_errors bookkeeping. The recursion over
// linked nodes is an explicit stack, so a long chain cannot overflow ours, and a
// dependency cycle is reported as ComfyUI reports it ("dependency_cycle") instead of
// looping.
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "workflow/executor.h"
#include "workflow/node.h"
#include "workflow/prompt_inputs.h"
#include "workflow/python_repr.h"
#include "workflow/resource_limits.h"

namespace darkroom::workflow {
namespace {

json make_error(std::string type, std::string message, std::string details, json extra) {
  return json{{"type", std::move(type)},
              {"message", std::move(message)},
              {"details", std::move(details)},
              {"extra_info", std::move(extra)}};
}

// a < b for two JSON numbers (integers compared exactly).
bool number_less(const json& a, const json& b) {
  auto as_i128 = [](const json& v) -> __int128 {
    return v.is_number_unsigned() ? static_cast<__int128>(v.get<uint64_t>())
                                  : static_cast<__int128>(v.get<int64_t>());
  };
  const bool ai = a.is_number_integer() || a.is_number_unsigned();
  const bool bi = b.is_number_integer() || b.is_number_unsigned();
  if (ai && bi) return as_i128(a) < as_i128(b);
  // Integers past 64 bits arrive as doubles; long double holds every uint64 exactly.
  auto as_ld = [&](const json& v) -> long double {
    if (v.is_number_unsigned()) return static_cast<long double>(v.get<uint64_t>());
    if (v.is_number_integer()) return static_cast<long double>(v.get<int64_t>());
    return static_cast<long double>(v.get<double>());
  };
  return as_ld(a) < as_ld(b);
}

// One linked input whose type matched: the node it comes from, and what an exception
// inside that node is reported with.
struct ChildLink {
  std::string input_name;
  json input_config;
  json link;
  std::string node_id;
};

// A node's own checks (everything but the recursion).
struct OwnCheck {
  json errors = json::array();
  std::vector<ChildLink> children;
  // A Python exception in ComfyUI (a link to a missing node or slot): message and type.
  std::optional<std::pair<std::string, std::string>> exception;
};

// The server's caps (resource_limits.h) on the node's literal inputs, once the declared
// ranges held: "steps", and width × height × batch_size of any node that has the first two.
void check_limits(const NodeDecl& decl, const json& inputs, const FolderPaths& paths,
                  const ResourceLimits& limits, json& errors) {
  auto literal_int = [&](const char* name) -> std::optional<int64_t> {
    const InputSpec* spec = decl.find_input(name);
    auto it = inputs.find(name);
    if (spec == nullptr || spec->type != "INT" || it == inputs.end() || is_link(*it))
      return std::nullopt;
    const Coerced c = coerce_literal(*spec, *it);
    if (c.error || !c.value.is_number_integer()) return std::nullopt;
    return c.value.get<int64_t>();
  };
  auto over = [&](const char* name, const json& value, const std::string& details) {
    const InputSpec* spec = decl.find_input(name);
    errors.push_back(make_error("value_bigger_than_max",
                                "Value " + python_str(value) + " bigger than this server's limit",
                                details,
                                json{{"input_name", name},
                                     {"input_config", input_config(*spec, paths)},
                                     {"received_value", value}}));
  };
  if (const auto steps = literal_int("steps");
      steps && limits.max_steps > 0 && *steps > limits.max_steps)
    over("steps", *steps,
         "steps, " + std::to_string(*steps) + " is over this server's limit of " +
             std::to_string(limits.max_steps) + " (serve --max-steps)");
  const auto w = literal_int("width"), h = literal_int("height");
  if (limits.max_pixels > 0 && w && h && *w > 0 && *h > 0) {
    const auto batch = literal_int("batch_size");
    const int64_t n = batch && *batch > 0 ? *batch : 1;
    const uint64_t pixels =
        static_cast<uint64_t>(*w) * static_cast<uint64_t>(*h) * static_cast<uint64_t>(n);
    if (pixels > limits.max_pixels)
      over(batch ? "batch_size" : "height", batch ? json(n) : json(*h),
           "width × height" + std::string(batch ? " × batch_size" : "") + " = " +
               std::to_string(*w) + " × " + std::to_string(*h) +
               (batch ? " × " + std::to_string(n) : std::string()) + " = " +
               std::to_string(pixels) + " pixels, over this server's limit of " +
               std::to_string(limits.max_pixels) + " (serve --max-pixels)");
  }
}

OwnCheck check_node(const json& prompt, const std::string& id, const FolderPaths& paths,
                    const ResourceLimits& limits) {
  OwnCheck out;
  const json& node = prompt.at(id);
  const NodeDecl& decl = *NodeRegistry::instance().find(node.at("class_type").get<std::string>());
  const json& inputs = node_inputs_json(node);
  const std::set<std::string> custom(decl.custom_validated.begin(), decl.custom_validated.end());

  const std::pair<const std::vector<InputSpec>*, bool> groups[] = {{&decl.required, true},
                                                                   {&decl.optional, false}};
  for (const auto& [specs, required] : groups) {
    for (const InputSpec& spec : *specs) {
      const std::string& x = spec.name;
      auto it = inputs.find(x);
      if (it == inputs.end()) {
        if (required)
          out.errors.push_back(make_error("required_input_missing", "Required input is missing", x,
                                          json{{"input_name", x}}));
        continue;
      }
      const json& val = *it;
      const json info = input_config(spec, paths);
      if (is_link(val)) {
        if (val.size() != 2) {
          out.errors.push_back(
              make_error("bad_linked_input",
                         "Bad linked input, must be a length-2 list of [node_id, slot_index]", x,
                         json{{"input_name", x}, {"input_config", info}, {"received_value", val}}));
          continue;
        }
        // ComfyUI indexes prompt[o_id] and RETURN_TYPES[slot] here and lets the KeyError /
        // IndexError escape to its caller.
        const std::optional<std::string> o_id = link_node_id(val);
        if (!o_id || !prompt.contains(*o_id)) {
          out.exception = {"'" + (o_id ? *o_id : val[0].dump()) + "'", "KeyError"};
          return out;
        }
        const NodeDecl* src =
            NodeRegistry::instance().find(prompt[*o_id]["class_type"].get<std::string>());
        const json& slot = val[1];
        if (!slot.is_number_integer() && !slot.is_number_unsigned()) {
          out.exception = {"tuple indices must be integers or slices, not " +
                               std::string(slot.is_string() ? "str" : slot.type_name()),
                           "TypeError"};
          return out;
        }
        const int64_t s = slot.is_number_unsigned() ? static_cast<int64_t>(slot.get<uint64_t>())
                                                    : slot.get<int64_t>();
        if (s < 0 || s >= static_cast<int64_t>(src->outputs.size())) {
          out.exception = {"tuple index out of range", "IndexError"};
          return out;
        }
        const std::string& received = src->outputs[static_cast<size_t>(s)].type;
        const bool match = received == spec.type || received == "*" || spec.type == "*";
        if (!match) {
          out.errors.push_back(make_error(
              "return_type_mismatch", "Return type mismatch between linked nodes",
              x + ", received_type(" + received + ") mismatch input_type(" + spec.type + ")",
              json{{"input_name", x},
                   {"input_config", info},
                   {"received_type", received},
                   {"linked_node", val}}));
          continue;
        }
        out.children.push_back(ChildLink{x, info, val, *o_id});
        continue;
      }

      const Coerced c = coerce_literal(spec, val);
      if (c.error) {
        out.errors.push_back(make_error(
            "invalid_input_type", "Failed to convert an input value to a " + spec.type + " value",
            x + ", " + python_str(val) + ", " + *c.error,
            json{{"input_name", x},
                 {"input_config", info},
                 {"received_value", val},
                 {"exception_message", *c.error}}));
        continue;
      }
      if (custom.contains(x)) continue;  // the node's validate_inputs checks it
      const json& v = c.value;
      const json& opt = spec.options;
      if (v.is_number() && opt.contains("min") && number_less(v, opt["min"])) {
        out.errors.push_back(
            make_error("value_smaller_than_min",
                       "Value " + python_str(v) + " smaller than min of " + python_str(opt["min"]),
                       x, json{{"input_name", x}, {"input_config", info}, {"received_value", v}}));
        continue;
      }
      if (v.is_number() && opt.contains("max") && number_less(opt["max"], v)) {
        out.errors.push_back(
            make_error("value_bigger_than_max",
                       "Value " + python_str(v) + " bigger than max of " + python_str(opt["max"]),
                       x, json{{"input_name", x}, {"input_config", info}, {"received_value", v}}));
        continue;
      }
      if (spec.type == "COMBO") {
        const json& list = info[0];
        if (std::find(list.begin(), list.end(), v) == list.end()) {
          // ComfyUI leaves long lists (scanned model files) out of the answer.
          const bool long_list = list.size() > 20;
          const std::string list_info = long_list
                                            ? "(list of length " + std::to_string(list.size()) + ")"
                                            : python_repr(list);
          out.errors.push_back(make_error("value_not_in_list", "Value not in list",
                                          x + ": " + python_repr(v) + " not in " + list_info,
                                          json{{"input_name", x},
                                               {"input_config", long_list ? json(nullptr) : info},
                                               {"received_value", v}}));
          continue;
        }
      }
    }
  }

  if (out.errors.empty()) check_limits(decl, inputs, paths, limits, out.errors);

  if (decl.validate_inputs) {
    NodeInputs literal;
    for (const std::string& name : decl.custom_validated) {
      const InputSpec* spec = decl.find_input(name);
      auto it = inputs.find(name);
      if (spec == nullptr || it == inputs.end() || is_link(*it)) continue;
      const Coerced c = coerce_literal(*spec, *it);
      if (!c.error) literal.set(name, Value::literal(spec->type, c.value));
    }
    std::string message;
    try {
      message = decl.validate_inputs(literal, paths);
    } catch (const std::exception& e) {
      message = e.what();
    }
    if (!message.empty()) {
      for (const auto& [name, value] : literal.values())
        out.errors.push_back(make_error("custom_validation_failed",
                                        "Custom validation failed for node", name + " - " + message,
                                        json{{"input_name", name}}));
      if (literal.values().empty())
        out.errors.push_back(make_error("custom_validation_failed",
                                        "Custom validation failed for node", message,
                                        json::object()));
    }
  }
  return out;
}

struct Result {
  bool valid = true;
  json reasons = json::array();
};

// validated: ComfyUI's dict, with its insertion order kept (node_errors follow it).
class Validated {
 public:
  bool contains(const std::string& id) const { return map_.contains(id); }
  const Result& at(const std::string& id) const { return map_.at(id); }
  void set(const std::string& id, Result r) {
    if (!map_.contains(id)) order_.push_back(id);
    map_[id] = std::move(r);
  }
  const std::vector<std::string>& order() const { return order_; }

 private:
  std::map<std::string, Result> map_;
  std::vector<std::string> order_;
};

void validate_output(const json& prompt, const std::string& root, const FolderPaths& paths,
                     const ResourceLimits& limits, Validated& validated) {
  if (validated.contains(root)) return;
  struct Frame {
    std::string id;
    OwnCheck own;
    size_t next = 0;
    bool valid = true;
  };
  std::vector<Frame> stack;
  std::vector<std::string> visiting;  // the DFS path, as ComfyUI's `visiting` list
  std::unordered_map<std::string, size_t> visiting_pos;

  {
    OwnCheck own = check_node(prompt, root, paths, limits);
    if (own.exception) {
      validated.set(root, Result{false, json::array({make_error(
                                            "exception_during_validation",
                                            "Exception when validating node", own.exception->first,
                                            json{{"exception_type", own.exception->second},
                                                 {"traceback", json::array()}})})});
      return;
    }
    stack.push_back(Frame{root, std::move(own)});
    visiting.push_back(root);
    visiting_pos[root] = 0;
  }

  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.next < f.own.children.size()) {
      const ChildLink& link = f.own.children[f.next++];
      const std::string& child = link.node_id;
      if (validated.contains(child)) {
        if (!validated.at(child).valid) f.valid = false;
        continue;
      }
      if (auto pos = visiting_pos.find(child); pos != visiting_pos.end()) {
        // visiting[i:] + [child] is the cycle; every node on it gets the error.
        std::vector<std::string> path(visiting.begin() + static_cast<std::ptrdiff_t>(pos->second),
                                      visiting.end());
        path.push_back(child);
        std::vector<std::string> nodes;
        for (const std::string& n : path)
          if (std::find(nodes.begin(), nodes.end(), n) == nodes.end()) nodes.push_back(n);
        std::string details;
        for (size_t i = 0; i < path.size(); ++i)
          details += (i ? " -> " : "") + path[i] + " (" +
                     prompt[path[i]]["class_type"].get<std::string>() + ")";
        for (const std::string& n : nodes)
          validated.set(n,
                        Result{false, json::array({make_error(
                                          "dependency_cycle", "Dependency cycle detected", details,
                                          json{{"node_id", n}, {"cycle_nodes", nodes}})})});
        f.valid = false;
        continue;
      }
      OwnCheck own = check_node(prompt, child, paths, limits);
      if (own.exception) {
        validated.set(
            child, Result{false, json::array({make_error(
                                     "exception_during_inner_validation",
                                     "Exception when validating inner node", own.exception->first,
                                     json{{"input_name", link.input_name},
                                          {"input_config", link.input_config},
                                          {"exception_message", own.exception->first},
                                          {"exception_type", own.exception->second},
                                          {"traceback", json::array()},
                                          {"linked_node", link.link}})})});
        f.valid = false;
        continue;
      }
      visiting_pos[child] = visiting.size();
      visiting.push_back(child);
      stack.push_back(Frame{child, std::move(own)});  // invalidates f
      continue;
    }
    // All inputs seen: join what a cycle may already have recorded for this node.
    Result r = validated.contains(f.id) ? validated.at(f.id) : Result{};
    r.valid = r.valid && f.valid && f.own.errors.empty();
    for (const json& e : f.own.errors)
      if (std::find(r.reasons.begin(), r.reasons.end(), e) == r.reasons.end())
        r.reasons.push_back(e);
    validated.set(f.id, r);
    const bool valid = r.valid;
    stack.pop_back();
    visiting_pos.erase(visiting.back());
    visiting.pop_back();
    if (!stack.empty() && !valid) stack.back().valid = false;
  }
}

Validation invalid_prompt(std::string message, std::string details) {
  Validation v;
  v.error = make_error("invalid_prompt", std::move(message), std::move(details), json::object());
  return v;
}

}  // namespace

Validation validate_prompt(const json& prompt, const FolderPaths& paths,
                           const ResourceLimits& limits) {
  if (!prompt.is_object())
    return invalid_prompt("Cannot execute because the prompt is not a JSON object.", "");
  std::vector<std::string> outputs;
  for (auto it = prompt.begin(); it != prompt.end(); ++it) {
    const std::string& x = it.key();
    const json& node = it.value();
    if (!node.is_object() || !node.contains("class_type"))
      return invalid_prompt("Cannot execute because a node is missing the class_type property.",
                            "Node ID '#" + x + "'");
    const json& ct = node["class_type"];
    const NodeDecl* decl =
        ct.is_string() ? NodeRegistry::instance().find(ct.get<std::string>()) : nullptr;
    if (decl == nullptr)
      return invalid_prompt("Cannot execute because node " + python_str(ct) + " does not exist.",
                            "Node ID '#" + x + "'");
    if (decl->output_node) outputs.push_back(x);
  }
  if (outputs.empty()) {
    Validation v;
    v.error = make_error("prompt_no_outputs", "Prompt has no outputs", "", json::object());
    return v;
  }

  Validation v;
  Validated validated;
  std::vector<std::string> good;
  std::vector<std::pair<std::string, json>> failed;  // output → its own reasons
  for (const std::string& o : outputs) {
    validate_output(prompt, o, paths, limits, validated);
    const Result& r = validated.at(o);
    if (r.valid) {
      good.push_back(o);
      continue;
    }
    failed.emplace_back(o, r.reasons);
    // Every invalid node with reasons seen so far is reported, and lists this output
    // among its dependents (ComfyUI walks its whole `validated` dict here).
    for (const std::string& id : validated.order()) {
      const Result& nr = validated.at(id);
      if (nr.valid || nr.reasons.empty()) continue;
      if (!v.node_errors.contains(id))
        v.node_errors[id] = json{{"errors", nr.reasons},
                                 {"dependent_outputs", json::array()},
                                 {"class_type", prompt[id]["class_type"]}};
      v.node_errors[id]["dependent_outputs"].push_back(o);
    }
  }
  if (good.empty()) {
    std::string details;
    for (const auto& [o, reasons] : failed)
      for (const json& e : reasons) {
        if (!details.empty()) details += "\n";
        details += e["message"].get<std::string>() + ": " + e["details"].get<std::string>();
      }
    v.error = make_error("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                         details, json::object());
    return v;
  }
  v.ok = true;
  v.error = json::object();
  v.outputs = std::move(good);
  return v;
}

}  // namespace darkroom::workflow
