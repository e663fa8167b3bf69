// A CLIP handle's prompt → one conditioning entry, per family as ComfyUI encodes it
// (comfy/sd1_clip.py, sd2_clip.py, sdxl_clip.py; CLIPTextEncode, CLIPTextEncodeSDXL):
//
//   SD 1.x   CLIP-L (pad with the end token), layer clip_skip from the end, final norm;
//            no pooled output
//   SD 2.x   OpenCLIP ViT-H (pad 0), penultimate layer by default, final norm
//   SDXL     CLIP-L (pad end) and bigG (pad 0), each from its layer without the final
//            norm, weighted each on its own (prompt_encoder.h); the shorter one padded
//            with whole empty-prompt chunks to the other's length; context = [L ‖ G] on
//            the channels [1, 77k, 768 + 1280]; pooled = bigG's projected pooled output of
//            the first chunk
//   refiner  bigG alone: context [1, 77k, 1280] and its pooled output
//
// CLIPSetLastLayer's clip_skip applies to every encoder; one beyond an encoder's layer
// count means its last layer with the final norm (ComfyUI's "last").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "pipeline/conditioning.h"
#include "pipeline/model_handles.h"

namespace darkroom::pipeline {

// `clip` with ComfyUI's embeddings folders attached to each of its encoders (what
// CheckpointLoaderSimple's embedding_directory does in ComfyUI), so that
// "embedding:name" in a prompt takes the file's vectors.
ClipHandle with_embedding_folders(ClipHandle clip, const std::vector<std::string>& folders);

// CLIPTextEncode: the same text for every encoder.
CondEntry encode_text(const ClipHandle& clip, std::string_view text);
// CLIPTextEncodeSDXL: text_g for bigG, text_l for CLIP-L (SDXL base only).
CondEntry encode_text(const ClipHandle& clip, std::string_view text_g, std::string_view text_l);

}  // namespace darkroom::pipeline
