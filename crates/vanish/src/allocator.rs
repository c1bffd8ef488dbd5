//! The process's memory allocator and what it reports.
//!
//! With the `jemalloc` feature (on by default) the `vanish` binary installs jemalloc as its
//! global allocator: a cache frees tens of megabytes a second (evicted and purged objects),
//! and glibc's malloc kept that memory in fragmented arenas (RSS 2.5 times the configured
//! capacity in the soak run) where jemalloc, as configured, hands freed pages back to the OS at
//! once. Its settings are baked in at build time by `.cargo/config.toml`
//! (`JEMALLOC_SYS_WITH_MALLOC_CONF`) and can be overridden at run time with `_RJEM_MALLOC_CONF`.
//!
//! This module owns only the allocator's figures for `/metrics`; it does not install anything
//! (`main.rs` does, and then calls [`mark_installed`]).

use std::sync::atomic::{AtomicBool, Ordering};

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Figures the allocator keeps, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Bytes the program has allocated and not freed.
    pub allocated: u64,
    /// Bytes in pages the allocator has in use for allocations (`allocated` plus slack).
    pub active: u64,
    /// Bytes of physical memory the allocator holds (what it adds to the process's RSS).
    pub resident: u64,
    /// Bytes of virtual memory kept mapped but returned to the OS.
    pub retained: u64,
}

/// Records that the global allocator is jemalloc, so [`stats`] reports its figures (in-process
/// tests run the library on the system allocator, where there are none).
pub fn mark_installed() {
    INSTALLED.store(true, Ordering::Release);
}

/// The allocator's current figures, when `vanish` runs on jemalloc.
///
/// ```
/// // Without `mark_installed` (the system allocator) there is nothing to report.
/// assert!(vanish::allocator::stats().is_none());
/// ```
pub fn stats() -> Option<AllocatorStats> {
    if !INSTALLED.load(Ordering::Acquire) {
        return None;
    }
    read()
}

#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
fn read() -> Option<AllocatorStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    // jemalloc's statistics are a snapshot refreshed by advancing the epoch.
    epoch::advance().ok()?;
    Some(AllocatorStats {
        allocated: stats::allocated::read().ok()? as u64,
        active: stats::active::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
        retained: stats::retained::read().ok()? as u64,
    })
}

#[cfg(not(all(feature = "jemalloc", not(target_env = "msvc"))))]
fn read() -> Option<AllocatorStats> {
    None
}

/// The figures in Prometheus text format (empty when there are none).
pub fn render_metrics() -> String {
    let Some(s) = stats() else {
        return String::new();
    };
    let mut out = String::new();
    for (name, help, v) in [
        ("allocated", "bytes allocated and not freed", s.allocated),
        ("active", "bytes in pages holding allocations", s.active),
        (
            "resident",
            "bytes of physical memory the allocator holds",
            s.resident,
        ),
        (
            "retained",
            "bytes mapped but returned to the OS",
            s.retained,
        ),
    ] {
        out.push_str(&format!(
            "# HELP vanish_allocator_{name}_bytes jemalloc: {help}\n# TYPE vanish_allocator_{name}_bytes gauge\nvanish_allocator_{name}_bytes {v}\n"
        ));
    }
    out
}
