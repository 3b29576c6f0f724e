//! The server's connections: how many the process can afford, which are idle, and closing them.
//!
//! Every connection holds a file descriptor, and so does every file the server opens (incoming
//! chunks, sources being served, records being replaced, the data folder when it is fsynced). At
//! start the soft `RLIMIT_NOFILE` is raised to the hard one and a share of it is kept for files;
//! the rest is the connection limit (issue #11, item 17: 1 100 idle sockets under `ulimit -n 1024`
//! used to stop the server with `accept failed: Too many open files`).
//!
//! At the limit, the connection that has been idle the longest (no request in flight) is closed to
//! make room before the next one is accepted; a connection with a request in flight never is. A
//! flood of idle sockets thus costs the oldest of them their connection, never the server its
//! ability to answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Most connections the server holds whatever the open-file limit: beyond this the table of
/// connections, not the descriptors, would be the cost.
const MAX_CONNECTIONS: usize = 1 << 20;

/// The share of the open-file limit kept for files rather than connections.
///
/// A request in flight holds at most one file open for long (an incoming chunk, or a source being
/// served) and one or two for microseconds (a record replaced atomically, a folder fsynced), and
/// clients keep most pooled connections idle. A quarter (at least 32: stdio, the runtime's
/// epoll and wakers, the listener, the signal pipe) lets a quarter of a full table stream files at
/// once; past that a file open fails with a 500 the client retries, and accept still never fails.
fn file_reserve(limit: usize) -> usize {
    (limit / 4).max(32)
}

/// Raises the soft open-file limit to the hard one and returns the number of connections the
/// server may hold: that limit less [`file_reserve`], at least 1.
pub fn connection_budget() -> usize {
    let limit = raise_nofile_limit().min(MAX_CONNECTIONS as u64 * 2) as usize;
    limit.saturating_sub(file_reserve(limit)).clamp(1, MAX_CONNECTIONS)
}

/// The soft `RLIMIT_NOFILE` after trying to raise it to the hard limit.
#[cfg(unix)]
// `rlim_t` is `u64` on Linux and macOS, not on every Unix.
#[allow(clippy::unnecessary_cast)]
fn raise_nofile_limit() -> u64 {
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `getrlimit` writes one `rlimit` that we own, for a resource that always exists.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut current) } != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "cannot read the open-file limit; assuming 1024"
        );
        return 1024;
    }
    if current.rlim_cur < current.rlim_max {
        let raised = libc::rlimit { rlim_cur: current.rlim_max, rlim_max: current.rlim_max };
        // SAFETY: `setrlimit` only reads the `rlimit` we pass. Raising the soft limit up to the
        // hard one needs no privilege; it fails harmlessly when the hard limit is "infinity" and
        // the kernel caps descriptors lower (Linux `nr_open`), and the old limit then stands.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return current.rlim_max as u64;
        }
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            soft = current.rlim_cur as u64,
            "cannot raise the open-file limit"
        );
    }
    current.rlim_cur as u64
}

#[cfg(not(unix))]
fn raise_nofile_limit() -> u64 {
    // Windows has no descriptor limit of this kind; 2 048 sockets is a modest default.
    2048
}

/// Every open connection of one server, and the limit on them.
#[derive(Debug)]
pub struct Conns {
    limit: usize,
    state: Mutex<State>,
    /// Woken when a connection closes or becomes idle: the accept loop waits on it for room.
    changed: Notify,
    /// Parent of every connection's close token, to close them all at once.
    all: CancellationToken,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    next_seq: u64,
    live: usize,
    /// Connections told to close to make room that have not closed yet.
    evicting: usize,
    /// Idle connections by when they became idle: the first has been idle the longest.
    idle: BTreeMap<u64, (u64, CancellationToken)>,
    entries: HashMap<u64, Entry>,
}

#[derive(Debug, Default)]
struct Entry {
    /// Its key in `idle` while it is idle.
    idle_seq: Option<u64>,
    evicted: bool,
}

impl State {
    fn make_idle(&mut self, id: u64, close: CancellationToken) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(entry) = self.entries.get_mut(&id).filter(|e| !e.evicted) {
            entry.idle_seq = Some(seq);
            self.idle.insert(seq, (id, close));
        }
    }

    /// Tells the connection idle the longest, other than `spare`, to close; `false` if none is.
    fn evict_oldest_idle(&mut self, spare: Option<u64>) -> bool {
        let Some(seq) =
            self.idle.iter().find(|(_, (id, _))| Some(*id) != spare).map(|(seq, _)| *seq)
        else {
            return false;
        };
        let Some((id, close)) = self.idle.remove(&seq) else { return false };
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.idle_seq = None;
            entry.evicted = true;
            self.evicting += 1;
        }
        close.cancel();
        tracing::debug!(conn = id, "closing the connection idle the longest to make room");
        true
    }
}

impl Conns {
    /// A table of at most `limit` connections.
    pub fn new(limit: usize) -> Arc<Conns> {
        Arc::new(Conns {
            limit: limit.max(1),
            state: Mutex::default(),
            changed: Notify::new(),
            all: CancellationToken::new(),
        })
    }

