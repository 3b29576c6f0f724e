//! Whether a request is still moving: the clock behind progress time-outs.
//!
//! A request's body reports each slice the connection takes ([`Watch::progress`]) and its end
//! ([`Watch::finish_body`]); the answer's arrival counts as progress too. [`Watch::stalled`]
//! completes once nothing has moved for the allowed time, so a request is judged by whether it
//! moves, never by how long it takes in all: a 128 MiB part on a 64 KiB/s uplink takes over half
//! an hour and is fine, a connection that stops taking bytes is cut after the time-out.
//!
//! "Taken" means taken by the kernel, which keeps up to a few MiB of a body in the socket's send
//! buffer and wakes the writer only when a third of it has drained; on a slow link that can be
//! seconds without a visible slice. So the allowed time is the time-out plus what the buffer may
//! hold of what was taken, drained at the slowest rate avbatch keeps working at. A peer that
//! stops acknowledging altogether is cut by the kernel itself (`TCP_USER_TIMEOUT`) after the
//! time-out.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The progress of one attempt of one request.
#[derive(Debug)]
pub struct Watch {
    last: Mutex<Instant>,
    taken: AtomicU64,
    body_done: AtomicBool,
}

/// The kernel may hold this much of a body after taking it: Linux grows a socket's send buffer
/// up to 4 MiB.
pub const SOCKET_BUFFER: u64 = 4 * 1024 * 1024;
/// The slowest rate that buffer is allowed to drain at before its silence counts as a stall.
pub const SLOWEST_DRAIN: u64 = 64 * 1024;

impl Watch {
    /// A watch started now; `has_body` false for requests whose small body goes out at once.
    pub fn new(has_body: bool) -> Watch {
        Watch { last: Mutex::new(Instant::now()), taken: AtomicU64::new(0), body_done: AtomicBool::new(!has_body) }
    }

    /// Something moved: `bytes` of the body were handed to the connection, or the answer came.
    pub fn progress(&self, bytes: u64) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.taken.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The connection took the last of the body.
    pub fn finish_body(&self) {
        self.progress(0);
        self.body_done.store(true, Ordering::SeqCst);
    }

    /// Whether the whole body was handed to the connection.
    pub fn body_done(&self) -> bool {
        self.body_done.load(Ordering::SeqCst)
    }

    /// How long nothing may move: `idle`, plus the time the kernel may need to send what it
    /// holds of the body at the slowest acceptable rate.
    pub fn allowance(&self, idle: Duration) -> Duration {
        let buffered = self.taken.load(Ordering::Relaxed).min(SOCKET_BUFFER);
        idle + Duration::from_secs_f64(buffered as f64 / SLOWEST_DRAIN as f64)
    }

    /// Completes once nothing moved for [`Watch::allowance`].
    pub async fn stalled(&self, idle: Duration) {
        loop {
            let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
            let deadline = last + self.allowance(idle);
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
        // A 256 KiB slice every 50 s for ten minutes, with a 60 s time-out: never stalled.
        let mover = tokio::spawn(async move {
            for _ in 0..12 {
                tokio::time::sleep(Duration::from_secs(50)).await;
                w.progress(256 * 1024);
            }
            w.finish_body();
        });
        let started = Instant::now();
        watch.stalled(Duration::from_secs(60)).await;
        mover.await.unwrap();
        assert!(watch.body_done());
        // 3 MiB were handed over: the kernel may still be sending them at 64 KiB/s, 48 s more.
        assert_eq!(started.elapsed(), Duration::from_secs(600 + 60 + 48));

        let still = Watch::new(true);
        let started = Instant::now();
        still.stalled(Duration::from_secs(60)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(60), "nothing taken: the time-out alone");
        assert_eq!(still.allowance(Duration::ZERO), Duration::ZERO);
        still.progress(1 << 30);
        assert_eq!(still.allowance(Duration::ZERO), Duration::from_secs(64), "at most 4 MiB at 64 KiB/s");
    }
}
