// The two snapshot versions the crash tests write and recognise: same shape, different placement,
// loads and label, large enough (a few hundred kilobytes) that a save takes a while to write.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eplb/eplb.h"

namespace eplb_crash {

struct Version {
  std::string label;
  std::vector<int32_t> phy2log;  // [layers][slots]
  std::vector<double> loads;     // [layers][experts]
};

inline constexpr uint32_t kLayers = 58;
inline constexpr uint32_t kExperts = 256;
inline constexpr uint32_t kSlots = 288;
inline constexpr uint32_t kNodes = 4;
inline constexpr uint32_t kGpus = 32;

// Version 0 or 1.
[[nodiscard]] Version make_version(int which);

// Saves `version` to `path` (compression level 1, so the file stays large); returns the status.
eplb_status save_version(const Version& version, const char* path);

// Which version the snapshot file at `path` holds: 0 or 1; -1 if it loads but matches neither;
// -2 if it does not load (the message is in eplb_last_error_message()).
[[nodiscard]] int identify(const char* path);

}  // namespace eplb_crash
