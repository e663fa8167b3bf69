// GET /object_info, generated from the node declarations in the shape of ComfyUI's
// server.py node_info(): input (required / optional / hidden), input_order, output,
// output_is_list, output_name, name, display_name, description, python_module,
// category, output_node and output_tooltips.
#include "workflow/executor.h"
#include "workflow/node.h"
#include "workflow/prompt_inputs.h"

namespace darkroom::workflow {
namespace {

json node_info(const NodeDecl& d, const FolderPaths& paths) {
  json input = json::object();
  json order = json::object();
  const std::pair<const char*, const std::vector<InputSpec>*> groups[] = {
      {"required", &d.required}, {"optional", &d.optional}, {"hidden", &d.hidden}};
  for (const auto& [group, specs] : groups) {
    // ComfyUI lists "required" always (INPUT_TYPES returns it) and the others when the
    // node declares them.
    if (specs->empty() && std::string(group) != "required") continue;
    json g = json::object();
    json names = json::array();
    for (const InputSpec& s : *specs) {
      g[s.name] = input_config(s, paths, std::string(group) == "hidden");
      names.push_back(s.name);
    }
    input[group] = std::move(g);
    order[group] = std::move(names);
  }
  json out = json::object();
  out["input"] = std::move(input);
  out["input_order"] = std::move(order);
  json types = json::array(), is_list = json::array(), names = json::array();
  json tooltips = json::array();
  bool any_tooltip = false;
  for (const OutputSpec& o : d.outputs) {
    types.push_back(o.type);
    is_list.push_back(o.is_list);
    names.push_back(o.name.empty() ? o.type : o.name);
    tooltips.push_back(o.tooltip);
    any_tooltip |= !o.tooltip.empty();
  }
  out["output"] = std::move(types);
  out["output_is_list"] = std::move(is_list);
  out["output_name"] = std::move(names);
  out["name"] = d.class_name;
  out["display_name"] = d.display_name.empty() ? d.class_name : d.display_name;
  out["description"] = d.description;
  out["python_module"] = d.python_module;
  out["category"] = d.category.empty() ? "sd" : d.category;
  out["output_node"] = d.output_node;
  if (any_tooltip) out["output_tooltips"] = std::move(tooltips);
  if (d.deprecated) out["deprecated"] = true;  // server.py: only when set
  if (d.experimental) out["experimental"] = true;
  return out;
}

}  // namespace

json object_info(const FolderPaths& paths) {
  json out = json::object();
  for (const NodeDecl* d : NodeRegistry::instance().all())
    out[d->class_name] = node_info(*d, paths);
  return out;
}

json object_info(const std::string& class_type, const FolderPaths& paths) {
  json out = json::object();
  if (const NodeDecl* d = NodeRegistry::instance().find(class_type))
    out[class_type] = node_info(*d, paths);
  return out;
}

}  // namespace darkroom::workflow
