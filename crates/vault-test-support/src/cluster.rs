//! A real three-node OpenBao (or Vault) cluster with Raft storage on
//! loopback: each node its own data directory, `retry_join` to the others,
//! `performance_multiplier = 1` so elections take about a second. Nodes are
//! stopped by PID (`kill -9` for a crash) and started again on the same ports.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::server::{server_binary, INSTALL_HINT};
use crate::util::{free_port_pair, string_at, unique, TestResult};

/// One node: its addresses, its data, and its process while it runs.
struct Node {
    api: String,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// Three Raft nodes, initialised (one key share) and unsealed.
pub struct Cluster {
    /// One of the few clusters that may run at once (released on drop).
    _slot: tokio::sync::SemaphorePermit<'static>,
    nodes: Vec<Node>,
    binary: PathBuf,
    root: PathBuf,
    token: String,
    unseal_key: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("addrs", &self.addrs())
            .finish_non_exhaustive()
    }
}

/// How many clusters may run at once: each is three Raft nodes, and on a
/// 2-core machine more than two at once (beside the rest of the suite)
/// starved elections past the tests' 60 s write window.
static CLUSTERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

impl Cluster {
    /// Starts three nodes, initialises and unseals them, and waits until all
    /// three are healthy voters with a leader.
    ///
    /// # Panics
    /// When no binary is found (with [`INSTALL_HINT`]) or the cluster does not form.
    pub async fn start() -> Cluster {
        match Self::try_start().await {
            Ok(c) => c,
            Err(e) => panic!("cannot start a 3-node Raft cluster: {e}"),
        }
    }

