//! Vigil's live feed (issue 17, `docs/feed.md`): the ward's snapshot and live updates over
//! WebSocket (RFC 6455) for central stations and integration engines, and their
//! acknowledge / audio pause commands back to the bedside.
//!
//! - **Transport**: `wss://` (rustls with ring, the workspace's one TLS stack) when the site
//!   gives a certificate and key; otherwise plain `ws://`, and then only on a loopback
//!   address (development, tests, a local proxy).
//! - **Authentication** before any data: `Authorization: Bearer <token>` (RFC 6750 §2.1) or,
//!   for browsers that cannot set headers on a WebSocket, the subprotocol `bearer.<token>`
//!   beside `vigil.feed.v1`. Compared in constant time; no token configured, no feed.
//! - **Per client**: its own [`Vigil::stream_updates`] (250 ms batches, alarms at once), a
//!   bounded queue ([`FeedConfig::queue`]) the stream never waits on: when it is full the
//!   queued updates are replaced by one fresh snapshot (latest values only); a socket that
//!   takes nothing for [`FeedConfig::stall_timeout`] is closed with 1008 "too slow". The
//!   bedside, the store and the other clients never wait on a client.
//! - `seq` is per connection, assigned as a message is written: dropped updates leave no gap.
//!
//! Logs name peers and counts, never patient data.

use futures_util::{SinkExt, StreamExt};
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use vigil_core::auth::RemoteSession;
use vigil_core::feed::{BedFilter, FeedCommand, FeedMessage, StationInfo, CENTRAL_ORIGIN, SCHEMA};
use vigil_core::site::FeedSite;
use vigil_core::view::WardUpdate;
use vigil_core::Vigil;

/// The feed's one path.
pub const PATH: &str = "/feed";
/// The subprotocol a browser offers (with `bearer.<token>`); the server answers with it.
pub const SUBPROTOCOL: &str = "vigil.feed.v1";
/// The environment variable the token comes from unless the site names another.
pub const TOKEN_ENV: &str = "VIGIL_FEED_TOKEN";
/// A token shorter than this is refused at start: it could be guessed.
pub const TOKEN_MIN: usize = 16;
/// Connections served at once (a ward's central stations and engines, with room to spare).
pub const MAX_CLIENTS: u64 = 64;
/// A client's queue, in messages.
pub const QUEUE: usize = 64;
/// A socket that takes nothing for this long is closed as too slow.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The update batching (the screen's).
pub const EVERY: Duration = Duration::from_millis(250);
/// TLS and WebSocket handshakes must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest client message: commands are small.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// Why the feed could not start.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("feed: no token configured (set {0}): the feed never runs open")]
    NoToken(String),
    #[error("feed: the token in {0} must be at least {TOKEN_MIN} characters of A-Z a-z 0-9 . _ ~ -")]
    BadToken(String),
    #[error("feed: listen address {0:?} is not host:port")]
    BadListen(String),
    #[error("feed: plain ws on loopback only (no certificate): {0} is not a loopback address; configure feed.tls_cert and feed.tls_key")]
    PlainNotLoopback(String),
    #[error("feed: give both a certificate and a key, or neither")]
    HalfTls,
    #[error("site configuration: {0}")]
    Site(String),
    #[error("feed: cannot read {what} {path}: {reason}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("feed: TLS setup refused the certificate or key: {0}")]
    Tls(#[from] rustls::Error),
    #[error("feed: cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where the certificate and key are (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How to serve.
#[derive(Clone)]
pub struct FeedConfig {
    /// `host:port` (port 0: any free one).
    pub listen: String,
    pub tls: Option<TlsFiles>,
    /// The bearer token; checked by [`FeedConfig::check_token`].
    pub token: String,
    /// Named in each snapshot.
    pub station: String,
    pub queue: usize,
    pub stall_timeout: Duration,
    pub every: Duration,
    /// The kernel's send buffer per client socket (None: the system's). Tests shrink it
    /// to make a stalled client fill up quickly.
    pub send_buffer: Option<u32>,
    /// Connections served at once; more are refused with HTTP 503 before the upgrade.
    pub max_clients: u64,
}

impl std::fmt::Debug for FeedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedConfig")
            .field("listen", &self.listen)
            .field("tls", &self.tls)
            .field("token", &"<hidden>")
            .finish_non_exhaustive()
    }
}

