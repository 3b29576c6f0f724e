//! A run kept to the clock: the `--bandwidth` timetable followed as the day goes.

use std::sync::Arc;
use std::time::Duration;

use chrono::Timelike;

use crate::output::say;
use avbatch_core::limit::timetable::{Bandwidth, Entry, Timetable};
use avbatch_core::limit::Limiter;

/// How often the timetable is looked at.
const EVERY: Duration = Duration::from_secs(1);

/// Minutes after local midnight, now.
pub fn local_minute() -> u32 {
    let now = chrono::Local::now();
    now.hour() * 60 + now.minute()
}

/// Aborts its task when dropped.
pub struct Following(tokio::task::JoinHandle<()>);

impl Drop for Following {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// With a timetable, says the entry in force and keeps `limiter` to it until the returned guard
/// is dropped, saying each change; with one rate or none, nothing.
pub fn follow(limiter: &Arc<Limiter>, bandwidth: Option<&Bandwidth>) -> Option<Following> {
    let Some(Bandwidth::Timetable(table)) = bandwidth else { return None };
    let (limiter, table) = (limiter.clone(), table.clone());
    let mut current = table.in_force(local_minute());
    say(&in_force(&table, current));
    Some(Following(tokio::spawn(async move {
        loop {
            tokio::time::sleep(EVERY).await;
            let now = table.in_force(local_minute());
            if now != current {
                limiter.set_bandwidth(now.rate);
                say(&in_force(&table, now));
                current = now;
            }
        }
    })))
}

/// `--bandwidth timetable: 10.00 MiB/s (entry 08:00,10.00 MiB/s, until 19:00)`.
fn in_force(table: &Timetable, entry: Entry) -> String {
    let rate = match entry.rate {
        Some(rate) => format!("{}/s", indicatif::HumanBytes(rate)),
        None => "off (no limit)".to_owned(),
    };
    let entries = table.entries();
    let next =
        entries.iter().find(|e| e.at > entry.at).or(entries.first()).filter(|n| **n != entry);
    let until = next.map(|n| format!(", until {:02}:{:02}", n.at / 60, n.at % 60));
    format!("--bandwidth timetable: {rate} (entry {entry}{})", until.unwrap_or_default())
}
