// eplb plot: an SVG picture of how a placement spreads the load over the GPUs, next to the
// layout without balancing.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "eplb/atomic_file.hpp"
#include "eplb/commands.hpp"
#include "eplb/json_output.hpp"
#include "eplb/placement_io.hpp"
#include "eplb/svg_plot.hpp"
#include "eplb/table.hpp"

namespace eplb_cli {

namespace {

// "Before": no balancing at all, every expert once, in contiguous blocks of experts per GPU
// (expert e on GPU e * G / E), the layout of a deployment without EPLB.
std::vector<double> unbalanced_gpu_loads(const std::vector<double>& loads,
                                         const eplb_placement_info& info) {
  const std::size_t experts = info.num_logical_experts;
  const std::size_t gpus = info.num_gpus;
  std::vector<double> out(std::size_t{info.num_layers} * gpus, 0.0);
  for (std::size_t l = 0; l < info.num_layers; ++l) {
    for (std::size_t e = 0; e < experts; ++e) {
      out[l * gpus + e * gpus / experts] += loads[l * experts + e];
    }
  }
  return out;
}

// `text` cut in the middle to at most `longest` bytes, so that a line fits the picture. Cuts
// move off UTF-8 continuation bytes, so no character is split.
std::string clipped(const std::string& text, std::size_t longest) {
  if (text.size() <= longest) return text;
  const auto continuation = [&](std::size_t i) {
    return i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80;
  };
  std::size_t head = (longest - 3) / 2;
  std::size_t tail = text.size() - head;
  while (head > 0 && continuation(head)) --head;
  while (continuation(tail)) ++tail;
  return text.substr(0, head) + "..." + text.substr(tail);
}

// A file's name for the picture: no directories, long names cut in the middle.
std::string short_name(const std::string& path) {
  return clipped(std::filesystem::path(path).filename().string(), 48);
}

// Mean over the layers with load of mean / max GPU load (as eplb_metrics: an idle layer has
// nothing to balance; 1 when no layer has load).
double balancedness(const std::vector<double>& gpu_loads, std::size_t layers, std::size_t gpus) {
  double sum = 0;
  std::size_t loaded = 0;
  for (std::size_t l = 0; l < layers; ++l) {
    const auto begin = gpu_loads.begin() + static_cast<std::ptrdiff_t>(l * gpus);
    const double max = *std::max_element(begin, begin + static_cast<std::ptrdiff_t>(gpus));
    if (max <= 0) continue;
    double total = 0;
    for (auto it = begin; it != begin + static_cast<std::ptrdiff_t>(gpus); ++it) total += *it;
    sum += total / static_cast<double>(gpus) / max;
    ++loaded;
  }
  return loaded == 0 ? 1.0 : sum / static_cast<double>(loaded);
}

}  // namespace

void run_plot(const PlotArgs& args) {
  if (std::filesystem::path(args.out).extension() != ".svg") {
    throw InputError("--out " + args.out + ": plots are SVG files: name it .svg");
  }
  PlacementFile file = read_placement_file(args.file, args.topology);
  if (args.topology.dense_layers != 0 && file.format != PlacementFormat::sglang &&
      args.counts.empty()) {
    throw InputError(
        "--dense-layers applies to SGLang maps and to a --counts file with the dense layers' "
        "rows; nothing here uses it");
  }
  const eplb_placement* placement = file.placement.get();
  const auto info = info_of(placement);
  std::vector<double> loads = std::move(file.loads);
  std::string source = short_name(args.file);
  if (!args.counts.empty()) {
    // (--dense-layers also drops rows of an SGLang map, so it fixes the counts only without one.)
    loads = loads_for_placement(read_sglang_loads(args.counts), info, args.topology.dense_layers,
                                args.counts, args.file, file.format != PlacementFormat::sglang);
    source += " with loads from " + short_name(args.counts);
  }
  if (loads.empty()) {
    throw InputError(args.file +
                     " carries no load statistics to plot: pass --counts FILE "
                     "(SGLang's logical_count JSON), or plot a snapshot written with them");
  }
  if (args.layer >= 0 && static_cast<std::uint32_t>(args.layer) >= info.num_layers) {
    throw InputError("--layer " + std::to_string(args.layer) + " is out of range: " + args.file +
                     " has " + std::to_string(info.num_layers) + " layers (0.." +
                     std::to_string(info.num_layers - 1) + ")");
  }

  std::vector<double> after(std::size_t{info.num_layers} * info.num_gpus);
  check(eplb_metrics_gpu_loads(placement, loads.data(), loads.size(), after.data(), after.size()),
        args.file + ": ");
  const auto metrics = metrics_of(placement, loads);
  const std::string algorithm =
      info.algorithm == 0 ? "imported map" : algorithm_name(info.algorithm);

  PlotData data;
  data.title = info.algorithm == 0 ? "Expert placement: imported map"
                                   : "Expert placement: " + algorithm + " algorithm";
  // "plan.eplb "label" · 58 layers x 256 experts, 288 slots on 32 GPUs in 4 nodes"
  data.subtitle = source;
  if (!file.label.empty())
    data.subtitle += " \xe2\x80\x9c" + clipped(file.label, 60) + "\xe2\x80\x9d";
  data.subtitle += "  \xc2\xb7  " + shape_text(info);
  data.before_name = "before: no replication";
  data.after_name = "after: " + algorithm;
  data.num_layers = info.num_layers;
  data.num_gpus = info.num_gpus;
  data.num_nodes = info.num_nodes;
  data.before = unbalanced_gpu_loads(loads, info);
  data.after = std::move(after);
  data.balancedness_before = balancedness(data.before, info.num_layers, info.num_gpus);
  data.balancedness_after = metrics.balancedness;
  data.layer = args.layer;
  data.footer = {
      "Balancedness: mean / max GPU load, averaged over layers with load. A GPU's load: its "
      "experts' loads, each split evenly over the expert's replicas.",
      "Before: each expert once, experts in contiguous blocks per GPU (no balancing).  "
      "Drawn by eplb plot, libeplb " +
          std::string(eplb_version_string()) + "."};
  write_file_atomically(args.out, render_plot_svg(data));
  // With --layer, that layer's balancedness too (the totals stay the means over the layers).
  std::optional<double> layer_before, layer_after;
  if (args.layer >= 0) {
    const auto slice = [&](const std::vector<double>& loads_by_layer) {
      const auto begin = loads_by_layer.begin() + static_cast<std::ptrdiff_t>(args.layer) *
                                                      static_cast<std::ptrdiff_t>(info.num_gpus);
      return balancedness(std::vector<double>(begin, begin + info.num_gpus), 1, info.num_gpus);
    };
    layer_before = slice(data.before);
    layer_after = slice(data.after);
  }
  const auto or_null = [](std::optional<double> value) {
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
  };
  if (args.json) {
    const nlohmann::json document = {
        {"in", args.file},
        {"counts", args.counts.empty() ? nlohmann::json(nullptr) : nlohmann::json(args.counts)},
        {"out", args.out},
        {"num_layers", info.num_layers},
        {"num_gpus", info.num_gpus},
        {"layer", args.layer < 0 ? nlohmann::json(nullptr) : nlohmann::json(args.layer)},
        {"algorithm", info.algorithm == 0 ? "imported" : algorithm},
        {"balancedness_before", data.balancedness_before},
        {"balancedness_after", data.balancedness_after},
        {"layer_balancedness_before", or_null(layer_before)},
        {"layer_balancedness_after", or_null(layer_after)},
    };
    print_json(document);
    return;
  }
  std::cout << "Wrote " << args.out << ": " << counted(info.num_layers, "layer") << " x "
            << counted(info.num_gpus, "GPU") << ", balancedness "
            << fixed(data.balancedness_before, 4) << " before (no replication) -> "
            << fixed(data.balancedness_after, 4) << " after (" << algorithm << ")";
  if (layer_before && layer_after) {
    std::cout << "; layer " << args.layer << ": " << fixed(*layer_before, 4) << " -> "
              << fixed(*layer_after, 4);
  }
  std::cout << "\n";
}

}  // namespace eplb_cli
