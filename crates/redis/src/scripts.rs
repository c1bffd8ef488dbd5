//! The Lua scripts that keep objects and their invalidation indexes in step inside Redis.
//!
//! Owns their sources (`src/lua/*.lua`, each prefixed with `common.lua`), loading them, and
//! calling them by SHA with a fallback to `EVAL` when a server forgot them (after
//! a restart or failover). Every script names one key, the bucket's control hash, and derives
//! the bucket's other keys from its hash tag: one slot per call. Which key and which arguments
//! a call gets, and what its reply means, are the caller's (`l2`); this module only runs them.

use fred::prelude::*;
use fred::types::{MultipleKeys, MultipleValues};

const COMMON: &str = include_str!("lua/common.lua");

/// One script: its full source and SHA-1.
#[derive(Debug, Clone)]
pub struct Script {
    body: String,
    sha: String,
}

/// All scripts.
#[derive(Debug, Clone)]
pub struct Scripts {
    /// Store one object (with the read-after-purge check).
    pub insert: Script,
    /// Read one resource's variants.
    pub lookup: Script,
    /// Purge or count by selectors.
    pub purge: Script,
    /// Unindex expired objects.
    pub prune: Script,
    /// Object and byte counts.
    pub stats: Script,
    /// The next purge sequence number (time-based, monotonic across data loss).
    pub next_seq: Script,
}

fn source(body: &str) -> String {
    format!("{COMMON}\n{body}")
}

impl Scripts {
    /// Loads every script and learns their SHAs.
    pub async fn load(client: &Client) -> Result<Scripts, Error> {
        let one = |body: &'static str| async move {
            let body = if body.starts_with("-- The next purge sequence") {
                body.to_owned()
            } else {
                source(body)
            };
            // Loaded on one server; the others learn it on first use (EVAL after NOSCRIPT).
            let sha: String = client.script_load(body.clone()).await?;
            Ok::<_, Error>(Script { body, sha })
        };
        Ok(Scripts {
            insert: one(include_str!("lua/insert.lua")).await?,
            lookup: one(include_str!("lua/lookup.lua")).await?,
            purge: one(include_str!("lua/purge.lua")).await?,
            prune: one(include_str!("lua/prune.lua")).await?,
            stats: one(include_str!("lua/stats.lua")).await?,
            next_seq: one(include_str!("lua/seq.lua")).await?,
        })
    }
}

impl Script {
    /// Runs the script with `EVALSHA`, or `EVAL` if the server does not know it.
    pub async fn call<R, K, V>(&self, client: &Client, keys: K, args: V) -> Result<R, Error>
    where
        R: FromValue,
        K: Into<MultipleKeys> + Send,
        V: TryInto<MultipleValues> + Send,
        V::Error: Into<Error> + Send,
    {
        let keys: MultipleKeys = keys.into();
        let args: MultipleValues = args.try_into().map_err(Into::into)?;
        match client
            .evalsha::<R, _, _, _>(self.sha.as_str(), keys.clone(), args.clone())
            .await
        {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                client
                    .eval::<R, _, _, _>(self.body.as_str(), keys, args)
                    .await
            }
            other => other,
        }
    }
}
