#include "eplb/svg_plot.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string_view>

namespace eplb_cli {

namespace {

// Page layout, in SVG user units (pixels at 100 %).
constexpr double kWidth = 1200;
constexpr double kLeft = 76;  // layer labels and the axis title
constexpr double kRight = 24;
constexpr double kLegendWidth = 112;
constexpr double kPanelGap = 40;
constexpr double kHeatTop = 118;
constexpr double kHeatHeight = 380;  // at most; rows are 4..18 units tall
constexpr double kBarsHeight = 250;

constexpr std::string_view kFont = "DejaVu Sans, Helvetica, Arial, sans-serif";
constexpr std::string_view kTimes = "\xc3\x97";  // "×"
constexpr std::string_view kBeforeColour = "#b9b9b9";
constexpr std::string_view kAfterColour = "#2f6db0";

// ColorBrewer RdBu, reversed: blue below the layer mean, white at it, red above.
struct Rgb {
  double r, g, b;
};
constexpr std::array<Rgb, 11> kDiverging = {{{5, 48, 97},
                                             {33, 102, 172},
                                             {67, 147, 195},
                                             {146, 197, 222},
                                             {209, 229, 240},
                                             {247, 247, 247},
                                             {253, 219, 199},
                                             {244, 165, 130},
                                             {214, 96, 77},
                                             {178, 24, 43},
                                             {103, 0, 31}}};

// "12.5", "3": coordinates and sizes with at most `decimals` decimals, no trailing zeros.
std::string num(double value, int decimals = 1) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  std::string out = text;
  if (out.find('.') != std::string::npos) {
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
  }
  if (out == "-0") out = "0";
  return out;
}

std::string decimals_text(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

// 950, 12.5k, 3.2M: loads are token counts and get large.
std::string si(double value) {
  static constexpr std::array<const char*, 6> kSuffix = {"", "k", "M", "G", "T", "P"};
  std::size_t power = 0;
  while (std::fabs(value) >= 1000 && power + 1 < kSuffix.size()) {
    value /= 1000;
    ++power;
  }
  const double magnitude = std::fabs(value);
  const int decimals = magnitude >= 100 || magnitude == 0 ? 0 : magnitude >= 10 ? 1 : 2;
  return num(value, decimals) + kSuffix[power];
}

// Length of the valid UTF-8 sequence starting at text[i], or 0 if it is not one.
std::size_t utf8_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t length = 0;
  std::uint32_t code = 0;
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    code = lead & 0x1FU;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    code = lead & 0x0FU;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    code = lead & 0x07U;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3FU);
  }
  const bool overlong = (length == 3 && code < 0x800) || (length == 4 && code < 0x10000);
  const bool surrogate = code >= 0xD800 && code <= 0xDFFF;
  return overlong || surrogate || code > 0x10FFFF ? 0 : length;
}

// Text for XML: markup characters escaped, control characters dropped (XML 1.0 forbids them),
// bytes that are not UTF-8 (file names, labels) replaced by U+FFFD.
std::string escape(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      const std::size_t length = utf8_length(text, i);
      if (length == 0) {
        out += "\xef\xbf\xbd";
        ++i;
      } else {
        out.append(text.substr(i, length));
        i += length;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n') out += c;
    }
  }
  return out;
}

std::string colour_at(double t) {
  const double position = (std::clamp(t, -1.0, 1.0) + 1.0) / 2.0 * (kDiverging.size() - 1);
  const auto low = std::min(static_cast<std::size_t>(position), kDiverging.size() - 2);
  const double f = position - static_cast<double>(low);
  const Rgb& a = kDiverging[low];
  const Rgb& b = kDiverging[low + 1];
  char text[8];
  std::snprintf(text, sizeof(text), "#%02x%02x%02x",
                static_cast<int>(std::lround(a.r + f * (b.r - a.r))),
                static_cast<int>(std::lround(a.g + f * (b.g - a.g))),
                static_cast<int>(std::lround(a.b + f * (b.b - a.b))));
  return text;
}

