// Executor: ComfyUI's PromptExecutor.execute with its output cache.
//
// Cache keys (ComfyUI's CacheKeySetInputSignature): a node's key hashes its class, its
// IS_CHANGED value, its literal inputs (after validation's conversion) and, for each
// linked input, the key of the node it comes from and the slot. Outputs are kept under
// their key across prompts; at the start of a prompt, entries that none of its nodes has
// are dropped (HierarchicalCache.clean_unused), so memory follows the latest prompt.
//
// Order (ComfyUI's ExecutionList): the requested outputs and their uncached ancestors are
// dissolved topologically; among the ready nodes an output node runs first, then a node
// that feeds an output node, then one two links away, else the first ready one.
#include <algorithm>
#include <cstdio>
#include <map>
#include <new>
#include <set>
#include <unordered_map>

#include "backend/device.h"
#include "core/log.h"
#include "pipeline/model_cache.h"
#include "workflow/executor.h"
#include "workflow/node.h"
#include "workflow/prompt_inputs.h"

namespace darkroom::workflow {
namespace {

// Two 64-bit FNV-1a hashes with different offsets: a 128-bit key.
std::string hash_key(const std::string& s) {
  uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
  for (unsigned char c : s) {
    a = (a ^ c) * 0x100000001b3ull;
    b = (b ^ c) * 0x100000001b3ull;
    b ^= b >> 29;
  }
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return buf;
}

struct CacheEntry {
  std::vector<Value> outputs;
  json ui = nullptr;
};

struct CycleError : std::runtime_error {
  explicit CycleError(std::string node)
      : std::runtime_error("Dependency cycle detected"), node_id(std::move(node)) {}
  std::string node_id;
};

const NodeDecl& decl_of(const json& prompt, const std::string& id) {
  const json& node = prompt.at(id);
  const NodeDecl* d = nullptr;
  if (node.is_object() && node.contains("class_type") && node["class_type"].is_string())
    d = NodeRegistry::instance().find(node["class_type"].get<std::string>());
  DR_CHECK(d != nullptr, "workflow", "node ", id, " has an unknown class_type");
  return *d;
}

std::string class_of(const json& prompt, const std::string& id) {
  const json& node = prompt.contains(id) ? prompt[id] : json();
  return node.is_object() && node.contains("class_type") && node["class_type"].is_string()
             ? node["class_type"].get<std::string>()
             : std::string();
}

// The literal (non-link) inputs of a node after ComfyUI's conversion; unknown names
// are passed on unchanged.
NodeInputs literal_inputs(const NodeDecl& decl, const json& inputs) {
  NodeInputs in;
  for (auto it = inputs.begin(); it != inputs.end(); ++it) {
    if (is_link(it.value())) continue;
    const InputSpec* spec = decl.find_input(it.key());
    if (spec == nullptr) continue;
    const Coerced c = coerce_literal(*spec, it.value());
    DR_CHECK(!c.error, "workflow", "input '", it.key(), "': ", *c.error);
    in.set(it.key(), Value::literal(spec->type, c.value));
  }
  return in;
}

// Keys of every node, computed without recursion; a cycle throws CycleError.
std::map<std::string, std::string> compute_keys(const json& prompt, const FolderPaths& paths) {
  std::map<std::string, std::string> keys;
  std::set<std::string> on_stack;
  for (auto it = prompt.begin(); it != prompt.end(); ++it) {
    if (keys.contains(it.key())) continue;
    std::vector<std::pair<std::string, bool>> stack = {{it.key(), false}};
    while (!stack.empty()) {
      auto [id, expanded] = stack.back();
      stack.pop_back();
      if (keys.contains(id)) continue;
      const json& inputs = node_inputs_json(prompt[id]);
      if (!expanded) {
        if (on_stack.contains(id)) throw CycleError(id);
        on_stack.insert(id);
        stack.push_back({id, true});
        for (auto in = inputs.begin(); in != inputs.end(); ++in) {
          if (!is_link(in.value())) continue;
          const auto src = link_node_id(in.value());
          DR_CHECK(src && prompt.contains(*src), "workflow", "node ", id, " input '", in.key(),
                   "' links to a node that is not in the prompt");
          if (keys.contains(*src)) continue;
          if (on_stack.contains(*src)) throw CycleError(*src);
          stack.push_back({*src, false});
        }
        continue;
      }
      const NodeDecl& decl = decl_of(prompt, id);
      json sig = json::array({decl.class_name});
      if (decl.is_changed) {
        try {
          sig.push_back(decl.is_changed(literal_inputs(decl, inputs), paths));
        } catch (const std::exception&) {
          // ComfyUI re-runs a node whose IS_CHANGED fails: make the key unique.
          static uint64_t counter = 0;
          sig.push_back("is_changed failed " + std::to_string(++counter));
        }
      }
      json in_sig = json::object();
      for (auto in = inputs.begin(); in != inputs.end(); ++in) {
        if (is_link(in.value())) {
          in_sig[in.key()] = json::array({"link", keys.at(*link_node_id(in.value())),
                                          in.value().size() > 1 ? in.value()[1] : json()});
        } else if (const InputSpec* spec = decl.find_input(in.key())) {
          const Coerced c = coerce_literal(*spec, in.value());
          in_sig[in.key()] = c.error ? in.value() : c.value;
        } else {
          in_sig[in.key()] = in.value();
        }
      }
      sig.push_back(std::move(in_sig));
      keys[id] = hash_key(sig.dump());
      on_stack.erase(id);
    }
  }
  return keys;
}

json format_inputs(const NodeInputs& in) {
  json out = json::object();
  for (const auto& [name, v] : in.values())
    out[name] = json::array({v.is_literal() ? v.literal() : json(v.type())});
  return out;
}

std::string exception_type_of(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e)) return "torch.OutOfMemoryError";
  if (dynamic_cast<const Error*>(&e)) return "RuntimeError";
  return "Exception";
}

}  // namespace

