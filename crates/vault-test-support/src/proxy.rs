//! TCP proxies in front of a server: one counting requests, one injecting faults.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::util::TestResult;

/// A TCP proxy in front of a server that records every HTTP request line it forwards.
pub struct CountingProxy {
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> TestResult<CountingProxy> {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = format!("http://{}", listener.local_addr()?);
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = pipe(client, server, seen).await;
                    }
                });
            }
        });
        Ok(CountingProxy { addr, lines, task })
    }

    /// The proxy's address, to give a client instead of the server's.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Every request line forwarded so far, as `GET /v1/secret/data/db`.
    pub fn requests(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many forwarded requests' paths start with `prefix` (query ignored).
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|l| {
                l.split_once(' ').is_some_and(|(m, p)| {
                    m == method && p.split('?').next().unwrap_or(p).starts_with(path_prefix)
                })
            })
            .count()
    }

    /// Forgets the requests recorded so far.
    pub fn reset(&self) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP proxy that delays every segment by `one_way` in each direction, as a
/// network with a round trip of twice that would: handshakes (TCP, TLS) pay
/// it too. Counts the connections it accepts.
pub struct DelayProxy {
    addr: String,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl DelayProxy {
    /// Listens on a free loopback port in front of `upstream` (`scheme://host:port`).
    pub async fn start(upstream: &str, one_way: std::time::Duration) -> TestResult<DelayProxy> {
        let (scheme, rest) = upstream.split_once("://").unwrap_or(("http", upstream));
        let upstream = rest.trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = format!("{scheme}://{}", listener.local_addr()?);
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    // The connection itself pays a round trip (SYN, SYN-ACK).
                    tokio::time::sleep(one_way * 2).await;
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        // No Nagle: a small segment goes out when its delay is up,
                        // not after the previous one was acknowledged.
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let (cr, cw) = client.into_split();
                        let (sr, sw) = server.into_split();
                        let up = tokio::spawn(delayed(cr, sw, one_way));
                        let _ = delayed(sr, cw, one_way).await;
                        up.abort();
                    }
                });
            }
        });
        Ok(DelayProxy {
            addr,
            connections,
            task,
        })
    }

    /// `scheme://127.0.0.1:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, each segment `delay` after it was read, in order.
async fn delayed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: std::time::Duration,
) -> std::io::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let due = tokio::time::Instant::now() + delay;
        if tx.send((due, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
    Ok(())
}

/// A TCP proxy spreading connections over several servers in turn, as an
/// nginx `upstream` in front of a cluster does: each new connection goes to
/// the next server, skipping one that refuses it.
pub struct RoundRobinProxy {
    addr: String,
    task: tokio::task::JoinHandle<()>,
}

impl RoundRobinProxy {
    /// Listens on a free loopback port in front of `upstreams` (`http://host:port`).
    pub async fn start(upstreams: &[String]) -> TestResult<RoundRobinProxy> {
        let upstreams: Vec<String> = upstreams
            .iter()
            .map(|u| {
                u.trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned()
            })
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            while let Ok((client, _)) = listener.accept().await {
                let first = next;
                next = next.wrapping_add(1);
                let upstreams = upstreams.clone();
                tokio::spawn(async move {
                    for k in 0..upstreams.len() {
                        let target = &upstreams[(first + k) % upstreams.len()];
                        if let Ok(server) = TcpStream::connect(target).await {
                            let seen = Arc::new(Mutex::new(Vec::new()));
                            let _ = pipe(client, server, seen).await;
                            return;
                        }
                    }
                });
            }
        });
        Ok(RoundRobinProxy { addr, task })
    }

    /// `http://127.0.0.1:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

impl Drop for RoundRobinProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A proxy that answers the first `n` requests itself with an error status
/// (closing the connection), then forwards everything to a real server: a way
/// to see retries and their limits against real Vault behaviour.
pub struct FaultyProxy {
    addr: String,
    answered: Arc<Mutex<u32>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    /// Answers the first `failures` requests with `status`, forwards the rest to `upstream`.
    pub async fn start(upstream: &str, failures: u32, status: u16) -> TestResult<FaultyProxy> {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = format!("http://{}", listener.local_addr()?);
        let answered = Arc::new(Mutex::new(0u32));
        let counter = answered.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let fail = {
                    let mut n = counter.lock().unwrap_or_else(PoisonError::into_inner);
                    let fail = *n < failures;
                    if fail {
                        *n += 1;
                    }
                    fail
                };
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if fail {
                        let mut head = [0u8; 4096];
                        let _ = client.read(&mut head).await;
                        let body = r#"{"errors":["injected fault"]}"#;
                        let reply = format!(
                            "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = client.write_all(reply.as_bytes()).await;
                        let _ = client.shutdown().await;
                    } else if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = pipe(client, server, Arc::new(Mutex::new(Vec::new()))).await;
                    }
                });
            }
        });
        Ok(FaultyProxy {
            addr,
            answered,
            task,
        })
    }

    /// The proxy's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// How many requests it answered with the fault.
    pub fn faults(&self) -> u32 {
        *self.answered.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    seen: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let down = tokio::spawn(async move { tokio::io::copy(&mut sr, &mut cw).await });
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    // Request heads are read line by line; a body (its content-length) is
    // skipped, so that the next request line is found after it.
    let mut in_head = false;
    let mut length = 0usize;
    let mut skip = 0usize;
    loop {
        let n = cr.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        loop {
            if skip > 0 {
                let k = skip.min(pending.len());
                pending.drain(..k);
                skip -= k;
                if skip > 0 {
                    break;
                }
            }
            let Some(pos) = pending.windows(2).position(|w| w == b"\r\n") else {
                break;
            };
            let line: Vec<u8> = pending.drain(..pos + 2).collect();
            let line = String::from_utf8_lossy(&line[..pos]).into_owned();
            if line.is_empty() {
                if in_head {
                    in_head = false;
                    skip = std::mem::take(&mut length);
                }
                continue;
            }
            if in_head {
                if let Some((name, value)) = line.split_once(':') {
                    if name.trim().eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                continue;
            }
            let mut parts = line.split(' ');
            if let (Some(m), Some(p), Some(v)) = (parts.next(), parts.next(), parts.next()) {
                if v.starts_with("HTTP/") && m.chars().all(|c| c.is_ascii_uppercase()) {
                    in_head = true;
                    seen.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(format!("{m} {p}"));
                }
            }
        }
        sw.write_all(&buf[..n]).await?;
    }
    let _ = sw.shutdown().await;
    let _ = down.await;
    Ok(())
}