impl FeedConfig {
    /// Defaults for `listen` with `token` (from `token_source`, named in errors).
    pub fn new(
        listen: impl Into<String>,
        token: Option<String>,
        token_source: &str,
    ) -> Result<FeedConfig, FeedError> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| FeedError::NoToken(token_source.into()))?;
        if !token_ok(&token) {
            return Err(FeedError::BadToken(token_source.into()));
        }
        Ok(FeedConfig {
            listen: listen.into(),
            tls: None,
            token,
            station: hostname(),
            queue: QUEUE,
            stall_timeout: STALL_TIMEOUT,
            every: EVERY,
            send_buffer: None,
            max_clients: MAX_CLIENTS,
        })
    }
}

impl FeedConfig {
    /// From a site's `feed` section (checked again: it may come from the command line),
    /// the token from the variable it names.
    pub fn from_site(site: &FeedSite) -> Result<FeedConfig, FeedError> {
        site.check().map_err(FeedError::Site)?;
        let mut c = FeedConfig::new(
            site.listen.clone(),
            token_from_env(&site.token_env),
            &site.token_env,
        )?;
        c.tls = match (&site.tls_cert, &site.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            _ => return Err(FeedError::HalfTls),
        };
        if let Some(n) = &site.name {
            c.station = n.trim().to_string();
        }
        Ok(c)
    }
}

/// Starts the feed a site section (or `--feed`) asks for and says where on stderr, the
/// line operators and tests read: `feed: listening on ws://127.0.0.1:PORT/feed`.
pub async fn start_site(vigil: Arc<Vigil>, site: &FeedSite) -> Result<Feed, FeedError> {
    let feed = Feed::start(vigil, FeedConfig::from_site(site)?).await?;
    if !feed.tls {
        eprintln!("feed: plain ws on loopback only (no certificate)");
    }
    eprintln!("feed: listening on {}", feed.url());
    tracing::info!(url = %feed.url(), "feed: listening");
    Ok(feed)
}

/// RFC 6750 b64token without `+ / =` (they would need escaping in a subprotocol name).
fn token_ok(t: &str) -> bool {
    t.len() >= TOKEN_MIN
        && t.len() <= 512
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_~".contains(&b))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "vigil".into())
}

/// Counts for status lines and benchmarks.
#[derive(Debug, Default)]
pub struct FeedStats {
    pub connected: AtomicU64,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    /// Times a client's full queue was replaced by a snapshot.
    pub overflows: AtomicU64,
    /// Clients closed as too slow.
    pub too_slow: AtomicU64,
    pub messages: AtomicU64,
}

/// A running feed.
pub struct Feed {
    addr: SocketAddr,
    tls: bool,
    stats: Arc<FeedStats>,
    task: JoinHandle<()>,
}

