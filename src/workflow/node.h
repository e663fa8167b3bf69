// How a built-in node is declared, once: its class name, inputs, outputs and run function.
// /object_info, prompt validation and execution are all generated from these
// declarations (STYLE.md principle 1). A node file registers its nodes with a static
// NodeRegistrar:
//
//   static const NodeRegistrar kEmptyLatent({
//       .class_name = "EmptyLatentImage",
//       .display_name = "Empty Latent Image",
//       .category = "latent",
//       .required = {int_input("width", {{"default", 512}, {"min", 16}, {"max", 16384},
//                                        {"step", 8}}), ...},
//       .outputs = {{"LATENT", "LATENT"}},
//       .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
//         ... return {{Value::of("LATENT", pipeline::Latent{...})}};
//       }});
//
// Input types are ComfyUI's: INT, FLOAT, STRING, BOOLEAN, COMBO (a list of strings) and
// link-only types (MODEL, CLIP, VAE, CONDITIONING, LATENT, IMAGE, MASK, ...). `options` is
// the dict ComfyUI puts next to the type in /object_info ("default", "min", "max",
// "step", "round", "multiline", "tooltip", "control_after_generate", ...); validation reads
// "min" and "max" from it.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "core/device_id.h"
#include "core/error.h"
#include "pipeline/conditioning.h"
#include "pipeline/image.h"
#include "pipeline/latent.h"
#include "pipeline/model_handles.h"
#include "workflow/executor.h"
#include "workflow/folder_paths.h"

namespace darkroom {
class ControlNet;
}
namespace darkroom::pipeline {
class ModelCache;
}

namespace darkroom::workflow {

// ---- declarations ---------------------------------------------------------------------

// A COMBO's values, computed when asked (folder listings change while the server runs).
using ComboFn = std::function<std::vector<std::string>(const FolderPaths&)>;

struct InputSpec {
  std::string name;
  // "INT" | "FLOAT" | "STRING" | "BOOLEAN" | "COMBO" | a link type ("MODEL", "LATENT", ...)
  // | a hidden type ("PROMPT", "EXTRA_PNGINFO", "UNIQUE_ID").
  std::string type;
  json options = json::object();
  ComboFn combo;  // COMBO only

  bool is_widget() const;  // INT, FLOAT, STRING, BOOLEAN or COMBO: may be a literal
};

InputSpec int_input(std::string name, json options = json::object());
InputSpec float_input(std::string name, json options = json::object());
InputSpec string_input(std::string name, json options = json::object());
InputSpec bool_input(std::string name, json options = json::object());
InputSpec combo_input(std::string name, std::vector<std::string> values,
                      json options = json::object());
InputSpec combo_input(std::string name, ComboFn values, json options = json::object());
// The files of a model folder (FolderPaths::list), e.g. combo of "checkpoints".
InputSpec folder_combo_input(std::string name, std::string folder, json options = json::object());
InputSpec link_input(std::string name, std::string type, json options = json::object());
// Hidden inputs: ("prompt", "PROMPT"), ("extra_pnginfo", "EXTRA_PNGINFO"),
// ("unique_id", "UNIQUE_ID"). Their values reach run() through NodeContext.
InputSpec hidden_input(std::string name, std::string type);

struct OutputSpec {
  std::string type;  // "LATENT", "IMAGE", ...
  std::string name;  // shown on the node; ComfyUI's RETURN_NAMES (defaults to the type)
  bool is_list = false;
  std::string tooltip;
};

class Value;
class NodeInputs;
struct NodeContext;

// What run() returns: one Value per declared output, and for output nodes the UI dict
// sent in the "executed" message and kept in /history (e.g. {"images": [...]}).
struct NodeResult {
  std::vector<Value> outputs;
  json ui = nullptr;
};

struct NodeDecl {
  std::string class_name;    // ComfyUI's NODE_CLASS_MAPPINGS key, e.g. "KSampler"
  std::string display_name;  // NODE_DISPLAY_NAME_MAPPINGS, e.g. "KSampler"
  std::string category;      // e.g. "sampling", "latent", "loaders", "image"
  std::string description;
  std::vector<InputSpec> required;
  std::vector<InputSpec> optional;
  std::vector<InputSpec> hidden;
  std::vector<OutputSpec> outputs;
  bool output_node = false;  // SaveImage, PreviewImage: run when the prompt asks for output
  // /object_info's python_module: "nodes" for nodes.py, "comfy_extras.nodes_..." else.
  std::string python_module = "nodes";
  // ComfyUI's DEPRECATED / EXPERIMENTAL class flags (the frontend hides or badges them).
  bool deprecated = false;
  bool experimental = false;

