#include "workflow/node.h"

#include <limits>

namespace darkroom::workflow {

// ---- declarations ---------------------------------------------------------------------

bool InputSpec::is_widget() const {
  return type == "INT" || type == "FLOAT" || type == "STRING" || type == "BOOLEAN" ||
         type == "COMBO";
}

namespace {
InputSpec make(std::string name, std::string type, json options) {
  InputSpec s;
  s.name = std::move(name);
  s.type = std::move(type);
  s.options = options.is_null() ? json::object() : std::move(options);
  return s;
}
}  // namespace

InputSpec int_input(std::string name, json options) {
  return make(std::move(name), "INT", std::move(options));
}
InputSpec float_input(std::string name, json options) {
  return make(std::move(name), "FLOAT", std::move(options));
}
InputSpec string_input(std::string name, json options) {
  return make(std::move(name), "STRING", std::move(options));
}
InputSpec bool_input(std::string name, json options) {
  return make(std::move(name), "BOOLEAN", std::move(options));
}
InputSpec combo_input(std::string name, std::vector<std::string> values, json options) {
  InputSpec s = make(std::move(name), "COMBO", std::move(options));
  s.combo = [values = std::move(values)](const FolderPaths&) { return values; };
  return s;
}
InputSpec combo_input(std::string name, ComboFn values, json options) {
  InputSpec s = make(std::move(name), "COMBO", std::move(options));
  s.combo = std::move(values);
  return s;
}
InputSpec folder_combo_input(std::string name, std::string folder, json options) {
  return combo_input(
      std::move(name),
      [folder = std::move(folder)](const FolderPaths& paths) { return paths.list(folder); },
      std::move(options));
}
InputSpec link_input(std::string name, std::string type, json options) {
  return make(std::move(name), std::move(type), std::move(options));
}
InputSpec hidden_input(std::string name, std::string type) {
  return make(std::move(name), std::move(type), json::object());
}

const InputSpec* NodeDecl::find_input(std::string_view name) const {
  for (const auto* list : {&required, &optional, &hidden})
    for (const InputSpec& s : *list)
      if (s.name == name) return &s;
  return nullptr;
}

// ---- registry -------------------------------------------------------------------------

NodeRegistry& NodeRegistry::instance() {
  static NodeRegistry registry;
  return registry;
}

void NodeRegistry::add(NodeDecl decl) {
  DR_ASSERT(!decl.class_name.empty() && decl.run, "node declared without a name or run()");
  DR_ASSERT(!nodes_.contains(decl.class_name), "node ", decl.class_name, " registered twice");
  std::string name = decl.class_name;
  nodes_.emplace(std::move(name), std::make_unique<NodeDecl>(std::move(decl)));
}

const NodeDecl* NodeRegistry::find(std::string_view class_name) const {
  auto it = nodes_.find(class_name);
  return it == nodes_.end() ? nullptr : it->second.get();
}

std::vector<const NodeDecl*> NodeRegistry::all() const {
  std::vector<const NodeDecl*> out;
  for (const auto& [name, decl] : nodes_) out.push_back(decl.get());
  return out;
}

// ---- values ---------------------------------------------------------------------------

Value Value::literal(std::string type, json v) {
  Value out;
  out.type_ = std::move(type);
  out.literal_ = std::move(v);
  return out;
}

const Value& NodeInputs::get(std::string_view name) const {
  auto it = values_.find(name);
  DR_CHECK(it != values_.end(), "workflow", "input '", name, "' is missing");
  return it->second;
}

namespace {
const json& literal_of(const NodeInputs& in, std::string_view name, const char* what) {
  const Value& v = in.get(name);
  DR_CHECK(v.is_literal(), "workflow", "input '", name, "' must be ", what, ", got a ", v.type());
  return v.literal();
}
}  // namespace

int64_t NodeInputs::get_int(std::string_view name) const {
  const json& j = literal_of(*this, name, "an integer");
  if (j.is_number_unsigned()) {
    const uint64_t u = j.get<uint64_t>();
    DR_CHECK(u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), "workflow", "input '",
             name, "' is too large: ", u);
    return static_cast<int64_t>(u);
  }
  DR_CHECK(j.is_number(), "workflow", "input '", name, "' must be an integer, got ", j.dump());
  return j.is_number_integer() ? j.get<int64_t>() : static_cast<int64_t>(j.get<double>());
}

