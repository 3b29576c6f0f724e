//! Whether a request is still moving: the clock behind progress time-outs.
//!
//! A request's body reports each slice the connection takes ([`Watch::progress`]) and its end
//! ([`Watch::finish_body`]); the answer's arrival counts as progress too. [`Watch::stalled`]
//! completes once nothing has moved for the allowed time, so a request is judged by whether it
//! moves, never by how long it takes in all: a 128 MiB part on a 64 KiB/s uplink takes over half
//! an hour and is fine, a connection that stops taking bytes is cut after the time-out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The progress of one attempt of one request.
#[derive(Debug)]
pub struct Watch {
    last: Mutex<Instant>,
    body_done: AtomicBool,
}

impl Watch {
    /// A watch started now; `has_body` false for requests whose small body goes out at once.
    pub fn new(has_body: bool) -> Watch {
        Watch { last: Mutex::new(Instant::now()), body_done: AtomicBool::new(!has_body) }
    }

    /// Something moved: a slice of the body was taken, or the answer arrived.
    pub fn progress(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// The connection took the last of the body.
    pub fn finish_body(&self) {
        self.progress();
        self.body_done.store(true, Ordering::SeqCst);
    }

    /// Whether the whole body was handed to the connection.
    pub fn body_done(&self) -> bool {
        self.body_done.load(Ordering::SeqCst)
    }

    /// Completes once nothing moved for `idle` while the body goes out, or for `answer` once it
    /// is all handed over (the kernel may still be sending its tail, and the server deciding).
    pub async fn stalled(&self, idle: Duration, answer: Duration) {
        loop {
            let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
            let limit = if self.body_done() { answer } else { idle };
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_moving_body_never_stalls_a_still_one_does() {
        let watch = std::sync::Arc::new(Watch::new(true));
        let w = watch.clone();
        // A slice every 50 s for ten minutes, with a 60 s time-out: never stalled.
        let mover = tokio::spawn(async move {
            for _ in 0..12 {
                tokio::time::sleep(Duration::from_secs(50)).await;
                w.progress();
            }
            w.finish_body();
        });
        let started = Instant::now();
        watch.stalled(Duration::from_secs(60), Duration::from_secs(90)).await;
        mover.await.unwrap();
        // Stalled only 90 s after the body ended (the answer allowance), not at 60 s.
        assert_eq!(started.elapsed(), Duration::from_secs(600 + 90));

        let still = Watch::new(true);
        let started = Instant::now();
        still.stalled(Duration::from_secs(60), Duration::from_secs(90)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }
}
