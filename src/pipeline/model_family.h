// The model families darkroom loads, as detect_family (checkpoint.h) tells them apart and
// as the rest of the pipeline branches on them (text encoders, the UNet's vector input y,
// latent format, default image size):
//
//   family        text encoders (ComfyUI's layer choice)                 UNet y (adm)    latent
//   Sd15          CLIP-L, last layer + final norm                        none            0.18215
//   Sd2           OpenCLIP ViT-H, penultimate + final norm, pad 0        none            0.18215
//   Sdxl          CLIP-L ‖ OpenCLIP bigG on channels, penultimate, no    2816: pooled G  0.13025
//                 final norm; G pads with 0 and gives the pooled output  + 6 sizes
//   SdxlRefiner   OpenCLIP bigG alone (as in SDXL)                       2560: pooled G  0.13025
//                                                                        + 4 sizes + aesthetic
#pragma once

#include <string>

namespace darkroom::pipeline {

enum class ModelFamily { Sd15, Sd2, Sdxl, SdxlRefiner };

// "sd15", "sd2", "sdxl", "sdxl_refiner": the names of darkroom.family in tiny test files.
const char* family_key(ModelFamily f);
// "SD 1.x", "SD 2.x", "SDXL", "SDXL refiner": for messages.
const char* family_name(ModelFamily f);

}  // namespace darkroom::pipeline
