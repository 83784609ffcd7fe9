// The picture of `eplb plot`, as a self-contained SVG document (no library): two heat maps of
// per-GPU load relative to the layer mean, layers x GPUs, before and after balancing, on one
// diverging colour scale, and a bar chart of per-GPU load before and after, summed over layers
// or for one layer. Elements carry classes (hm-cell, bar-before, bar-after) and <title>
// tooltips, so that tests and browsers can read them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace eplb_cli {

struct PlotData {
  std::string title;     // first line, e.g. "Expert placement: balanced"
  std::string subtitle;  // second line: file, shape
  std::string before_name;
  std::string after_name;
  std::uint32_t num_layers = 0;
  std::uint32_t num_gpus = 0;
  std::uint32_t num_nodes = 1;
  std::vector<double> before;  // GPU loads [layers][gpus]
  std::vector<double> after;   // GPU loads [layers][gpus]
  double balancedness_before = 1.0;
  double balancedness_after = 1.0;
  int layer = -1;                   // the bar chart's layer; -1 = summed over layers
  std::vector<std::string> footer;  // small print, one line each
};

[[nodiscard]] std::string render_plot_svg(const PlotData& data);

}  // namespace eplb_cli