// The colour scale: a GPU's load over its layer's mean, on a log scale symmetric around 1 and
// reaching `limit` and 1/limit, with a square-root stretch so that the small deviations of a
// balanced placement still show next to the large ones of an unbalanced one.
class Scale {
 public:
  explicit Scale(double largest_ratio) {
    static constexpr std::array<double, 9> kLimits = {1.05, 1.1, 1.2, 1.5, 2, 3, 4, 8, 16};
    limit_ = kLimits.back();
    for (double candidate : kLimits) {
      if (candidate >= largest_ratio) {
        limit_ = candidate;
        break;
      }
    }
  }
  [[nodiscard]] double limit() const { return limit_; }
  // -1 (1/limit or less) .. 0 (the mean) .. 1 (limit or more).
  [[nodiscard]] double position(double ratio) const {
    if (!(ratio > 0)) return -1.0;
    const double x = std::clamp(std::log(ratio) / std::log(limit_), -1.0, 1.0);
    return std::copysign(std::sqrt(std::fabs(x)), x);
  }

 private:
  double limit_ = 2;
};

double nice_step(double range, double target_ticks) {
  const double raw = range / target_ticks;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double factor : {1.0, 2.0, 2.5, 5.0}) {
    if (factor * magnitude >= raw) return factor * magnitude;
  }
  return 10 * magnitude;
}

// The smallest step of `steps` (then its multiples of ten) whose ticks are at least `min_gap`
// apart when one unit is `unit` long.
std::uint32_t label_step(double unit, double min_gap, std::initializer_list<std::uint32_t> steps) {
  for (std::uint32_t scale = 1;; scale *= 10) {
    for (std::uint32_t step : steps) {
      if (static_cast<double>(step * scale) * unit >= min_gap) return step * scale;
    }
    if (scale > 100000000) return 1;
  }
}

class Svg {
 public:
  std::string out;

  void text(double x, double y, std::string_view content, std::string_view attributes = {}) {
    out += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\"";
    if (!attributes.empty()) {
      out += ' ';
      out += attributes;
    }
    out += '>';
    out += escape(content);
    out += "</text>\n";
  }
  void line(double x1, double y1, double x2, double y2, std::string_view attributes) {
    out += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" +
           num(y2) + "\" ";
    out += attributes;
    out += "/>\n";
  }
  // A rectangle; a non-empty `tooltip` becomes its <title>.
  void rect(double x, double y, double w, double h, std::string_view attributes,
            std::string_view tooltip = {}, int decimals = 1) {
    out += "<rect x=\"" + num(x, decimals) + "\" y=\"" + num(y, decimals) + "\" width=\"" +
           num(std::max(w, 0.0), decimals) + "\" height=\"" + num(std::max(h, 0.0), decimals) +
           "\" ";
    out += attributes;
    if (tooltip.empty()) {
      out += "/>\n";
    } else {
      out += "><title>" + escape(tooltip) + "</title></rect>\n";
    }
  }
};

double layer_mean(const std::vector<double>& loads, std::size_t layer, std::size_t gpus) {
  double total = 0;
  for (std::size_t g = 0; g < gpus; ++g) total += loads[layer * gpus + g];
  return total / static_cast<double>(gpus);
}

double ratio(double load, double mean) { return mean > 0 ? load / mean : 1.0; }

}  // namespace

