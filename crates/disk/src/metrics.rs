//! The disk tier's counters, and their names as Prometheus metrics.
//!
//! Owns [`Counters`] (what happened, kept as atomics so [`crate::DiskStats`] can report them
//! without a metrics recorder) and the one place metric names are spelled:
//!
//! | metric | kind | meaning |
//! |---|---|---|
//! | `vanish_disk_bytes` | gauge | bytes of segment files |
//! | `vanish_disk_live_bytes` | gauge | bytes of live object records |
//! | `vanish_disk_objects` | gauge | objects indexed on disk |
//! | `vanish_disk_capacity_bytes` | gauge | `[disk] capacity` |
//! | `vanish_disk_hits_total` | counter | lookups answered from disk (memory missed) |
//! | `vanish_disk_reads_total` / `vanish_disk_writes_total` | counter | records read / written |
//! | `vanish_disk_written_bytes_total` | counter | bytes written (records and purge log) |
//! | `vanish_disk_admitted_body_bytes_total` | counter | body bytes of the objects written |
//! | `vanish_disk_damaged_total` | counter | records dropped for a failed checksum |
//! | `vanish_disk_io_errors_total` | counter | I/O errors (reads, writes, syncs) |
//! | `vanish_disk_evicted_segments_total` | counter | segments dropped for capacity |
//! | `vanish_disk_skipped_total` | counter | admissions not written (queue full, degraded, too large) |
//! | `vanish_disk_degraded` | gauge | 1 while writes are off after an I/O error |
//! | `vanish_disk_rebuilding` | gauge | 1 while the index is being rebuilt |
//! | `vanish_disk_rebuild_seconds` | gauge | how long the last rebuild took |
//!
//! Write amplification is `written_bytes_total / admitted_body_bytes_total`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Event counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Lookups answered from disk.
    pub hits: AtomicU64,
    /// Records read.
    pub reads: AtomicU64,
    /// Records written.
    pub writes: AtomicU64,
    /// Bytes written, records and purge log.
    pub written_bytes: AtomicU64,
    /// Body bytes of the objects written.
    pub body_bytes: AtomicU64,
    /// Records dropped for a failed checksum.
    pub damaged: AtomicU64,
    /// I/O errors.
    pub io_errors: AtomicU64,
    /// Segments evicted for capacity.
    pub evicted_segments: AtomicU64,
    /// Admissions not written.
    pub skipped: AtomicU64,
}

fn add(c: &AtomicU64, n: u64, name: &'static str) {
    c.fetch_add(n, Ordering::Relaxed);
    metrics::counter!(name).increment(n);
}

impl Counters {
    /// A lookup answered from disk.
    pub fn hit(&self) {
        add(&self.hits, 1, "vanish_disk_hits_total");
    }
    /// A record read.
    pub fn read(&self) {
        add(&self.reads, 1, "vanish_disk_reads_total");
    }
    /// An object record written: its bytes and its body's.
    pub fn wrote(&self, bytes: u64, body: u64) {
        add(&self.writes, 1, "vanish_disk_writes_total");
        add(
            &self.written_bytes,
            bytes,
            "vanish_disk_written_bytes_total",
        );
        add(
            &self.body_bytes,
            body,
            "vanish_disk_admitted_body_bytes_total",
        );
    }
    /// Purge-log bytes written.
    pub fn wrote_log(&self, bytes: u64) {
        add(
            &self.written_bytes,
            bytes,
            "vanish_disk_written_bytes_total",
        );
    }
    /// Records found damaged.
    pub fn damaged(&self, n: u64) {
        if n > 0 {
            add(&self.damaged, n, "vanish_disk_damaged_total");
        }
    }
    /// An I/O error.
    pub fn io_error(&self) {
        add(&self.io_errors, 1, "vanish_disk_io_errors_total");
    }
    /// A segment evicted.
    pub fn evicted(&self) {
        add(
            &self.evicted_segments,
            1,
            "vanish_disk_evicted_segments_total",
        );
    }
    /// An admission not written.
    pub fn skipped(&self) {
        add(&self.skipped, 1, "vanish_disk_skipped_total");
    }
}

/// Publishes the sizes.
pub fn sizes(bytes: u64, live_bytes: u64, objects: u64, capacity: u64) {
    metrics::gauge!("vanish_disk_bytes").set(bytes as f64);
    metrics::gauge!("vanish_disk_live_bytes").set(live_bytes as f64);
    metrics::gauge!("vanish_disk_objects").set(objects as f64);
    metrics::gauge!("vanish_disk_capacity_bytes").set(capacity as f64);
}

/// Publishes whether writes are off.
pub fn degraded(on: bool) {
    metrics::gauge!("vanish_disk_degraded").set(if on { 1.0 } else { 0.0 });
}

/// Publishes the rebuild's state and, once over, its duration.
pub fn rebuild(running: bool, seconds: Option<f64>) {
    metrics::gauge!("vanish_disk_rebuilding").set(if running { 1.0 } else { 0.0 });
    if let Some(s) = seconds {
        metrics::gauge!("vanish_disk_rebuild_seconds").set(s);
    }
}
