//! `countersign audit verify`: recompute the chain from genesis, page by page, and check every signed
//! checkpoint (in the database and in the anchor files) against the keys and against the records.
//! It stops at the first broken link, in sequence order.

use std::path::{Path, PathBuf};

use super::anchor::{AnchorError, AnchorReader};
use super::checkpoint::{AuditCheckpoint, AuditPublicKey, AuditSigner, KeyError};
use super::{chain_hash, AuditRecord, GENESIS_HASH};
use crate::store::{Store, StoreError};

/// Records read per query.
pub const PAGE: i64 = 1000;

/// The first broken link: the lowest sequence number at which the chain or a checkpoint fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// Sequence number of the broken link.
    pub seq: i64,
    /// What is wrong there.
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "audit chain broken at seq {}: {}", self.seq, self.reason)
    }
}

/// What an intact chain holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Records in the chain.
    pub events: u64,
    /// The head record's seq and hash.
    pub head: Option<(i64, String)>,
    /// Checkpoints checked from the database.
    pub database_checkpoints: u64,
    /// Checkpoints checked from each anchor file.
    pub file_checkpoints: Vec<(PathBuf, u64)>,
    /// The newest checkpointed seq.
    pub anchored: Option<i64>,
    /// Records after the newest checkpoint (not yet signed).
    pub unanchored: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.head {
            Some((seq, hash)) => writeln!(
                f,
                "audit chain intact: {} events, head seq {seq} (hash {})",
                self.events,
                hash.get(..16).unwrap_or(hash)
            )?,
            None => writeln!(f, "audit chain intact: no events yet")?,
        }
        write!(
            f,
            "checkpoints: {} in the database",
            self.database_checkpoints
        )?;
        for (path, n) in &self.file_checkpoints {
            write!(f, ", {n} in {}", path.display())?;
        }
        match self.anchored {
            Some(seq) => writeln!(
                f,
                "; newest at seq {seq} ({} newer events not yet checkpointed)",
                self.unanchored
            ),
            None => writeln!(
                f,
                "; none yet ({} events not checkpointed)",
                self.unanchored
            ),
        }
    }
}

/// How verification ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Chain and checkpoints hold.
    Intact(Summary),
    /// The first broken link.
    Broken(Break),
}

/// Why verification could not run (as opposed to finding a break).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An anchor file could not be read.
    #[error(transparent)]
    Anchor(#[from] AnchorError),
    /// A key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The chain has records but an anchor file is gone, so a cut-off tail could not be seen.
    #[error(
        "anchor file {0} does not exist, but the audit chain has records: without it a cut-off \
         tail cannot be seen (pass each replica's file with --checkpoints)"
    )]
    MissingAnchor(String),
}

/// The keys to check checkpoints with: the given public key files, or else the data dir's
/// `audit-signing.pub` (written at first start), or, for a data dir older than that file, the
/// public half of its `audit-signing.key`.
pub fn trusted_keys(
    data_dir: &Path,
    public_keys: &[PathBuf],
) -> Result<Vec<AuditPublicKey>, KeyError> {
    if public_keys.is_empty() {
        let public = data_dir.join(super::checkpoint::PUBLIC_KEY_FILE);
        if public.exists() {
            return Ok(vec![AuditPublicKey::load(&public)?]);
        }
        let signer = AuditSigner::load(&data_dir.join(super::checkpoint::KEY_FILE))?;
        return Ok(vec![signer.public_key().clone()]);
    }
    public_keys
        .iter()
        .map(|p| AuditPublicKey::load(p))
        .collect()
}

/// A checkpoint's time for people: RFC 3339 UTC, or the raw seconds if out of range.
fn when(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

/// Where a checkpoint was read: the database (`None`) or an anchor file (its index and line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Origin {
    file: Option<(usize, u64)>,
}

/// A checkpoint and where it came from.
#[derive(Debug, Clone)]
struct Sighting {
    origin: Origin,
    checkpoint: AuditCheckpoint,
}

/// The walk's state between pages. Pure: the driver feeds it records and checkpoints.
#[derive(Debug)]
struct ChainCheck<'k> {
    keys: &'k [AuditPublicKey],
    files: Vec<PathBuf>,
    prev: Option<(i64, String)>,
    summary: Summary,
    anchored_position: u64,
}

impl<'k> ChainCheck<'k> {
    fn new(keys: &'k [AuditPublicKey], files: Vec<PathBuf>) -> Self {
        let summary = Summary {
            file_checkpoints: files.iter().map(|p| (p.clone(), 0)).collect(),
            ..Summary::default()
        };
        Self {
            keys,
            files,
            prev: None,
            summary,
            anchored_position: 0,
        }
    }

