//! Fault injection: the dice behind `--fail-rate`, `--reset-rate`, `--lose-rate`,
//! `--gateway-error-rate`, `--stall-rate` and `--storm`.
//!
//! One seeded RNG behind a lock, so a run with `--seed` injects the same faults for the same
//! order of requests. Latency and bandwidth are applied elsewhere (the gate and `net.rs`).

use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::config::FaultConfig;

/// The fault dice of one server.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    rng: Mutex<StdRng>,
    start: Instant,
}

impl Faults {
    /// Dice seeded from `config.seed`, or from the OS when unset.
    pub fn new(config: FaultConfig) -> Self {
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_rng(&mut rand::rng()),
        };
        Faults { config, rng: Mutex::new(rng), start: Instant::now() }
    }

    /// The configuration.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    fn roll(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).random_bool(p.min(1.0))
    }

    /// Whether this request is answered 503.
    pub fn should_fail(&self) -> bool {
        self.roll(self.config.fail_rate)
    }

    /// Whether this request's answer is lost after it took effect.
    pub fn should_lose(&self) -> bool {
        self.roll(self.config.lose_rate)
    }

    /// Whether this request's answer is replaced by a gateway error, and which: 502 or 504, at
    /// random, as a load balancer answers when its upstream fails or is too slow.
    pub fn gateway_error(&self) -> Option<StatusCode> {
        if !self.roll(self.config.gateway_error_rate) {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        Some(if rng.random_bool(0.5) {
            StatusCode::BAD_GATEWAY
        } else {
            StatusCode::GATEWAY_TIMEOUT
        })
    }

    /// For an upload chosen to be cut, how many body bytes to let through first (of about
    /// `expected` bytes); `None` when this upload goes through.
    pub fn reset_point(&self, expected: u64) -> Option<u64> {
        self.body_point(self.config.reset_rate, expected)
    }

    /// For an upload chosen to stall, how many body bytes to read before reading stops (of about
    /// `expected` bytes); `None` when this upload goes through.
    pub fn stall_point(&self, expected: u64) -> Option<u64> {
        self.body_point(self.config.stall_rate, expected)
    }

    fn body_point(&self, p: f64, expected: u64) -> Option<u64> {
        if !self.roll(p) {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        Some(rng.random_range(0..expected.max(1)))
    }

    /// While a storm rages, the time until it ends.
    pub fn storm_remaining(&self) -> Option<Duration> {
        let storm = self.config.storm?;
        let period = storm.every.as_nanos().max(1);
        let into = Duration::from_nanos((self.start.elapsed().as_nanos() % period) as u64);
        (into < storm.duration).then(|| storm.duration - into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_dice_repeat() {
        let cfg = FaultConfig { fail_rate: 0.5, seed: Some(42), ..Default::default() };
        let a: Vec<bool> = {
            let f = Faults::new(cfg.clone());
            (0..64).map(|_| f.should_fail()).collect()
        };
        let b: Vec<bool> = {
            let f = Faults::new(cfg);
            (0..64).map(|_| f.should_fail()).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
        let never = Faults::new(FaultConfig::default());
        assert!((0..100).all(|_| !never.should_fail() && never.reset_point(10).is_none()));
    }

    #[tokio::test(start_paused = true)]
    async fn storms_come_and_go() {
        let f = Faults::new(FaultConfig {
            storm: Some("10s:2s".parse().unwrap()),
            ..Default::default()
        });
        assert_eq!(f.storm_remaining(), Some(Duration::from_secs(2)));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(f.storm_remaining(), None);
        tokio::time::advance(Duration::from_millis(7500)).await;
        assert_eq!(f.storm_remaining(), Some(Duration::from_millis(1500)));
    }
}
