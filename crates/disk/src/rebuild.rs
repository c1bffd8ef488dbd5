//! The rebuild: reading the segments present at start back into the index, in the background.
//!
//! Owns the scan of old segments (headers and heads only, oldest first, so a newer record of
//! a variant replaces an older one), the judgement of each record against the purge log
//! (tombstones, soft marks, `all` boundaries, selector purges) and against the purges that
//! arrive while it runs, and, once done, the compaction of the purge log and the switch that
//! lets lookups use the index. Time grows linearly with the records; until it is over, disk
//! lookups miss (the origin answers) and purges are logged as selectors so none is lost.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::codec::{self, unix_ms};
use crate::index::{DiskEntry, Verdict};
use crate::metrics;
use crate::purge_log::Loaded;
use crate::state::Shared;

/// Records judged per hold of the index lock.
const BATCH: usize = 512;

struct Pending {
    seq: u64,
    offset: u64,
    len: u64,
    meta: codec::StoredMeta,
}

/// Reads `old` (segment ids and lengths, oldest first) into the index, then compacts the
/// purge log and opens the index to lookups.
pub fn run(shared: Arc<Shared>, old: Vec<(u32, u64)>, loaded: Loaded) {
    let start = Instant::now();
    metrics::rebuild(true, None);
    let now_ms = unix_ms(SystemTime::now());
    let mut dead: HashSet<u64> = HashSet::new();
    let mut objects = 0u64;
    let mut damaged = 0u64;
    for (id, _) in &old {
        if shared.lock_index().is_gone(*id) {
            continue;
        }
        let Some(file) = shared.files.get(*id) else {
            continue;
        };
        let mut batch: Vec<Pending> = Vec::with_capacity(BATCH);
        let mut bad_heads = 0u64;
        let scanned = crate::segments::scan(&file, |h, offset, head| {
            match codec::decode_meta(head) {
                Ok(meta) => batch.push(Pending {
                    seq: h.seq,
                    offset,
                    len: h.total_len(),
                    meta,
                }),
                Err(_) => bad_heads += 1,
            }
            if batch.len() >= BATCH {
                objects += judge(&shared, &loaded, &mut batch, &mut dead, now_ms);
            }
        });
        objects += judge(&shared, &loaded, &mut batch, &mut dead, now_ms);
        damaged += bad_heads;
        match scanned {
            Ok(s) => {
                damaged += s.damaged;
                if s.torn {
                    // A write cut short by a crash: never acknowledged, never read.
                    damaged += 1;
                    tracing::info!(
                        segment = id,
                        kept = s.good_len,
                        "disk tier: a segment ends in a torn write; it is cut off"
                    );
                    if let Ok(f) = std::fs::OpenOptions::new()
                        .write(true)
                        .open(crate::segments::path(&shared.dir, *id))
                    {
                        let _ = f.set_len(s.good_len);
                    }
                }
            }
            Err(e) => {
                shared.counters.io_error();
                tracing::warn!(error = %e, segment = id, "disk tier: cannot read a segment back; its objects are skipped");
            }
        }
    }
    shared.counters.damaged(damaged);
    // Compaction: the log keeps only what still matters, then the index opens.
    let mut idx = shared.lock_index();
    let records = shared.compacted(&idx, &dead);
    let mut purges = shared.lock_purges();
    match purges.rewrite(&records) {
        Ok(()) => shared.counters.wrote_log(records.len() as u64),
        Err(e) => {
            // The old log still holds everything: only its size is not reduced.
            shared.counters.io_error();
            tracing::warn!(error = %e, "disk tier: cannot compact the purge log");
        }
    }
    drop(purges);
    shared
        .appended
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    idx.rebuild_purges.clear();
    idx.rebuilt = true;
    shared.publish_sizes(&idx);
    drop(idx);
    shared.ready.store(true, Ordering::Release);
    let took = start.elapsed();
    shared
        .rebuild_ms
        .store(took.as_millis() as u64, Ordering::Relaxed);
    metrics::rebuild(false, Some(took.as_secs_f64()));
    tracing::info!(
        objects,
        damaged,
        segments = old.len(),
        seconds = took.as_secs_f64(),
        "disk tier: index rebuilt"
    );
}

/// Judges and indexes a batch under one hold of the index lock; returns how many were
/// indexed.
fn judge(
    shared: &Shared,
    loaded: &Loaded,
    batch: &mut Vec<Pending>,
    dead: &mut HashSet<u64>,
    now_ms: u64,
) -> u64 {
    if batch.is_empty() {
        return 0;
    }
    let mut n = 0;
    let mut idx = shared.lock_index();
    for p in batch.drain(..) {
        let mut soft = loaded.soft.get(&p.seq).copied().unwrap_or(0);
        let verdict = if loaded.tombstones.contains(&p.seq) || p.seq < loaded.all_boundary {
            Verdict::Dead
        } else {
            idx.verdict(p.seq, &p.meta.meta)
        };
        let verdict = match verdict {
            Verdict::Live if p.seq < loaded.soft_all.0 => Verdict::Soft(loaded.soft_all.1),
            v => v,
        };
        let verdict = match verdict {
            Verdict::Live => loaded
                .selectors
                .iter()
                .filter(|s| p.seq < s.boundary && s.req.matches(&p.meta.meta))
                .map(|s| match s.req.mode {
                    vanish_engine::PurgeMode::Hard => Verdict::Dead,
                    vanish_engine::PurgeMode::Soft => Verdict::Soft(s.at_ms),
                })
                .min_by_key(|v| matches!(v, Verdict::Soft(_)))
                .unwrap_or(Verdict::Live),
            v => v,
        };
        match verdict {
            Verdict::Dead => {
                dead.insert(p.seq);
                dead.extend(idx.supersede(&p.meta, p.seq));
                continue;
            }
            Verdict::Soft(at) => soft = if soft == 0 { at } else { soft.min(at) },
            Verdict::Live => {}
        }
        if unix_ms(p.meta.retain_until) <= now_ms {
            continue; // expired: left for eviction, never indexed
        }
        let entry = Arc::new(DiskEntry::new(p.meta, p.seq, p.offset, p.len, true));
        if soft > 0 {
            entry.mark_soft(soft);
        }
        if idx.insert(entry, shared.limits.max_variants) {
            n += 1;
        }
    }
    n
}