  std::function<NodeResult(const NodeInputs& in, NodeContext& ctx)> run;

  // Optional. ComfyUI's IS_CHANGED: a value computed from the literal inputs before a
  // run; when it differs from last time the node re-runs even with equal inputs (LoadImage
  // hashes its file). Linked inputs are absent from `in`.
  std::function<json(const NodeInputs& in, const FolderPaths& paths)> is_changed;
  // Optional. ComfyUI's VALIDATE_INPUTS: "" when fine, else the message of a
  // "custom_validation_failed" error. The inputs listed in `custom_validated` skip the
  // built-in type/range/list checks (LoadImage checks its "image" itself).
  std::function<std::string(const NodeInputs& in, const FolderPaths& paths)> validate_inputs;
  std::vector<std::string> custom_validated;

  // The input of this name in required/optional/hidden, or nullptr.
  const InputSpec* find_input(std::string_view name) const;
};

// ---- registry -------------------------------------------------------------------------

class NodeRegistry {
 public:
  static NodeRegistry& instance();
  void add(NodeDecl decl);  // a class name may be registered once
  const NodeDecl* find(std::string_view class_name) const;
  // Every node, sorted by class name.
  std::vector<const NodeDecl*> all() const;

 private:
  std::map<std::string, std::unique_ptr<NodeDecl>, std::less<>> nodes_;
};

struct NodeRegistrar {
  explicit NodeRegistrar(NodeDecl decl) { NodeRegistry::instance().add(std::move(decl)); }
};

// ---- values ---------------------------------------------------------------------------

// One output of a node (one input of another): a ComfyUI type name plus either a JSON
// literal (INT, FLOAT, STRING, BOOLEAN, COMBO) or a shared immutable object (LATENT →
// pipeline::Latent, IMAGE → pipeline::Image, MODEL → pipeline::ModelHandle, ...). Copies
// share the object.
class Value {
 public:
  Value() = default;
  static Value literal(std::string type, json v);
  template <class T>
  static Value of(std::string type, T object) {
    Value v;
    v.type_ = std::move(type);
    v.object_ = std::make_shared<const T>(std::move(object));
    v.cpp_type_ = &typeid(T);
    return v;
  }

  const std::string& type() const { return type_; }
  bool is_literal() const { return object_ == nullptr; }
  const json& literal() const { return literal_; }
  // The object; darkroom::Error if this value holds something else.
  template <class T>
  const T& as() const {
    DR_CHECK(object_ && cpp_type_ && *cpp_type_ == typeid(T), "workflow", "a ", type_,
             " value was used as another type");
    return *static_cast<const T*>(object_.get());
  }

 private:
  std::string type_;
  json literal_;
  std::shared_ptr<const void> object_;
  const std::type_info* cpp_type_ = nullptr;
};

// A node's inputs by name, with typed getters that say what was wrong in their errors.
class NodeInputs {
 public:
  void set(std::string name, Value v) { values_[std::move(name)] = std::move(v); }
  bool has(std::string_view name) const { return values_.find(name) != values_.end(); }
  const Value& get(std::string_view name) const;