    fn origin(&self, origin: Origin) -> String {
        match origin.file {
            None => "the database".to_owned(),
            Some((i, line)) => format!(
                "{} line {line}",
                self.files
                    .get(i)
                    .map_or_else(String::new, |p| p.display().to_string())
            ),
        }
    }

    /// The first link in `page` that does not follow from the one before it.
    fn first_bad_link(&self, page: &[AuditRecord]) -> Option<Break> {
        let mut prev = self.prev.clone();
        for record in page {
            let prev_hash = prev.as_ref().map_or(GENESIS_HASH, |(_, h)| h.as_str());
            if record.prev_hash != prev_hash {
                let reason = match &prev {
                    Some((seq, _)) => format!(
                        "it does not link to the record before it (seq {seq}): a record between \
                         them was deleted, or the one before was rewritten"
                    ),
                    None => "the first record does not link to the start of the chain: \
                             records before it were deleted"
                        .to_owned(),
                };
                return Some(Break {
                    seq: record.seq,
                    reason,
                });
            }
            if chain_hash(prev_hash, &record.event) != record.hash {
                return Some(Break {
                    seq: record.seq,
                    reason: "its content does not match its hash: the record was edited".to_owned(),
                });
            }
            prev = Some((record.seq, record.hash.clone()));
        }
        None
    }

    /// Whether a trusted key signed it, and the record at its seq is the one it names.
    fn check_checkpoint(&self, page: &[AuditRecord], s: &Sighting) -> Result<usize, Break> {
        let c = &s.checkpoint;
        let broken = |reason: String| Break { seq: c.seq, reason };
        let Some(key) = self.keys.iter().find(|k| k.kid() == c.kid) else {
            return Err(broken(format!(
                "the checkpoint in {} is signed by key {}, which is not trusted \
                 (pass that replica's --public-key)",
                self.origin(s.origin),
                c.kid
            )));
        };
        if !key.verifies(c) {
            return Err(broken(format!(
                "the checkpoint in {} has a bad signature: it was forged or altered",
                self.origin(s.origin)
            )));
        }
        match page.binary_search_by_key(&c.seq, |r| r.seq) {
            Err(_) => Err(broken(format!(
                "the checkpoint in {} (made at {}) names this record, which the chain no longer \
                 holds: it was deleted",
                self.origin(s.origin),
                when(c.at)
            ))),
            Ok(i) if page[i].hash != c.hash => Err(broken(format!(
                "the record differs from the checkpoint in {} (made at {}): it, or a record \
                 before it, was rewritten",
                self.origin(s.origin),
                when(c.at)
            ))),
            Ok(i) => Ok(i),
        }
    }

    /// Check one page of records with every checkpoint whose seq falls within it.
    fn page(&mut self, page: &[AuditRecord], mut sightings: Vec<Sighting>) -> Result<(), Break> {
        let link = self.first_bad_link(page);
        sightings.sort_by_key(|s| s.checkpoint.seq);
        for s in &sightings {
            if link.as_ref().is_some_and(|b| s.checkpoint.seq >= b.seq) {
                break;
            }
            let i = self.check_checkpoint(page, s)?;
            match s.origin.file {
                None => self.summary.database_checkpoints += 1,
                Some((f, _)) => {
                    if let Some((_, n)) = self.summary.file_checkpoints.get_mut(f) {
                        *n += 1;
                    }
                }
            }
            if self.summary.anchored.is_none_or(|a| a <= s.checkpoint.seq) {
                self.summary.anchored = Some(s.checkpoint.seq);
                self.anchored_position = self.summary.events + i as u64 + 1;
            }
        }
        if let Some(b) = link {
            return Err(b);
        }
        self.summary.events += page.len() as u64;
        if let Some(last) = page.last() {
            self.prev = Some((last.seq, last.hash.clone()));
        }
        Ok(())
    }

    /// Checkpoints beyond the head mean the chain lost its end.
    fn beyond_head(&self, sightings: Vec<Sighting>) -> Result<(), Break> {
        let head = self.prev.as_ref().map_or(0, |(seq, _)| *seq);
        let Some(s) = sightings.into_iter().min_by_key(|s| s.checkpoint.seq) else {
            return Ok(());
        };
        let c = &s.checkpoint;
        let signed = self.keys.iter().any(|k| k.kid() == c.kid && k.verifies(c));
        let reason = if signed {
            format!(
                "the checkpoint in {} (made at {}) names seq {}, but the chain ends at seq {head}: \
                 its tail was cut off",
                self.origin(s.origin),
                when(c.at),
                c.seq
            )
        } else {
            format!(
                "the checkpoint in {} names seq {} beyond the chain's end (seq {head}) and is not \
                 signed by a trusted key",
                self.origin(s.origin),
                c.seq
            )
        };
        Err(Break { seq: c.seq, reason })
    }