impl Feed {
    /// Binds and starts serving until `vigil`'s cancellation token fires.
    pub async fn start(vigil: Arc<Vigil>, cfg: FeedConfig) -> Result<Feed, FeedError> {
        if !token_ok(&cfg.token) {
            return Err(FeedError::BadToken("the feed token".into()));
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&cfg.listen)
            .await
            .map_err(|_| FeedError::BadListen(cfg.listen.clone()))?
            .collect();
        let first = *addrs
            .first()
            .ok_or_else(|| FeedError::BadListen(cfg.listen.clone()))?;
        let acceptor = match &cfg.tls {
            Some(files) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(server_tls(files)?))),
            None => {
                if !addrs.iter().all(|a| a.ip().is_loopback()) {
                    return Err(FeedError::PlainNotLoopback(cfg.listen.clone()));
                }
                None
            }
        };
        let listener = TcpListener::bind(first).await.map_err(|source| FeedError::Bind {
            addr: cfg.listen.clone(),
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| FeedError::Bind {
            addr: cfg.listen.clone(),
            source,
        })?;
        let tls = acceptor.is_some();
        let stats = Arc::new(FeedStats::default());
        let shared = Arc::new(Shared {
            vigil,
            cfg,
            stats: stats.clone(),
        });
        let task = tokio::spawn(accept_loop(listener, acceptor, shared));
        Ok(Feed {
            addr,
            tls,
            stats,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://…/feed` or `wss://…/feed`.
    pub fn url(&self) -> String {
        format!("{}://{}{PATH}", if self.tls { "wss" } else { "ws" }, self.addr)
    }

    pub fn stats(&self) -> &Arc<FeedStats> {
        &self.stats
    }

    /// Waits until the feed has stopped (after Vigil's cancellation).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// The server's TLS configuration: the site's certificate chain and key, TLS 1.2/1.3,
/// the ring provider (the one reqwest and the FHIR client use here).
fn server_tls(files: &TlsFiles) -> Result<rustls::ServerConfig, FeedError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let pem_err = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |e: rustls_pki_types::pem::Error| FeedError::Pem {
            what,
            path: path.clone(),
            reason: e.to_string(),
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(pem_err("certificate", &files.cert))?
        .collect::<Result<_, _>>()
        .map_err(pem_err("certificate", &files.cert))?;
    if certs.is_empty() {
        return Err(FeedError::Pem {
            what: "certificate",
            path: files.cert.clone(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(pem_err("key", &files.key))?;
    let mut cfg =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

struct Shared {
    vigil: Arc<Vigil>,
    cfg: FeedConfig,
    stats: Arc<FeedStats>,
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let cancel = shared.vigil.cancel_token();
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "feed: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        if let Some(n) = shared.cfg.send_buffer {
            let _ = socket2::SockRef::from(&tcp).set_send_buffer_size(n as usize);
        }
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        conns.spawn(async move {
            match acceptor {
                Some(a) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, a.accept(tcp)).await {
                    Ok(Ok(tls)) => connection(tls, peer, shared).await,
                    Ok(Err(e)) => tracing::info!(%peer, error = %e, "feed: TLS handshake failed"),
                    Err(_) => tracing::info!(%peer, "feed: TLS handshake timed out"),
                },
                None => connection::<TcpStream>(tcp, peer, shared).await,
            }
        });
    }
    // Connections see the same cancellation and close with 1001 "going away".
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    tracing::info!("feed: stopped");
}

/// What the upgrade request asked for, once it passed authentication.
struct Accepted {
    beds: BedFilter,
}

/// The handshake callback: path, then the token, then the bed choice. Refusals answer
/// with an HTTP status and no WebSocket (so no data).
// The error type is tungstenite's handshake callback signature, not ours to shrink.
#[allow(clippy::result_large_err)]
fn check_request(
    req: &Request,
    mut resp: Response,
    token: &str,
    full: bool,
    out: &mut Option<Accepted>,
) -> Result<Response, ErrorResponse> {
    let refuse = |status: StatusCode, text: &str| {
        let mut r = ErrorResponse::new(Some(text.to_string()));
        *r.status_mut() = status;
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3.
            r.headers_mut().insert(
                "WWW-Authenticate",
                HeaderValue::from_static("Bearer realm=\"vigil-feed\""),
            );
        }
        r
    };
    if req.uri().path() != PATH {
        return Err(refuse(StatusCode::NOT_FOUND, "not found: the feed is at /feed"));
    }
    let protocols: Vec<&str> = req
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let bearer = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .or_else(|| protocols.iter().find_map(|p| p.strip_prefix("bearer.")));
    match bearer {
        Some(t) if same(t.as_bytes(), token.as_bytes()) => {}
        _ => {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "unauthorized: a valid feed token is needed",
            ))
        }
    }
    if full {
        return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "too many feed clients"));
    }
    if protocols.contains(&SUBPROTOCOL) {
        // RFC 6455 §4.2.2: the server selects one of the offered subprotocols (never the
        // bearer one: it would echo the token).
        resp.headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
    }
    *out = Some(Accepted {
        beds: BedFilter::from_query(req.uri().query()),
    });
    Ok(resp)
}

