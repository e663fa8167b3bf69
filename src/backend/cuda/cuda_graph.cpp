// CUDA graphs (backend/device_graph.h): stream capture on the device's stream, with a
// check that the captured work frees every allocation it makes, and the memory
// figures of the stream-ordered pool and of the graphs' own pool.
//
// Tensors allocated while capturing come from cudaMallocAsync on the capturing stream,
// which CUDA records as graph allocation nodes: their virtual addresses are fixed for
// the life of the graph, so cuBLASLt / cuDNN workspaces and every activation land at
// the same place on each replay. An allocation still alive when the capture ends
// would belong to the graph and block its relaunch; one made before the capture and
// released inside it cannot be freed by a graph at all. Both show up as unequal
// counts of allocation and free nodes, and the capture is refused.
#include <cuda_runtime.h>

#include <cstdint>
#include <exception>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/device_graph.h"

namespace darkroom {
namespace {

class CudaGraph final : public DeviceGraph {
 public:
  CudaGraph(int device, cudaGraph_t graph, cudaGraphExec_t exec)
      : device_(device), graph_(graph), exec_(exec) {}
  ~CudaGraph() override {
    // No throwing from a destructor; failures here mean the process is going down.
    if (cudaSetDevice(device_) != cudaSuccess) return;
    cudaGraphExecDestroy(exec_);
    cudaGraphDestroy(graph_);
  }
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  void replay() override {
    cudaStream_t stream = cuda::stream_for(device_);
    CUDA_CHECK(cudaGraphLaunch(exec_, stream));
  }

 private:
  int device_;
  cudaGraph_t graph_;
  cudaGraphExec_t exec_;
};

// "" when the graph's allocation and free nodes pair up, else the reason.
std::string check_memory_nodes(cudaGraph_t graph) {
  size_t n = 0;
  CUDA_CHECK(cudaGraphGetNodes(graph, nullptr, &n));
  std::vector<cudaGraphNode_t> nodes(n);
  if (n > 0) CUDA_CHECK(cudaGraphGetNodes(graph, nodes.data(), &n));
  size_t allocs = 0, frees = 0;
  for (size_t i = 0; i < n; ++i) {
    cudaGraphNodeType type{};
    CUDA_CHECK(cudaGraphNodeGetType(nodes[i], &type));
    if (type == cudaGraphNodeTypeMemAlloc) ++allocs;
    if (type == cudaGraphNodeTypeMemFree) ++frees;
  }
  if (allocs == frees) return "";
  return "the captured work allocates " + std::to_string(allocs) + " blocks and frees " +
         std::to_string(frees) + " (a tensor outlived the capture, or one made before it was " +
         "released inside it)";
}

cudaMemPool_t default_pool(int device) {
  cudaMemPool_t pool = nullptr;
  CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
  return pool;
}

}  // namespace

GraphCapture capture_graph(DeviceId device, const std::function<void()>& body) {
  GraphCapture result;
  if (device.type != DeviceType::Cuda) {
    result.error = "graph capture needs a CUDA device, got " + device.str();
    return result;
  }
  cudaStream_t stream = cuda::stream_for(device.index);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
  if (status != cudaStreamCaptureStatusNone) {
    result.error = "the stream of " + device.str() + " is already being captured";
    return result;
  }
  // Errors of earlier work surface here, not as a failed capture.
  CUDA_CHECK(cudaStreamSynchronize(stream));
  // Thread-local mode: a forbidden call on this thread (a synchronisation, a plain
  // cudaMalloc) fails and invalidates the capture instead of silently running.
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  std::string body_error;
  try {
    body();
  } catch (const std::exception& e) {
    body_error = e.what();
  } catch (...) {
    body_error = "unknown exception";
  }
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(stream, &graph);
  if (!body_error.empty() || end != cudaSuccess || graph == nullptr) {
    if (graph != nullptr) cudaGraphDestroy(graph);
    cudaGetLastError();  // clear the (non-sticky) capture error
    result.error = !body_error.empty()
                       ? body_error
                       : std::string("cudaStreamEndCapture failed: ") + cudaGetErrorString(end);
    return result;
  }
  std::string why = check_memory_nodes(graph);
  if (!why.empty()) {
    cudaGraphDestroy(graph);
    result.error = why;
    return result;
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t inst = cudaGraphInstantiateWithFlags(&exec, graph, 0);
  if (inst != cudaSuccess) {
    cudaGraphDestroy(graph);
    cudaGetLastError();
    result.error = std::string("cudaGraphInstantiateWithFlags failed: ") + cudaGetErrorString(inst);
    return result;
  }
  result.graph = std::make_unique<CudaGraph>(device.index, graph, exec);
  return result;
}

DeviceMemoryStats device_memory_stats(DeviceId device) {
  DeviceMemoryStats s;
  if (device.type != DeviceType::Cuda) return s;
  cuda::stream_for(device.index);  // checks the index, makes the device current
  uint64_t v = 0;
  CUDA_CHECK(cudaMemPoolGetAttribute(default_pool(device.index), cudaMemPoolAttrUsedMemHigh, &v));
  s.tensors_peak = v;
  v = 0;
  CUDA_CHECK(cudaDeviceGetGraphMemAttribute(device.index, cudaGraphMemAttrUsedMemHigh, &v));
  s.graphs_peak = v;
  size_t free_bytes = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  s.device_used = total - free_bytes;
  s.device_total = total;
  return s;
}

void reset_device_memory_peaks(DeviceId device) {
  if (device.type != DeviceType::Cuda) return;
  cuda::stream_for(device.index);
  uint64_t zero = 0;  // the only value allowed: restart from the current usage
  CUDA_CHECK(
      cudaMemPoolSetAttribute(default_pool(device.index), cudaMemPoolAttrUsedMemHigh, &zero));
  zero = 0;
  CUDA_CHECK(cudaDeviceSetGraphMemAttribute(device.index, cudaGraphMemAttrUsedMemHigh, &zero));
}

}  // namespace darkroom
