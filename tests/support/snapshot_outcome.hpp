// Decoding damaged and forged snapshots in tests: what the reader answered (the snapshot, or the
// error code and message), checks of that answer, and the fixture of the tests that forge files.
#pragma once

#include <gtest/gtest.h>

#include <bit>
#include <cstddef>
#include <optional>
#include <span>
#include <string>

#include "error.hpp"
#include "snapshot.hpp"
#include "support/snapshot_files.hpp"

namespace eplb::test {

struct Outcome {
  std::optional<Errc> error;  // nullopt: loaded
  std::string message;
  std::optional<Snapshot> snapshot;
};

// Decodes `bytes` (named "forged" in messages); only eplb::Error may escape the reader, anything
// else fails the test.
inline Outcome decode(std::span<const std::byte> bytes) {
  Outcome outcome;
  try {
    outcome.snapshot = Snapshot::decode(bytes, "forged");
  } catch (const Error& error) {
    outcome.error = error.code();
    outcome.message = error.what();
  }
  return outcome;
}

inline std::string describe(const Outcome& o) {
  if (!o.error) return "loaded";
  return "error " + std::to_string(static_cast<int>(*o.error)) + ": " + o.message;
}

// Rejected as corrupt with a message that contains `fragment` and starts with the source's name.
inline void expect_corrupt(const Outcome& o, const std::string& fragment) {
  EXPECT_EQ(o.error, Errc::corrupt) << describe(o);
  EXPECT_NE(o.message.find(fragment), std::string::npos)
      << "'" << fragment << "' not in: " << o.message;
  EXPECT_EQ(o.message.rfind("forged: ", 0), 0U) << "the message names the source: " << o.message;
}

// Decodes `file` with the content of its `type` section replaced by `content` (a valid zstd frame,
// the section's flags kept, every checksum correct), so that the content checks are reached.
inline Outcome decode_with_content(std::span<const std::byte> file,
                                   snapshot_format::SectionType type,
                                   std::span<const std::byte> content) {
  RawFile raw = split(file);
  auto& section = raw.section(type);
  section = make_section(section.type, section.flags, content);
  return decode(join(raw));
}

// Tests that forge files: the helpers edit arrays in host order, so they skip on big-endian hosts.
class ForgingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::endian::native != std::endian::little) {
      GTEST_SKIP() << "the forging helpers edit arrays in host order";
    }
  }
};

}  // namespace eplb::test
