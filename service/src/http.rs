//! The API's accept loop, in place of `axum::serve`, which sets hyper no
//! timer (so no header or idle deadline) and accepts every connection: 300
//! idle sockets from anyone on the network once took the descriptors a
//! running job needed (issue 27). Here each connection holds a permit of a
//! bounded pool, is held to the deadlines in [`conn`], and at the cap the
//! oldest connection that has sent nothing is closed to make room.

mod conn;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, error, warn};

pub(crate) use conn::Deadlines;
use conn::{ConnState, Watched};

/// How often the cap is warned about while it is reached.
const CAP_WARNING_EVERY: Duration = Duration::from_secs(60);

/// The connections being served, oldest first, for eviction.
#[derive(Default)]
struct Conns(Mutex<BTreeMap<u64, Arc<ConnState>>>);

impl Conns {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ConnState>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the oldest connection that loses nothing by it; false when
    /// every connection is in the middle of a request.
    fn evict_oldest_idle(&self) -> bool {
        let map = self.map();
        match map.values().find(|c| c.evictable()) {
            Some(c) => {
                c.evict.cancel();
                true
            }
            None => false,
        }
    }
}

/// Takes a connection out of [`Conns`] when its task ends, however it ends.
struct Registered {
    conns: Arc<Conns>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.conns.map().remove(&self.id);
    }
}

/// Serves `router` on `listener` until `stop` is cancelled, then lets every
/// connection finish its request (each still held to its deadlines).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    deadlines: Deadlines,
    stop: CancellationToken,
) {
    let conns = Arc::new(Conns::default());
    let permits = Arc::new(Semaphore::new(max_connections));
    let tracker = TaskTracker::new();
    let mut warned: Option<Instant> = None;
    for id in 0u64.. {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if warned.is_none_or(|at| at.elapsed() >= CAP_WARNING_EVERY) {
                    warn!(
                        max_connections,
                        "the API is at its connection cap: idle connections are closed to make room, new ones wait"
                    );
                    warned = Some(Instant::now());
                }
                if !conns.evict_oldest_idle() {
                    debug!("every connection is mid-request; waiting for one to end");
                }
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = stop.cancelled() => break,
                }
            }
        };
        let state = ConnState::new();
        conns.map().insert(id, state.clone());
        let registered = Registered {
            conns: conns.clone(),
            id,
        };
        tracker.spawn(connection(
            stream,
            router.clone(),
            state,
            deadlines,
            stop.clone(),
            (permit, registered),
        ));
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// Serves one connection until it ends, misses a deadline or is evicted
/// (returning drops, and so closes, the socket).
async fn connection(
    stream: TcpStream,
    router: Router,
    state: Arc<ConnState>,
    deadlines: Deadlines,
    stop: CancellationToken,
    _held: (OwnedSemaphorePermit, Registered),
) {
    let handlers = state.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let handling = handlers.dispatch();
        let router = router.clone();
        async move {
            let response = router.oneshot(req).await;
            let responding = handling.responded();
            response.map(|r| {
                r.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _until_written = &responding;
                        frame
                    }))
                })
            })
        }
    });
    // hyper's own header timer starts when it begins waiting for a
    // request, idle time included: a backstop for what `conn` misses (a
    // partial request pipelined behind another).
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(deadlines.header + deadlines.idle)
        .serve_connection(TokioIo::new(Watched::new(stream, state.clone())), service);
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(tick(&deadlines));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut draining = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = state.evict.cancelled() => {
                debug!("connection closed to make room (at the connection cap)");
                return;
            }
            () = stop.cancelled(), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = tick.tick() => if let Some(why) = state.expired(&deadlines) {
                debug!(why, "connection closed");
                return;
            }
        }
    }
}

/// How often a connection's deadlines are checked: often enough that
/// none is overrun by more than a quarter.
fn tick(d: &Deadlines) -> Duration {
    (d.header.min(d.idle) / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// As hyper 0.14's server did: a connection that failed while queued is
/// skipped; anything else (descriptors exhausted) is logged and waited out
/// rather than spun on.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    error!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
