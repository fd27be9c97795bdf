#pragma once
// A line chart as a standalone SVG document: memkv-bench's GiB/s against
// block size. The x axis is logarithmic (base 2; block sizes), the y axis
// linear from 0. Written by hand, no external tool; a pure function of its
// input.

#include <cstdint>
#include <string>
#include <vector>

namespace memkv::bench {

struct ChartSeries {
  std::string name;                    // legend text (escaped on output)
  std::vector<std::pair<double, double>> points;  // (x > 0, y >= 0), any order
  bool dashed = false;                 // baselines are dashed
};

struct Chart {
  std::string title;
  std::string x_label = "block size";
  std::string y_label = "GiB/s";
  std::vector<ChartSeries> series;
  int width = 900, height = 520;
};

// The SVG document (UTF-8, with the XML declaration). Series with no points
// are listed in the legend only; x tick labels are sizes ("4 KiB").
std::string RenderSvg(const Chart& chart);

// Escapes &, <, >, " and ' for XML text and attributes.
std::string XmlEscape(const std::string& s);

}  // namespace memkv::bench
