//! Connections that cannot take the double down (issue #11, item 17), in-process: at the
//! connection limit the connection idle the longest makes room (never one with a request in
//! flight), and idle, header-less and stalled connections are closed after their time-outs
//! while slow clients are not. What needs the `avbatch serve` process (its open-file limit,
//! SIGTERM) is in the binary's `tests/server_connections.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use avbatch_serve::testing::{
    closed_within, get_videos, multipart_file, pattern, read_answer, spawn_server_with,
    upload_head, MIB,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_limit_the_oldest_idle_connection_makes_room_never_a_busy_one() {
    let s = spawn_server_with(|c| c.connections.max_connections = Some(6)).await;
    let addr: SocketAddr = s.url.strip_prefix("http://").unwrap().parse().unwrap();
    let id = s.create_video("busy").await;

    // The oldest connection has a request in flight: an upload whose body trickles in.
    let data = pattern(64 * 1024, 9);
    let (ct, body) = multipart_file("file", "busy.mp4", &data);
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(upload_head(&id, &ct, body.len()).as_bytes()).await.unwrap();
    busy.write_all(&body[..1000]).await.unwrap();
    // Then idle ones: one that made a request (keep-alive) and four that never sent a byte.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get_videos(&mut kept).await.unwrap(), 200);
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(addr).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The table is full (6: the test client's pooled connection from `create_video` too). Each
    // new connection closes the one idle the longest: the pooled one, `kept`, then `silent[0]`.
    let mut fresh = Vec::new();
    for round in 0..2 {
        let start = Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        assert_eq!(get_videos(&mut s).await.unwrap(), 200, "round {round}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "round {round} waited {:?}",
            start.elapsed()
        );
        fresh.push(s);
    }
    assert!(
        closed_within(&mut kept, Duration::from_secs(2)).await,
        "the keep-alive connection was idle the longest"
    );
    assert!(
        closed_within(&mut silent[0], Duration::from_secs(2)).await,
        "then the first silent one"
    );
    for (i, s) in silent.iter_mut().enumerate().skip(1) {
        assert!(
            !closed_within(s, Duration::from_millis(100)).await,
            "silent connection {i} was not needed"
        );
    }
    // The busy upload was never touched: its body completes and it is answered 201.
    busy.write_all(&body[1000..]).await.unwrap();
    assert_eq!(read_answer(&mut busy).await.expect("the busy upload is answered"), 201);
    assert!(s.source_of(&id).await == data);
}

// ---------------------------------------------------------------------------------------------
// Time-outs
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_idle_and_body_time_outs_close_connections_but_not_slow_clients() {
    let s = spawn_server_with(|c| {
        c.connections.head_timeout = Duration::from_secs(1);
        c.connections.idle_timeout = Duration::from_secs(3);
        c.connections.body_timeout = Duration::from_secs(1);
    })
    .await;
    let addr: SocketAddr = s.url.strip_prefix("http://").unwrap().parse().unwrap();
    let slack = Duration::from_millis(700);

    // A connection that sends nothing: closed at the head time-out.
    let start = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(1) + slack).await,
        "a header-less connection is closed"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "not before the head time-out: {:?}",
        start.elapsed()
    );

    // Slowloris: a head that keeps coming, a byte every 200 ms, never complete.
    let mut loris = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    let dripping = async {
        for b in
            b"GET /videos HTTP/1.1\r\nHost: x\r\nX-Drip: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                .iter()
        {
            if loris.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), dripping).await;
    assert!(
        closed_within(&mut loris, Duration::from_millis(100)).await,
        "a head dripping for {:?} is cut",
        start.elapsed()
    );
    assert!(
        start.elapsed() < Duration::from_secs(1) + slack + Duration::from_millis(300),
        "cut at the head time-out: {:?}",
        start.elapsed()
    );

    // Keep-alive: still usable after longer than the head time-out, closed after the idle one.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get_videos(&mut kept).await.unwrap(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        get_videos(&mut kept).await.unwrap(),
        200,
        "an idle keep-alive connection outlives the head time-out"
    );
    let start = Instant::now();
    assert!(
        closed_within(&mut kept, Duration::from_secs(3) + slack).await,
        "an idle keep-alive connection is closed"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(2800),
        "not before the idle time-out: {:?}",
        start.elapsed()
    );

    // A body that stops: cut at the body time-out, nothing stored.
    let id = s.create_video("stalled").await;
    let data = pattern(MIB, 4);
    let (ct, body) = multipart_file("file", "stalled.mp4", &data);
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(upload_head(&id, &ct, body.len()).as_bytes()).await.unwrap();
    stalled.write_all(&body[..100 * 1024]).await.unwrap();
    let start = Instant::now();
    assert!(
        closed_within(&mut stalled, Duration::from_secs(1) + slack).await,
        "a stalled body is cut"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "not before the body time-out: {:?}",
        start.elapsed()
    );
    assert_eq!(
        s.status_of(&id).await["ingest"].get("status"),
        None,
        "nothing of the stalled body is stored"
    );

    // A body that trickles (8 KiB/s, pauses of 250 ms, under the 1 s time-out) for 3 s goes
    // through.
    let data = pattern(24 * 1024, 5);
    let (ct, body) = multipart_file("file", "slow.mp4", &data);
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(upload_head(&id, &ct, body.len()).as_bytes()).await.unwrap();
    for piece in body.chunks(2048) {
        slow.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(read_answer(&mut slow).await.expect("the slow upload is answered"), 201);
    assert!(s.source_of(&id).await == data);
}
