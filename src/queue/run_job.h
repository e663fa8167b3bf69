// One claimed prompt through a worker's Executor: its ExecutionEvents become ComfyUI's
// websocket messages (in main.py / execution.py's order and with their recipients), and
// the run becomes the history result {"outputs", "status", "meta"}.
//
// Recipients follow ComfyUI: execution_start / _cached / _success / _error and executing
// / executed go to the prompt's client only (nowhere when it has none); progress and
// previews go to its client, or to everyone when it has none; execution_interrupted
// goes to its client, or to everyone.
#pragma once

#include <atomic>
#include <nlohmann/json.hpp>

#include "queue/job_queue.h"
#include "queue/job_store.h"
#include "workflow/executor.h"

namespace darkroom::queue {

struct RunOutcome {
  workflow::ExecutionResult::Status status = workflow::ExecutionResult::Status::Success;
  json result;  // {"outputs", "status", "meta"} for JobStore::finish
};

RunOutcome run_job(workflow::Executor& executor, const QueuedJob& job, const MessageSinks& sinks,
                   const std::atomic<bool>& interrupt);

}  // namespace darkroom::queue
