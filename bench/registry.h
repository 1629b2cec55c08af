#pragma once

// Benchmark groups register themselves here at static-initialisation time; main() calls them
// after parsing the gmembench options, since the options decide sizes and vCPU counts.
//
//   const Registration kRegistration("populate", RegisterPopulate);

#include <string>
#include <utility>
#include <vector>

namespace gmembench {

struct Registration {
  Registration(const char* group, void (*fn)()) { All().push_back({group, fn}); }
  static std::vector<std::pair<std::string, void (*)()>>& All() {
    static std::vector<std::pair<std::string, void (*)()>> all;
    return all;
  }
};

}  // namespace gmembench
