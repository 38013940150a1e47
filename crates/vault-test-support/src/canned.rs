//! A loopback HTTP server that answers every request with one fixed response:
//! for the conditions a real Vault cannot produce (a redirect to another host,
//! an oversized body), and a record of what reached it.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::util::TestResult;

/// Answers each request with the same raw HTTP response, then closes the
/// connection; keeps the head (request line and headers) of every request.
pub struct CannedServer {
    addr: String,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CannedServer {
    /// Listens on a free loopback port; `respond` makes the response from the
    /// server's own address (`http://127.0.0.1:port`), e.g. a `Location` to itself.
    pub async fn start(
        respond: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
    ) -> TestResult<CannedServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = format!("http://{}", listener.local_addr()?);
        let response = Arc::new(respond(&addr));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let response = response.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    // Read up to the end of the head (bodies here are small and ignored).
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    seen.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(String::from_utf8_lossy(&buf).into_owned());
                    let _ = conn.write_all(&response).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Ok(CannedServer { addr, heads, task })
    }

    /// `http://127.0.0.1:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The head of every request received so far.
    pub fn requests(&self) -> Vec<String> {
        self.heads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for CannedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
