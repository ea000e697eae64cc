// Implementation of windows.hpp.
#include "orbit/windows.hpp"

#include <algorithm>

namespace orbitrain::orbit {

namespace {

// The time in (lo, hi] where `inside` changes from `at_lo`, to `tolerance`.
double bisect(const std::function<bool(double)>& inside, double lo, double hi, bool at_lo,
              double tolerance) {
  while (hi - lo > tolerance) {
    const double mid = 0.5 * (lo + hi);
    if (inside(mid) == at_lo)
      lo = mid;
    else
      hi = mid;
  }
  return 0.5 * (lo + hi);
}

} // namespace

std::vector<Window> find_windows(const std::function<bool(double)>& inside, double t0, double t1,
                                 double step, double tolerance) {
  std::vector<Window> out;
  if (!(t1 > t0) || !(step > 0))
    return out;
  bool prev = inside(t0);
  double open = t0;
  double t = t0;
  while (t < t1) {
    const double next = std::min(t1, t + step);
    const bool now = inside(next);
    if (now != prev) {
      const double edge = bisect(inside, t, next, prev, tolerance);
      if (prev)
        out.push_back({open, edge});
      else
        open = edge;
      prev = now;
    }
    t = next;
  }
  if (prev)
    out.push_back({open, t1});
  return out;
}

double overlap(const std::vector<Window>& windows, double t0, double t1) {
  double sum = 0;
  for (const auto& w : windows)
    sum += std::max(0.0, std::min(w.end, t1) - std::max(w.begin, t0));
  return sum;
}

} // namespace orbitrain::orbit
