// The bad-input matrix: every exported entry point of libeplb.so, called with each bad input that
// applies to it (NULL handles and pointers, zero and inconsistent sizes, sizes whose products
// overflow size_t, negative / NaN / infinite loads, ids out of range, statistics that do not
// match the placement, a wrong options struct_size), must return the documented status with a
// message that names the problem, leave its outputs untouched, and leave the handles it was given
// usable (checked after the whole matrix ran: "use after a failed call").
//
// The matrix is one table, matrix() below, of one row per entry point; the rows are written in
// bad_input_rows_*.cpp by part of the API (the World and the helpers: bad_input_world.hpp).
// EveryExportedSymbolHasARow reads the dynamic symbol table of the libeplb.so this test is linked
// with (ELF parsing, no external tool) and fails, naming them, for exported symbols without a row.
// Adding an entry point therefore means adding a row: its bad inputs, or, for a total function
// (one without a failing input, such as eplb_version_number), a `total` check of what it does on
// odd input.
#include <elf.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "bad_input_world.hpp"
#include "eplb/eplb.h"

namespace {

using namespace bad_input;

// Every row, part after part.
const std::vector<Row>& matrix() {
  static const std::vector<Row> rows = [] {
    std::vector<Row> all = placement_and_snapshot_rows();
    for (auto part : {statistics_and_migration_rows(), device_rows()}) {
      all.insert(all.end(), std::make_move_iterator(part.begin()),
                 std::make_move_iterator(part.end()));
    }
    return all;
  }();
  return rows;
}

// --- exported symbols of libeplb.so, from its ELF dynamic symbol table ------------------------

std::set<std::string> exported_eplb_symbols(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  const std::vector<char> file((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
  const auto at = [&](size_t offset, size_t size) {
    if (offset > file.size() || size > file.size() - offset) {
      throw std::runtime_error(path + ": ELF offset out of range");
    }
    return file.data() + offset;
  };
  Elf64_Ehdr header;
  std::memcpy(&header, at(0, sizeof header), sizeof header);
  if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64) {
    throw std::runtime_error(path + " is not a 64-bit ELF file");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < header.e_shnum; ++i) {
    Elf64_Shdr section;
    std::memcpy(&section, at(header.e_shoff + i * sizeof section, sizeof section), sizeof section);
    if (section.sh_type != SHT_DYNSYM) continue;
    Elf64_Shdr strings;
    std::memcpy(&strings, at(header.e_shoff + section.sh_link * sizeof strings, sizeof strings),
                sizeof strings);
    for (size_t s = 0; s < section.sh_size / sizeof(Elf64_Sym); ++s) {
      Elf64_Sym symbol;
      std::memcpy(&symbol, at(section.sh_offset + s * sizeof symbol, sizeof symbol), sizeof symbol);
      if (symbol.st_shndx == SHN_UNDEF) continue;
      if (ELF64_ST_BIND(symbol.st_info) == STB_LOCAL) continue;
      const char* name = at(strings.sh_offset + symbol.st_name, 1);
      if (std::strncmp(name, "eplb_", 5) == 0) names.insert(name);
    }
  }
  return names;
}

// --- the tests ----------------------------------------------------------------------------------

TEST(Matrix, EveryExportedSymbolHasARow) {
  const std::set<std::string> exported = exported_eplb_symbols(EPLB_LIBRARY_PATH);
  ASSERT_FALSE(exported.empty()) << "no eplb_* symbols found in " << EPLB_LIBRARY_PATH;
  std::set<std::string> in_table;
  for (const Row& row : matrix()) {
    EXPECT_TRUE(in_table.insert(row.entry_point).second) << "two rows for " << row.entry_point;
  }
  std::string missing;
  for (const std::string& name : exported) {
    if (in_table.count(name) == 0) missing += "\n  " + name;
  }
  std::string stale;
  for (const std::string& name : in_table) {
    if (exported.count(name) == 0) stale += "\n  " + name;
  }
  EXPECT_TRUE(missing.empty()) << "libeplb.so exports entry points without a row in the bad-input "
                                  "matrix (tests/reliability/bad_input_rows_*.cpp):"
                               << missing;
  EXPECT_TRUE(stale.empty()) << "rows of the bad-input matrix name symbols libeplb.so does not "
                                "export:"
                             << stale;
}

TEST(Matrix, EveryBadInputFailsWithItsStatusAndANamingMessage) {
  World world;
  size_t bad_inputs = 0;
  size_t totals = 0;
  for (const Row& row : matrix()) {
    if (row.bad_inputs.empty()) {
      SCOPED_TRACE(row.entry_point);
      ASSERT_TRUE(row.check) << row.entry_point << " has neither bad inputs nor a total check";
      EXPECT_TRUE(row.check(world)) << row.entry_point << ": " << row.total;
      ++totals;
      continue;
    }
    EXPECT_TRUE(row.total.empty()) << row.entry_point << " has bad inputs and a total note";
    for (const BadInput& bad : row.bad_inputs) {
      SCOPED_TRACE(row.entry_point + " with " + bad.input);
      ++bad_inputs;
      const eplb_status status = bad.call(world);
      const std::string message = eplb_last_error_message();
      EXPECT_EQ(status, bad.expected)
          << "got " << eplb_status_string(status) << ", expected "
          << eplb_status_string(bad.expected) << "; message: " << message;
      EXPECT_FALSE(message.empty()) << "empty error message";
      for (const std::string& fragment : bad.fragments) {
        EXPECT_NE(message.find(fragment), std::string::npos)
            << "message \"" << message << "\" does not name \"" << fragment << "\"";
      }
    }
  }
  // Use after failed calls: every handle the bad calls were given still holds what it held.
  std::vector<double> tracked(kMatrixLen);
  ASSERT_EQ(eplb_tracker_get_loads(world.tracker, tracked.data(), tracked.size()), EPLB_OK);
  EXPECT_EQ(tracked, (std::vector<double>{1, 2, 1, 1, 0, 0, 0, 0}));
  std::vector<int32_t> map(kMapLen);
  ASSERT_EQ(eplb_placement_get_phy2log(world.placement, map.data(), map.size()), EPLB_OK);
  EXPECT_EQ(map, world.phy2log);
  std::vector<double> stored(kMatrixLen);
  ASSERT_EQ(eplb_snapshot_get_loads(world.snapshot, stored.data(), stored.size()), EPLB_OK);
  EXPECT_EQ(stored, world.loads);
  eplb_placement* planned = nullptr;
  ASSERT_EQ(eplb_planner_plan(world.planner, world.loads.data(), world.loads.size(), &planned),
            EPLB_OK)
      << eplb_last_error_message();
  EXPECT_STREQ(eplb_last_error_message(), "");
  eplb_placement_destroy(planned);
  eplb_snapshot* reloaded = nullptr;
  ASSERT_EQ(eplb_snapshot_load(world.snapshot_path.c_str(), &reloaded), EPLB_OK);
  eplb_snapshot_destroy(reloaded);
  ASSERT_EQ(eplb_planner_plan_tracked(world.affinity_planner, nullptr, 0, world.tracker, &planned),
            EPLB_OK)
      << eplb_last_error_message();
  eplb_placement_destroy(planned);
  eplb_tracker* restored = nullptr;
  ASSERT_EQ(eplb_snapshot_get_tracker(world.stats_snapshot, &restored), EPLB_OK);
  ASSERT_EQ(eplb_tracker_get_loads(restored, tracked.data(), tracked.size()), EPLB_OK);
  EXPECT_EQ(tracked, (std::vector<double>{1, 2, 1, 1, 0, 0, 0, 0}));
  eplb_tracker_destroy(restored);
  uint64_t batches = 0;
  ASSERT_EQ(eplb_tracker_get_layer_counts(world.bare_tracker, 1, &batches, nullptr), EPLB_OK);
  EXPECT_EQ(batches, 0U);
  std::vector<int32_t> batch(static_cast<size_t>(World::kLayers) * 3 * World::kTopK, -1);
  ASSERT_EQ(eplb_workload_next_batch(world.workload, 3, batch.data(), batch.size()), EPLB_OK);
  for (const int32_t id : batch) EXPECT_TRUE(id >= 0 && id < static_cast<int32_t>(World::kExperts));
  eplb_migration_summary summary{};
  summary.struct_size = sizeof(summary);
  ASSERT_EQ(eplb_migration_get_summary(world.migration, &summary), EPLB_OK);
  EXPECT_EQ(summary.num_steps, world.migration_steps);
  eplb_placement* target = nullptr;
  ASSERT_EQ(eplb_migration_get_target(world.migration, &target), EPLB_OK);
  eplb_placement_destroy(target);
  ASSERT_EQ(eplb_migration_get_step_placement(world.migration, world.migration_steps - 1, &target),
            EPLB_OK);
  eplb_placement_destroy(target);
  EXPECT_STREQ(eplb_last_error_message(), "");

  std::printf("bad-input matrix: %zu entry points, %zu bad inputs, %zu total functions checked\n",
              matrix().size(), bad_inputs, totals);
}

}  // namespace