    /// The most connections held at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Connections open now.
    pub fn live(&self) -> usize {
        self.lock().live
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few counters and maps updated in one step each; a panic elsewhere while
        // the lock was held cannot leave it half-changed.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Once `newcomer` was registered: while the table holds more than the limit, closes the
    /// connection idle the longest (never the newcomer) and waits for it to go. Connections with a
    /// request in flight are left alone: with all of them busy, this waits for one to finish or
    /// close, and the newcomer waits unserved in the meantime.
    ///
    /// Room is made when a connection arrives, not ahead of it, so a full table of idle
    /// connections loses none of them until a new one needs its place; the newcomer's descriptor
    /// comes out of the reserve for files for that moment.
    pub async fn make_room(&self, newcomer: &Registration) {
        loop {
            {
                let mut s = self.lock();
                if s.live <= self.limit {
                    return;
                }
                while s.live - s.evicting > self.limit
                    && s.evict_oldest_idle(Some(newcomer.conn.id))
                {}
            }
            // `notify_one` keeps a permit when nobody waits yet, so a change between the unlock
            // and this await is not lost.
            self.changed.notified().await;
        }
    }

    /// After `accept` failed for want of descriptors (the reserve for files ran out): closes the
    /// connection idle the longest, and waits until a connection closes or a short while passed,
    /// so the retry neither spins nor waits for long.
    pub async fn relieve(&self) {
        let evicted = self.lock().evict_oldest_idle(None);
        let wait = if evicted { Duration::from_millis(500) } else { Duration::from_millis(100) };
        let _ = tokio::time::timeout(wait, self.changed.notified()).await;
    }

    /// Records a new connection, idle until its first request.
    pub fn register(self: &Arc<Self>) -> Registration {
        let close = self.all.child_token();
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        s.live += 1;
        s.entries.insert(id, Entry::default());
        s.make_idle(id, close.clone());
        drop(s);
        let conn = Arc::new(Conn {
            id,
            conns: self.clone(),
            close,
            timing: Mutex::new(Timing {
                accepted: Instant::now(),
                in_flight: 0,
                idle_since: None,
                head_started: None,
                parked_reader: None,
            }),
        });
        Registration { conn }
    }

    /// Tells every connection to close now.
    pub fn close_all(&self) {
        self.all.cancel();
    }

    /// Waits until every connection has closed, at most `limit`; the number still open.
    pub async fn wait_all_closed(&self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let live = self.live();
            if live == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, self.changed.notified()).await.is_err() {
                return self.live();
            }
        }
    }

    fn set_busy(&self, id: u64) {
        let mut s = self.lock();
        if let Some(seq) = s.entries.get_mut(&id).and_then(|e| e.idle_seq.take()) {
            s.idle.remove(&seq);
        }
    }

    fn set_idle(&self, id: u64, close: CancellationToken) {
        self.lock().make_idle(id, close);
        self.changed.notify_one();
    }

    fn remove(&self, id: u64) {
        let mut s = self.lock();
        if let Some(entry) = s.entries.remove(&id) {
            if let Some(seq) = entry.idle_seq {
                s.idle.remove(&seq);
            }
            if entry.evicted {
                s.evicting -= 1;
            }
            s.live -= 1;
        }
        drop(s);
        self.changed.notify_one();
    }
}

/// What the read watchdog needs to know of a connection's requests.
#[derive(Debug)]
struct Timing {
    accepted: Instant,
    in_flight: usize,
    /// When the last answer finished; `None` before the first one.
    idle_since: Option<Instant>,
    /// When the first byte of the next request head arrived.
    head_started: Option<Instant>,
    /// The task whose read waited while a request was in flight, woken when the connection goes
    /// idle so that its read starts the idle deadline (hyper does not read again by itself).
    parked_reader: Option<Waker>,
}

/// Limits on a connection that waits for its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A request head must be complete this long after its first byte, and a new connection must
    /// have sent its first complete head this long after it was accepted.
    pub head: Duration,
    /// A connection whose last answer went out this long ago, with no new request begun, is closed.
    pub idle: Duration,
    /// A request whose body the server waits for and that brings no byte for this long is cut.
    pub body: Duration,
}

/// One connection: its close switch, its kill switch, and whether a request is in flight.
#[derive(Debug)]
pub struct Conn {
    id: u64,
    conns: Arc<Conns>,
    close: CancellationToken,
    timing: Mutex<Timing>,
}

impl Conn {
    fn timing(&self) -> MutexGuard<'_, Timing> {
        // Plain values, each set in one step: a poisoned lock holds nothing half-written.
        self.timing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a request in flight until the guard is dropped (after its answer was written).
    pub fn begin_request(self: &Arc<Self>) -> RequestGuard {
        let mut t = self.timing();
        t.in_flight += 1;
        t.head_started = None;
        let first = t.in_flight == 1;
        drop(t);
        if first {
            self.conns.set_busy(self.id);
        }
        RequestGuard { conn: self.clone() }
    }

