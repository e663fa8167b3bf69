// validate_prompt (suite WorkflowValidate) against ComfyUI's execution.py: every error
// type it reports, with the message, details and node_errors shape ComfyUI builds (the
// expected strings are transcribed from its f-strings and Python's own exception
// messages), dependency cycles, and a chain too deep for a recursive validator.
#include <gtest/gtest.h>

#include "workflow/executor.h"
#include "workflow/workflow_env.h"

namespace darkroom::workflow {
namespace {

using test::default_prompt;
using test::link;
namespace fs = std::filesystem;

class WorkflowValidate : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(env_.checkpoints() / "tiny.safetensors") << "not read by validation";
  }
  Validation validate(const json& prompt) { return validate_prompt(prompt, env_.paths()); }
  // The single error of node `id`.
  static json only_error(const Validation& v, const std::string& id) {
    EXPECT_TRUE(v.node_errors.contains(id)) << v.node_errors.dump(1);
    if (!v.node_errors.contains(id)) return json::object();
    const json& errors = v.node_errors[id]["errors"];
    EXPECT_EQ(errors.size(), 1u) << errors.dump(1);
    return errors.empty() ? json::object() : errors[0];
  }

  test::TempBase env_;
};

TEST_F(WorkflowValidate, AcceptsTheDefaultWorkflow) {
  const Validation v = validate(default_prompt());
  EXPECT_TRUE(v.ok) << v.error.dump(1) << v.node_errors.dump(1);
  EXPECT_EQ(v.outputs, std::vector<std::string>{"9"});
  EXPECT_TRUE(v.node_errors.empty());
}

TEST_F(WorkflowValidate, InvalidPrompt) {
  Validation v = validate(json::array({1, 2}));
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.error["type"], "invalid_prompt");

  json p = default_prompt();
  p["5"].erase("class_type");
  v = validate(p);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.error["type"], "invalid_prompt");
  EXPECT_EQ(v.error["message"],
            "Cannot execute because a node is missing the class_type property.");
  EXPECT_EQ(v.error["details"], "Node ID '#5'");

  p = default_prompt();
  p["5"]["class_type"] = "NoSuchNode";
  v = validate(p);
  EXPECT_EQ(v.error["type"], "invalid_prompt");
  EXPECT_EQ(v.error["message"], "Cannot execute because node NoSuchNode does not exist.");
  EXPECT_EQ(v.error["details"], "Node ID '#5'");
  EXPECT_EQ(v.error["extra_info"], json::object());
}

TEST_F(WorkflowValidate, NoOutputs) {
  json p = default_prompt();
  p.erase("9");
  const Validation v = validate(p);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.error, (json{{"type", "prompt_no_outputs"},
                           {"message", "Prompt has no outputs"},
                           {"details", ""},
                           {"extra_info", json::object()}}));
}

TEST_F(WorkflowValidate, RequiredInputMissing) {
  json p = default_prompt();
  p["6"]["inputs"].erase("text");
  const Validation v = validate(p);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.error["type"], "prompt_outputs_failed_validation");
  EXPECT_EQ(v.error["message"], "Prompt outputs failed validation");
  const json e = only_error(v, "6");
  EXPECT_EQ(e, (json{{"type", "required_input_missing"},
                     {"message", "Required input is missing"},
                     {"details", "text"},
                     {"extra_info", {{"input_name", "text"}}}}));
  EXPECT_EQ(v.node_errors["6"]["dependent_outputs"], json::array({"9"}));
  EXPECT_EQ(v.node_errors["6"]["class_type"], "CLIPTextEncode");
  // Nodes that are invalid only through an input are not listed.
  EXPECT_FALSE(v.node_errors.contains("3"));
  EXPECT_FALSE(v.node_errors.contains("9"));
}

