//! A randomized, seeded convergence test against a real OpenBao dev server.
//!
//! An operator acts on two KV v2 paths (`app` and `db`): put, patch,
//! same-value put (also with a number written as a string or back, as the
//! CLI's `key=value` and a JSON file differ), delete, undelete, destroy,
//! rollback, metadata delete, `max_versions`, `delete_version_after`, a key
//! only a whole-secret map sees, a required key removed. Watchers of four shapes poll every 200 ms:
//! required fields from both paths, `Option` fields, a whole-secret map, and
//! a struct mixing two paths. After each action, within 4 s:
//!
//! - every watcher holds what a fresh load (its own client, cache off) gives,
//!   or, when a fresh load fails, the config in force before the action;
//! - `health().last_error` is set exactly when a fresh load fails;
//! - there is at most one publish (exactly one when the fresh load differs
//!   from the config in force, none otherwise), never one equal to the config
//!   in force; a `delete_version_after` action, which is a write and then an
//!   expiry, may publish twice.
//!
//! The seed is printed; `CONVERGENCE_SEED=N` replays it. `CONVERGENCE_ACTIONS`
//! sets the number of actions (32 unless set), `CONVERGENCE_KEEP_GOING=1`
//! reports every failure of the run at its end instead of stopping at the first.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use vault_config::{VaultClient, VaultConfig, WatchOptions, Watcher};
use vault_test_support::DevServer;

const MOUNT: &str = "secret";
const APP: &str = "app";
const DB: &str = "db";
/// How often the watchers poll.
const INTERVAL: Duration = Duration::from_millis(200);
/// How long after an action every watcher has to match a fresh load.
const CONVERGE_WITHIN: Duration = Duration::from_secs(4);
/// How long a converged watcher is watched further (several polls): no
/// second publish, no flapping health.
const SETTLE: Duration = Duration::from_millis(700);
/// `delete_version_after` of the version written by that action, and how
/// long the action waits for it to pass.
const EXPIRE_AFTER: &str = "2s";
const EXPIRY_WAIT: Duration = Duration::from_millis(2600);
/// A seed of the fixed-seed test (any would do).
const FIXED_SEED: u64 = 0x00C0_FFEE_5EED;
const DEFAULT_ACTIONS: usize = 32;

/// Required fields from both paths: no config while either is missing.
#[derive(Debug, PartialEq, Deserialize, VaultConfig)]
#[vault(env_prefix = "CONV_")]
struct Required {
    #[vault("app#url")]
    url: String,
    #[vault("db#password")]
    password: String,
}

/// `Option` fields from both paths: always loads.
#[derive(Debug, PartialEq, Deserialize, VaultConfig)]
#[vault(env_prefix = "CONV_")]
struct Optional {
    #[vault("app#url")]
    url: Option<String>,
    #[vault("app#token")]
    token: Option<String>,
    #[vault("db#password")]
    password: Option<String>,
    #[vault("db#port")]
    port: Option<u16>,
}

/// Every key of `app`, `note` included, which no other watcher reads.
#[derive(Debug, PartialEq, Deserialize, VaultConfig)]
struct WholeApp {
    #[vault(path = "app", key = "*")]
    app: HashMap<String, String>,
}

/// Two paths mixed: the whole of `db` (`extra` included, which no other
/// watcher reads), an optional key of `app`, and a key with a default.
#[derive(Debug, PartialEq, Deserialize, VaultConfig)]
#[vault(env_prefix = "CONV_")]
struct Mixed {
    #[vault(path = "db", key = "*")]
    db: BTreeMap<String, String>,
    #[vault("app#token")]
    token: Option<String>,
    #[vault("db#port", default = 5432)]
    port: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operator_actions_converge() {
    let seed = match std::env::var("CONVERGENCE_SEED") {
        Ok(text) => parse_seed(&text)
            .unwrap_or_else(|| panic!("CONVERGENCE_SEED={text:?} is not a u64 (decimal or 0x...)")),
        Err(_) => clock_seed(),
    };
    run(seed).await;
}

/// The same run with a seed that never changes, for a reproducible CI signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_seed_converges() {
    run(FIXED_SEED).await;
}

fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn clock_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // Mixed, so that two runs started in the same second differ everywhere.
    SplitMix(nanos ^ (u64::from(std::process::id()) << 32)).next()
}

/// SplitMix64: tiny, seedable, good enough to pick actions.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// What the operator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Put,
    Patch,
    SameValuePut,
    /// The same values, `port` written as a JSON number where it was a
    /// string (or back), as `kv put @file.json` and `kv put port=...` differ.
    RetypedSameValuePut,
    Delete,
    Undelete,
    Destroy,
    Rollback,
    MetadataDelete,
    MaxVersions,
    DeleteVersionAfter,
    MapOnlyKey,
    RequiredKeyRemoved,
}

/// Each kind with its weight.
const KINDS: &[(Kind, u64)] = &[
    (Kind::Put, 3),
    (Kind::Patch, 2),
    (Kind::SameValuePut, 2),
    (Kind::RetypedSameValuePut, 1),
    (Kind::Delete, 2),
    (Kind::Undelete, 3),
    (Kind::Destroy, 2),
    (Kind::Rollback, 2),
    (Kind::MetadataDelete, 1),
    (Kind::MaxVersions, 1),
    (Kind::DeleteVersionAfter, 1),
    (Kind::MapOnlyKey, 2),
    (Kind::RequiredKeyRemoved, 2),
];

/// A watcher under test, whatever its config type.
trait Probe: Send {
    /// Before an action: remembers the config in force and the reload count.
    fn begin(&mut self);
    /// Loads afresh with `client`: what the watcher must come to.
    fn load_fresh<'a>(
        &'a mut self,
        client: &'a VaultClient,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
    /// Loads afresh now, in the middle of an action that is a write and then
    /// an expiry: once the write expired, the watcher may hold what this
    /// load gives (the last good config it saw) rather than the config in
    /// force before the action.
    fn load_between<'a>(
        &'a mut self,
        client: &'a VaultClient,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
    /// Loads afresh again; `Err` when the answer differs from the first
    /// (the test's own expectation moved: the test would be unsound).
    fn recheck_fresh<'a>(
        &'a mut self,
        client: &'a VaultClient,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
    /// Takes what was published since the last look: the violations seen.
    fn observe(&mut self) -> Vec<String>;
    /// `Ok` once the watcher is where a fresh load says; else what differs.
    fn converged(&self) -> Result<(), String>;
    /// The publish count over the action, at most `max` (1, or 2 for an
    /// action that is a write and then an expiry).
    fn publishes(&self, max: u64) -> Result<(), String>;
}

struct Tracked<T> {
    name: &'static str,
    watcher: Watcher<T>,
    rx: watch::Receiver<Arc<T>>,
    /// The config the receiver last saw.
    last_seen: Arc<T>,
    /// The config in force when the action began.
    in_force: Arc<T>,
    reloads_before: u64,
    /// A fresh load after the action: the config, or its error's text.
    fresh: Option<Result<T, String>>,
    /// A fresh load between the write and the expiry of such an action.
    between: Option<T>,
}

impl<T> Tracked<T>
where
    T: VaultConfig + DeserializeOwned + PartialEq + Debug + Send + Sync + 'static,
{
    async fn start(name: &'static str, client: &VaultClient) -> Self {
        let options = WatchOptions::default().interval(INTERVAL).jitter(0.0);
        let watcher = T::watch(client, options)
            .await
            .unwrap_or_else(|e| panic!("`{name}` cannot start watching: {e}"));
        let mut rx = watcher.subscribe();
        let last_seen = rx.borrow_and_update().clone();
        let reloads_before = watcher.health().reloads;
        Tracked {
            name,
            in_force: last_seen.clone(),
            last_seen,
            rx,
            watcher,
            reloads_before,
            fresh: None,
            between: None,
        }
    }

    fn health_summary(&self) -> String {
        let h = self.watcher.health();
        format!(
            "health: last_error={:?}, reloads={}, versions={:?}, last_changed={:?}, consecutive_failures={}",
            h.last_error, h.reloads, h.versions, h.last_changed, h.consecutive_failures
        )
    }
}

