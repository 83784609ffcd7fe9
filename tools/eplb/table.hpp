// A plain-text table with aligned columns: text columns left-aligned, numbers right-aligned.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace eplb_cli {

class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  void add_row(std::vector<std::string> cells);
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// Fixed-point formatting: fixed(0.93456, 4) == "0.9346".
[[nodiscard]] std::string fixed(double value, int decimals);

// A count and its noun, plural unless the count is 1: counted(1, "node") == "1 node",
// counted(4, "node") == "4 nodes". Nouns with an irregular plural are not asked for.
[[nodiscard]] std::string counted(std::uint64_t count, const std::string& noun);

// A byte count in decimal units with three significant digits: "512 B", "44.0 MB", "735 GB".
[[nodiscard]] std::string byte_size_text(std::uint64_t bytes);

}  // namespace eplb_cli
