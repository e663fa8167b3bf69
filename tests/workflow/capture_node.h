// A test-only output node, "DarkroomTestCapture", that hands its IMAGE / LATENT inputs to
// the test, as a client would read a saved image. It goes through the real executor like
// any node; registered once (capture_node.cpp) for every workflow test.
#pragma once

#include <map>
#include <string>

#include "workflow/node.h"

namespace darkroom::workflow::test {

// What capture nodes received, keyed "<node id>.image" / "<node id>.latent".
std::map<std::string, Value>& captured();

}  // namespace darkroom::workflow::test
