// Python's float(str): the parse ComfyUI's prompt weighting applies to "(text:1.3)".
#pragma once

#include <optional>
#include <string_view>

namespace darkroom::text {

// What float(s) returns for the UTF-8 string `s`, or nullopt where it raises ValueError.
// As CPython 3.11 parses (_PyUnicode_TransformDecimalAndSpaceToASCII, then
// _Py_string_to_number_with_underscores, then PyOS_string_to_double):
//   - non-ASCII whitespace counts as a space and any Unicode decimal digit as its ASCII
//     digit ("１.５", "١.٥"); another non-ASCII character makes it invalid;
//   - surrounding ASCII whitespace (" \t\n\v\f\r") is ignored;
//   - single underscores between digits are allowed ("1_0");
//   - [sign] (digits [. [digits]] | . digits) [(e|E) [sign] digits], or [sign] inf,
//     infinity or nan in any case; out-of-range values become ±inf or ±0 as in Python.
std::optional<double> parse_python_float(std::string_view s);

}  // namespace darkroom::text