    async fn try_start() -> TestResult<Cluster> {
        let binary = server_binary()?;
        // Waits for a slot before choosing ports, so they are still free.
        let slot = CLUSTERS.acquire().await?;
        let root = std::env::temp_dir().join(format!("vault-test-raft-{:x}", unique()));
        let mut nodes = Vec::new();
        for i in 0..3 {
            let port = free_port_pair().ok_or("no free loopback port")?;
            let dir = root.join(format!("node{i}"));
            std::fs::create_dir_all(dir.join("data"))?;
            nodes.push(Node {
                api: format!("http://127.0.0.1:{port}"),
                port,
                dir,
                child: None,
            });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut cluster = Cluster {
            _slot: slot,
            nodes,
            binary,
            root,
            token: String::new(),
            unseal_key: String::new(),
            http,
        };
        for i in 0..3 {
            cluster.write_config(i)?;
            cluster.spawn(i)?;
        }
        for i in 0..3 {
            cluster.wait_listening(i).await?;
        }
        let init = cluster
            .raw(
                0,
                "PUT",
                "sys/init",
                Some(json!({"secret_shares": 1, "secret_threshold": 1})),
            )
            .await?;
        cluster.token = string_at(&init, "/root_token")?;
        cluster.unseal_key = init
            .pointer("/keys/0")
            .and_then(Value::as_str)
            .ok_or("no unseal key in the init answer")?
            .to_owned();
        cluster.unseal(0).await?;
        cluster.wait_leader(Duration::from_secs(30)).await?;
        for i in 1..3 {
            cluster.unseal(i).await?;
        }
        cluster.wait_voters(Duration::from_secs(60)).await?;
        let leader = cluster.wait_leader(Duration::from_secs(30)).await?;
        cluster
            .raw(
                leader,
                "POST",
                "sys/mounts/secret",
                Some(json!({"type": "kv", "options": {"version": "2"}})),
            )
            .await?;
        // A new KV v2 mount upgrades itself first; wait until every node
        // answers a read of it (404: nothing there yet).
        let deadline = Instant::now() + Duration::from_secs(60);
        for node in &cluster.nodes {
            loop {
                let status = cluster
                    .http
                    .get(format!("{}/v1/secret/data/_probe", node.api))
                    .header("X-Vault-Token", &cluster.token)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .ok();
                if status == Some(404) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err("the KV mount did not become ready on every node".into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(cluster)
    }

    fn write_config(&self, i: usize) -> TestResult {
        let node = &self.nodes[i];
        let joins: String = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| {
                format!(
                    "  retry_join {{\n    leader_api_addr = \"{}\"\n  }}\n",
                    n.api
                )
            })
            .collect();
        let config = format!(
            "storage \"raft\" {{\n  path = \"{data}\"\n  node_id = \"node{i}\"\n  performance_multiplier = 1\n{joins}}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cport}\"\n  tls_disable = true\n}}\n\
             api_addr = \"{api}\"\ncluster_addr = \"http://127.0.0.1:{cport}\"\ndisable_mlock = true\nui = false\n",
            data = node.dir.join("data").display(),
            port = node.port,
            cport = node.port + 1,
            api = node.api,
        );
        std::fs::write(node.dir.join("config.hcl"), config)?;
        Ok(())
    }

    fn spawn(&mut self, i: usize) -> TestResult {
        let node = &mut self.nodes[i];
        let mut child = Command::new(&self.binary)
            .arg("server")
            .arg(format!("-config={}", node.dir.join("config.hcl").display()))
            .env("HOME", &node.dir)
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}; {INSTALL_HINT}", self.binary.display()))?;
        // Drain the log so the node never blocks on a full pipe.
        if let Some(mut stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut sink = [0u8; 4096];
                while matches!(stderr.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
        node.child = Some(child);
        Ok(())
    }

    async fn wait_listening(&self, i: usize) -> TestResult {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self
                .http
                .get(format!("{}/v1/sys/seal-status", self.nodes[i].api))
                .send()
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("node {i} does not listen at {}", self.nodes[i].api).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn unseal(&self, i: usize) -> TestResult {
        // Generous: several clusters may start at once on two cores.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // A joining node only takes the key once it has joined.
            if let Ok(answer) = self
                .raw(
                    i,
                    "PUT",
                    "sys/unseal",
                    Some(json!({"key": self.unseal_key})),
                )
                .await
            {
                if answer["sealed"] == false {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("node {i} did not unseal").into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The nodes' API addresses, in node order.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.api.clone()).collect()
    }

    /// The root token.
    pub fn root_token(&self) -> &str {
        &self.token
    }

    /// The index of the active node, if one answers as active now.
    pub async fn leader(&self) -> Option<usize> {
        for (i, node) in self.nodes.iter().enumerate() {
            if node.child.is_none() {
                continue;
            }
            if let Ok(r) = self
                .http
                .get(format!("{}/v1/sys/health", node.api))
                .send()
                .await
            {
                if r.status().as_u16() == 200 {
                    return Some(i);
                }
            }
        }
        None
    }

    /// Waits for an active node; returns its index.
    pub async fn wait_leader(&self, limit: Duration) -> TestResult<usize> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(i) = self.leader().await {
                return Ok(i);
            }
            if Instant::now() > deadline {
                return Err("no leader elected".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every running node is an unsealed voter of the configuration.
    pub async fn wait_voters(&self, limit: Duration) -> TestResult {
        let deadline = Instant::now() + limit;
        let running = self.nodes.iter().filter(|n| n.child.is_some()).count();
        loop {
            let leader = self.wait_leader(limit).await?;
            if let Ok(conf) = self
                .raw(leader, "GET", "sys/storage/raft/configuration", None)
                .await
            {
                let voters = conf
                    .pointer("/data/config/servers")
                    .and_then(Value::as_array)
                    .map_or(0, |s| s.iter().filter(|s| s["voter"] == true).count());
                let mut healthy = 0;
                for node in self.nodes.iter().filter(|n| n.child.is_some()) {
                    if let Ok(r) = self
                        .http
                        .get(format!("{}/v1/sys/health?standbyok=true", node.api))
                        .send()
                        .await
                    {
                        if r.status().as_u16() == 200 {
                            healthy += 1;
                        }
                    }
                }
                if voters >= 3 && healthy == running {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err("the nodes did not all become healthy voters".into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Crashes node `i` (`kill -9`) and waits for it to exit.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Starts node `i` again on its data, unseals it, and waits until all
    /// three nodes are healthy voters once more.
    pub async fn restart(&mut self, i: usize) -> TestResult {
        self.spawn(i)?;
        self.wait_listening(i).await?;
        self.unseal(i).await?;
        self.wait_voters(Duration::from_secs(60)).await
    }

    /// A request as root to node `i`; returns the JSON body.
    pub async fn api(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> TestResult<Value> {
        self.raw(i, method, path, body).await
    }

    async fn raw(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> TestResult<Value> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.nodes[i].api));
        if !self.token.is_empty() {
            req = req.header("X-Vault-Token", &self.token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            return Err(format!("node {i} {path}: {status}: {text}").into());
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    /// Writes `data` to KV v2 `secret/<path>` through whichever node accepts
    /// it (trying each, then again, for up to `limit`); returns the version.
    pub async fn kv_put_anywhere(
        &self,
        path: &str,
        data: Value,
        limit: Duration,
    ) -> TestResult<u64> {
        let deadline = Instant::now() + limit;
        loop {
            for i in 0..self.nodes.len() {
                if self.nodes[i].child.is_none() {
                    continue;
                }
                if let Ok(answer) = self
                    .raw(
                        i,
                        "POST",
                        &format!("secret/data/{path}"),
                        Some(json!({"data": data})),
                    )
                    .await
                {
                    if let Some(v) = answer.pointer("/data/version").and_then(Value::as_u64) {
                        return Ok(v);
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no node took the write to secret/{path}").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The directory of node `i`'s data, for inspection.
    pub fn node_dir(&self, i: usize) -> &Path {
        &self.nodes[i].dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                let _ = child.start_kill();
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
