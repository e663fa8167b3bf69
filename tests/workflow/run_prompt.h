// Runs an API-format prompt through the real executor the way POST /prompt does: validated
// first (validate_prompt), then every output node it names executed, never interrupted.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include "workflow/executor.h"
#include "workflow/folder_paths.h"

namespace darkroom::workflow::test {

// A prompt that fails validation fails the test (its errors printed) and runs nothing: the
// result is then Status::Error with the validation error.
inline ExecutionResult run_prompt(Executor& executor, const FolderPaths& paths,
                                  const nlohmann::json& prompt,
                                  const ExecutionEvents& events = {}) {
  const Validation v = validate_prompt(prompt, paths);
  if (!v.ok) {
    ADD_FAILURE() << "invalid prompt: " << v.error.dump(1) << v.node_errors.dump(1);
    ExecutionResult invalid;
    invalid.status = ExecutionResult::Status::Error;
    invalid.error = v.error;
    return invalid;
  }
  static const std::atomic<bool> never{false};
  return executor.execute("prompt-1", prompt, nlohmann::json::object(), v.outputs, events, never);
}

// The same, expecting it to succeed (a failure prints the executor's error).
inline void run_prompt_ok(Executor& executor, const FolderPaths& paths,
                          const nlohmann::json& prompt, const ExecutionEvents& events = {}) {
  const ExecutionResult r = run_prompt(executor, paths, prompt, events);
  EXPECT_EQ(r.status, ExecutionResult::Status::Success) << r.error.dump(1);
}

}  // namespace darkroom::workflow::test
