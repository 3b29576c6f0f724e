//! The accept loop and each connection's life: hyper driven directly, so the server knows every
//! connection, what it is doing, and can close it.
//!
//! `axum::serve` keeps no handle on its connections: it could not close idle ones to make room,
//! time out a client that never sends a head, or end a graceful shutdown that a client holds open
//! (issue #11, item 17). Here each accepted socket is registered in [`Conns`], served by hyper's
//! HTTP/1 connection with the router as its service, and raced against its close switch:
//!
//! - a request head must arrive in time, and an idle keep-alive connection is closed after a
//!   while ([`net`](super::net)'s read watchdog);
//! - a request body that stops arriving is cut ([`WatchedBody`]);
//! - past the connection limit the connection idle the longest is closed ([`Conns::make_room`]);
//! - on shutdown, accepting stops, every connection finishes the request it is serving (hyper's
//!   graceful shutdown closes idle ones at once), and after the grace period whatever is still
//!   open is closed.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

use super::config::ConnectionConfig;
use super::conns::{self, Conn, Conns, RequestGuard, Timeouts};
use super::net::FaultyStream;

/// Longest a server waits, once the grace period is over and every connection was told to close,
/// for the connection tasks to drop their sockets (they do so as soon as they are polled).
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown` completes, then shuts down within
/// `config.shutdown_grace` (plus a moment to close what is left).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ConnectionConfig,
    bandwidth: Option<u64>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limit = config.max_connections.unwrap_or_else(conns::connection_budget);
    let conns = Conns::new(limit);
    tracing::info!(max_connections = limit, "accepting connections");
    let draining = CancellationToken::new();
    let service = TowerToHyperService::new(router);
    let shared = Arc::new(Shared {
        service,
        timeouts: config.timeouts(),
        bandwidth,
        draining: draining.clone(),
    });
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let registration = conns.register();
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = conns.make_room(&registration) => {}
                    }
                    tokio::spawn(serve_connection(shared.clone(), stream, remote, registration));
                }
                Err(e) if out_of_descriptors(&e) => {
                    // The reserve for files ran out after all: free a descriptor, then retry.
                    tracing::warn!(
                        %e,
                        live = conns.live(),
                        "accept failed: closing an idle connection to make room"
                    );
                    conns.relieve().await;
                }
                // A connection that failed between the handshake and accept (reset, aborted): the
                // next one is unaffected.
                Err(e) => tracing::debug!(%e, "accept failed"),
            },
        }
    }
    drop(listener);
    let open = conns.live();
    tracing::info!(
        open,
        grace = ?config.shutdown_grace,
        "stopped accepting; finishing requests in flight"
    );
    draining.cancel();
    let left = conns.wait_all_closed(config.shutdown_grace).await;
    if left > 0 {
        tracing::info!(left, "closing the connections still open after the grace period");
        conns.close_all();
        let stuck = conns.wait_all_closed(CLOSE_WAIT).await;
        if stuck > 0 {
            tracing::warn!(stuck, "connections still open at exit");
        }
    }
    Ok(())
}

fn out_of_descriptors(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// What every connection of one server shares.
struct Shared {
    service: TowerToHyperService<Router>,
    timeouts: Timeouts,
    bandwidth: Option<u64>,
    /// Cancelled when the server shuts down: each connection finishes its request, then closes.
    draining: CancellationToken,
}

/// Serves one connection until it ends or is told to close.
async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    remote: SocketAddr,
    registration: conns::Registration,
) {
    let conn = registration.conn().clone();
    let io = FaultyStream::new(stream, shared.bandwidth, conn.clone(), shared.timeouts);
    let meta = io.meta(remote);
    let body_timeout = shared.timeouts.body;
    let service = {
        let shared = shared.clone();
        let conn = conn.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let guard = conn.begin_request();
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(ConnectInfo(meta.clone()));
            let body = Body::new(WatchedBody::new(body, body_timeout, conn.clone()));
            let answer =
                hyper::service::Service::call(&shared.service, Request::from_parts(parts, body));
            async move {
                let Ok(response) = answer.await;
                // The request stays in flight until its answer has been written to the end.
                Ok::<_, Infallible>(
                    response.map(|body| Body::new(GuardedBody { inner: body, _guard: guard })),
                )
            }
        })
    };
    // Boxed rather than pinned on the stack, so that it (and the socket) can be dropped before
    // the registration below.
    let mut http = Box::pin(
        hyper::server::conn::http1::Builder::new()
            // The read watchdog times heads out, telling a head apart from an idle keep-alive
            // wait; hyper's own timer would count both from the end of the last answer.
            .header_read_timeout(None)
            .serve_connection(TokioIo::new(io), service),
    );
    let mut draining = false;
    loop {
        tokio::select! {
            result = http.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%remote, error = %e, "connection ended");
                }
                break;
            }
            () = conn.closed() => break,
            () = shared.draining.cancelled(), if !draining => {
                draining = true;
                http.as_mut().graceful_shutdown();
            }
        }
    }
    // The socket closes here, before the connection leaves the table, so the count of live
    // connections never undercounts open descriptors.
    drop(http);
    drop(registration);
}

/// A request body that gives up when its client stops sending: once the handler waits for more
/// and none arrives within the body timeout, the connection is closed and the handler reads an
/// error. Time spent by the handler between two reads (writing to disk, say) does not count.
struct WatchedBody {
    inner: Incoming,
    timeout: Duration,
    conn: Arc<Conn>,
    /// Made the first time the handler waits, so that bodies that are there at once (and GETs
    /// without one) cost no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl WatchedBody {
    fn new(inner: Incoming, timeout: Duration, conn: Arc<Conn>) -> Self {
        WatchedBody { inner, timeout, conn, sleep: None, armed: false }
    }
}

/// The error a handler reads from a body whose client stopped sending.
#[derive(Debug, thiserror::Error)]
#[error("no body bytes for {0:?}: the connection was closed")]
struct BodyStalled(Duration);

impl hyper::body::Body for WatchedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + this.timeout;
                let sleep =
                    this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !this.armed {
                    this.armed = true;
                    sleep.as_mut().reset(deadline);
                }
                if sleep.as_mut().poll(cx).is_ready() {
                    tracing::debug!(
                        timeout = ?this.timeout,
                        "request body stalled: closing the connection"
                    );
                    this.conn.close();
                    return Poll::Ready(Some(Err(BodyStalled(this.timeout).into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body that keeps its request in flight until it has been sent (or dropped).
struct GuardedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl hyper::body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
