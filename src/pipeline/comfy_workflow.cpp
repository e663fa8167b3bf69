#include "pipeline/comfy_workflow.h"

#include <nlohmann/json.hpp>
#include <vector>

namespace darkroom::pipeline {
namespace {

using nlohmann::json;

json link(const char* node, int slot) {
  return json::array({node, slot});
}

json node(const char* class_type, const char* title, json inputs) {
  return {{"inputs", std::move(inputs)}, {"class_type", class_type}, {"_meta", {{"title", title}}}};
}

// Where CLIP comes from: the checkpoint, or CLIPSetLastLayer (node 10) when clip_skip > 1.
json clip_source(const GenerateParams& p) {
  return p.clip_skip > 1 ? link("10", 0) : link("4", 1);
}

}  // namespace

std::string comfy_api_prompt(const GenerateParams& p, const WorkflowInfo& info) {
  json g = json::object();
  g["3"] = node("KSampler", "KSampler",
                {{"seed", p.seed},
                 {"steps", p.steps},
                 {"cfg", p.cfg},
                 {"sampler_name", p.sampler},
                 {"scheduler", p.scheduler},
                 {"denoise", p.denoise},
                 {"model", link("4", 0)},
                 {"positive", link("6", 0)},
                 {"negative", link("7", 0)},
                 {"latent_image", link("5", 0)}});
  g["4"] = node("CheckpointLoaderSimple", "Load Checkpoint", {{"ckpt_name", info.ckpt_name}});
  g["5"] = node("EmptyLatentImage", "Empty Latent Image",
                {{"width", p.width}, {"height", p.height}, {"batch_size", p.batch}});
  g["6"] = node("CLIPTextEncode", "CLIP Text Encode (Prompt)",
                {{"text", p.prompt}, {"clip", clip_source(p)}});
  g["7"] = node("CLIPTextEncode", "CLIP Text Encode (Prompt)",
                {{"text", p.negative}, {"clip", clip_source(p)}});
  g["8"] = node("VAEDecode", "VAE Decode", {{"samples", link("3", 0)}, {"vae", link("4", 2)}});
  g["9"] = node("SaveImage", "Save Image",
                {{"filename_prefix", info.filename_prefix}, {"images", link("8", 0)}});
  if (p.clip_skip > 1)
    g["10"] = node("CLIPSetLastLayer", "CLIP Set Last Layer",
                   {{"stop_at_clip_layer", -p.clip_skip}, {"clip", link("4", 1)}});
  return g.dump();
}

std::string comfy_ui_workflow(const GenerateParams& p, const WorkflowInfo& info) {
  // Links: [id, from node, from slot, to node, to slot, type].
  const int clip_from = p.clip_skip > 1 ? 10 : 4, clip_slot = p.clip_skip > 1 ? 0 : 1;
  std::vector<json> links = {{1, 4, 0, 3, 0, "MODEL"},
                             {2, clip_from, clip_slot, 6, 0, "CLIP"},
                             {3, clip_from, clip_slot, 7, 0, "CLIP"},
                             {4, 6, 0, 3, 1, "CONDITIONING"},
                             {5, 7, 0, 3, 2, "CONDITIONING"},
                             {6, 5, 0, 3, 3, "LATENT"},
                             {7, 3, 0, 8, 0, "LATENT"},
                             {8, 4, 2, 8, 1, "VAE"},
                             {9, 8, 0, 9, 0, "IMAGE"}};
  if (p.clip_skip > 1) links.push_back({10, 4, 1, 10, 0, "CLIP"});

  auto in = [](const char* name, const char* type, int link_id) {
    return json{{"name", name}, {"type", type}, {"link", link_id}};
  };
  auto out = [](const char* name, const char* type, std::vector<int> link_ids, int slot) {
    return json{{"name", name}, {"type", type}, {"links", link_ids}, {"slot_index", slot}};
  };
  auto ui_node = [](int id, const char* type, int order, double x, double y, json inputs,
                    json outputs, json widgets) {
    return json{{"id", id},
                {"type", type},
                {"pos", {x, y}},
                {"size", {315, 100}},
                {"flags", json::object()},
                {"order", order},
                {"mode", 0},
                {"inputs", std::move(inputs)},
                {"outputs", std::move(outputs)},
                {"properties", json::object()},
                {"widgets_values", std::move(widgets)}};
  };
  std::vector<int> clip_links = {2, 3};
  if (p.clip_skip > 1) clip_links = {10};
  json nodes = json::array();
  nodes.push_back(ui_node(4, "CheckpointLoaderSimple", 0, 26, 474, json::array(),
                          {out("MODEL", "MODEL", {1}, 0), out("CLIP", "CLIP", clip_links, 1),
                           out("VAE", "VAE", {8}, 2)},
                          {info.ckpt_name}));
  nodes.push_back(ui_node(5, "EmptyLatentImage", 1, 473, 609, json::array(),
                          {out("LATENT", "LATENT", {6}, 0)}, {p.width, p.height, p.batch}));
  nodes.push_back(ui_node(6, "CLIPTextEncode", 2, 415, 186, {in("clip", "CLIP", 2)},
                          {out("CONDITIONING", "CONDITIONING", {4}, 0)}, {p.prompt}));
  nodes.push_back(ui_node(7, "CLIPTextEncode", 3, 413, 389, {in("clip", "CLIP", 3)},
                          {out("CONDITIONING", "CONDITIONING", {5}, 0)}, {p.negative}));
  nodes.push_back(ui_node(3, "KSampler", 4, 863, 186,
                          {in("model", "MODEL", 1), in("positive", "CONDITIONING", 4),
                           in("negative", "CONDITIONING", 5), in("latent_image", "LATENT", 6)},
                          {out("LATENT", "LATENT", {7}, 0)},
                          {p.seed, "fixed", p.steps, p.cfg, p.sampler, p.scheduler, p.denoise}));
  nodes.push_back(ui_node(8, "VAEDecode", 5, 1209, 188,
                          {in("samples", "LATENT", 7), in("vae", "VAE", 8)},
                          {out("IMAGE", "IMAGE", {9}, 0)}, json::array()));
  nodes.push_back(ui_node(9, "SaveImage", 6, 1451, 189, {in("images", "IMAGE", 9)}, json::array(),
                          {info.filename_prefix}));
  if (p.clip_skip > 1)
    nodes.push_back(ui_node(10, "CLIPSetLastLayer", 1, 26, 300, {in("clip", "CLIP", 10)},
                            {out("CLIP", "CLIP", {2, 3}, 0)}, {-p.clip_skip}));
  const int last = p.clip_skip > 1 ? 10 : 9;
  json w = {{"last_node_id", last},    {"last_link_id", last},    {"nodes", nodes},
            {"links", links},          {"groups", json::array()}, {"config", json::object()},
            {"extra", json::object()}, {"version", 0.4}};
  return w.dump();
}

}  // namespace darkroom::pipeline