    /// Notes that bytes arrived from the client: while idle, they start a request head.
    pub fn saw_bytes(&self) {
        let mut t = self.timing();
        if t.in_flight == 0 && t.head_started.is_none() {
            t.head_started = Some(Instant::now());
        }
    }

    /// When a read still waiting must give up: `None` while a request is in flight (its body has
    /// its own limit, and the server may take its time to answer); `waker` is then woken once the
    /// connection goes idle, so the read can ask again.
    pub fn read_deadline(&self, timeouts: &Timeouts, waker: &Waker) -> Option<Instant> {
        let mut t = self.timing();
        if t.in_flight > 0 {
            if !t.parked_reader.as_ref().is_some_and(|w| w.will_wake(waker)) {
                t.parked_reader = Some(waker.clone());
            }
            return None;
        }
        Some(match (t.head_started, t.idle_since) {
            (Some(start), _) => start + timeouts.head,
            (None, None) => t.accepted + timeouts.head,
            (None, Some(idle)) => idle + timeouts.idle,
        })
    }

    /// Closes the connection now (the server side): the socket is dropped, whatever is in flight.
    pub fn close(&self) {
        self.close.cancel();
    }

    /// Completes once the connection was told to close (evicted, timed out, or shut down).
    pub async fn closed(&self) {
        self.close.cancelled().await;
    }
}

/// A request in flight on a connection; dropping it makes the connection idle again.
#[derive(Debug)]
pub struct RequestGuard {
    conn: Arc<Conn>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut t = self.conn.timing();
        t.in_flight -= 1;
        let idle = t.in_flight == 0;
        let mut reader = None;
        if idle {
            t.idle_since = Some(Instant::now());
            reader = t.parked_reader.take();
        }
        drop(t);
        if idle {
            self.conn.conns.set_idle(self.conn.id, self.conn.close.clone());
        }
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}

/// A connection's place in the table; dropping it (after the socket) frees the place.
#[derive(Debug)]
pub struct Registration {
    conn: Arc<Conn>,
}

impl Registration {
    /// The connection.
    pub fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.conn.conns.remove(self.conn.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_idle_connection_makes_room_and_a_busy_one_never_does() {
        let conns = Conns::new(3);
        let a = conns.register();
        let b = conns.register();
        let c = conns.register();
        // A full table loses nothing until a connection arrives.
        let busy = a.conn().begin_request();
        drop(b.conn().begin_request());
        let d = conns.register();
        let making_room = tokio::spawn({
            let conns = conns.clone();
            async move {
                conns.make_room(&d).await;
                d
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!a.conn().close.is_cancelled(), "a request in flight is never evicted");
        assert!(
            c.conn().close.is_cancelled(),
            "c was idle the longest (since it was accepted; b made a request later)"
        );
        assert!(!b.conn().close.is_cancelled(), "one connection is closed, not more");
        assert!(!making_room.is_finished(), "room is made once the closed connection is gone");
        drop(c);
        let d = making_room.await.unwrap();
        assert_eq!(conns.live(), 3);

        // Full again with every connection but the newcomer busy: the newcomer waits, unserved.
        let b_busy = b.conn().begin_request();
        let d_busy = d.conn().begin_request();
        let e = conns.register();
        let waiting = tokio::spawn({
            let conns = conns.clone();
            async move {
                conns.make_room(&e).await;
                e
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "nothing idle to close: the newcomer waits");
        drop(b_busy);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(b.conn().close.is_cancelled(), "b went idle and was closed to make room");
        drop(b);
        let e = waiting.await.unwrap();
        assert!(
            !a.conn().close.is_cancelled()
                && !d.conn().close.is_cancelled()
                && !e.conn().close.is_cancelled()
        );
        drop((busy, d_busy));
    }

    #[tokio::test(start_paused = true)]
    async fn read_deadlines_follow_the_request_cycle() {
        let timeouts = Timeouts {
            head: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            body: Duration::from_secs(60),
        };
        let conns = Conns::new(10);
        let reg = conns.register();
        let conn = reg.conn();
        let start = Instant::now();
        assert_eq!(
            conn.read_deadline(&timeouts, std::task::Waker::noop()),
            Some(start + timeouts.head),
            "a new connection must send a head soon"
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        let request = conn.begin_request();
        assert_eq!(
            conn.read_deadline(&timeouts, std::task::Waker::noop()),
            None,
            "no read limit while a request is in flight"
        );
        tokio::time::advance(Duration::from_secs(100)).await;
        drop(request);
        let idle = Instant::now();
        assert_eq!(
            conn.read_deadline(&timeouts, std::task::Waker::noop()),
            Some(idle + timeouts.idle),
            "idle keep-alive"
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        conn.saw_bytes();
        assert_eq!(
            conn.read_deadline(&timeouts, std::task::Waker::noop()),
            Some(idle + Duration::from_secs(5) + timeouts.head),
            "a head once begun"
        );
    }

    #[test]
    fn the_budget_keeps_a_reserve_for_files() {
        assert_eq!(1024 - file_reserve(1024), 768);
        assert_eq!(file_reserve(64), 32);
        assert!(connection_budget() >= 1);
    }
}
