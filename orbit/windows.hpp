// Time windows of a condition (a satellite above a ground station's minimum
// elevation, a satellite in the Earth's shadow) found by sampling and
// bisection. Plain C++, no CAF; times are seconds since the epoch.
#pragma once

#include <functional>
#include <vector>

namespace orbitrain::orbit {

/// [begin, end) in seconds since the epoch.
struct Window {
  double begin = 0;
  double end = 0;
  double length() const { return end - begin; }
};

/// The windows within [t0, t1] where `inside(t)` holds. Samples every `step`
/// seconds and refines each change by bisection to `tolerance` seconds; a
/// window shorter than `step` that falls between two samples can be missed.
/// Windows open at t0 or still open at t1 are clipped to [t0, t1].
std::vector<Window> find_windows(const std::function<bool(double)>& inside, double t0, double t1,
                                 double step, double tolerance = 1e-3);

/// Total length of `windows` that falls within [t0, t1].
double overlap(const std::vector<Window>& windows, double t0, double t1);

} // namespace orbitrain::orbit
