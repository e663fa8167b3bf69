// Which device a tensor's memory lives on.
#pragma once

#include <ostream>
#include <string>

namespace darkroom {

enum class DeviceType { Cpu, Cuda };

struct DeviceId {
  DeviceType type = DeviceType::Cpu;
  int index = 0;
  bool operator==(const DeviceId&) const = default;
  std::string str() const {
    return type == DeviceType::Cpu ? std::string("cpu") : "cuda:" + std::to_string(index);
  }
};

inline constexpr DeviceId kCpu{DeviceType::Cpu, 0};

inline std::ostream& operator<<(std::ostream& os, const DeviceId& d) {
  return os << d.str();
}

}  // namespace darkroom