/// Constant-time equality of two secrets of any length (their SHA-256 digests compared
/// byte by byte without an early exit, so neither content nor a prefix shows in timing).
fn same(a: &[u8], b: &[u8]) -> bool {
    let da = ring::digest::digest(&ring::digest::SHA256, a);
    let db = ring::digest::digest(&ring::digest::SHA256, b);
    da.as_ref()
        .iter()
        .zip(db.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// A message waiting for its connection's writer (its `seq` is given when written).
enum Out {
    Update(WardUpdate),
    /// A fresh snapshot, taken when written.
    Snapshot,
    Result {
        request: Option<String>,
        error: Option<String>,
        acknowledged: Option<u32>,
        session: bool,
    },
}

/// One connection's state shared by its stream, reader and writer.
struct Conn {
    queue: Mutex<VecDeque<Out>>,
    ready: Notify,
    filter: Mutex<BedFilter>,
    viewer: Mutex<Viewer>,
    closed: AtomicBool,
    cap: usize,
}

/// Who is signed in on a connection and which admissions that session has been shown
/// (each audited once). One lock: a message built under the old session must not mark
/// an admission as shown to the new one.
#[derive(Default)]
struct Viewer {
    session: Option<RemoteSession>,
    shown: HashSet<String>,
}

impl Viewer {
    /// A new session (or none): returns the old one; nothing shown to the new one yet.
    fn replace(&mut self, s: Option<RemoteSession>) -> Option<RemoteSession> {
        self.shown.clear();
        std::mem::replace(&mut self.session, s)
    }
}

impl Conn {
    fn push(&self, o: Out) {
        self.queue.lock().unwrap().push_back(o);
        self.ready.notify_one();
    }

    /// From the update stream (never waits): a full queue drops its updates and
    /// snapshots for one fresh snapshot; answers to commands stay.
    fn push_update(&self, u: WardUpdate, stats: &FeedStats) {
        let mut q = self.queue.lock().unwrap();
        if q.len() >= self.cap {
            q.retain(|o| matches!(o, Out::Result { .. }));
            q.push_back(Out::Snapshot);
            stats.overflows.fetch_add(1, Ordering::Relaxed);
        } else {
            q.push_back(Out::Update(u));
        }
        drop(q);
        self.ready.notify_one();
    }

    fn session(&self) -> Option<RemoteSession> {
        self.viewer.lock().unwrap().session.clone()
    }
}

#[allow(clippy::result_large_err)] // the handshake callback (see `check_request`)
async fn connection<S>(stream: S, peer: SocketAddr, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut accepted = None;
    let token = shared.cfg.token.clone();
    let full = shared.stats.connected.load(Ordering::Relaxed) >= shared.cfg.max_clients;
    let ws_cfg = WebSocketConfig::default()
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE));
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        |req: &Request, resp: Response| check_request(req, resp, &token, full, &mut accepted),
        Some(ws_cfg),
    );
    let ws = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%peer, error = %e, "feed: connection refused");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "feed: handshake timed out");
            return;
        }
    };
    let Some(Accepted { beds }) = accepted else { return };
    let stats = shared.stats.clone();
    stats.accepted.fetch_add(1, Ordering::Relaxed);
    let now = stats.connected.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::info!(%peer, clients = now, "feed: client connected");
    let conn = Arc::new(Conn {
        queue: Mutex::new(VecDeque::from([Out::Snapshot])),
        ready: Notify::new(),
        filter: Mutex::new(beds),
        viewer: Mutex::new(Viewer::default()),
        closed: AtomicBool::new(false),
        cap: shared.cfg.queue.max(2),
    });
    // Subscribed before the first snapshot is taken (by the writer): nothing falls between.
    let rx = shared.vigil.subscribe();
    let stream_task = {
        let (v, c, st, every) = (
            shared.vigil.clone(),
            conn.clone(),
            stats.clone(),
            shared.cfg.every,
        );
        tokio::spawn(async move {
            v.stream_updates(rx, every, |u| {
                if c.closed.load(Ordering::Relaxed) {
                    return false;
                }
                c.push_update(u, &st);
                true
            })
            .await
        })
    };
    let (mut sink, source) = ws.split();
    let stop = CancellationToken::new();
    let reader = tokio::spawn(read_commands(source, conn.clone(), shared.clone(), stop.clone()));
    let why = write_messages(&mut sink, &conn, &shared, &stop).await;
    if why == "client closed" {
        // Completes the closing handshake the client began (RFC 6455 §5.5.1).
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    }
    conn.closed.store(true, Ordering::Relaxed);
    stop.cancel();
    stream_task.abort();
    let _ = reader.await;
    if let Some(s) = conn.session() {
        shared.vigil.remote_sign_out(&s);
    }
    let left = stats.connected.fetch_sub(1, Ordering::Relaxed) - 1;
    tracing::info!(%peer, clients = left, reason = why, "feed: client disconnected");
}

