//! The listening socket: `TCP_NODELAY`, per-connection bandwidth caps and injected resets.
//!
//! Every accepted connection gets `TCP_NODELAY` (small answers must not wait for Nagle and the
//! peer's delayed ACK; official-clients.md §2.4). With `--bandwidth`, reads and writes are paced
//! to the cap. Each connection carries a kill switch that the upload handler flips to cut a body
//! part-way (`--reset-rate`); the handler finds it through [`ConnMeta`] in the request extensions.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// A TCP listener that hands out [`FaultyStream`]s.
pub struct FaultyListener {
    inner: TcpListener,
    bandwidth: Option<u64>,
}

impl FaultyListener {
    /// Wraps a bound listener; `bandwidth` caps each connection, each way, in bytes per second.
    pub fn new(inner: TcpListener, bandwidth: Option<u64>) -> Self {
        FaultyListener { inner, bandwidth: bandwidth.filter(|b| *b > 0) }
    }
}

impl Listener for FaultyListener {
    type Io = FaultyStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::warn!(%e, "could not set TCP_NODELAY");
                    }
                    return (FaultyStream::new(stream, self.bandwidth), addr);
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::error!(%e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

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

impl Connected<IncomingStream<'_, FaultyListener>> for ConnMeta {
    fn connect_info(stream: IncomingStream<'_, FaultyListener>) -> Self {
        ConnMeta { remote: *stream.remote_addr(), kill: stream.io().kill.clone() }
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

/// A TCP stream with optional pacing and a kill switch.
pub struct FaultyStream {
    inner: TcpStream,
    read_pacer: Option<Pacer>,
    write_pacer: Option<Pacer>,
    kill: Arc<AtomicBool>,
}

impl FaultyStream {
    fn new(inner: TcpStream, bandwidth: Option<u64>) -> Self {
        FaultyStream {
            inner,
            read_pacer: bandwidth.map(Pacer::new),
            write_pacer: bandwidth.map(Pacer::new),
            kill: Arc::new(AtomicBool::new(false)),
        }
    }

    fn check_kill(&self) -> io::Result<()> {
        if self.kill.load(Ordering::SeqCst) {
            // Zero linger turns the close into a RST, as a real dropped connection looks.
            let _ = socket2::SockRef::from(&self.inner).set_linger(Some(Duration::ZERO));
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset (injected fault)"));
        }
        Ok(())
    }
}

impl AsyncRead for FaultyStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_kill()?;
        let Some(pacer) = this.read_pacer.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        ready!(pacer.poll_ready(cx));
        let max = pacer.slice().min(buf.remaining());
        // Read at most one slice: a bounded scratch buffer keeps this free of unsafe code, and
        // a capped link is slow enough that the copy does not matter.
        let mut scratch = vec![0u8; max];
        let mut limited = ReadBuf::new(&mut scratch);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        buf.put_slice(limited.filled());
        pacer.spent(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for FaultyStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
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

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
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