TEST_F(WorkflowValidate, BadLinkedInputAndReturnTypeMismatch) {
  json p = default_prompt();
  p["3"]["inputs"]["model"] = json::array({"4"});
  p["3"]["inputs"]["positive"] = link("4", 1);  // CLIP into CONDITIONING
  const Validation v = validate(p);
  EXPECT_FALSE(v.ok);
  const json& errors = v.node_errors["3"]["errors"];
  ASSERT_EQ(errors.size(), 2u) << errors.dump(1);
  EXPECT_EQ(errors[0]["type"], "bad_linked_input");
  EXPECT_EQ(errors[0]["message"],
            "Bad linked input, must be a length-2 list of [node_id, slot_index]");
  EXPECT_EQ(errors[0]["details"], "model");
  EXPECT_EQ(errors[0]["extra_info"]["received_value"], json::array({"4"}));
  EXPECT_EQ(errors[1]["type"], "return_type_mismatch");
  EXPECT_EQ(errors[1]["message"], "Return type mismatch between linked nodes");
  EXPECT_EQ(errors[1]["details"],
            "positive, received_type(CLIP) mismatch input_type(CONDITIONING)");
  EXPECT_EQ(errors[1]["extra_info"]["received_type"], "CLIP");
  EXPECT_EQ(errors[1]["extra_info"]["linked_node"], link("4", 1));
  EXPECT_EQ(
      errors[1]["extra_info"]["input_config"],
      json::array(
          {"CONDITIONING",
           {{"tooltip",
             "The conditioning describing the attributes you want to include in the image."}}}));
}

TEST_F(WorkflowValidate, InvalidInputType) {
  json p = default_prompt();
  p["3"]["inputs"]["steps"] = "abc";
  p["3"]["inputs"]["cfg"] = "x7";
  const Validation v = validate(p);
  const json& errors = v.node_errors["3"]["errors"];
  ASSERT_EQ(errors.size(), 2u) << errors.dump(1);
  EXPECT_EQ(errors[0]["type"], "invalid_input_type");
  EXPECT_EQ(errors[0]["message"], "Failed to convert an input value to a INT value");
  EXPECT_EQ(errors[0]["details"], "steps, abc, invalid literal for int() with base 10: 'abc'");
  EXPECT_EQ(errors[0]["extra_info"]["exception_message"],
            "invalid literal for int() with base 10: 'abc'");
  EXPECT_EQ(errors[1]["message"], "Failed to convert an input value to a FLOAT value");
  EXPECT_EQ(errors[1]["details"], "cfg, x7, could not convert string to float: 'x7'");
}

TEST_F(WorkflowValidate, PythonConversionsAreAccepted) {
  // int("20"), float("7.5"), int(3.9) == 3 and the full 64-bit seed range pass.
  json p = default_prompt();
  p["3"]["inputs"]["steps"] = " 20 ";
  p["3"]["inputs"]["cfg"] = "7.5";
  p["5"]["inputs"]["batch_size"] = 3.9;
  p["3"]["inputs"]["seed"] = 18446744073709551615ull;
  const Validation v = validate(p);
  EXPECT_TRUE(v.ok) << v.node_errors.dump(1);
}

TEST_F(WorkflowValidate, ValueOutOfRange) {
  json p = default_prompt();
  p["3"]["inputs"]["steps"] = 0;
  p["3"]["inputs"]["cfg"] = 101;
  p["5"]["inputs"]["width"] = 20000;
  Validation v = validate(p);
  const json& errors = v.node_errors["3"]["errors"];
  ASSERT_EQ(errors.size(), 2u) << errors.dump(1);
  EXPECT_EQ(errors[0]["type"], "value_smaller_than_min");
  EXPECT_EQ(errors[0]["message"], "Value 0 smaller than min of 1");
  EXPECT_EQ(errors[0]["details"], "steps");
  EXPECT_EQ(errors[0]["extra_info"]["received_value"], 0);
  EXPECT_EQ(errors[1]["type"], "value_bigger_than_max");
  // float(101) prints as 101.0, like the min/max of FLOAT inputs.
  EXPECT_EQ(errors[1]["message"], "Value 101.0 bigger than max of 100.0");
  const json e = only_error(v, "5");
  EXPECT_EQ(e["message"], "Value 20000 bigger than max of 16384");

  p = default_prompt();
  p["3"]["inputs"]["seed"] = "18446744073709551616";  // 2^64
  v = validate(p);
  EXPECT_EQ(only_error(v, "3")["type"], "value_bigger_than_max");
}