/// Writes queued messages in order with their `seq`; returns why it stopped.
async fn write_messages<K>(
    sink: &mut K,
    conn: &Conn,
    shared: &Shared,
    stop: &CancellationToken,
) -> &'static str
where
    K: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let cancel = shared.vigil.cancel_token();
    let mut seq = 0u64;
    let close = |code: CloseCode, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        let next = conn.queue.lock().unwrap().pop_front();
        let Some(out) = next else {
            tokio::select! {
                _ = conn.ready.notified() => continue,
                _ = stop.cancelled() => return "client closed",
                _ = cancel.cancelled() => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close(CloseCode::Away, "vigil stopping"))).await;
                    return "vigil stopping";
                }
            }
        };
        seq += 1;
        let msg = build(out, seq, conn, shared);
        let text = match serde_json::to_string(&msg) {
            Ok(t) => t,
            Err(e) => {
                // Not expected (the views serialise); never a silent gap: close.
                tracing::error!(error = %e, "feed: message not serialisable");
                return "internal error";
            }
        };
        let sent = tokio::select! {
            r = tokio::time::timeout(shared.cfg.stall_timeout, sink.send(Message::text(text))) => r,
            _ = stop.cancelled() => return "client closed",
        };
        match sent {
            Ok(Ok(())) => {
                shared.stats.messages.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(_)) => return "socket error",
            Err(_) => {
                shared.stats.too_slow.fetch_add(1, Ordering::Relaxed);
                // Its buffers are full: the close frame may never get through. Try
                // briefly, then drop the connection either way.
                let _ = tokio::time::timeout(
                    Duration::from_millis(200),
                    sink.send(close(CloseCode::Policy, "too slow")),
                )
                .await;
                return "too slow";
            }
        }
    }
}

/// The envelope for a queued message, filtered to the connection's beds and redacted to
/// what its session may see.
fn build(out: Out, seq: u64, conn: &Conn, shared: &Shared) -> FeedMessage {
    let filter = conn.filter.lock().unwrap().clone();
    // Held while the message is built: see [`Viewer`].
    let mut viewer = conn.viewer.lock().unwrap();
    let Viewer { session, shown } = &mut *viewer;
    match out {
        Out::Snapshot => FeedMessage::Snapshot {
            seq,
            schema: SCHEMA,
            station: StationInfo {
                name: shared.cfg.station.clone(),
                version: shared.vigil.info().version.to_string(),
            },
            ward: shared.vigil.snapshot_for_remote(session.as_ref(), &filter, shown),
        },
        Out::Update(u) => FeedMessage::Update {
            seq,
            update: filter.update(shared.vigil.update_for_remote(session.as_ref(), u, shown)),
        },
        Out::Result {
            request,
            error,
            acknowledged,
            session: with_session,
        } => FeedMessage::Result {
            seq,
            request,
            ok: error.is_none(),
            error,
            acknowledged,
            session: session.as_ref().filter(|_| with_session).map(|s| s.view()),
        },
    }
}

