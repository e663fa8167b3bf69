// Where SaveImage and PreviewImage put their files: ComfyUI's
// folder_paths.get_save_image_path, restated.
//
//   filename_prefix "portraits/%year%-%month%/cat" with output_dir /srv/output →
//   folder /srv/output/portraits/2026-11, filename "cat", subfolder "portraits/2026-11",
//   counter = 1 + the largest N among files named "cat_<N>..." there (1 if none);
//   the nodes then write "cat_00001_.png", "cat_00002_.png", ...
//
// %width% %height% %year% %month% %day% %hour% %minute% %second% are replaced (local
// time, two digits but the year), only when the prefix contains '%'. A prefix whose folder
// lies outside output_dir ("../x", "/etc/x") is refused with ComfyUI's message.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

#include "nlohmann/json.hpp"

namespace darkroom::workflow {

struct SaveImagePath {
  std::string full_output_folder;  // created if missing
  std::string filename;            // the prefix's last component
  int64_t counter = 1;             // the first free number
  std::string subfolder;           // relative to output_dir ("" for none)
  std::string filename_prefix;     // after the %...% replacements
};

// `now` is the local time to use for the date fields (tests); nullptr: the clock.
SaveImagePath get_save_image_path(const std::string& filename_prefix, const std::string& output_dir,
                                  int64_t image_width = 0, int64_t image_height = 0,
                                  const std::tm* now = nullptr);

// ComfyUI's compute_vars: the %...% fields of a prefix.
std::string compute_save_vars(std::string prefix, int64_t image_width, int64_t image_height,
                              const std::tm& now);

// Python's json.dumps(value) with its default ", " and ": " separators and ensure_ascii
// (non-ASCII as \uXXXX), as SaveImage writes the "prompt" and "workflow" PNG chunks.
std::string python_json_dumps(const nlohmann::json& value);

}  // namespace darkroom::workflow
