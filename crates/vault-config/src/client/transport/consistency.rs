//! Read-after-write across a cluster: the cluster state (`X-Vault-Index`)
//! a request carries so that no answer predates what the client (or the
//! cluster, when the client started) already had; see [`Anchor`].
//!
//! A leaf of the transport: [`ClusterState`] holds what the client knows,
//! and is told about answers; the HTTP round that asks a cluster its ID
//! (`sys/health`) is the transport's, handed in as a future.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::Value;

use crate::client::transport::answer::Reply;

/// A Raft cluster's state as Vault names it in `X-Vault-Index`: base64 of
/// `{"cluster": "<id>", "value": "<raft index>"}`.
#[derive(Debug, Clone)]
pub(super) struct ClusterIndex {
    raw: HeaderValue,
    cluster: String,
    value: u64,
}

impl ClusterIndex {
    pub(super) fn parse(raw: &HeaderValue) -> Option<Self> {
        let json = base64_decode(raw.to_str().ok()?)?;
        let body: Value = serde_json::from_slice(&json).ok()?;
        let cluster = body.get("cluster")?.as_str()?.to_owned();
        let value = match body.get("value")? {
            Value::String(s) => s.parse().ok()?,
            Value::Number(n) => n.as_u64()?,
            _ => return None,
        };
        Some(ClusterIndex {
            raw: raw.clone(),
            cluster,
            value,
        })
    }

    /// An index of `cluster` that no node reaches (`u64::MAX`): with
    /// `forward-active-node`, a standby forwards the request to the active
    /// node, and the active node (which ignores indexes) answers it. A value
    /// that does not parse as a number would not do: a standby treats it as
    /// reached and answers from its own state.
    fn unreachable(cluster: &str) -> Option<HeaderValue> {
        let body = serde_json::json!({"cluster": cluster, "value": u64::MAX.to_string()});
        HeaderValue::from_str(&base64_encode(body.to_string().as_bytes())).ok()
    }
}

/// Whether this client's answers are known to include every write the
/// cluster had taken when the client started (read-after-write across
/// clients: an operator writes with the CLI, then a service starts).
///
/// Measured against three OpenBao 2.7.2 nodes: right after a write through
/// the active node, 20 of 20 plain reads from a standby answered from before
/// it (the previous version, or 404 for a new secret). OpenBao answers with
/// `X-Vault-Index` (the node's Raft index) and takes it back with
/// `X-Vault-Inconsistent: forward-active-node`; a client that has seen no
/// index yet has nothing to send, so its first reads need the active node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Anchor {
    /// No answer seen yet: requests go out without an index.
    Unknown,
    /// The server answers without `X-Vault-Index` (a dev server, Vault,
    /// OpenBao before 2.7, storage without indexes): nothing to confirm.
    NotNeeded,
    /// A cluster (its ID) whose active node has not answered this client
    /// yet: requests carry an index no node reaches, so a standby forwards
    /// them to the active node.
    Pending(String),
    /// An answer from the active node gave the index held: requests carry it.
    Confirmed,
}

/// What a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Carried {
    /// No index.
    Nothing,
    /// The index held (confirmed by the active node, or the newest seen).
    Held,
    /// An index no node reaches: answered by the active node.
    Unreachable,
}

/// Standard base64 with padding.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 (padding optional); `None` on anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// What the client knows of its cluster's state, shared by its requests.
pub(super) struct ClusterState {
    /// The newest cluster state seen (`X-Vault-Index`), sent with each
    /// request once the active node has answered (see [`Anchor`]).
    index: Mutex<Option<ClusterIndex>>,
    /// Whether the index held came from the active node.
    anchor: Mutex<Anchor>,
    /// One `sys/health` at a time to learn the cluster's ID.
    learning: tokio::sync::Mutex<()>,
    /// How many times the cluster's ID was asked.
    learnt: AtomicU64,
    /// Whether asking it failed (it is not asked again before each request).
    unlearnt: AtomicBool,
}

