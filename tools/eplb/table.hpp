// A plain-text table with aligned columns: text columns left-aligned, numbers right-aligned.
#pragma once

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

}  // namespace eplb_cli
