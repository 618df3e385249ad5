//! Time, passed in rather than read from the wall inside the core, so that
//! scenarios run at any speed and tests are reproducible.

use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

/// A source of "now" in UTC.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// How long to really wait for `d` of this clock's time to pass.
    fn real_duration(&self, d: Duration) -> Duration {
        d
    }
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at `origin` and runs `speed` times faster than real
/// time (`vigil gateway --simulate <scenario> --speed N`).
#[derive(Debug, Clone)]
pub struct ScaledClock {
    origin: DateTime<Utc>,
    started: Instant,
    speed: f64,
}

impl ScaledClock {
    pub fn new(origin: DateTime<Utc>, speed: f64) -> Self {
        assert!(speed > 0.0 && speed.is_finite(), "speed must be positive");
        Self {
            origin,
            started: Instant::now(),
            speed,
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.started.elapsed().as_secs_f64() * self.speed;
        self.origin + chrono::Duration::microseconds((elapsed * 1e6) as i64)
    }
    fn real_duration(&self, d: Duration) -> Duration {
        d.div_f64(self.speed)
    }
}

/// A clock that moves only when told to (`vigil replay`: the script's times
/// drive it). Time never goes backwards: setting an earlier time is ignored.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: std::sync::Mutex::new(start),
        }
    }

    /// Moves the clock to `t` (if later than now).
    pub fn set(&self, t: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap();
        *now = (*now).max(t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }
    // `real_duration` keeps the default: whoever drives a manual clock also
    // drives everything that waits on it (the replay's ticks), so nothing
    // should sleep on its time.
}
