// The simulated clock: simulated time = epoch + (wall time since start) x
// time scale. Wall time comes through the WallClock interface, so tests drive
// a ManualWallClock and the runtime uses SystemWallClock. Plain C++, no CAF.
//
// `start` is a wall-clock reading (seconds), so every process of a
// constellation that is given the same start and reads the system clock
// agrees on the simulated time. A simulated duration d lasts d / time_scale
// of wall time (wall_duration): at time scale 60 an orbit of 95.6 min passes
// in 95.6 s and a 10 ms light time is held for 0.17 ms.
#pragma once

#include <chrono>

namespace orbitrain::orbit {

/// A source of wall time in seconds.
class WallClock {
public:
  virtual ~WallClock() = default;
  virtual double now() const = 0;
};

/// The system clock: seconds since 1970 (UTC).
class SystemWallClock final : public WallClock {
public:
  double now() const override {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

/// A clock tests set by hand.
class ManualWallClock final : public WallClock {
public:
  explicit ManualWallClock(double t = 0) : t_(t) {}
  double now() const override { return t_; }
  void set(double t) { t_ = t; }
  void advance(double dt) { t_ += dt; }

private:
  double t_;
};

class SimClock {
public:
  /// `wall` must outlive the SimClock. `start`: the wall time at which the
  /// simulation is at the epoch (t = 0).
  SimClock(const WallClock& wall, double start, double time_scale, double epoch_unix)
      : wall_(&wall), start_(start), scale_(time_scale), epoch_(epoch_unix) {}
  /// Starts now.
  SimClock(const WallClock& wall, double time_scale, double epoch_unix)
      : SimClock(wall, wall.now(), time_scale, epoch_unix) {}

  /// Simulated seconds since the epoch: the model's t.
  double now() const { return (wall_->now() - start_) * scale_; }
  /// Simulated UTC, seconds since 1970.
  double utc_now() const { return epoch_ + now(); }
  /// Wall seconds a simulated duration lasts.
  double wall_duration(double sim_seconds) const { return sim_seconds / scale_; }
  /// The wall time at which simulated time reaches `t`.
  double wall_at(double t) const { return start_ + t / scale_; }

  double time_scale() const { return scale_; }
  double epoch_unix() const { return epoch_; }
  double start() const { return start_; }

private:
  const WallClock* wall_;
  double start_;
  double scale_;
  double epoch_;
};

} // namespace orbitrain::orbit