impl<T> Probe for Tracked<T>
where
    T: VaultConfig + DeserializeOwned + PartialEq + Debug + Send + Sync + 'static,
{
    fn begin(&mut self) {
        self.in_force = self.watcher.current();
        self.reloads_before = self.watcher.health().reloads;
        self.fresh = None;
        self.between = None;
    }

    fn load_between<'a>(
        &'a mut self,
        client: &'a VaultClient,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            self.between = T::load(client).await.ok();
        })
    }

    fn load_fresh<'a>(
        &'a mut self,
        client: &'a VaultClient,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            self.fresh = Some(T::load(client).await.map_err(|e| e.to_string()));
        })
    }

    fn recheck_fresh<'a>(
        &'a mut self,
        client: &'a VaultClient,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let again = T::load(client).await.map_err(|e| e.to_string());
            match (&self.fresh, &again) {
                (Some(Ok(a)), Ok(b)) if a == b => Ok(()),
                (Some(Err(_)), Err(_)) => Ok(()),
                (first, _) => Err(format!(
                    "TEST UNSOUND: `{}`: two fresh loads after the action differ: {first:?} then {again:?}",
                    self.name
                )),
            }
        })
    }

    fn observe(&mut self) -> Vec<String> {
        let mut violations = Vec::new();
        match self.rx.has_changed() {
            Ok(true) => {
                let published = self.rx.borrow_and_update().clone();
                if *published == *self.last_seen {
                    violations.push(format!(
                        "`{}` published a config equal to the one in force: {published:?}; {}",
                        self.name,
                        self.health_summary()
                    ));
                }
                if let Some(Err(e)) = &self.fresh {
                    violations.push(format!(
                        "`{}` published {published:?} though a fresh load fails ({e}); {}",
                        self.name,
                        self.health_summary()
                    ));
                }
                self.last_seen = published;
            }
            Ok(false) => {}
            Err(_) => violations.push(format!("`{}`: the watcher's task ended", self.name)),
        }
        violations
    }

    fn converged(&self) -> Result<(), String> {
        let current = self.watcher.current();
        let health = self.watcher.health();
        match &self.fresh {
            None => Err(format!("`{}`: no fresh load yet", self.name)),
            Some(Ok(fresh)) => {
                if *current != *fresh {
                    Err(format!(
                        "`{}` holds {current:?}; a fresh load gives {fresh:?}; {}",
                        self.name,
                        self.health_summary()
                    ))
                } else if let Some(e) = &health.last_error {
                    Err(format!(
                        "`{}` matches a fresh load ({fresh:?}), which succeeds, but health().last_error is {e:?}; {}",
                        self.name,
                        self.health_summary()
                    ))
                } else {
                    Ok(())
                }
            }
            Some(Err(e)) => {
                let held = *current == *self.in_force
                    || self.between.as_ref().is_some_and(|b| *current == *b);
                if !held {
                    Err(format!(
                        "`{}` holds {current:?}, not the config in force before the action ({:?}){}, though a fresh load fails ({e}); {}",
                        self.name,
                        self.in_force,
                        match &self.between {
                            Some(b) => format!(" nor the one while the expiring version lived ({b:?})"),
                            None => String::new(),
                        },
                        self.health_summary()
                    ))
                } else if health.last_error.is_none() {
                    Err(format!(
                        "`{}`: a fresh load fails ({e}) but health().last_error is None; {}",
                        self.name,
                        self.health_summary()
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    fn publishes(&self, max: u64) -> Result<(), String> {
        let after = self.watcher.health().reloads;
        let count = after.saturating_sub(self.reloads_before);
        let expected = match &self.fresh {
            Some(Ok(fresh)) => u64::from(*fresh != *self.in_force),
            _ => 0,
        };
        let fine = if max <= 1 {
            count == expected
        } else {
            count <= max
        };
        if fine {
            Ok(())
        } else {
            Err(format!(
                "`{}` published {count} time(s) during the action (reloads {} -> {after}); expected {}; config in force before: {:?}, fresh load: {:?}; {}",
                self.name,
                self.reloads_before,
                if max <= 1 {
                    expected.to_string()
                } else {
                    format!("at most {max}")
                },
                self.in_force,
                self.fresh,
                self.health_summary()
            ))
        }
    }
}

/// One run: the server, the watchers, the generator and what happened.
struct Run {
    seed: u64,
    rng: SplitMix,
    server: DevServer,
    fresh_client: VaultClient,
    probes: Vec<Box<dyn Probe>>,
    /// Makes each written value unique.
    counter: u64,
    log: Vec<String>,
    /// What the watchers published wrong during the current action.
    violations: Vec<String>,
    failures: Vec<String>,
    keep_going: bool,
}

async fn run(seed: u64) {
    println!("convergence seed: {seed} (replay with CONVERGENCE_SEED={seed})");
    let actions = std::env::var("CONVERGENCE_ACTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_ACTIONS);
    let keep_going = std::env::var("CONVERGENCE_KEEP_GOING").is_ok_and(|v| v == "1");
    let server = DevServer::start().await;
    server
        .kv_put(
            MOUNT,
            APP,
            json!({"url": "url-0", "token": "token-0", "note": "note-0"}),
        )
        .await
        .unwrap();
    server
        .kv_put(
            MOUNT,
            DB,
            json!({"password": "pw-0", "port": "6000", "extra": "extra-0"}),
        )
        .await
        .unwrap();
    // No env fallback anywhere: an empty env. The watchers share a client, as
    // a service's would; fresh loads use one of their own. Caches are off.
    let watched = server.client_builder(&[]).build().unwrap();
    let fresh_client = server.client_builder(&[]).build().unwrap();
    let probes: Vec<Box<dyn Probe>> = vec![
        Box::new(Tracked::<Required>::start("Required", &watched).await),
        Box::new(Tracked::<Optional>::start("Optional", &watched).await),
        Box::new(Tracked::<WholeApp>::start("WholeApp", &watched).await),
        Box::new(Tracked::<Mixed>::start("Mixed", &watched).await),
    ];
    let mut run = Run {
        seed,
        rng: SplitMix(seed),
        server,
        fresh_client,
        probes,
        counter: 0,
        log: Vec::new(),
        violations: Vec::new(),
        failures: Vec::new(),
        keep_going,
    };
    let started = Instant::now();
    for _ in 0..actions {
        run.step().await;
    }
    println!(
        "convergence seed {seed}: {actions} actions in {:.1} s, {} failure(s)",
        started.elapsed().as_secs_f64(),
        run.failures.len()
    );
    if !run.failures.is_empty() {
        panic!(
            "convergence failures (seed {seed}; replay with CONVERGENCE_SEED={seed}):\n{}\naction log:\n{}",
            run.failures.join("\n"),
            run.log.join("\n")
        );
    }
}

impl Run {
    /// One action and its checks.
    async fn step(&mut self) {
        for probe in &mut self.probes {
            probe.begin();
        }
        let kind = self.pick_kind();
        let path = self.rng.pick(&[APP, DB]);
        let (done, max_publishes) = self.act(kind, path).await;
        let number = self.log.len() + 1;
        let entry = format!("  {number:>2}. {kind:?} {path}: {done}");
        // Tagged: the fixed-seed run prints beside the random one.
        println!("[seed {}] {}", self.seed, entry.trim_start());
        self.log.push(entry);
        self.check(max_publishes).await;
    }

    fn pick_kind(&mut self) -> Kind {
        let total: u64 = KINDS.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.below(total);
        for &(kind, weight) in KINDS {
            if roll < weight {
                return kind;
            }
            roll -= weight;
        }
        Kind::Put
    }

    fn next_n(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// New data for `path`: each key present by chance, each value new.
    fn new_data(&mut self, path: &str) -> Map<String, Value> {
        let n = self.next_n();
        let mut data = Map::new();
        let keys: &[(&str, u64)] = if path == APP {
            &[("url", 85), ("token", 60), ("note", 50)]
        } else {
            &[("password", 85), ("port", 70), ("extra", 40)]
        };
        for &(key, percent) in keys {
            if self.rng.chance(percent) {
                data.insert(key.to_owned(), value_of(key, n));
            }
        }
        data
    }

    async fn put(&self, path: &str, data: Map<String, Value>) -> String {
        let shown = Value::Object(data.clone()).to_string();
        self.server
            .kv_put(MOUNT, path, Value::Object(data))
            .await
            .unwrap_or_else(|e| self.abort(&format!("put {path}: {e}")));
        format!("put {shown}")
    }

    async fn put_new(&mut self, path: &str) -> String {
        let data = self.new_data(path);
        self.put(path, data).await
    }

    async fn live_data(&self, path: &str) -> Option<Map<String, Value>> {
        self.server
            .kv_read(MOUNT, path, None)
            .await
            .unwrap_or_else(|e| self.abort(&format!("read {path}: {e}")))
    }

    /// The versions Vault keeps for `path`: (number, deleted, destroyed),
    /// and the current version.
    async fn versions(&self, path: &str) -> (Vec<(u64, bool, bool)>, Option<u64>) {
        let Some(meta) = self
            .server
            .kv_metadata(MOUNT, path)
            .await
            .unwrap_or_else(|e| self.abort(&format!("metadata {path}: {e}")))
        else {
            return (Vec::new(), None);
        };
        let current = meta.get("current_version").and_then(Value::as_u64);
        let mut versions: Vec<(u64, bool, bool)> = meta
            .get("versions")
            .and_then(Value::as_object)
            .map(|all| {
                all.iter()
                    .filter_map(|(n, v)| {
                        let deleted = v
                            .get("deletion_time")
                            .and_then(Value::as_str)
                            .is_some_and(|t| !t.is_empty());
                        let destroyed = v.get("destroyed").and_then(Value::as_bool) == Some(true);
                        Some((n.parse().ok()?, deleted, destroyed))
                    })
                    .collect()
            })
            .unwrap_or_default();
        versions.sort_unstable();
        (versions, current.filter(|&c| c > 0))
    }

    /// Performs `kind` on `path`; returns what was done and how many
    /// publishes it may cause.
    async fn act(&mut self, kind: Kind, path: &str) -> (String, u64) {
        let done = match kind {
            Kind::Put => self.put_new(path).await,
            Kind::Patch => match self.live_data(path).await {
                Some(data) => {
                    let keys: Vec<&str> = if path == APP {
                        vec!["url", "token", "note"]
                    } else {
                        vec!["password", "port", "extra"]
                    };
                    let key = self.rng.pick(&keys);
                    let n = self.next_n();
                    // A `null` removes the key (when it is there, else a new value).
                    let value = if data.contains_key(key) && self.rng.chance(30) {
                        Value::Null
                    } else {
                        value_of(key, n)
                    };
                    let patch = json!({ key: value });
                    self.server
                        .kv_patch(MOUNT, path, patch.clone())
                        .await
                        .unwrap_or_else(|e| self.abort(&format!("patch {path}: {e}")));
                    format!("patch {patch}")
                }
                None => format!(
                    "no live current version to patch; {}",
                    self.put_new(path).await
                ),
            },
            Kind::SameValuePut => match self.live_data(path).await {
                Some(data) => format!("same values again: {}", self.put(path, data).await),
                None => format!(
                    "no live current version to write again; {}",
                    self.put_new(path).await
                ),
            },
            Kind::RetypedSameValuePut => match self.live_data(path).await {
                Some(mut data) => {
                    let retyped = match data.get("port") {
                        Some(Value::String(text)) => text.parse::<u64>().ok().map(Value::from),
                        Some(Value::Number(n)) => Some(Value::from(n.to_string())),
                        _ => None,
                    };
                    match retyped {
                        Some(port) => {
                            data.insert("port".to_owned(), port);
                            format!(
                                "same values, `port` retyped: {}",
                                self.put(path, data).await
                            )
                        }
                        None => format!(
                            "no `port` to retype; same values again: {}",
                            self.put(path, data).await
                        ),
                    }
                }
                None => format!(
                    "no live current version to write again; {}",
                    self.put_new(path).await
                ),
            },
            Kind::Delete => self.delete(path).await,
            Kind::Undelete => {
                let (versions, current) = self.versions(path).await;
                let deleted: Vec<u64> = versions
                    .iter()
                    .filter(|(_, deleted, destroyed)| *deleted && !destroyed)
                    .map(|(n, ..)| *n)
                    .collect();
                if deleted.is_empty() {
                    format!("nothing to undelete; {}", self.delete(path).await)
                } else {
                    let version = match current {
                        Some(c) if deleted.contains(&c) && self.rng.chance(70) => c,
                        _ => self.rng.pick(&deleted),
                    };
                    self.server
                        .kv_undelete(MOUNT, path, &[version])
                        .await
                        .unwrap_or_else(|e| self.abort(&format!("undelete {path}: {e}")));
                    format!("undelete version {version} (current {current:?})")
                }
            }
            Kind::Destroy => {
                let (versions, current) = self.versions(path).await;
                let standing: Vec<u64> = versions
                    .iter()
                    .filter(|(.., destroyed)| !destroyed)
                    .map(|(n, ..)| *n)
                    .collect();
                if standing.is_empty() {
                    format!("nothing to destroy; {}", self.put_new(path).await)
                } else {
                    let version = match current {
                        Some(c) if standing.contains(&c) && self.rng.chance(60) => c,
                        _ => self.rng.pick(&standing),
                    };
                    self.server
                        .kv_destroy(MOUNT, path, &[version])
                        .await
                        .unwrap_or_else(|e| self.abort(&format!("destroy {path}: {e}")));
                    format!("destroy version {version} (current {current:?})")
                }
            }
            Kind::Rollback => {
                let (versions, current) = self.versions(path).await;
                let live: Vec<u64> = versions
                    .iter()
                    .filter(|(n, deleted, destroyed)| !deleted && !destroyed && Some(*n) != current)
                    .map(|(n, ..)| *n)
                    .collect();
                if live.is_empty() {
                    format!("no older live version; {}", self.put_new(path).await)
                } else {
                    let version = self.rng.pick(&live);
                    let written = self
                        .server
                        .kv_rollback(MOUNT, path, version)
                        .await
                        .unwrap_or_else(|e| self.abort(&format!("rollback {path}: {e}")));
                    format!(
                        "rollback to version {version} (current {current:?}): version {written}"
                    )
                }
            }
            Kind::MetadataDelete => {
                self.server
                    .kv_metadata_delete(MOUNT, path)
                    .await
                    .unwrap_or_else(|e| self.abort(&format!("metadata delete {path}: {e}")));
                "metadata delete (every version)".to_owned()
            }
            Kind::MaxVersions => {
                let max = 1 + self.rng.below(3);
                self.server
                    .kv_metadata_put(MOUNT, path, json!({ "max_versions": max }))
                    .await
                    .unwrap_or_else(|e| self.abort(&format!("max_versions {path}: {e}")));
                format!("max_versions={max}, then {}", self.put_new(path).await)
            }
            Kind::DeleteVersionAfter => {
                self.expire_after(path, EXPIRE_AFTER).await;
                let put = self.put_new(path).await;
                // Only that version expires: later writes keep theirs.
                self.expire_after(path, "0s").await;
                for probe in &mut self.probes {
                    probe.load_between(&self.fresh_client).await;
                }
                // Watch the publishes while the version lives and expires.
                let until = Instant::now() + EXPIRY_WAIT;
                while Instant::now() < until {
                    self.observe_all();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                return (
                    format!(
                        "delete_version_after={EXPIRE_AFTER}, {put}, delete_version_after=0s; waited for it to expire"
                    ),
                    2,
                );
            }
            Kind::MapOnlyKey => {
                // `note` of app only WholeApp reads; `extra` of db only Mixed.
                let key = if path == APP { "note" } else { "extra" };
                let n = self.next_n();
                match self.live_data(path).await {
                    Some(mut data) => {
                        data.insert(key.to_owned(), value_of(key, n));
                        format!(
                            "a key only a whole-secret map reads: {}",
                            self.put(path, data).await
                        )
                    }
                    None => {
                        let mut data = self.new_data(path);
                        data.insert(key.to_owned(), value_of(key, n));
                        format!(
                            "no live current version; a key only a whole-secret map reads: {}",
                            self.put(path, data).await
                        )
                    }
                }
            }
            Kind::RequiredKeyRemoved => {
                let key = if path == APP { "url" } else { "password" };
                let (mut data, from) = match self.live_data(path).await {
                    Some(data) => (data, "the current values"),
                    None => (self.new_data(path), "new values"),
                };
                data.remove(key);
                format!(
                    "required key `{key}` removed from {from}: {}",
                    self.put(path, data).await
                )
            }
        };
        (done, 1)
    }

    async fn expire_after(&self, path: &str, after: &str) {
        self.server
            .kv_metadata_put(MOUNT, path, json!({ "delete_version_after": after }))
            .await
            .unwrap_or_else(|e| {
                self.abort(&format!("delete_version_after={after} on {path}: {e}"))
            });
    }

    async fn delete(&self, path: &str) -> String {
        let (_, current) = self.versions(path).await;
        self.server
            .kv_delete(MOUNT, path)
            .await
            .unwrap_or_else(|e| self.abort(&format!("delete {path}: {e}")));
        format!("delete (current version {current:?})")
    }

    /// Takes what every watcher published since the last look.
    fn observe_all(&mut self) {
        let seen: Vec<String> = self.probes.iter_mut().flat_map(|p| p.observe()).collect();
        self.violations.extend(seen);
    }

    /// After an action: every watcher converges within `CONVERGE_WITHIN`
    /// and stays so for `SETTLE`, with the right number of publishes.
    async fn check(&mut self, max_publishes: u64) {
        for probe in &mut self.probes {
            probe.load_fresh(&self.fresh_client).await;
        }
        let deadline = Instant::now() + CONVERGE_WITHIN;
        let mut violations = Vec::new();
        loop {
            self.observe_all();
            let pending: Vec<String> = self
                .probes
                .iter()
                .filter_map(|p| p.converged().err())
                .collect();
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                violations.extend(
                    pending
                        .into_iter()
                        .map(|p| format!("not converged within {CONVERGE_WITHIN:?}: {p}")),
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Converged (or given up on): it must stay so, with no second publish.
        let converged: Vec<bool> = self.probes.iter().map(|p| p.converged().is_ok()).collect();
        let until = Instant::now() + SETTLE;
        let mut flapped = vec![false; self.probes.len()];
        while Instant::now() < until {
            self.observe_all();
            for (i, probe) in self.probes.iter().enumerate() {
                if converged[i] && !flapped[i] {
                    if let Err(e) = probe.converged() {
                        flapped[i] = true;
                        violations.push(format!("converged, then moved away: {e}"));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.observe_all();
        for probe in &self.probes {
            if let Err(e) = probe.publishes(max_publishes) {
                violations.push(e);
            }
        }
        for probe in &mut self.probes {
            if let Err(e) = probe.recheck_fresh(&self.fresh_client).await {
                violations.push(e);
            }
        }
        // What was published wrong comes first: it happened first.
        let mut all = std::mem::take(&mut self.violations);
        all.extend(violations);
        if !all.is_empty() {
            self.fail(all);
        }
    }

    fn fail(&mut self, violations: Vec<String>) {
        let number = self.log.len();
        let action = self.log.last().cloned().unwrap_or_default();
        let text = format!(
            "after action {number} ({}):\n{}",
            action.trim(),
            violations
                .iter()
                .map(|v| format!("    - {v}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        println!("[seed {}] FAILED {text}", self.seed);
        if self.keep_going {
            self.failures.push(text);
        } else {
            panic!(
                "convergence failure (seed {}; replay with CONVERGENCE_SEED={}) {text}\naction log:\n{}",
                self.seed,
                self.seed,
                self.log.join("\n")
            );
        }
    }

    /// The operator's own request failed: the test cannot go on.
    fn abort(&self, what: &str) -> ! {
        panic!(
            "TEST SETUP: {what} (seed {}; replay with CONVERGENCE_SEED={}); action log:\n{}",
            self.seed,
            self.seed,
            self.log.join("\n")
        )
    }
}

/// The value of `key` written as the `n`th: unique across the run.
fn value_of(key: &str, n: u64) -> Value {
    if key == "port" {
        Value::from((6000 + n % 50_000).to_string())
    } else {
        Value::from(format!("{key}-{n}"))
    }
}
