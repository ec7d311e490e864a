//! How fast a growing total grows, per second, over about the last second: measured from samples
//! taken whenever someone reads the rate (a debugger polling a monitor once a second, a script
//! every frame), so it needs no timer or thread of its own.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Stored samples are at least `window / SLICES` apart, which bounds the memory a meter uses
/// however often it is read.
const SLICES: u32 = 32;

/// The per-second growth of a total that only grows (a count of finished tasks, say), over a
/// sliding window.
///
/// Each [`RateMeter::sample`] records the total at that moment and measures its growth since a
/// baseline sample: the newest earlier one at least a window old, or, while there is none that
/// old, the oldest one (the meter's creation at first). So reads a window or more apart each
/// measure the time since the previous read, and frequent reads measure about the last window.
/// Several readers share one meter without stealing each other's growth.
pub struct RateMeter {
    window: Duration,
    /// Oldest first; the front is the baseline.
    samples: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    /// A meter over `window` whose first baseline is `total` at `now`.
    pub fn new(window: Duration, now: Instant, total: u64) -> Self {
        Self {
            window,
            samples: VecDeque::from([(now, total)]),
        }
    }

    /// Records `total` at `now` and returns how much it grew per second since the baseline; 0.0
    /// when no time has passed since it, or when the total went down.
    pub fn sample(&mut self, now: Instant, total: u64) -> f64 {
        let len = self.samples.len();
        if len >= 2 {
            let (newest, before) = (self.samples[len - 1].0, self.samples[len - 2].0);
            if newest.saturating_duration_since(before) < self.window / SLICES {
                // Too close to its predecessor to be worth keeping: this sample replaces it.
                self.samples.pop_back();
            }
        }
        self.samples.push_back((now, total));
        // The front stays the baseline while the sample after it is still younger than a window.
        while self.samples.len() >= 2
            && now.saturating_duration_since(self.samples[1].0) >= self.window
        {
            self.samples.pop_front();
        }
        let (since, base) = self.samples[0];
        let elapsed = now.saturating_duration_since(since).as_secs_f64();
        if elapsed == 0.0 {
            return 0.0;
        }
        total.saturating_sub(base) as f64 / elapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_first_read_measures_since_the_meter_was_made() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new(SECOND, t0, 4);
        assert_eq!(meter.sample(t0 + ms(2000), 14), 5.0);
    }

    #[test]
    fn reads_a_window_or_more_apart_measure_since_the_previous_read() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new(SECOND, t0, 0);
        assert_eq!(meter.sample(t0 + ms(1000), 10), 10.0);
        assert_eq!(meter.sample(t0 + ms(2000), 30), 20.0);
        assert_eq!(meter.sample(t0 + ms(4000), 30), 0.0);
        assert_eq!(meter.sample(t0 + ms(5000), 33), 3.0);
    }

    #[test]
    fn frequent_reads_measure_the_last_window_and_fall_to_zero_a_window_after_growth_stops() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new(SECOND, t0, 0);
        // One completion every 100 ms for 3 s, read every 100 ms.
        for tick in 1..=30 {
            let rate = meter.sample(t0 + ms(100 * tick), tick);
            assert_eq!(rate, 10.0, "at {tick} x 100 ms");
        }
        // Then nothing for a second, still read every 100 ms.
        for tick in 31..=40 {
            let rate = meter.sample(t0 + ms(100 * tick), 30);
            assert_eq!(rate, (40 - tick) as f64, "at {tick} x 100 ms");
        }
    }

    #[test]
    fn a_read_at_the_baseline_instant_or_after_the_total_went_down_is_zero() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new(SECOND, t0, 10);
        assert_eq!(meter.sample(t0, 20), 0.0);
        assert_eq!(meter.sample(t0 + ms(500), 3), 0.0);
    }

    #[test]
    fn memory_stays_bounded_however_often_it_is_read() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new(SECOND, t0, 0);
        // A read every 10 µs for 2 s, the total growing by 1 each time: 100 000 per second.
        for step in 1..=200_000u64 {
            meter.sample(t0 + Duration::from_micros(step * 10), step);
        }
        assert!(
            meter.samples.len() <= SLICES as usize + 3,
            "{} samples kept",
            meter.samples.len()
        );
        // What was kept still gives the rate: every sample lies on the same straight line.
        let rate = meter.sample(t0 + Duration::from_micros(2_000_010), 200_001);
        assert!((rate - 100_000.0).abs() < 1e-6, "{rate}");
    }
}
