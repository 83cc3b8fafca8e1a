// plot.hpp: the loss curves as CSV, and as an SVG drawn by hand (two panels,
// training and validation loss against step, one polyline per configuration).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace tiny_lm {

struct curve_point {
  int step;
  double train_loss;  // mean of the minibatch losses since the previous point (the first batch's at step 0)
  double val_loss;    // on the fixed validation windows
};

struct curve {
  std::string label;
  std::vector<curve_point> points;
  bool dashed = false;  // drawn over an identical curve, so both stay visible
};

inline bool write_csv(const std::string& path, const std::vector<curve>& curves) {
  std::ofstream out(path);
  out << "step,config,train_loss,val_loss\n";
  char line[256];
  for (const curve& c : curves)
    for (const curve_point& p : c.points) {
      std::snprintf(line, sizeof line, "%d,%s,%.6f,%.6f\n", p.step, c.label.c_str(), p.train_loss, p.val_loss);
      out << line;
    }
  return bool(out);
}

namespace svg_detail {

// Tick spacing of 1, 2 or 5 times a power of ten giving about `target` ticks.
inline double tick_step(double range, int target) {
  const double raw = range / target;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * power >= raw) return m * power;
  return 10 * power;
}

inline std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", std::abs(v) < 1e-12 ? 0.0 : v);
  return text;
}

inline std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

}  // namespace svg_detail

// One panel: axes, ticks, grid, a polyline per curve, clipped to the plot
// area. The y range starts after the first tenth of training, so the fall from
// ln(vocab) at step 0 does not flatten the differences at the end; the early
// points run off the top and are clipped.
inline void svg_panel(std::ostream& out, const std::vector<curve>& curves, bool validation, double x0, double y0,
                      double w, double h, const std::string& title, const std::vector<std::string>& colors, int id) {
  using namespace svg_detail;
  auto value = [validation](const curve_point& p) { return validation ? p.val_loss : p.train_loss; };
  int max_step = 1;
  for (const curve& c : curves)
    for (const curve_point& p : c.points) max_step = std::max(max_step, p.step);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const curve& c : curves)
    for (const curve_point& p : c.points) {
      const double v = value(p);
      if (!std::isfinite(v)) continue;
      lo = std::min(lo, v);
      if (p.step * 10 >= max_step) hi = std::max(hi, v);
    }
  if (!(hi > lo)) hi = lo + 1;
  const double pad = 0.05 * (hi - lo);
  lo -= pad;
  hi += pad;
  auto px = [&](double step) { return x0 + w * step / max_step; };
  auto py = [&](double v) { return y0 + h * (hi - v) / (hi - lo); };

  out << "<text x=\"" << x0 + w / 2 << "\" y=\"" << y0 - 12 << "\" text-anchor=\"middle\" font-size=\"15\">"
      << escape(title) << "</text>\n";
  out << "<clipPath id=\"plot" << id << "\"><rect x=\"" << x0 << "\" y=\"" << y0 << "\" width=\"" << w << "\" height=\""
      << h << "\"/></clipPath>\n";
  const double ys = tick_step(hi - lo, 6);
  for (double v = std::ceil(lo / ys) * ys; v <= hi; v += ys) {
    out << "<line x1=\"" << x0 << "\" y1=\"" << py(v) << "\" x2=\"" << x0 + w << "\" y2=\"" << py(v)
        << "\" stroke=\"#e4e4e4\"/>\n";
    out << "<text x=\"" << x0 - 6 << "\" y=\"" << py(v) + 4 << "\" text-anchor=\"end\" font-size=\"11\">" << number(v)
        << "</text>\n";
  }
  const double xs = tick_step(max_step, 6);
  for (double s = 0; s <= max_step; s += xs) {
    out << "<line x1=\"" << px(s) << "\" y1=\"" << y0 + h << "\" x2=\"" << px(s) << "\" y2=\"" << y0 + h + 5
        << "\" stroke=\"black\"/>\n";
    out << "<text x=\"" << px(s) << "\" y=\"" << y0 + h + 18 << "\" text-anchor=\"middle\" font-size=\"11\">"
        << number(s) << "</text>\n";
  }
  out << "<rect x=\"" << x0 << "\" y=\"" << y0 << "\" width=\"" << w << "\" height=\"" << h
      << "\" fill=\"none\" stroke=\"black\"/>\n";
  out << "<text x=\"" << x0 + w / 2 << "\" y=\"" << y0 + h + 36
      << "\" text-anchor=\"middle\" font-size=\"12\">step</text>\n";
  out << "<text transform=\"translate(" << x0 - 44 << " " << y0 + h / 2
      << ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">loss (nats per character)</text>\n";

  out << "<g clip-path=\"url(#plot" << id << ")\" fill=\"none\" stroke-width=\"1.6\">\n";
  for (std::size_t i = 0; i < curves.size(); ++i) {
    out << "<polyline stroke=\"" << colors[i % colors.size()] << "\""
        << (curves[i].dashed ? " stroke-dasharray=\"6 4\"" : "") << " points=\"";
    for (const curve_point& p : curves[i].points)
      if (std::isfinite(value(p))) out << px(p.step) << "," << py(value(p)) << " ";
    out << "\"/>\n";
  }
  out << "</g>\n";
}

inline bool write_svg(const std::string& path, const std::vector<curve>& curves, const std::string& title) {
  const std::vector<std::string> colors = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                           "#ff7f0e", "#8c564b", "#17becf", "#e377c2"};
  const double panel_w = 420, panel_h = 300, left = 70, top = 60, gap = 90, legend_w = 250;
  const double width = left + 2 * panel_w + gap + 30 + legend_w, height = top + panel_h + 60;
  std::ostringstream out;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\">\n";
  out << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  out << "<text x=\"" << left << "\" y=\"22\" font-size=\"14\">" << svg_detail::escape(title) << "</text>\n";
  svg_panel(out, curves, false, left, top, panel_w, panel_h, "training loss (mean since previous point)", colors, 0);
  svg_panel(out, curves, true, left + panel_w + gap, top, panel_w, panel_h, "validation loss", colors, 1);
  const double lx = left + 2 * panel_w + gap + 30;
  for (std::size_t i = 0; i < curves.size(); ++i) {
    const double ly = top + 10 + 22 * double(i);
    out << "<line x1=\"" << lx << "\" y1=\"" << ly << "\" x2=\"" << lx + 28 << "\" y2=\"" << ly << "\" stroke=\""
        << colors[i % colors.size()] << "\" stroke-width=\"2\"" << (curves[i].dashed ? " stroke-dasharray=\"6 4\"" : "")
        << "/>\n";
    out << "<text x=\"" << lx + 36 << "\" y=\"" << ly + 4 << "\" font-size=\"12\">"
        << svg_detail::escape(curves[i].label) << "</text>\n";
  }
  out << "</svg>\n";
  std::ofstream file(path);
  file << out.str();
  return bool(file);
}

}  // namespace tiny_lm