// The server's caps (resource_limits.h), applied after the declared ranges.
TEST_F(WorkflowValidate, ServerLimitsRefuseHugeImagesAndStepCounts) {
  const ResourceLimits limits{1024 * 1024 * 4, 100};  // 4 Mpx, 100 steps
  json p = default_prompt();
  p["5"]["inputs"]["width"] = 1024;
  p["5"]["inputs"]["height"] = 1024;
  p["5"]["inputs"]["batch_size"] = 4;  // exactly 4 Mpx: allowed
  p["3"]["inputs"]["steps"] = 100;
  Validation v = validate_prompt(p, env_.paths(), limits);
  EXPECT_TRUE(v.ok) << v.node_errors.dump(1);

  p["5"]["inputs"]["batch_size"] = 5;  // 5 Mpx
  p["3"]["inputs"]["steps"] = 101;
  v = validate_prompt(p, env_.paths(), limits);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.error["type"], "prompt_outputs_failed_validation");
  json e = only_error(v, "5");
  EXPECT_EQ(e["type"], "value_bigger_than_max");
  EXPECT_EQ(e["extra_info"]["input_name"], "batch_size");
  EXPECT_EQ(e["details"],
            "width × height × batch_size = 1024 × 1024 × 5 = 5242880 pixels, over this "
            "server's limit of 4194304 (serve --max-pixels)");
  e = only_error(v, "3");
  EXPECT_EQ(e["extra_info"]["input_name"], "steps");
  EXPECT_EQ(e["details"], "steps, 101 is over this server's limit of 100 (serve --max-steps)");

  // Without limits (ComfyUI's behaviour) the same prompt is valid.
  EXPECT_TRUE(validate(p).ok);
  // A string that converts to an INT is checked as its value ("5000" steps).
  p = default_prompt();
  p["3"]["inputs"]["steps"] = "5000";
  EXPECT_EQ(only_error(validate_prompt(p, env_.paths(), limits), "3")["extra_info"]["input_name"],
            "steps");
}

TEST_F(WorkflowValidate, ValueNotInList) {
  json p = default_prompt();
  p["4"]["inputs"]["ckpt_name"] = "missing.safetensors";
  p["3"]["inputs"]["sampler_name"] = "no_such_sampler";
  const Validation v = validate(p);
  const json e = only_error(v, "4");
  EXPECT_EQ(e["type"], "value_not_in_list");
  EXPECT_EQ(e["message"], "Value not in list");
  EXPECT_EQ(e["details"], "ckpt_name: 'missing.safetensors' not in ['tiny.safetensors']");
  EXPECT_EQ(e["extra_info"]["received_value"], "missing.safetensors");
  EXPECT_EQ(e["extra_info"]["input_config"][0], json::array({"tiny.safetensors"}));
  const json s = only_error(v, "3");
  EXPECT_EQ(s["type"], "value_not_in_list");
  EXPECT_TRUE(s["details"].get<std::string>().starts_with(
      "sampler_name: 'no_such_sampler' not in ['euler', 'euler_ancestral', "))
      << s["details"];
  // Both failures feed the one output, so both list it.
  EXPECT_EQ(v.node_errors["4"]["dependent_outputs"], json::array({"9"}));
  EXPECT_EQ(v.node_errors["3"]["dependent_outputs"], json::array({"9"}));
}

TEST_F(WorkflowValidate, LongListsAreNotEchoed) {
  // More than 20 values (scanned model files): ComfyUI names the length only and drops
  // input_config.
  for (int i = 0; i < 21; ++i)
    std::ofstream(env_.checkpoints() / ("m" + std::to_string(i) + ".safetensors")) << "x";
  json p = default_prompt();
  p["4"]["inputs"]["ckpt_name"] = "missing.safetensors";
  const json e = only_error(validate(p), "4");
  EXPECT_EQ(e["details"], "ckpt_name: 'missing.safetensors' not in (list of length 22)");
  EXPECT_TRUE(e["extra_info"]["input_config"].is_null());
}

