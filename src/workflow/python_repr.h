// Python's str()/repr() of JSON values, for messages that must read as ComfyUI's do
// ("Value 0 smaller than min of 1", "ckpt_name: 'x' not in ['a', 'b']"): ComfyUI builds
// them with str.format / f-strings from the Python objects json.loads made.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace darkroom::workflow {

// repr(float): the shortest digits that round-trip, with ".0" for integral values and
// Python's exponent form (1e+16, 1e-05); "inf", "nan".
std::string python_float_repr(double v);
// str(x) of the Python value json.loads would make from `v` (strings unquoted).
std::string python_str(const nlohmann::json& v);
// repr(x): strings quoted as Python does ('a', "it's"), lists and dicts recursively.
std::string python_repr(const nlohmann::json& v);

}  // namespace darkroom::workflow
