//! Whether a request is still moving: the clock behind progress time-outs.
//!
//! A request's body reports each slice the connection takes ([`Watch::progress`]) and its end
//! ([`Watch::finish_body`]); the answer's arrival counts as progress too. [`Watch::stalled`]
//! completes once nothing has moved for the allowed time, so a request is judged by whether it
//! moves, never by how long it takes in all: a 128 MiB part on a 64 KiB/s uplink takes over half
//! an hour and is fine, a connection that stops taking bytes is cut after the time-out.
//!
//! "Taken" means taken by the kernel, which keeps up to a few MiB of a body in the socket's send
//! buffer (and a slow peer as much in its receive buffer) and wakes the writer only when a third
//! of it has drained; on a slow link that can be seconds without a visible slice. So the allowed
//! time is the time-out plus the time the buffers may need to drain what was taken: at the rate
//! the body moved once the buffers could be full (past its first 4 MiB), or, before that, at
//! the slowest rate avbatch keeps working at. A fast connection that stops is cut after about
//! the time-out; a slow one gets the time its buffers need. A peer that stops acknowledging
//! altogether is cut by the kernel itself (`TCP_USER_TIMEOUT`) after the time-out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The progress of one attempt of one request.
#[derive(Debug)]
pub struct Watch {
    moves: Mutex<Moves>,
    body_done: AtomicBool,
}

/// When the request last moved, and how fast it moved once the buffers could be full.
#[derive(Debug, Clone, Copy)]
struct Moves {
    last: Instant,
    taken: u64,
    /// When the body passed [`SOCKET_BUFFER`] bytes, and its bytes then.
    steady: Option<(Instant, u64)>,
}

/// The kernel may hold this much of a body after taking it: Linux grows a socket's send buffer
/// up to 4 MiB.
pub const SOCKET_BUFFER: u64 = 4 * 1024 * 1024;
/// The slowest rate that buffer is allowed to drain at before its silence counts as a stall.
pub const SLOWEST_DRAIN: u64 = 64 * 1024;

impl Watch {
    /// A watch started now; `has_body` false for requests whose small body goes out at once.
    pub fn new(has_body: bool) -> Watch {
        let moves = Moves { last: Instant::now(), taken: 0, steady: None };
        Watch { moves: Mutex::new(moves), body_done: AtomicBool::new(!has_body) }
    }

    fn moves(&self) -> std::sync::MutexGuard<'_, Moves> {
        self.moves.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Something moved: `bytes` of the body were handed to the connection, or the answer came.
    pub fn progress(&self, bytes: u64) {
        let mut m = self.moves();
        m.last = Instant::now();
        m.taken += bytes;
        if m.steady.is_none() && m.taken > SOCKET_BUFFER {
            m.steady = Some((m.last, m.taken));
        }
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

    /// How long nothing may move: `idle`, plus the time the buffers may need to drain what was
    /// taken (see the module's documentation).
    pub fn allowance(&self, idle: Duration) -> Duration {
        Self::allow(&self.moves(), idle)
    }

    fn allow(m: &Moves, idle: Duration) -> Duration {
        // A second, or a MiB, of steady movement is enough to tell a link's rate.
        let steady = m.steady.map(|(at, bytes)| {
            (m.last.saturating_duration_since(at).as_secs_f64(), m.taken - bytes)
        });
        let rate = match steady {
            Some((secs, bytes)) if secs > 0.0 && (secs >= 1.0 || bytes >= 1 << 20) => {
                (bytes as f64 / secs).max(SLOWEST_DRAIN as f64)
            }
            _ => SLOWEST_DRAIN as f64,
        };
        idle + Duration::from_secs_f64(m.taken.min(SOCKET_BUFFER) as f64 / rate)
    }

    /// Completes once nothing moved for [`Watch::allowance`].
    pub async fn stalled(&self, idle: Duration) {
        loop {
            let (last, allowance) = {
                let m = self.moves();
                (m.last, Self::allow(&m, idle))
            };
            let deadline = last + allowance;
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
        // 3 MiB were handed over, slower than 64 KiB/s: the kernel may still be sending them at
        // that rate, 48 s more.
        assert_eq!(started.elapsed(), Duration::from_secs(600 + 60 + 48));

        let still = Watch::new(true);
        let started = Instant::now();
        still.stalled(Duration::from_secs(60)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(60), "nothing taken: the time-out alone");
        assert_eq!(still.allowance(Duration::ZERO), Duration::ZERO);
        // A burst that could all sit in buffers: drained at the slowest rate, 64 s for 4 MiB.
        still.progress(8 << 20);
        assert_eq!(still.allowance(Duration::ZERO), Duration::from_secs(64));
        // Then 64 MiB more in 2 s: the link moves 32 MiB/s, and drains 4 MiB in an eighth of a
        // second.
        tokio::time::advance(Duration::from_secs(2)).await;
        still.progress(64 << 20);
        assert_eq!(still.allowance(Duration::ZERO), Duration::from_millis(125));
        // Never faster than 64 KiB/s is assumed.
        let slow = Watch::new(true);
        slow.progress(5 << 20);
        tokio::time::advance(Duration::from_secs(100)).await;
        slow.progress(1 << 20);
        assert_eq!(slow.allowance(Duration::ZERO), Duration::from_secs(64));
    }
}