    fn finish(mut self) -> Summary {
        self.summary.head = self.prev.take();
        self.summary.unanchored = self.summary.events - self.anchored_position;
        self.summary
    }
}

/// An anchor file read alongside the chain, one page's worth at a time.
struct FileSource {
    index: usize,
    path: PathBuf,
    reader: Option<AnchorReader>,
    peeked: Option<(u64, AuditCheckpoint)>,
    last_seq: Option<i64>,
    /// Set when the file goes back: its writer only ever appends newer heads.
    broken: Option<Break>,
}

impl FileSource {
    /// Move checkpoints with seq up to `through` into `out`, in file order.
    fn take_through(&mut self, through: i64, out: &mut Vec<Sighting>) -> Result<(), VerifyError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(());
        };
        while self.broken.is_none() {
            if self.peeked.is_none() {
                self.peeked = reader.next_checkpoint()?;
            }
            let Some((line, c)) = self.peeked.take() else {
                break;
            };
            if c.seq > through {
                self.peeked = Some((line, c));
                break;
            }
            if let Some(last) = self.last_seq.filter(|last| c.seq < *last) {
                self.broken = Some(Break {
                    seq: c.seq,
                    reason: format!(
                        "{} line {line} goes back from seq {last}: the anchor file was edited",
                        self.path.display()
                    ),
                });
                break;
            }
            self.last_seq = Some(c.seq);
            out.push(Sighting {
                origin: Origin {
                    file: Some((self.index, line)),
                },
                checkpoint: c,
            });
        }
        Ok(())
    }
}

/// The first break an anchor file itself showed, if any.
fn file_break(files: &[FileSource]) -> Option<Break> {
    files
        .iter()
        .filter_map(|f| f.broken.clone())
        .min_by_key(|b| b.seq)
}

