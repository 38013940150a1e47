//! [`Health`]: what a watcher knows about its Vault connection, for health endpoints.
//!
//! A [`Watcher`](crate::Watcher) publishes it on a `watch` channel
//! ([`Watcher::health`](crate::Watcher::health) for the current value,
//! [`Watcher::subscribe_health`](crate::Watcher::subscribe_health) for changes).
//! It serializes in the seeds' shape, `vault_enabled` and `vault_connected` at
//! the top, and never holds a secret: errors name fields and paths only.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::client::auth::AuthStatus;

/// The state of a [`Watcher`](crate::Watcher), shaped for a service's health
/// endpoint: it serializes with `vault_enabled` and `vault_connected` at the top,
/// as the seeds' services expose them.
///
/// Never holds a secret: errors name fields and paths only.
///
/// ```
/// let health = vault_config::Health::default();
/// let json = serde_json::to_value(&health).unwrap();
/// assert_eq!(json["vault_connected"], false);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// False when Vault is turned off (`VAULT_ENABLED=false`).
    pub vault_enabled: bool,
    /// Whether the last exchange with Vault succeeded.
    pub vault_connected: bool,
    /// The Vault address in use (the node that answered last).
    pub vault_address: Option<String>,
    /// How many times requests moved to another address (failovers of a
    /// cluster); a number that grows means the cluster is not settled.
    pub failovers: u64,
    /// When the last poll succeeded, in seconds since the Unix epoch.
    pub last_success: Option<u64>,
    /// When the last error happened, in seconds since the Unix epoch.
    pub last_error_at: Option<u64>,
    /// The last error (a failed poll, or a rotation held back), until a poll succeeds.
    pub last_error: Option<String>,
    /// Polls that went through, since the watcher started.
    pub polls: u64,
    /// Polls (and renewals between polls) that failed in a row.
    pub consecutive_failures: u32,
    /// How many configs were published after the first.
    pub reloads: u64,
    /// The fields whose values changed in the last reload.
    pub last_changed: Vec<String>,
    /// The KV v2 version in use per `mount/path` (KV v1 paths have none).
    pub versions: BTreeMap<String, u64>,
    /// The client's token: method, logins, renewals, seconds to expiry (a static
    /// token about to expire shows here).
    pub token: Option<AuthStatus>,
    /// The leases on dynamic credentials, by path (`database/creds/app`).
    pub leases: BTreeMap<String, LeaseHealth>,
    /// The static roles' rotations, by path (`database/static-creds/app`).
    pub rotations: BTreeMap<String, RotationHealth>,
    /// The TLS identities in the config in force (every value shaped as a
    /// [`tls::Identity`](crate::tls::Identity): a `certificate` and a
    /// `private_key`), by field name: serial and expiry, never key material.
    pub certificates: BTreeMap<String, CertificateHealth>,
    /// KV v2 paths whose metadata the token may not read: each poll reads
    /// their data instead (a whole secret per path and poll, not one small
    /// metadata read). Grant `read` on `<mount>/metadata/<path>` to fix it.
    pub polled_by_data: Vec<String>,
    /// Where each field's value in force comes from, by field name: `vault
    /// secret/data/database#DATABASE_URL (version 3)`, `env var DATABASE_URL`
    /// or `default` (a default, `None`, or another configuration layer). Never a
    /// value.
    pub sources: BTreeMap<String, String>,
}

/// A static role's credentials a watcher holds. The password is never shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RotationHealth {
    /// When Vault rotates the password next, in seconds since the Unix epoch.
    pub next_rotation_at: u64,
    /// When Vault last rotated it (RFC 3339, as Vault sent it).
    pub last_rotation: Option<String>,
    /// Vault's announced rotation has not happened (the database refused
    /// Vault's `ALTER ROLE`, say): the watcher reads the role again with
    /// backoff (1 s doubling, at most 30 s) and keeps the password in force.
    pub overdue: bool,
}

/// One TLS identity in the config in force: its leaf certificate's serial
/// and validity. Its private key is never shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CertificateHealth {
    /// The serial number, as Vault shows it (`3a:0f:...`).
    pub serial: String,
    /// The subject's common name, if it has one.
    pub common_name: Option<String>,
    /// When it became valid, in seconds since the Unix epoch.
    pub not_before: u64,
    /// When it expires, in seconds since the Unix epoch. Past it, TLS
    /// clients refuse the service: alert well before (see the README).
    pub expires_at: u64,
    /// For a certificate a PKI role issued: when the watcher has it issued
    /// again (two thirds of the way from when it was received to its
    /// expiry), in seconds since the Unix epoch; in the past while issuing
    /// fails. `None` for one from KV, which whoever writes KV replaces.
    pub reissue_at: Option<u64>,
    /// Attempts to issue its successor that failed in a row (Vault down,
    /// the role refusing, or a certificate this crate refuses): each
    /// retried after a backoff of 1 s doubling, at most 30 s.
    pub reissue_failures: u32,
    /// Why the last attempt failed (Vault's answer, or why the new
    /// certificate was refused), until one succeeds. Also in
    /// [`Health::last_error`] meanwhile.
    pub reissue_error: Option<String>,
}

/// One lease a watcher holds. Its credentials are never shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LeaseHealth {
    /// When it expires unless renewed, in seconds since the Unix epoch.
    pub expires_at: u64,
    /// Whether it can be renewed.
    pub renewable: bool,
    /// Renewals of this lease so far.
    pub renewals: u64,
}
