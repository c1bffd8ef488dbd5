//! # vanish
//!
//! The Vanish binary's library: a caching reverse proxy over the `vanish-engine` with the
//! embedded memory store, its admin API, and the command-line client for that API.
//!
//! - [`config`]: the TOML file and flags;
//! - [`server`]: listeners (plain, TLS, PROXY protocol; HTTP/1.1 and HTTP/2), reloading
//!   certificates, graceful shutdown (`connections`: slots, idle eviction);
//! - [`proxy`]: the client-facing service and the upstream;
//! - [`admin`]: purge, explain, metrics, health;
//! - [`cli`]: the `vanish purge` / `vanish explain` client;
//! - [`demo`]: a small built-in origin for `vanish demo`;
//! - [`allocator`]: the allocator's figures (jemalloc by default).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod allocator;
pub mod cli;
pub mod config;
mod connections;
pub mod demo;
pub mod proxy;
pub mod server;
pub mod telemetry;
