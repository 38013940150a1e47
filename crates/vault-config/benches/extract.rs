//! Extraction alone, no server: a provider of P paths x 10 keys, all from env
//! (strings, as Vault's CLI writes them), deserialized into typed structs by
//! the core's own lossy deserializer, and, for comparison, through figment's
//! `extract_lossy` over the provider's per-value Figment (the load path
//! before the core owned extraction), plus the cost of building that Figment.
//!
//! `cargo bench -p vault-config --bench extract`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vault_config::{EnvSource, VaultClient, VaultProvider};

const KEYS: usize = 10;

type Config = BTreeMap<String, BTreeMap<String, u32>>;

fn time<T>(rounds: u32, mut f: impl FnMut() -> T) -> Duration {
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(f());
    }
    started.elapsed() / rounds
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("paths x {KEYS} keys | core extract | figment extract_lossy | building the per-value Figment");
    for paths in [1, 10, 100] {
        let env = EnvSource::from_fn(|name| {
            let n: usize = name.strip_prefix("BENCH_")?.parse().ok()?;
            Some(n.to_string())
        });
        let client = VaultClient::builder()
            .enabled(false)
            .env_source(env)
            .build()
            .unwrap();
        let mut b = VaultProvider::builder();
        for p in 0..paths {
            for k in 0..KEYS {
                let n = p * KEYS + k;
                b = b.mapping(
                    vault_config::Mapping::new(format!("svc{p}.key{k}"), &format!("svc{p}#K{k}"))
                        .unwrap()
                        .env(format!("BENCH_{n}")),
                );
            }
        }
        let provider = rt.block_on(b.fetch(&client)).unwrap();
        let rounds = (2000 / paths) as u32;
        let core = time(rounds, || provider.extract::<Config>().unwrap());
        #[cfg(feature = "figment")]
        {
            let fig = provider.figment();
            let lossy = time(rounds, || {
                figment::Figment::new()
                    .merge(fig.clone())
                    .extract_lossy::<Config>()
                    .unwrap()
            });
            let build = time(rounds.min(50), || provider.figment());
            println!("{paths:>5} x {KEYS} | {core:>10.1?} | {lossy:>10.1?} | {build:>10.1?}");
        }
        #[cfg(not(feature = "figment"))]
        println!("{paths:>5} x {KEYS} | {core:>10.1?} | (figment feature off) |");
    }
}
