//! The anchor file: every checkpoint is also appended to a file in the data dir, one JSON line each.
//! Whoever can write the database can delete the chain's tail together with the checkpoints stored
//! next to it; the file, outside the database, still names the head that was, so the cut shows.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::checkpoint::AuditCheckpoint;

/// The anchor file's name in the data dir.
pub const ANCHOR_FILE: &str = "audit-checkpoints.jsonl";

/// How much of the file's end is read at start to find the newest checkpoint (lines are ~250 bytes).
const TAIL_BYTES: u64 = 64 * 1024;

/// Why the anchor file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The file could not be opened, read or written.
    #[error("audit anchor file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A line is not a checkpoint.
    #[error("audit anchor file {path}, line {line}: not a checkpoint ({reason})")]
    BadLine {
        /// The file.
        path: String,
        /// Line number, from 1.
        line: u64,
        /// What did not parse.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AnchorError + '_ {
    move |source| AnchorError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Appends checkpoints to the anchor file.
#[derive(Debug)]
pub struct AnchorWriter {
    path: PathBuf,
    file: File,
}

impl AnchorWriter {
    /// Open the file for appending (creating it), and return the newest checkpoint it holds.
    pub fn open(path: &Path) -> Result<(Self, Option<AuditCheckpoint>), AnchorError> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io(path))?;
        let len = file.metadata().map_err(io(path))?.len();
        let start = len.saturating_sub(TAIL_BYTES);
        file.seek(SeekFrom::Start(start)).map_err(io(path))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).map_err(io(path))?;
        if !tail.is_empty() && !tail.ends_with(b"\n") {
            // A write torn by a crash: end it, so the next line is not glued onto it.
            file.write_all(b"\n").map_err(io(path))?;
        }
        // The first line of a tail that starts mid-file may be cut; skip what does not parse.
        let newest = tail
            .split(|b| *b == b'\n')
            .rev()
            .find_map(|line| serde_json::from_slice::<AuditCheckpoint>(line).ok());
        let writer = Self {
            path: path.to_owned(),
            file,
        };
        Ok((writer, newest))
    }

    /// Append one checkpoint and flush it to disk.
    pub fn append(&mut self, checkpoint: &AuditCheckpoint) -> Result<(), AnchorError> {
        let mut line = serde_json::to_vec(checkpoint).map_err(|e| AnchorError::Io {
            path: self.path.display().to_string(),
            source: e.into(),
        })?;
        line.push(b'\n');
        // One write of a short line in append mode: concurrent appenders cannot interleave inside it.
        self.file.write_all(&line).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads the anchor file's checkpoints in file order, one line at a time.
#[derive(Debug)]
pub struct AnchorReader {
    path: PathBuf,
    lines: std::io::Lines<BufReader<File>>,
    line: u64,
}

impl AnchorReader {
    /// Open an existing anchor file.
    pub fn open(path: &Path) -> Result<Self, AnchorError> {
        let file = File::open(path).map_err(io(path))?;
        Ok(Self {
            path: path.to_owned(),
            lines: BufReader::new(file).lines(),
            line: 0,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next checkpoint with its line number; `None` at the end. Empty lines are skipped.
    pub fn next_checkpoint(&mut self) -> Result<Option<(u64, AuditCheckpoint)>, AnchorError> {
        for text in self.lines.by_ref() {
            self.line += 1;
            let text = text.map_err(io(&self.path))?;
            if text.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(&text)
                .map(|c| Some((self.line, c)))
                .map_err(|e| AnchorError::BadLine {
                    path: self.path.display().to_string(),
                    line: self.line,
                    reason: e.to_string(),
                });
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::checkpoint::AuditSigner;

    #[test]
    fn finding_8_anchor_file_appends_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ANCHOR_FILE);
        let signer = AuditSigner::generate();
        let (mut writer, newest) = AnchorWriter::open(&path).unwrap();
        assert_eq!(newest, None);
        let written: Vec<_> = (1..=3)
            .map(|i| signer.checkpoint(i, &format!("{i:064}"), 100 + i))
            .collect();
        for c in &written {
            writer.append(c).unwrap();
        }
        drop(writer);

        // Reopened (a restart), it knows the newest one.
        let (_, newest) = AnchorWriter::open(&path).unwrap();
        assert_eq!(newest.as_ref(), written.last());

        let mut reader = AnchorReader::open(&path).unwrap();
        let mut read = Vec::new();
        while let Some((_, c)) = reader.next_checkpoint().unwrap() {
            read.push(c);
        }
        assert_eq!(read, written);
    }

    #[test]
    fn finding_8_anchor_file_survives_a_torn_line_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ANCHOR_FILE);
        let signer = AuditSigner::generate();
        let first = signer.checkpoint(1, &"a".repeat(64), 1);
        std::fs::write(
            &path,
            format!(
                "{}\n{{\"seq\":2,\"ha",
                serde_json::to_string(&first).unwrap()
            ),
        )
        .unwrap();
        let (mut writer, newest) = AnchorWriter::open(&path).unwrap();
        assert_eq!(newest.as_ref(), Some(&first));
        let third = signer.checkpoint(3, &"c".repeat(64), 3);
        writer.append(&third).unwrap();

        let mut reader = AnchorReader::open(&path).unwrap();
        assert_eq!(reader.next_checkpoint().unwrap(), Some((1, first)));
        assert!(matches!(
            reader.next_checkpoint(),
            Err(AnchorError::BadLine { line: 2, .. })
        ));
        assert_eq!(reader.next_checkpoint().unwrap(), Some((3, third)));
    }
}