std::string render_plot_svg(const PlotData& data) {
  const std::size_t layers = data.num_layers;
  const std::size_t gpus = data.num_gpus;
  const std::uint32_t nodes = std::max<std::uint32_t>(data.num_nodes, 1);
  const std::size_t gpus_per_node = gpus / nodes;

  // --- Geometry --------------------------------------------------------------------------------
  const double panel_width = (kWidth - kLeft - kRight - kLegendWidth - kPanelGap) / 2;
  const double cell_width = panel_width / static_cast<double>(gpus);
  const double cell_height = std::clamp(kHeatHeight / static_cast<double>(layers), 4.0, 36.0);
  const double heat_height = cell_height * static_cast<double>(layers);
  const double legend_height = std::max(heat_height, 160.0);
  // Below the heat maps: their GPU axis, or the colour legend's captions, whichever is lower.
  const double bars_top = kHeatTop + std::max(heat_height + 104, legend_height + 96);
  const double height = bars_top + kBarsHeight + 56 + 16 * static_cast<double>(data.footer.size());

  // --- Colour scale ----------------------------------------------------------------------------
  double largest = 1.0;
  for (const auto* loads : {&data.before, &data.after}) {
    for (std::size_t l = 0; l < layers; ++l) {
      const double mean = layer_mean(*loads, l, gpus);
      for (std::size_t g = 0; g < gpus; ++g) {
        const double r = ratio((*loads)[l * gpus + g], mean);
        largest = std::max(largest, r > 0 ? std::max(r, 1 / r) : 1e9);
      }
    }
  }
  const Scale scale(largest);
  // Node boundaries only where nodes are wide enough for the lines not to drown the cells.
  const bool show_nodes = nodes > 1 && cell_width * static_cast<double>(gpus_per_node) >= 24;

  Svg svg;
  svg.out.reserve(4096 + layers * gpus * 2 * 120);
  svg.out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg.out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(kWidth) + "\" height=\"" +
             num(height) + "\" viewBox=\"0 0 " + num(kWidth) + " " + num(height) +
             "\" font-family=\"" + std::string(kFont) + "\">\n";
  svg.out += "<title>" + escape(data.title) + "</title>\n";
  svg.rect(0, 0, kWidth, height, "fill=\"#ffffff\"");

  // --- Title -----------------------------------------------------------------------------------
  svg.text(kLeft, 36, data.title, "font-size=\"21\" font-weight=\"bold\" fill=\"#111\"");
  svg.text(kLeft, 60, data.subtitle, "font-size=\"13\" fill=\"#555\"");

  // --- Heat maps -------------------------------------------------------------------------------
  svg.text(kLeft, kHeatTop - 32,
           "GPU load relative to its layer's mean, per MoE layer (rows) and GPU (columns)",
           "font-size=\"14\" font-weight=\"bold\" fill=\"#222\"");
  const std::uint32_t layer_step = label_step(cell_height, 13, {1, 2, 5});
  const std::uint32_t gpu_step = label_step(cell_width, 22, {1, 2, 4, 8});
  for (int panel = 0; panel < 2; ++panel) {
    const std::vector<double>& loads = panel == 0 ? data.before : data.after;
    const double x0 = kLeft + panel * (panel_width + kPanelGap);
    const double b = panel == 0 ? data.balancedness_before : data.balancedness_after;
    svg.text(x0, kHeatTop - 10,
             (panel == 0 ? data.before_name : data.after_name) + "  (balancedness " +
                 decimals_text(b, 3) + ")",
             "font-size=\"13\" fill=\"#222\"");
    svg.out += "<g class=\"heatmap " + std::string(panel == 0 ? "before" : "after") +
               "\" shape-rendering=\"crispEdges\">\n";
    for (std::size_t l = 0; l < layers; ++l) {
      const double mean = layer_mean(loads, l, gpus);
      for (std::size_t g = 0; g < gpus; ++g) {
        const double load = loads[l * gpus + g];
        const double r = ratio(load, mean);
        // Cells overlap their right and lower neighbour by a hair, so no seams show.
        svg.rect(x0 + static_cast<double>(g) * cell_width,
                 kHeatTop + static_cast<double>(l) * cell_height, cell_width + 0.25,
                 cell_height + 0.25,
                 "class=\"hm-cell\" fill=\"" + colour_at(scale.position(r)) + "\"",
                 "layer " + std::to_string(l) + ", GPU " + std::to_string(g) + ": " +
                     decimals_text(r, 3) + std::string(kTimes) + " mean (" + si(load) + ")",
                 2);
      }
    }
    svg.out += "</g>\n";
    // Node boundaries.
    for (std::uint32_t n = 1; show_nodes && n < nodes; ++n) {
      const double x = x0 + static_cast<double>(n * gpus_per_node) * cell_width;
      svg.line(x, kHeatTop, x, kHeatTop + heat_height, "stroke=\"#111\" stroke-width=\"1.5\"");
    }
    svg.rect(x0, kHeatTop, panel_width, heat_height,
             "fill=\"none\" stroke=\"#444\" stroke-width=\"1\"");
    if (data.layer >= 0) {
      svg.rect(x0 - 3, kHeatTop + data.layer * cell_height - 1, panel_width + 6, cell_height + 2,
               "fill=\"none\" stroke=\"#111\" stroke-width=\"2\"");
    }
    // Layer ticks (labels on the left panel only) and GPU ticks.
    for (std::size_t l = 0; l < layers; l += layer_step) {
      const double y = kHeatTop + (static_cast<double>(l) + 0.5) * cell_height;
      svg.line(x0 - 4, y, x0, y, "stroke=\"#444\"");
      if (panel == 0) {
        svg.text(x0 - 7, y + 4, std::to_string(l),
                 "font-size=\"11\" text-anchor=\"end\" fill=\"#444\"");
      }
    }
    for (std::size_t g = 0; g < gpus; g += gpu_step) {
      const double x = x0 + (static_cast<double>(g) + 0.5) * cell_width;
      svg.line(x, kHeatTop + heat_height, x, kHeatTop + heat_height + 4, "stroke=\"#444\"");
      svg.text(x, kHeatTop + heat_height + 16, std::to_string(g),
               "font-size=\"11\" text-anchor=\"middle\" fill=\"#444\"");
    }
    svg.text(x0 + panel_width / 2, kHeatTop + heat_height + 34,
             show_nodes ? "GPU (black lines: node boundaries)" : "GPU",
             "font-size=\"12\" text-anchor=\"middle\" fill=\"#333\"");
  }
  svg.text(22, kHeatTop + heat_height / 2, "MoE layer",
           "font-size=\"12\" text-anchor=\"middle\" fill=\"#333\" transform=\"rotate(-90 22 " +
               num(kHeatTop + heat_height / 2) + ")\"");

  // --- Colour legend ---------------------------------------------------------------------------
  {
    const double x = kWidth - kRight - kLegendWidth + 24;
    const double top = kHeatTop;
    const double bar_height = legend_height;
    svg.out += "<defs><linearGradient id=\"diverging\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"1\">\n";
    constexpr int kStops = 40;
    for (int i = 0; i <= kStops; ++i) {
      const double t = 1.0 - 2.0 * i / kStops;
      svg.out += "<stop offset=\"" + num(static_cast<double>(i) / kStops, 3) + "\" stop-color=\"" +
                 colour_at(t) + "\"/>\n";
    }
    svg.out += "</linearGradient></defs>\n";
    svg.text(x - 4, top - 24, "load / mean", "font-size=\"12\" fill=\"#222\"");
    svg.text(x - 4, top - 10, "of the layer", "font-size=\"12\" fill=\"#222\"");
    svg.rect(x, top, 16, bar_height, "class=\"legend\" fill=\"url(#diverging)\" stroke=\"#444\"");
    const double limit = scale.limit();
    std::vector<double> ticks = {limit, 1.0, 1.0 / limit};
    for (double candidate : {1.01, 1.02, 1.05, 1.1, 1.2, 1.5, 2.0, 3.0, 4.0, 8.0}) {
      if (candidate < limit) {
        ticks.push_back(candidate);
        ticks.push_back(1.0 / candidate);
      }
    }
    std::vector<double> placed;
    for (double r : ticks) {  // the limits and the mean first: they always get a label
      const double y = top + (1.0 - scale.position(r)) / 2.0 * bar_height;
      const bool crowded = std::any_of(placed.begin(), placed.end(),
                                       [&](double other) { return std::fabs(other - y) < 14; });
      if (crowded) continue;
      placed.push_back(y);
      svg.line(x + 16, y, x + 21, y, "stroke=\"#444\"");
      const std::string label = num(r, 2) + std::string(kTimes);
      svg.text(x + 24, y + 4, (r == limit && largest > limit ? "\xe2\x89\xa5" : "") + label,
               "font-size=\"11\" fill=\"#333\"");
    }
    svg.text(x - 4, top + bar_height + 18, "red: busier", "font-size=\"11\" fill=\"#b2182b\"");
    svg.text(x - 4, top + bar_height + 32, "blue: idler", "font-size=\"11\" fill=\"#2166ac\"");
  }

  // --- Bar chart -------------------------------------------------------------------------------
  std::vector<double> before(gpus, 0.0);
  std::vector<double> after(gpus, 0.0);
  for (std::size_t l = 0; l < layers; ++l) {
    if (data.layer >= 0 && l != static_cast<std::size_t>(data.layer)) continue;
    for (std::size_t g = 0; g < gpus; ++g) {
      before[g] += data.before[l * gpus + g];
      after[g] += data.after[l * gpus + g];
    }
  }
  double total = 0;
  for (double v : after) total += v;
  const double mean = total / static_cast<double>(gpus);
  const double max_before = *std::max_element(before.begin(), before.end());
  const double max_after = *std::max_element(after.begin(), after.end());
  double top_value = std::max(max_before, max_after);
  if (!(top_value > 0)) top_value = 1;
  const double step = nice_step(top_value, 5);
  const double y_max = std::ceil(top_value * 1.04 / step) * step;
  const double chart_left = kLeft;
  const double chart_width = kWidth - kRight - kLeft;
  const auto y_of = [&](double value) { return bars_top + kBarsHeight * (1 - value / y_max); };

  svg.text(kLeft, bars_top - 40,
           data.layer >= 0
               ? "Per-GPU load in MoE layer " + std::to_string(data.layer)
               : "Per-GPU load, summed over all " + std::to_string(layers) + " MoE layers",
           "font-size=\"14\" font-weight=\"bold\" fill=\"#222\"");
  svg.text(kLeft, bars_top - 20,
           "busiest GPU: " + decimals_text(mean > 0 ? max_before / mean : 1, 2) +
               std::string(kTimes) + " the mean before, " +
               decimals_text(mean > 0 ? max_after / mean : 1, 2) + std::string(kTimes) + " after" +
               (data.layer >= 0 ? std::string()
                                : "  (a sum over layers hides their imbalance: see the heat maps, "
                                  "or plot one layer with --layer N)"),
           "font-size=\"12\" fill=\"#444\"");
  {
    // Legend, right-aligned on the title line.
    const double y = bars_top - 40;
    double x = kWidth - kRight - 470;
    svg.rect(x, y - 10, 12, 12, "fill=\"" + std::string(kBeforeColour) + "\"");
    svg.text(x + 17, y, data.before_name, "font-size=\"12\" fill=\"#333\"");
    x += 24 + 7.0 * static_cast<double>(data.before_name.size());
    svg.rect(x, y - 10, 12, 12, "fill=\"" + std::string(kAfterColour) + "\"");
    svg.text(x + 17, y, data.after_name, "font-size=\"12\" fill=\"#333\"");
    x += 24 + 7.0 * static_cast<double>(data.after_name.size());
    svg.line(x, y - 4, x + 22, y - 4,
             "stroke=\"#c0392b\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"");
    svg.text(x + 27, y, "mean", "font-size=\"12\" fill=\"#333\"");
  }
  // Grid and y axis.
  for (double value = 0; value <= y_max + step / 2; value += step) {
    const double y = y_of(value);
    svg.line(chart_left, y, chart_left + chart_width, y,
             value == 0 ? "stroke=\"#444\"" : "stroke=\"#e3e3e3\"");
    svg.text(chart_left - 7, y + 4, si(value),
             "font-size=\"11\" text-anchor=\"end\" fill=\"#444\"");
  }
  svg.text(22, bars_top + kBarsHeight / 2, "load",
           "font-size=\"12\" text-anchor=\"middle\" fill=\"#333\" transform=\"rotate(-90 22 " +
               num(bars_top + kBarsHeight / 2) + ")\"");
  const double group = chart_width / static_cast<double>(gpus);
  const double pad = group >= 6 ? group * 0.14 : 0;
  const double bar = (group - 2 * pad) / 2;
  svg.out += "<g class=\"bars\" shape-rendering=\"crispEdges\">\n";
  for (std::size_t g = 0; g < gpus; ++g) {
    const double x = chart_left + static_cast<double>(g) * group + pad;
    const auto tooltip = [&](const char* which, double value) {
      return "GPU " + std::to_string(g) + " " + which + ": " + si(value) + " (" +
             decimals_text(mean > 0 ? value / mean : 1, 3) + std::string(kTimes) + " mean)";
    };
    svg.rect(x, y_of(before[g]), bar, y_of(0) - y_of(before[g]),
             "class=\"bar-before\" fill=\"" + std::string(kBeforeColour) + "\"",
             tooltip("before", before[g]), 2);
    svg.rect(x + bar, y_of(after[g]), bar, y_of(0) - y_of(after[g]),
             "class=\"bar-after\" fill=\"" + std::string(kAfterColour) + "\"",
             tooltip("after", after[g]), 2);
  }
  svg.out += "</g>\n";
  for (std::uint32_t n = 1; show_nodes && n < nodes; ++n) {
    const double x = chart_left + static_cast<double>(n * gpus_per_node) * group;
    svg.line(x, bars_top, x, bars_top + kBarsHeight,
             "stroke=\"#888\" stroke-width=\"1\" stroke-dasharray=\"2 3\"");
  }
  if (show_nodes && group * static_cast<double>(gpus_per_node) >= 60) {
    for (std::uint32_t n = 0; n < nodes; ++n) {
      svg.text(chart_left + (static_cast<double>(n * gpus_per_node) +
                             0.5 * static_cast<double>(gpus_per_node)) *
                                group,
               bars_top + 12, "node " + std::to_string(n),
               "font-size=\"11\" text-anchor=\"middle\" fill=\"#777\"");
    }
  }
  svg.line(chart_left, y_of(mean), chart_left + chart_width, y_of(mean),
           "stroke=\"#c0392b\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"");
  const std::uint32_t bar_label_step = label_step(group, 22, {1, 2, 4, 8});
  for (std::size_t g = 0; g < gpus; g += bar_label_step) {
    const double x = chart_left + (static_cast<double>(g) + 0.5) * group;
    svg.line(x, y_of(0), x, y_of(0) + 4, "stroke=\"#444\"");
    svg.text(x, y_of(0) + 16, std::to_string(g),
             "font-size=\"11\" text-anchor=\"middle\" fill=\"#444\"");
  }
  svg.text(chart_left + chart_width / 2, y_of(0) + 34, "GPU",
           "font-size=\"12\" text-anchor=\"middle\" fill=\"#333\"");
  for (std::size_t i = 0; i < data.footer.size(); ++i) {
    svg.text(kLeft, height - 12 - 16 * static_cast<double>(data.footer.size() - 1 - i),
             data.footer[i], "font-size=\"11\" fill=\"#888\"");
  }
  svg.out += "</svg>\n";
  return svg.out;
}

}  // namespace eplb_cli