/// Verify the chain in `store` with its checkpoints there and in `anchors`, against `keys`.
pub async fn verify(
    store: &dyn Store,
    keys: &[AuditPublicKey],
    anchors: &[PathBuf],
) -> Result<Outcome, VerifyError> {
    let mut files = Vec::new();
    for (index, path) in anchors.iter().enumerate() {
        let reader = match AnchorReader::open(path) {
            Ok(reader) => Some(reader),
            Err(AnchorError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                if store.audit_head().await?.is_some() {
                    return Err(VerifyError::MissingAnchor(path.display().to_string()));
                }
                None
            }
            Err(e) => return Err(e.into()),
        };
        files.push(FileSource {
            index,
            path: path.clone(),
            reader,
            peeked: None,
            last_seq: None,
            broken: None,
        });
    }
    let mut check = ChainCheck::new(keys, anchors.to_vec());
    let mut after = 0;
    loop {
        let page = store.audit_records(after, PAGE).await?;
        let Some(through) = page.last().map(|r| r.seq) else {
            break;
        };
        let mut sightings: Vec<Sighting> = store
            .audit_checkpoints(after, through)
            .await?
            .into_iter()
            .map(|checkpoint| Sighting {
                origin: Origin { file: None },
                checkpoint,
            })
            .collect();
        for file in &mut files {
            file.take_through(through, &mut sightings)?;
        }
        if let Err(b) = check.page(&page, sightings) {
            return Ok(Outcome::Broken(b));
        }
        if let Some(b) = file_break(&files) {
            return Ok(Outcome::Broken(b));
        }
        after = through;
    }
    let mut beyond: Vec<Sighting> = store
        .audit_checkpoints(after, i64::MAX)
        .await?
        .into_iter()
        .map(|checkpoint| Sighting {
            origin: Origin { file: None },
            checkpoint,
        })
        .collect();
    for file in &mut files {
        file.take_through(i64::MAX, &mut beyond)?;
    }
    if let Some(b) = file_break(&files) {
        return Ok(Outcome::Broken(b));
    }
    if let Err(b) = check.beyond_head(beyond) {
        return Ok(Outcome::Broken(b));
    }
    Ok(Outcome::Intact(check.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditEvent;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let event = AuditEvent {
                    at: 1_700_000_000 + seq,
                    kind: "grant.used".into(),
                    actor: "webhook".into(),
                    subject: format!("g{seq}"),
                    detail: serde_json::json!({ "seq": seq }),
                };
                let hash = chain_hash(&prev, &event);
                let record = AuditRecord {
                    seq,
                    event,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                record
            })
            .collect()
    }

    fn in_db(checkpoint: AuditCheckpoint) -> Sighting {
        Sighting {
            origin: Origin { file: None },
            checkpoint,
        }
    }

    fn run(
        keys: &[AuditPublicKey],
        pages: &[&[AuditRecord]],
        checkpoints: &[AuditCheckpoint],
    ) -> Result<Summary, Break> {
        let mut check = ChainCheck::new(keys, Vec::new());
        let mut after = 0;
        for page in pages {
            let through = page.last().map_or(after, |r| r.seq);
            let sightings = checkpoints
                .iter()
                .filter(|c| c.seq > after && c.seq <= through)
                .cloned()
                .map(in_db)
                .collect();
            check.page(page, sightings)?;
            after = through;
        }
        let beyond = checkpoints
            .iter()
            .filter(|c| c.seq > after)
            .cloned()
            .map(in_db)
            .collect();
        check.beyond_head(beyond)?;
        Ok(check.finish())
    }

    #[test]
    fn finding_8_intact_chain_across_pages_with_checkpoints() {
        let signer = AuditSigner::generate();
        let keys = [signer.public_key().clone()];
        let records = chain(10);
        let checkpoints = [
            signer.checkpoint(4, &records[3].hash, 1),
            signer.checkpoint(8, &records[7].hash, 2),
        ];
        let summary = run(&keys, &[&records[..5], &records[5..]], &checkpoints).unwrap();
        assert_eq!(summary.events, 10);
        assert_eq!(summary.head, Some((10, records[9].hash.clone())));
        assert_eq!(summary.database_checkpoints, 2);
        assert_eq!((summary.anchored, summary.unanchored), (Some(8), 2));
    }

    #[test]
    fn finding_8_edited_record_is_named() {
        let keys = [AuditSigner::generate().public_key().clone()];
        let mut records = chain(6);
        records[2].event.detail = serde_json::json!({ "seq": 3, "tampered": true });
        let broken = run(&keys, &[&records], &[]).unwrap_err();
        assert_eq!(broken.seq, 3, "{broken}");
        assert!(broken.reason.contains("edited"), "{broken}");
    }

    #[test]
    fn finding_8_rewritten_chain_is_caught_by_a_checkpoint() {
        let signer = AuditSigner::generate();
        let keys = [signer.public_key().clone()];
        let original = chain(6);
        let checkpoint = signer.checkpoint(5, &original[4].hash, 1);
        // An attacker edits seq 3 and recomputes every hash after it: the chain alone holds.
        let mut records = original.clone();
        records[2].event.subject = "mallory".into();
        let mut prev = records[1].hash.clone();
        for r in &mut records[2..] {
            r.prev_hash = prev.clone();
            r.hash = chain_hash(&prev, &r.event);
            prev = r.hash.clone();
        }
        assert!(run(&keys, &[&records], &[]).is_ok());
        let broken = run(&keys, &[&records], &[checkpoint]).unwrap_err();
        assert_eq!(broken.seq, 5, "{broken}");
        assert!(broken.reason.contains("rewritten"), "{broken}");
    }

    #[test]
    fn finding_8_deleted_record_is_named() {
        let signer = AuditSigner::generate();
        let keys = [signer.public_key().clone()];
        let mut records = chain(6);
        records.remove(3);
        let broken = run(&keys, &[&records], &[]).unwrap_err();
        assert_eq!(broken.seq, 5, "the record after the hole: {broken}");
        // With a checkpoint on the deleted record itself, that record is named.
        let original = chain(6);
        let at_hole = signer.checkpoint(4, &original[3].hash, 1);
        let broken = run(&keys, &[&records], &[at_hole]).unwrap_err();
        assert_eq!(broken.seq, 4, "{broken}");
        assert!(broken.reason.contains("deleted"), "{broken}");
        // Deleting the first record is caught too.
        let broken = run(&keys, &[&original[1..]], &[]).unwrap_err();
        assert_eq!(broken.seq, 2, "{broken}");
    }

    #[test]
    fn finding_8_cut_off_tail_is_caught_by_a_checkpoint_beyond_the_head() {
        let signer = AuditSigner::generate();
        let keys = [signer.public_key().clone()];
        let records = chain(6);
        let checkpoint = signer.checkpoint(6, &records[5].hash, 1);
        assert!(run(&keys, &[&records[..4]], &[]).is_ok());
        let broken = run(&keys, &[&records[..4]], &[checkpoint]).unwrap_err();
        assert_eq!(broken.seq, 6, "{broken}");
        assert!(broken.reason.contains("cut off"), "{broken}");
    }

    #[test]
    fn finding_8_forged_and_foreign_checkpoints_are_refused() {
        let signer = AuditSigner::generate();
        let keys = [signer.public_key().clone()];
        let records = chain(4);
        let mut forged = signer.checkpoint(2, &records[1].hash, 1);
        forged.at += 1;
        let broken = run(&keys, &[&records], &[forged]).unwrap_err();
        assert!(broken.reason.contains("bad signature"), "{broken}");
        let foreign = AuditSigner::generate().checkpoint(2, &records[1].hash, 1);
        let broken = run(&keys, &[&records], &[foreign]).unwrap_err();
        assert!(broken.reason.contains("not trusted"), "{broken}");
    }
}