uint64_t NodeInputs::get_uint(std::string_view name) const {
  const json& j = literal_of(*this, name, "an integer");
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  DR_CHECK(j.is_number(), "workflow", "input '", name, "' must be an integer, got ", j.dump());
  const int64_t v =
      j.is_number_integer() ? j.get<int64_t>() : static_cast<int64_t>(j.get<double>());
  DR_CHECK(v >= 0, "workflow", "input '", name, "' must not be negative, got ", v);
  return static_cast<uint64_t>(v);
}

double NodeInputs::get_float(std::string_view name) const {
  const json& j = literal_of(*this, name, "a number");
  DR_CHECK(j.is_number(), "workflow", "input '", name, "' must be a number, got ", j.dump());
  return j.get<double>();
}

const std::string& NodeInputs::get_string(std::string_view name) const {
  const json& j = literal_of(*this, name, "a string");
  DR_CHECK(j.is_string(), "workflow", "input '", name, "' must be a string, got ", j.dump());
  return j.get_ref<const std::string&>();
}

bool NodeInputs::get_bool(std::string_view name) const {
  const json& j = literal_of(*this, name, "a boolean");
  DR_CHECK(j.is_boolean(), "workflow", "input '", name, "' must be a boolean, got ", j.dump());
  return j.get<bool>();
}

pipeline::ModelHandle NodeInputs::model(std::string_view name) const {
  return pipeline::resolved(unresolved_model(name));
}
pipeline::ClipHandle NodeInputs::clip(std::string_view name) const {
  return pipeline::resolved(unresolved_clip(name));
}
const pipeline::ModelHandle& NodeInputs::unresolved_model(std::string_view name) const {
  return get(name).as<pipeline::ModelHandle>();
}
const pipeline::ClipHandle& NodeInputs::unresolved_clip(std::string_view name) const {
  return get(name).as<pipeline::ClipHandle>();
}
const pipeline::VaeHandle& NodeInputs::vae(std::string_view name) const {
  return get(name).as<pipeline::VaeHandle>();
}
const pipeline::Conditioning& NodeInputs::conditioning(std::string_view name) const {
  return get(name).as<pipeline::Conditioning>();
}
const pipeline::Latent& NodeInputs::latent(std::string_view name) const {
  return get(name).as<pipeline::Latent>();
}
const pipeline::Image& NodeInputs::image(std::string_view name) const {
  return get(name).as<pipeline::Image>();
}
const pipeline::Mask& NodeInputs::mask(std::string_view name) const {
  return get(name).as<pipeline::Mask>();
}

// ---- run context ----------------------------------------------------------------------

namespace {
LatentPreviewer& previewer_slot() {
  static LatentPreviewer slot;
  return slot;
}
}  // namespace

void set_latent_previewer(LatentPreviewer previewer) {
  previewer_slot() = std::move(previewer);
}

const LatentPreviewer& latent_previewer() {
  return previewer_slot();
}

void NodeContext::progress(int value, int max) const {
  if (on_progress) on_progress(value, max);
}

void NodeContext::preview(const EncodedPreview& image) const {
  if (on_preview) on_preview(image);
}

void NodeContext::preview_latent(const Tensor& x0, const std::string& latent_format) const {
  if (!on_preview || preview_options.method == "none") return;
  const LatentPreviewer& make = latent_previewer();
  if (!make) return;
  if (std::optional<EncodedPreview> p = make(x0, latent_format, preview_options)) preview(*p);
}

void NodeContext::check_interrupt() const {
  if (interrupted()) throw InterruptedError();
}

}  // namespace darkroom::workflow
