#include "capture_node.h"

namespace darkroom::workflow::test {

std::map<std::string, Value>& captured() {
  static std::map<std::string, Value> values;
  return values;
}

namespace {

const NodeRegistrar kCapture({.class_name = "DarkroomTestCapture",
                              .display_name = "Test Capture",
                              .category = "testing",
                              .optional = {link_input("image", "IMAGE"),
                                           link_input("latent", "LATENT")},
                              .outputs = {},
                              .output_node = true,
                              .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
                                for (const char* name : {"image", "latent"})
                                  if (in.has(name))
                                    captured()[ctx.node_id + "." + name] = in.get(name);
                                return {};
                              }});

}  // namespace
}  // namespace darkroom::workflow::test