// LATENT and IMAGE inputs within the server's pixel cap, before the node uses them.
static void check_value_sizes(const NodeInputs& in, const ResourceLimits& limits) {
  if (limits.max_pixels == 0) return;
  for (const auto& [name, v] : in.values()) {
    std::string over;
    if (v.type() == "LATENT")
      over = over_pixel_limit(in.latent(name).samples, true, limits);
    else if (v.type() == "IMAGE")
      over = over_pixel_limit(in.image(name), false, limits);
    DR_CHECK(over.empty(), "workflow", "input '", name, "': ", over);
  }
}

struct Executor::State {
  FolderPaths paths;
  DeviceId device;
  pipeline::ModelCache models;
  PreviewOptions preview;
  ResourceLimits limits;
  std::unordered_map<std::string, CacheEntry> cache;  // node key → outputs
};

Executor::Executor(FolderPaths paths, int cuda_device, uint64_t model_memory_budget,
                   PreviewOptions preview, ResourceLimits limits)
    : state_(std::make_unique<State>(
          State{std::move(paths),
                cuda_device < 0 ? kCpu : DeviceId{DeviceType::Cuda, cuda_device},
                pipeline::ModelCache(model_memory_budget),
                std::move(preview),
                limits,
                {}})) {}

Executor::~Executor() = default;

void Executor::free_memory(bool unload_models, bool free_cached_outputs) {
  if (unload_models) state_->models.clear();
  if (free_cached_outputs) state_->cache.clear();
}

