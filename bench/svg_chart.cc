#include "svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace memkv::bench {
namespace {

// Distinct colours that stay apart for people with the common colour
// vision deficiencies (Okabe-Ito).
constexpr const char* kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                    "#E69F00", "#56B4E9", "#000000", "#F0E442"};

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// "4 KiB", "16 MiB": sizes on the x axis.
std::string SizeLabel(double bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, bytes == std::floor(bytes) ? "%.0f %s" : "%.1f %s", bytes,
                units[u]);
  return buf;
}

// A "nice" step (1, 2 or 5 times a power of ten) giving about `ticks` ticks.
double NiceStep(double max, int ticks) {
  const double raw = max / ticks;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

}  // namespace

std::string XmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string RenderSvg(const Chart& chart) {
  // Plot area inside margins; the legend sits to the right of it.
  const double left = 70, top = 50, right = 230, bottom = 60;
  const double pw = chart.width - left - right, ph = chart.height - top - bottom;

  double xmin = INFINITY, xmax = -INFINITY, ymax = 0;
  for (const ChartSeries& s : chart.series)
    for (auto [x, y] : s.points) {
      if (!(x > 0) || !std::isfinite(y)) continue;
      xmin = std::min(xmin, x);
      xmax = std::max(xmax, x);
      ymax = std::max(ymax, y);
    }
  if (!std::isfinite(xmin)) xmin = 4096, xmax = 16 << 20;
  if (xmax <= xmin) xmax = xmin * 4;
  if (!(ymax > 0)) ymax = 1;
  const double step = NiceStep(ymax, 5);
  const double ytop = std::ceil(ymax / step) * step;
  const double lx0 = std::log2(xmin), lx1 = std::log2(xmax);
  auto X = [&](double x) { return left + (std::log2(x) - lx0) / (lx1 - lx0) * pw; };
  auto Y = [&](double y) { return top + ph - y / ytop * ph; };

  std::string o;
  o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(chart.width) +
       "\" height=\"" + std::to_string(chart.height) + "\" viewBox=\"0 0 " +
       std::to_string(chart.width) + " " + std::to_string(chart.height) +
       "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<rect x=\"0\" y=\"0\" width=\"" + std::to_string(chart.width) + "\" height=\"" +
       std::to_string(chart.height) + "\" fill=\"#ffffff\"/>\n";
  o += "<text x=\"" + Num(left) + "\" y=\"24\" font-size=\"15\" font-weight=\"bold\">" +
       XmlEscape(chart.title) + "</text>\n";

  // Grid and y ticks.
  o += "<g stroke=\"#dddddd\" stroke-width=\"1\">\n";
  for (double y = 0; y <= ytop + step / 2; y += step)
    o += "<line x1=\"" + Num(left) + "\" y1=\"" + Num(Y(y)) + "\" x2=\"" + Num(left + pw) +
         "\" y2=\"" + Num(Y(y)) + "\"/>\n";
  for (double x = std::exp2(std::ceil(lx0)); x <= xmax * 1.0001; x *= 2)
    o += "<line x1=\"" + Num(X(x)) + "\" y1=\"" + Num(top) + "\" x2=\"" + Num(X(x)) +
         "\" y2=\"" + Num(top + ph) + "\"/>\n";
  o += "</g>\n";
  o += "<g fill=\"#333333\">\n";
  for (double y = 0; y <= ytop + step / 2; y += step) {
    char buf[32];
    std::snprintf(buf, sizeof buf, step < 1 ? "%.1f" : "%.0f", y);
    o += "<text x=\"" + Num(left - 8) + "\" y=\"" + Num(Y(y) + 4) +
         "\" text-anchor=\"end\">" + buf + "</text>\n";
  }
  // A label on every power of 4 from the smallest size: the default sweep.
  for (double x = std::exp2(std::ceil(lx0)); x <= xmax * 1.0001; x *= 4)
    o += "<text x=\"" + Num(X(x)) + "\" y=\"" + Num(top + ph + 18) +
         "\" text-anchor=\"middle\">" + XmlEscape(SizeLabel(x)) + "</text>\n";
  o += "<text x=\"" + Num(left + pw / 2) + "\" y=\"" + Num(chart.height - 14.0) +
       "\" text-anchor=\"middle\">" + XmlEscape(chart.x_label) + " (log scale)</text>\n";
  o += "<text transform=\"translate(18 " + Num(top + ph / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">" + XmlEscape(chart.y_label) + "</text>\n";
  o += "</g>\n";
  o += "<rect x=\"" + Num(left) + "\" y=\"" + Num(top) + "\" width=\"" + Num(pw) +
       "\" height=\"" + Num(ph) + "\" fill=\"none\" stroke=\"#333333\"/>\n";

  // Lines, points and the legend.
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const ChartSeries& s = chart.series[i];
    const std::string colour = kColours[i % (sizeof kColours / sizeof kColours[0])];
    auto pts = s.points;
    pts.erase(std::remove_if(pts.begin(), pts.end(),
                             [](auto p) { return !(p.first > 0) || !std::isfinite(p.second); }),
              pts.end());
    std::sort(pts.begin(), pts.end());
    const std::string dash = s.dashed ? " stroke-dasharray=\"6 4\"" : "";
    if (!pts.empty()) {
      o += "<polyline fill=\"none\" stroke=\"" + colour + "\" stroke-width=\"2\"" + dash +
           " points=\"";
      for (size_t k = 0; k < pts.size(); ++k)
        o += (k ? " " : "") + Num(X(pts[k].first)) + "," + Num(Y(pts[k].second));
      o += "\"/>\n";
      for (auto [x, y] : pts)
        o += "<circle cx=\"" + Num(X(x)) + "\" cy=\"" + Num(Y(y)) + "\" r=\"3\" fill=\"" +
             colour + "\"><title>" + XmlEscape(s.name + ": " + SizeLabel(x) + ", ") +
             Num(y) + " GiB/s</title></circle>\n";
    }
    const double ly = top + 10 + 20.0 * static_cast<double>(i);
    const double lx = left + pw + 16;
    o += "<line x1=\"" + Num(lx) + "\" y1=\"" + Num(ly) + "\" x2=\"" + Num(lx + 24) +
         "\" y2=\"" + Num(ly) + "\" stroke=\"" + colour + "\" stroke-width=\"2\"" + dash + "/>\n";
    o += "<text x=\"" + Num(lx + 30) + "\" y=\"" + Num(ly + 4) + "\">" + XmlEscape(s.name) +
         (pts.empty() ? " (no data)" : "") + "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace memkv::bench
