//! One connection's socket: `TCP_NODELAY`, bandwidth caps, injected resets and the read watchdog.
//!
//! Every accepted connection gets `TCP_NODELAY` (small answers must not wait for Nagle and the
//! peer's delayed ACK; official-clients.md §2.4). With `--bandwidth`, reads and writes are paced
//! to the cap. Each connection carries a kill switch that the upload handler flips to cut a body
//! part-way (`--reset-rate`); the handler finds it through [`ConnMeta`] in the request extensions.
//!
//! The read watchdog closes a connection that keeps the server waiting for a request head: hyper
//! reads whenever it waits for one, so a read still pending at the head or idle deadline of
//! [`Conn::read_deadline`] fails with `TimedOut` and hyper drops the connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::conns::{Conn, Timeouts};

/// What a handler may know of its connection.
#[derive(Debug, Clone)]
pub struct ConnMeta {
    /// The peer.
    pub remote: SocketAddr,
    kill: Arc<AtomicBool>,
}

impl ConnMeta {
    /// Drops the connection: every further read or write on it fails, and the socket is closed
    /// with a reset.
    pub fn kill(&self) {
        self.kill.store(true, Ordering::SeqCst);
    }
}

/// The time one paced transfer may take at most.
const SLICE_TIME: Duration = Duration::from_millis(20);

/// Paces one direction of a connection to `rate` bytes per second.
struct Pacer {
    rate: u64,
    next: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Pacer {
    fn new(rate: u64) -> Self {
        Pacer { rate, next: Instant::now(), sleep: None }
    }

    /// Largest transfer allowed at once: [`SLICE_TIME`] worth, so the pace stays smooth.
    fn slice(&self) -> usize {
        ((self.rate as u128 * SLICE_TIME.as_millis()) / 1000).clamp(1, 1 << 20) as usize
    }

    /// Ready when the next transfer may start.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.next {
            self.sleep = None;
            return Poll::Ready(());
        }
        let next = self.next;
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(next)));
        sleep.as_mut().reset(next);
        ready!(sleep.as_mut().poll(cx));
        self.sleep = None;
        Poll::Ready(())
    }

    /// Books `n` bytes. A transfer that starts late (timers wake on the millisecond, and a read
    /// waits for the peer) may catch up on up to one slice of the time it lost, so the cap is
    /// the rate asked for and not a few percent under it, while an idle connection still earns
    /// no burst beyond that slice.
    fn spent(&mut self, n: usize) {
        let now = Instant::now();
        let cost = Duration::from_secs_f64(n as f64 / self.rate as f64);
        let catch_up = now.checked_sub(SLICE_TIME).unwrap_or(now);
        self.next = self.next.max(catch_up) + cost;
    }
}

/// A TCP stream with optional pacing, a kill switch and a read watchdog.
pub struct FaultyStream {
    inner: TcpStream,
    read_pacer: Option<Pacer>,
    write_pacer: Option<Pacer>,
    kill: Arc<AtomicBool>,
    conn: Arc<Conn>,
    timeouts: Timeouts,
    watchdog: Option<Pin<Box<Sleep>>>,
}

impl FaultyStream {
    /// Wraps an accepted stream of `conn`; `bandwidth` caps it each way, in bytes per second.
    pub fn new(
        inner: TcpStream,
        bandwidth: Option<u64>,
        conn: Arc<Conn>,
        timeouts: Timeouts,
    ) -> Self {
        if let Err(e) = inner.set_nodelay(true) {
            tracing::warn!(%e, "could not set TCP_NODELAY");
        }
        let bandwidth = bandwidth.filter(|b| *b > 0);
        FaultyStream {
            inner,
            read_pacer: bandwidth.map(Pacer::new),
            write_pacer: bandwidth.map(Pacer::new),
            kill: Arc::new(AtomicBool::new(false)),
            conn,
            timeouts,
            watchdog: None,
        }
    }

    /// What handlers get to know of this connection, with its kill switch.
    pub fn meta(&self, remote: SocketAddr) -> ConnMeta {
        ConnMeta { remote, kill: self.kill.clone() }
    }

    /// While a read waits: fails once the connection's read deadline has passed, else arranges to
    /// be woken at it.
    fn poll_watchdog(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(deadline) = self.conn.read_deadline(&self.timeouts, cx.waker()) else {
            return Ok(());
        };
        let sleep =
            self.watchdog.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        if sleep.as_mut().poll(cx).is_ready() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no request head in time"));
        }
        Ok(())
    }

    fn poll_read_paced(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(pacer) = self.read_pacer.as_mut() else {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        };
        ready!(pacer.poll_ready(cx));
        let max = pacer.slice().min(buf.remaining());
        // Read at most one slice: a bounded scratch buffer keeps this free of unsafe code, and
        // a capped link is slow enough that the copy does not matter.
        let mut scratch = vec![0u8; max];
        let mut limited = ReadBuf::new(&mut scratch);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        buf.put_slice(limited.filled());
        pacer.spent(n);
        Poll::Ready(Ok(()))
    }

    fn check_kill(&self) -> io::Result<()> {
        if self.kill.load(Ordering::SeqCst) {
            // Zero linger turns the close into a RST, as a real dropped connection looks.
            let _ = socket2::SockRef::from(&self.inner).set_linger(Some(Duration::ZERO));
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset (injected fault)",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for FaultyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_kill()?;
        let before = buf.filled().len();
        match this.poll_read_paced(cx, buf) {
            Poll::Pending => {
                this.poll_watchdog(cx)?;
                Poll::Pending
            }
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.conn.saw_bytes();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for FaultyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_kill()?;
        let Some(pacer) = this.write_pacer.as_mut() else {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        };
        ready!(pacer.poll_ready(cx));
        let max = pacer.slice().min(data.len());
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &data[..max]))?;
        pacer.spent(n);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.write_pacer.is_some() {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &**b);
            return Pin::new(this).poll_write(cx, first);
        }
        this.check_kill()?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_kill()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
