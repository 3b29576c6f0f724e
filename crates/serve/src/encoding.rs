//! Simulated encoding: what `GET /videos/{id}/status` says under `encoding` once a video's
//! source is complete (`--encoding-time`, `--encoding-per-gb`, `--encoding-fail-rate`).
//!
//! Nothing runs in the background: the states follow from the time since the source completed
//! (kept in the video's record, so they survive a restart). Each quality waits, then encodes,
//! then is `encoded` (or `failed`, for the videos the dice pick); the first quality is encoded
//! halfway through, which makes the video `playable`, and the last one at the end.

use std::time::Duration;

use avbatch_api::{Encoding, Quality, SourceMetadata};
use chrono::{DateTime, Utc};

/// How long encoding takes and how often it fails.
#[derive(Debug, Clone, Copy, PartialEq, Default, clap::Args)]
#[command(next_help_heading = "Encoding")]
pub struct EncodingSim {
    /// Time a video takes to encode once its source is complete, from 0s to 7days: its qualities
    /// go waiting, encoding, encoded; it is playable halfway through. 0s: playable at once.
    #[arg(
        id = "encoding-time",
        long = "encoding-time",
        value_name = "DURATION",
        default_value = "0s",
        value_parser = avbatch_syntax::duration(crate::flags::ENCODING_TIME)
    )]
    pub time: Duration,
    /// Encoding time added per GiB of source, from 0s to 7days.
    #[arg(
        id = "encoding-per-gb",
        long = "encoding-per-gb",
        value_name = "DURATION",
        default_value = "0s",
        value_parser = avbatch_syntax::duration(crate::flags::ENCODING_TIME)
    )]
    pub per_gb: Duration,
    /// Fraction (from 0 to 1) of videos whose encoding fails: their qualities end `failed` and
    /// they never become playable. Which ones follows --seed and the video id.
    #[arg(
        id = "encoding-fail-rate",
        long = "encoding-fail-rate",
        value_name = "P",
        default_value = "0",
        value_parser = avbatch_syntax::probability
    )]
    pub fail_rate: f64,
}

/// The qualities produced, in the order they are encoded.
const QUALITIES: [(&str, &str); 5] =
    [("hls", "240p"), ("hls", "360p"), ("hls", "480p"), ("hls", "720p"), ("hls", "1080p")];

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// FNV-1a of `seed` and `id`: the same video fails or not on every answer and after a restart.
fn draw(seed: u64, id: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.to_le_bytes().iter().chain(id.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Mix the high bits down so that close ids do not give close draws.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl EncodingSim {
    /// Total encoding time of a source of `size` bytes.
    pub fn total(&self, size: u64) -> Duration {
        self.time + self.per_gb.mul_f64(size as f64 / GIB)
    }

    /// Whether video `id` fails to encode, for the dice seeded with `seed`.
    pub fn fails(&self, seed: u64, id: &str) -> bool {
        self.fail_rate > 0.0 && draw(seed, id) < self.fail_rate
    }

    /// The `encoding` member of a status answer: `completed` is when the source was complete
    /// (`None`: not yet), `size` its length.
    pub fn status(
        &self,
        seed: u64,
        id: &str,
        completed: Option<DateTime<Utc>>,
        size: u64,
        now: DateTime<Utc>,
    ) -> Encoding {
        let metadata = Some(SourceMetadata::default());
        let Some(completed) = completed else {
            return Encoding { playable: false, qualities: Vec::new(), metadata };
        };
        let total = self.total(size).as_secs_f64();
        let elapsed = (now - completed).to_std().unwrap_or_default().as_secs_f64();
        let fails = self.fails(seed, id);
        let n = QUALITIES.len() as f64;
        let mut playable = false;
        let qualities = QUALITIES
            .iter()
            .enumerate()
            .map(|(i, (kind, quality))| {
                let i = i as f64;
                // Starts spread over the first half, ends over the second.
                let start = total * 0.1 * (i + 1.0);
                let end = total * (0.5 + 0.5 * i / (n - 1.0));
                let status = if elapsed >= end {
                    if fails {
                        "failed"
                    } else {
                        playable = true;
                        "encoded"
                    }
                } else if elapsed >= start {
                    "encoding"
                } else {
                    "waiting"
                };
                Quality {
                    kind: Some((*kind).to_owned()),
                    quality: Some((*quality).to_owned()),
                    status: Some(status.to_owned()),
                }
            })
            .collect();
        Encoding { playable, qualities, metadata }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json(e: Encoding) -> Value {
        serde_json::to_value(e).unwrap()
    }

    fn statuses(v: &Value) -> Vec<&str> {
        let q = v["qualities"].as_array().unwrap();
        q.iter().map(|q| q["status"].as_str().unwrap()).collect()
    }

    #[test]
    fn states_follow_the_time_since_completion() {
        let sim = EncodingSim { time: Duration::from_secs(10), ..Default::default() };
        let done = Utc::now();
        let at =
            |s: i64| json(sim.status(0, "vi1", Some(done), 0, done + chrono::Duration::seconds(s)));
        assert_eq!(statuses(&at(0)), ["waiting"; 5]);
        assert_eq!(at(0)["playable"], false);
        assert_eq!(statuses(&at(2)), ["encoding", "encoding", "waiting", "waiting", "waiting"]);
        let half = at(5);
        assert_eq!(half["playable"], true);
        assert_eq!(statuses(&half)[0], "encoded");
        assert_eq!(statuses(&half)[4], "encoding");
        assert_eq!(statuses(&at(10)), ["encoded"; 5]);
        let none = json(sim.status(0, "vi1", None, 0, done));
        assert_eq!(none["playable"], false);
        assert!(none["qualities"].as_array().unwrap().is_empty());
    }

    #[test]
    fn zero_time_is_playable_at_once_and_size_adds_time() {
        let sim = EncodingSim::default();
        let now = Utc::now();
        assert!(sim.status(0, "vi", Some(now), 5, now).playable);
        let per_gb = EncodingSim { per_gb: Duration::from_secs(60), ..Default::default() };
        assert_eq!(per_gb.total(1 << 30), Duration::from_secs(60));
        assert_eq!(per_gb.total(1 << 29), Duration::from_secs(30));
    }

    #[test]
    fn the_fail_rate_picks_a_stable_share() {
        let sim = EncodingSim { fail_rate: 0.3, ..Default::default() };
        let failed = (0..1000).filter(|i| sim.fails(7, &format!("vi{i}"))).count();
        assert!((200..400).contains(&failed), "{failed}");
        assert_eq!(sim.fails(7, "viX"), sim.fails(7, "viX"));
        let now = Utc::now();
        let id = (0..).map(|i| format!("vi{i}")).find(|id| sim.fails(7, id)).unwrap();
        let v = json(sim.status(7, &id, Some(now), 0, now));
        assert_eq!(v["playable"], false);
        assert_eq!(statuses(&v), ["failed"; 5]);
        assert!(!EncodingSim::default().fails(7, &id));
    }
}