ExecutionResult Executor::execute(const std::string& prompt_id, const json& prompt,
                                  const json& extra_data, const std::vector<std::string>& outputs,
                                  const ExecutionEvents& events,
                                  const std::atomic<bool>& interrupt) {
  ExecutionResult result;
  State& st = *state_;
  std::set<std::string> executed;
  auto finish_error = [&](const std::string& node_id, json extra) {
    result.status = ExecutionResult::Status::Error;
    result.error =
        json{{"node_id", node_id},
             {"node_type", class_of(prompt, node_id)},
             {"executed", json(std::vector<std::string>(executed.begin(), executed.end()))}};
    result.error.update(extra);
    result.executed.assign(executed.begin(), executed.end());
    return result;
  };

  std::map<std::string, std::string> keys;
  try {
    DR_CHECK(prompt.is_object(), "workflow", "the prompt is not a JSON object");
    keys = compute_keys(prompt, st.paths);
  } catch (const CycleError& e) {
    return finish_error(e.node_id, json{{"exception_message", "Dependency cycle detected"},
                                        {"exception_type", "graph.DependencyCycleError"},
                                        {"traceback", json::array()},
                                        {"current_inputs", json::array()},
                                        {"current_outputs", json::array()}});
  } catch (const std::exception& e) {
    const std::string first = prompt.is_object() && !prompt.empty() ? prompt.begin().key() : "";
    return finish_error(first, json{{"exception_message", e.what()},
                                    {"exception_type", exception_type_of(e)},
                                    {"traceback", json::array()},
                                    {"current_inputs", json::object()},
                                    {"current_outputs", json::array()}});
  }

  // Drop what this prompt does not use; report what it finds.
  std::set<std::string> used_keys;
  for (const auto& [id, key] : keys) used_keys.insert(key);
  std::erase_if(st.cache, [&](const auto& kv) { return !used_keys.contains(kv.first); });
  std::vector<std::string> cached_nodes;
  for (auto it = prompt.begin(); it != prompt.end(); ++it)
    if (st.cache.contains(keys.at(it.key()))) cached_nodes.push_back(it.key());
  if (events.cached) events.cached(cached_nodes);
  const json current_outputs = cached_nodes;

  // Pending nodes: the outputs (always, a cached one just reports its UI) and every
  // uncached ancestor, in ComfyUI's add_node order.
  std::vector<std::string> pending;
  std::set<std::string> pending_set;
  std::map<std::string, std::set<std::string>> blockers;  // node → pending inputs
  std::map<std::string, std::set<std::string>> blocking;  // node → pending consumers
  for (const std::string& out : outputs) {
    if (!prompt.contains(out)) continue;
    std::vector<std::string> stack = {out};
    while (!stack.empty()) {
      const std::string id = stack.back();
      stack.pop_back();
      if (pending_set.contains(id)) continue;
      pending_set.insert(id);
      pending.push_back(id);
      blockers[id];
      blocking[id];
      const json& inputs = node_inputs_json(prompt[id]);
      for (auto in = inputs.begin(); in != inputs.end(); ++in) {
        if (!is_link(in.value())) continue;
        const std::string src = *link_node_id(in.value());
        if (st.cache.contains(keys.at(src)) && !pending_set.contains(src)) continue;
        if (!pending_set.contains(src)) stack.push_back(src);
      }
    }
  }
  for (const std::string& id : pending) {
    const json& inputs = node_inputs_json(prompt[id]);
    for (auto in = inputs.begin(); in != inputs.end(); ++in) {
      if (!is_link(in.value())) continue;
      const std::string src = *link_node_id(in.value());
      if (!pending_set.contains(src)) continue;
      blockers[id].insert(src);
      blocking[src].insert(id);
    }
  }

  auto is_output = [&](const std::string& id) { return decl_of(prompt, id).output_node; };
  const json extra_pnginfo = extra_data.is_object() && extra_data.contains("extra_pnginfo")
                                 ? extra_data["extra_pnginfo"]
                                 : json(nullptr);

  while (!pending.empty()) {
    std::vector<std::string> ready;
    for (const std::string& id : pending)
      if (blockers[id].empty()) ready.push_back(id);
    if (ready.empty())  // cannot happen after compute_keys, kept as ComfyUI's guard
      return finish_error(pending.front(), json{{"exception_message", "Dependency cycle detected"},
                                                {"exception_type", "graph.DependencyCycleError"},
                                                {"traceback", json::array()},
                                                {"current_inputs", json::array()},
                                                {"current_outputs", current_outputs}});
    std::string pick;
    for (const std::string& id : ready)
      if (is_output(id)) {
        pick = id;
        break;
      }
    if (pick.empty())
      for (const std::string& id : ready)
        for (const std::string& b : blocking[id])
          if (pick.empty() && is_output(b)) pick = id;
    if (pick.empty())
      for (const std::string& id : ready)
        for (const std::string& b : blocking[id])
          for (const std::string& b2 : blocking[b])
            if (pick.empty() && is_output(b2)) pick = id;
    if (pick.empty()) pick = ready.front();

    const std::string id = pick;
    const NodeDecl& decl = decl_of(prompt, id);
    const std::string& key = keys.at(id);
    NodeInputs in;
    try {
      if (auto hit = st.cache.find(key); hit != st.cache.end()) {
        // A cached output node: its UI again, without running.
        if (!hit->second.ui.is_null()) {
          result.outputs[id] = hit->second.ui;
          if (events.executed) events.executed(id, hit->second.ui);
        }
      } else {
        // As ComfyUI: "executing" goes out, then the interrupt check at the node's start.
        if (events.executing) events.executing(id);
        if (interrupt.load()) throw InterruptedError();
        const json& inputs = node_inputs_json(prompt[id]);
        in = literal_inputs(decl, inputs);
        for (auto it = inputs.begin(); it != inputs.end(); ++it) {
          if (!is_link(it.value())) continue;
          if (decl.find_input(it.key()) == nullptr) continue;
          const std::string src = *link_node_id(it.value());
          const CacheEntry& from = st.cache.at(keys.at(src));
          const json& slot = it.value()[1];
          const int64_t s = slot.is_number_unsigned() ? static_cast<int64_t>(slot.get<uint64_t>())
                                                      : slot.get<int64_t>();
          DR_CHECK(s >= 0 && s < static_cast<int64_t>(from.outputs.size()), "workflow", "input '",
                   it.key(), "' asks for output ", s, " of node ", src);
          in.set(it.key(), from.outputs[static_cast<size_t>(s)]);
        }
        for (const InputSpec& spec : decl.required)
          DR_CHECK(in.has(spec.name), "workflow", "required input '", spec.name, "' is missing");
        check_value_sizes(in, st.limits);

        NodeContext ctx{st.paths, st.device,     st.models, id,
                        prompt,   extra_pnginfo, prompt_id, st.preview};
        ctx.on_progress = [&](int value, int max) {
          if (events.progress) events.progress(value, max, id);
        };
        if (events.preview)
          ctx.on_preview = [&](const EncodedPreview& p) { events.preview(p.format, p.bytes); };
        ctx.interrupt = &interrupt;
        NodeResult r = decl.run(in, ctx);
        DR_CHECK(r.outputs.size() == decl.outputs.size(), "workflow", decl.class_name, " returned ",
                 r.outputs.size(), " outputs, it declares ", decl.outputs.size());
        if (!r.ui.is_null() && !(r.ui.is_object() && r.ui.empty())) {
          result.outputs[id] = r.ui;
          if (events.executed) events.executed(id, r.ui);
        } else {
          r.ui = nullptr;
        }
        st.cache[key] = CacheEntry{std::move(r.outputs), std::move(r.ui)};
      }
    } catch (const InterruptedError&) {
      result.status = ExecutionResult::Status::Interrupted;
      result.error =
          json{{"node_id", id},
               {"node_type", decl.class_name},
               {"executed", json(std::vector<std::string>(executed.begin(), executed.end()))}};
      result.executed.assign(executed.begin(), executed.end());
      return result;
    } catch (const std::exception& e) {
      DR_LOG(Error) << "workflow: node " << id << " (" << decl.class_name
                    << ") failed: " << e.what();
      return finish_error(id, json{{"exception_message", e.what()},
                                   {"exception_type", exception_type_of(e)},
                                   {"traceback", json::array()},
                                   {"current_inputs", format_inputs(in)},
                                   {"current_outputs", current_outputs}});
    }
    executed.insert(id);
    pending.erase(std::find(pending.begin(), pending.end(), id));
    pending_set.erase(id);
    for (const std::string& b : blocking[id]) blockers[b].erase(id);
    blocking.erase(id);
    blockers.erase(id);
  }
  result.executed.assign(executed.begin(), executed.end());
  return result;
}

}  // namespace darkroom::workflow