async fn read_commands<R>(mut source: R, conn: Arc<Conn>, shared: Arc<Shared>, stop: CancellationToken)
where
    R: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = tokio::select! {
            m = source.next() => m,
            _ = stop.cancelled() => return,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Binary(_))) => {
                conn.push(answer(
                    None,
                    Err("binary messages are not understood: send JSON text".into()),
                    None,
                ));
                continue;
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                stop.cancel();
                conn.ready.notify_one();
                return;
            }
            Some(Ok(_)) => continue, // ping/pong: tungstenite answers pings itself
        };
        // A client that sends commands but reads nothing cannot grow its queue without
        // bound: it waits here until the writer made room (its own connection only).
        while conn.queue.lock().unwrap().len() >= conn.cap * 2 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = stop.cancelled() => return,
            }
        }
        let cmd: FeedCommand = match serde_json::from_str(text.as_str()) {
            Ok(c) => c,
            Err(e) => {
                // serde's message names the field or variant, not the values sent.
                let id = serde_json::from_str::<serde_json::Value>(text.as_str())
                    .ok()
                    .and_then(|v| {
                        v.get("id")
                            .and_then(|i| i.as_str())
                            .map(|s| s.chars().take(64).collect())
                    });
                conn.push(answer(id, Err(format!("message not understood: {e}")), None));
                continue;
            }
        };
        run_command(cmd, &conn, &shared).await;
    }
}

fn answer(request: Option<String>, r: Result<Option<u32>, String>, session: Option<bool>) -> Out {
    match r {
        Ok(acknowledged) => Out::Result {
            request,
            error: None,
            acknowledged,
            session: session.unwrap_or(false),
        },
        Err(e) => Out::Result {
            request,
            error: Some(e),
            acknowledged: None,
            session: false,
        },
    }
}

const SIGN_IN_FIRST: &str = "sign in at the central station first";

async fn run_command(cmd: FeedCommand, conn: &Conn, shared: &Shared) {
    let v = &shared.vigil;
    let id = cmd.id().map(String::from);
    match cmd {
        FeedCommand::Subscribe { beds } => {
            *conn.filter.lock().unwrap() = BedFilter::beds(beds);
            conn.push(Out::Snapshot);
        }
        FeedCommand::Resync => conn.push(Out::Snapshot),
        FeedCommand::SignIn { user, password, .. } => {
            let r = v.remote_sign_in(&user, &password, CENTRAL_ORIGIN).await;
            match r {
                Ok(s) => {
                    let old = conn.viewer.lock().unwrap().replace(Some(s));
                    if let Some(old) = old {
                        v.remote_sign_out(&old);
                    }
                    conn.push(answer(id, Ok(None), Some(true)));
                    // Names may now be shown (or not): the client gets them afresh.
                    conn.push(Out::Snapshot);
                }
                Err(e) => conn.push(answer(id, Err(e.to_string()), None)),
            }
        }
        FeedCommand::SignOut { .. } => {
            let old = conn.viewer.lock().unwrap().replace(None);
            match old {
                Some(s) => {
                    v.remote_sign_out(&s);
                    conn.push(answer(id, Ok(None), None));
                    conn.push(Out::Snapshot);
                }
                None => conn.push(answer(id, Err("not signed in".into()), None)),
            }
        }
        FeedCommand::Acknowledge { bed, alarms, .. } => {
            let r = match conn.session() {
                None => Err(SIGN_IN_FIRST.to_string()),
                Some(s) => v
                    .remote_acknowledge(&s, &bed, &alarms)
                    .await
                    .map(|n| Some(n as u32))
                    .map_err(|e| e.to_string()),
            };
            conn.push(answer(id, r, None));
        }
        FeedCommand::PauseAudio { bed, .. } => {
            let r = match conn.session() {
                None => Err(SIGN_IN_FIRST.to_string()),
                Some(s) => v
                    .remote_pause_audio(&s, &bed)
                    .await
                    .map(|()| None)
                    .map_err(|e| e.to_string()),
            };
            conn.push(answer(id, r, None));
        }
    }
}

/// The token from environment variable `var` (trimmed; empty counts as absent).
pub fn token_from_env(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked() {
        assert!(token_ok("abcdefghijklmnop"));
        assert!(!token_ok("short"));
        assert!(!token_ok("abcdefghijklmnop+/="));
        assert!(matches!(
            FeedConfig::new("127.0.0.1:0", None, TOKEN_ENV),
            Err(FeedError::NoToken(_))
        ));
    }

    #[test]
    fn secrets_compare() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