TEST_F(WorkflowValidate, LinksToMissingNodesRaiseAsInComfyUI) {
  // An inner node whose input names a missing node: ComfyUI's KeyError is caught by the
  // node that links to it.
  json p = default_prompt();
  p["8"]["inputs"]["samples"] = link("99", 0);
  Validation v = validate(p);
  json e = only_error(v, "8");
  EXPECT_EQ(e["type"], "exception_during_inner_validation");
  EXPECT_EQ(e["message"], "Exception when validating inner node");
  EXPECT_EQ(e["details"], "'99'");
  EXPECT_EQ(e["extra_info"]["exception_type"], "KeyError");
  EXPECT_EQ(e["extra_info"]["input_name"], "images");

  // The output node itself: caught by validate_prompt.
  p = default_prompt();
  p["9"]["inputs"]["images"] = link("8", 3);
  v = validate(p);
  e = only_error(v, "9");
  EXPECT_EQ(e["type"], "exception_during_validation");
  EXPECT_EQ(e["message"], "Exception when validating node");
  EXPECT_EQ(e["details"], "tuple index out of range");
  EXPECT_EQ(v.error["details"], "Exception when validating node: tuple index out of range");
}

TEST_F(WorkflowValidate, DependencyCycleIsReported) {
  json p = default_prompt();
  p["10"] = p["3"];
  p["10"]["inputs"]["latent_image"] = link("3", 0);
  p["3"]["inputs"]["latent_image"] = link("10", 0);
  const Validation v = validate(p);
  EXPECT_FALSE(v.ok);
  for (const char* id : {"3", "10"}) {
    const json e = only_error(v, id);
    EXPECT_EQ(e["type"], "dependency_cycle");
    EXPECT_EQ(e["message"], "Dependency cycle detected");
    EXPECT_EQ(e["details"], "3 (KSampler) -> 10 (KSampler) -> 3 (KSampler)");
    EXPECT_EQ(e["extra_info"]["cycle_nodes"], json::array({"3", "10"}));
  }
  // A node linked to itself.
  p = default_prompt();
  p["3"]["inputs"]["latent_image"] = link("3", 0);
  EXPECT_EQ(only_error(validate(p), "3")["details"], "3 (KSampler) -> 3 (KSampler)");
}

TEST_F(WorkflowValidate, PartialSuccessKeepsTheGoodOutput) {
  json p = default_prompt();
  p["10"] = {{"class_type", "SaveImage"},
             {"inputs", {{"filename_prefix", "x"}, {"images", link("11", 0)}}}};
  p["11"] = {{"class_type", "VAEDecode"}, {"inputs", {{"vae", link("4", 2)}}}};
  const Validation v = validate(p);
  EXPECT_TRUE(v.ok);
  EXPECT_EQ(v.outputs, std::vector<std::string>{"9"});
  EXPECT_EQ(only_error(v, "11")["type"], "required_input_missing");
  EXPECT_EQ(v.node_errors["11"]["dependent_outputs"], json::array({"10"}));
}

TEST_F(WorkflowValidate, DeepChainNeedsNoDeepStack) {
  // 100 000 ConditioningCombine nodes in a row: a recursive validator would need that
  // many stack frames.
  json p = default_prompt();
  std::string prev = "6";
  for (int i = 0; i < 100000; ++i) {
    const std::string id = "c" + std::to_string(i);
    p[id] = {{"class_type", "ConditioningCombine"},
             {"inputs", {{"conditioning_1", link(prev, 0)}, {"conditioning_2", link("7", 0)}}}};
    prev = id;
  }
  p["3"]["inputs"]["positive"] = link(prev, 0);
  const Validation v = validate(p);
  EXPECT_TRUE(v.ok) << v.node_errors.dump(1).substr(0, 2000);
}

}  // namespace
}  // namespace darkroom::workflow