  int64_t get_int(std::string_view name) const;
  uint64_t get_uint(std::string_view name) const;  // seeds (up to 2^64 - 1)
  double get_float(std::string_view name) const;
  const std::string& get_string(std::string_view name) const;  // STRING and COMBO
  bool get_bool(std::string_view name) const;

  // MODEL / CLIP ready to run: LoRAs that a LoraLoader deferred are merged here, on first
  // use (pipeline::resolved).
  pipeline::ModelHandle model(std::string_view name) const;
  pipeline::ClipHandle clip(std::string_view name) const;
  // The handle as the node upstream gave it, LoRAs perhaps not merged yet: for nodes that
  // only change its settings (ModelSamplingDiscrete, CLIPSetLastLayer) or stack more
  // LoRAs, so that a chain merges only the stack that is finally used.
  const pipeline::ModelHandle& unresolved_model(std::string_view name) const;
  const pipeline::ClipHandle& unresolved_clip(std::string_view name) const;
  const pipeline::VaeHandle& vae(std::string_view name) const;
  const pipeline::Conditioning& conditioning(std::string_view name) const;
  const pipeline::Latent& latent(std::string_view name) const;
  const pipeline::Image& image(std::string_view name) const;
  const pipeline::Mask& mask(std::string_view name) const;
  // CONTROL_NET (ControlNetLoader): Value::of("CONTROL_NET", shared_ptr<const ControlNet>).
  const std::shared_ptr<const ControlNet>& control_net(std::string_view name) const {
    return get(name).as<std::shared_ptr<const ControlNet>>();
  }

  const std::map<std::string, Value, std::less<>>& values() const { return values_; }

 private:
  std::map<std::string, Value, std::less<>> values_;
};

// ---- run context ----------------------------------------------------------------------

// Thrown by NodeContext::check_interrupt(); the executor turns it into
// ExecutionResult::Status::Interrupted.
struct InterruptedError : std::exception {
  const char* what() const noexcept override { return "interrupted"; }
};

// An encoded preview image for the binary websocket frame.
struct EncodedPreview {
  std::string format;  // "JPEG" | "PNG"
  std::vector<uint8_t> bytes;
};

// How a sampler's current x0 estimate becomes a preview (latent_preview.cpp registers
// one; without it no latent previews are sent). `x0` is the model-space latent
// (z·latent_scale) [N, h, w, C] CPU f32; `latent_format` is ModelHandle::latent_format.
using LatentPreviewer = std::function<std::optional<EncodedPreview>(
    const Tensor& x0, const std::string& latent_format, const PreviewOptions& options)>;
void set_latent_previewer(LatentPreviewer previewer);
const LatentPreviewer& latent_previewer();

// Everything a node's run() may use besides its inputs. Made by the executor per node.
struct NodeContext {
  const FolderPaths& paths;
  DeviceId device = kCpu;
  pipeline::ModelCache& models;  // loaded checkpoints shared across prompts
  // Hidden inputs: UNIQUE_ID, PROMPT (the whole API prompt), EXTRA_PNGINFO
  // (extra_data["extra_pnginfo"], null when absent).
  std::string node_id;
  const json& prompt;
  const json& extra_pnginfo;
  std::string prompt_id;
  PreviewOptions preview_options;

  // Hooks set by the executor (any may be empty).
  std::function<void(int value, int max)> on_progress;
  std::function<void(const EncodedPreview&)> on_preview;
  const std::atomic<bool>* interrupt = nullptr;

  // "progress" message for this node.
  void progress(int value, int max) const;
  // A binary preview frame.
  void preview(const EncodedPreview& image) const;
  // Runs the registered latent previewer (if any, and previews are on) and sends its image.
  void preview_latent(const Tensor& x0, const std::string& latent_format) const;
  bool interrupted() const { return interrupt && interrupt->load(std::memory_order_relaxed); }
  // Throws InterruptedError when the interrupt flag is set.
  void check_interrupt() const;
};

}  // namespace darkroom::workflow