impl ClusterState {
    pub(super) fn new() -> Self {
        ClusterState {
            index: Mutex::new(None),
            anchor: Mutex::new(Anchor::Unknown),
            learning: tokio::sync::Mutex::new(()),
            learnt: AtomicU64::new(0),
            unlearnt: AtomicBool::new(false),
        }
    }

    /// Whether the cluster's ID should be asked before a request: nothing is
    /// known yet, and asking has not failed.
    pub(super) fn should_learn(&self) -> bool {
        !self.unlearnt.load(Ordering::Relaxed) && self.anchor_is(&Anchor::Unknown)
    }

    /// Takes in an answer's `X-Vault-Index`; says whether it held one (the
    /// answer came from a cluster).
    pub(super) fn observe(&self, raw: Option<&HeaderValue>) -> bool {
        let index = raw.and_then(ClusterIndex::parse);
        let indexed = index.is_some();
        if let Some(index) = index {
            // A cluster: until its active node answers, requests go there.
            {
                let mut anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner);
                if *anchor == Anchor::Unknown {
                    *anchor = Anchor::Pending(index.cluster.clone());
                }
            }
            let mut held = self.index.lock().unwrap_or_else(PoisonError::into_inner);
            // Newer state of the same cluster, or another cluster (rebuilt).
            if held
                .as_ref()
                .is_none_or(|h| h.cluster != index.cluster || h.value < index.value)
            {
                *held = Some(index);
            }
        }
        indexed
    }

    /// The index a request carries now, and what it is.
    pub(super) fn consistency(&self) -> (Carried, Option<HeaderValue>) {
        let anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner);
        match &*anchor {
            Anchor::Unknown => (Carried::Nothing, None),
            Anchor::Pending(cluster) => match ClusterIndex::unreachable(cluster) {
                Some(index) => (Carried::Unreachable, Some(index)),
                None => (Carried::Nothing, None),
            },
            Anchor::Confirmed | Anchor::NotNeeded => {
                let held = self.index.lock().unwrap_or_else(PoisonError::into_inner);
                match held.as_ref() {
                    Some(index) => (Carried::Held, Some(index.raw.clone())),
                    None => (Carried::Nothing, None),
                }
            }
        }
    }

    pub(super) fn anchor_is(&self, state: &Anchor) -> bool {
        *self.anchor.lock().unwrap_or_else(PoisonError::into_inner) == *state
    }

    pub(super) fn set_anchor(&self, to: Anchor) {
        *self.anchor.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }

    /// What an answer says of the cluster; `Some` when a read must be asked
    /// again, with the index to carry: a read that went out before the client
    /// knew it talks to a cluster may come from a standby that has not seen a
    /// write made elsewhere (the previous version, or a 404 for a new secret).
    /// `learn` is [`learn`](Self::learn), run only when the cluster's ID is needed.
    pub(super) async fn confirm(
        &self,
        method: &Method,
        api_path: &str,
        reply: &Reply,
        carried: Carried,
        indexed: bool,
        learn: impl Future<Output = Option<String>>,
    ) -> Option<(Carried, HeaderValue)> {
        // `sys/health`, `sys/leader` and a few others answer without an
        // index even on a cluster: they tell nothing.
        let telling = !api_path.trim_start_matches('/').starts_with("sys/")
            || api_path.starts_with("sys/internal/");
        {
            let mut anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner);
            let answered = matches!(reply, Reply::Ok(_)) && telling;
            let next = match carried {
                Carried::Unreachable if indexed => Some(Anchor::Confirmed),
                // The server ignored the index: it has none to give.
                Carried::Unreachable if answered => Some(Anchor::NotNeeded),
                // A server without indexes answered first.
                Carried::Nothing if !indexed && answered && *anchor == Anchor::Unknown => {
                    Some(Anchor::NotNeeded)
                }
                _ => None,
            };
            if let Some(next) = next {
                *anchor = next;
            }
            // Only reads that carried nothing are asked again; a write
            // reaches the active node anyway.
            if carried != Carried::Nothing || *method != Method::GET {
                return None;
            }
            match &*anchor {
                Anchor::NotNeeded => return None,
                // The answer came from a cluster (its index set `Pending`),
                // or the active node answered another request meanwhile.
                Anchor::Pending(_) | Anchor::Confirmed if indexed => {
                    drop(anchor);
                    return match self.consistency() {
                        (Carried::Nothing, _) | (_, None) => None,
                        (now, Some(index)) => Some((now, index)),
                    };
                }
                _ => {}
            }
        }
        // A 404 carries no index, whatever the server: ask the cluster's ID
        // and confirm it with the active node (a dev server, being the
        // active node, answers the same).
        if !matches!(reply, Reply::NotFound) {
            return None;
        }
        learn.await?;
        match self.consistency() {
            (Carried::Nothing, _) | (_, None) => None,
            (now, Some(index)) => Some((now, index)),
        }
    }

    /// The cluster's ID, from `sys/health` (unauthenticated: no token, no
    /// namespace is sent) of the first address that answers, within one
    /// request timeout; `None` when none gives one. One at a time: requests
    /// that wait meanwhile take its answer. Sets `Pending`.
    /// `ask` is the transport's `sys/health` round, bounded here by `timeout`.
    pub(super) async fn learn(
        &self,
        timeout: Duration,
        ask: impl Future<Output = Option<String>>,
    ) -> Option<String> {
        let tries = self.learnt.load(Ordering::Relaxed);
        let _one = self.learning.lock().await;
        {
            let anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner);
            let held = self.index.lock().unwrap_or_else(PoisonError::into_inner);
            let known = match &*anchor {
                Anchor::Pending(cluster) => Some(cluster.clone()),
                Anchor::Confirmed => held.as_ref().map(|h| h.cluster.clone()),
                Anchor::Unknown | Anchor::NotNeeded => None,
            };
            // Known, or asked while this request waited (whatever came of
            // it: a failed try is not repeated by every request waiting).
            if known.is_some() || self.learnt.load(Ordering::Relaxed) != tries {
                return known;
            }
        }
        self.learnt.fetch_add(1, Ordering::Relaxed);
        // At most one request timeout in all, whatever the addresses do.
        let learnt = tokio::time::timeout(timeout, ask).await;
        let Some(cluster) = learnt.ok().flatten() else {
            self.unlearnt.store(true, Ordering::Relaxed);
            return None;
        };
        let mut anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner);
        if *anchor == Anchor::Unknown {
            *anchor = Anchor::Pending(cluster.clone());
        }
        Some(cluster)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_indexes_parse() {
        // {"cluster":"1a5e70de-05f9-52ee-abf3-495c3ef21681","value":"39"}, as OpenBao sends it.
        let raw = HeaderValue::from_static(
            "eyJjbHVzdGVyIjoiMWE1ZTcwZGUtMDVmOS01MmVlLWFiZjMtNDk1YzNlZjIxNjgxIiwidmFsdWUiOiIzOSJ9",
        );
        let index = ClusterIndex::parse(&raw).unwrap();
        assert_eq!(index.value, 39);
        assert_eq!(index.cluster, "1a5e70de-05f9-52ee-abf3-495c3ef21681");
        assert!(ClusterIndex::parse(&HeaderValue::from_static("not base64!")).is_none());
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
    }

    #[test]
    fn an_unreachable_index_names_the_cluster_and_the_largest_value() {
        for text in [&b""[..], b"h", b"hi", b"hi!", b"hi!?"] {
            assert_eq!(base64_decode(&base64_encode(text)).unwrap(), text);
        }
        assert_eq!(base64_encode(b"hi"), "aGk=");
        let raw = ClusterIndex::unreachable("1a5e70de-05f9-52ee-abf3-495c3ef21681").unwrap();
        let index = ClusterIndex::parse(&raw).unwrap();
        assert_eq!(index.cluster, "1a5e70de-05f9-52ee-abf3-495c3ef21681");
        assert_eq!(index.value, u64::MAX);
        // What OpenBao parses: the value as a decimal string.
        let json = base64_decode(raw.to_str().unwrap()).unwrap();
        let body: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(body["value"], "18446744073709551615");
    }
}
