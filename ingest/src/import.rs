//! Bulk NDJSON import: parse lines, store good ones in batches, report and
//! keep bad ones.

use crate::error::ImportError;
use crate::{line_input_or_back, now_ms};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use ticks_engine::{AppendOutcome, Input, Source, Store};

/// Where an import's batches go: the embedded store, or another backend.
pub trait ImportTarget: Sync {
    /// Starts writing `batch`; the answer waits until it is durable. The
    /// import submits the next batch before it waits for this one, so a
    /// target that writes in the background overlaps with parsing.
    fn submit_batch(&self, batch: Vec<Input>) -> Result<PendingBatch, ImportError>;
}

/// A batch being written: [`PendingBatch::wait`] gives its outcomes.
pub struct PendingBatch(Box<dyn FnOnce() -> Result<Vec<AppendOutcome>, ImportError> + Send>);

impl PendingBatch {
    /// A batch whose outcomes are known now (a target that writes in the
    /// caller's thread).
    pub fn done(outcomes: Result<Vec<AppendOutcome>, ImportError>) -> PendingBatch {
        PendingBatch(Box::new(move || outcomes))
    }
    /// A batch whose outcomes `wait` gives.
    pub fn later(
        wait: impl FnOnce() -> Result<Vec<AppendOutcome>, ImportError> + Send + 'static,
    ) -> PendingBatch {
        PendingBatch(Box::new(wait))
    }
    /// Waits until the batch is durable.
    pub fn wait(self) -> Result<Vec<AppendOutcome>, ImportError> {
        (self.0)()
    }
}

impl ImportTarget for Store {
    fn submit_batch(&self, batch: Vec<Input>) -> Result<PendingBatch, ImportError> {
        let pending = self.submit(batch)?;
        Ok(PendingBatch::later(move || Ok(pending.wait()?)))
    }
}

/// How many rejections a report lists; the count is always exact.
const MAX_LISTED_REJECTIONS: usize = 1000;

/// Options of [`import`].
pub struct ImportOptions<'a> {
    /// Where rejected lines are written verbatim (one per line), so nothing
    /// is lost; `None` keeps them only in the report.
    pub rejects: Option<PathBuf>,
    /// Lines per append (one flush per batch). The default, 8192, keeps
    /// both cores busy: with 2048 a 1M-message import had 1.78 cores busy
    /// and spent 6% and 16% more CPU per line in two runs alternating with
    /// 8192 (`ticks-bench --batch-lines`). A webhook that arrives meanwhile
    /// waits for at most one batch, about 0.1 s.
    pub batch_lines: usize,
    /// Recorded as the inputs' source.
    pub source: Source,
    /// Called after each batch with (bytes read, lines read).
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

impl Default for ImportOptions<'_> {
    fn default() -> Self {
        ImportOptions {
            rejects: None,
            batch_lines: 8192,
            source: Source::Import,
            progress: None,
        }
    }
}

/// A rejected line.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    /// 1-based line number.
    pub line: u64,
    /// Why it was rejected, naming the field.
    pub reason: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Non-empty lines read.
    pub lines: u64,
    /// Lines that stored at least one new event.
    pub stored: u64,
    /// Lines whose every event was already stored.
    pub duplicates: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// The first rejections, with line numbers and reasons.
    pub rejections: Vec<Rejection>,
    /// Bytes read.
    pub bytes: u64,
}

/// Imports NDJSON from `reader` into `store`. Parsing runs on this thread
/// while the previous batch is being written, so the two overlap.
pub fn import(
    store: &dyn ImportTarget,
    reader: impl BufRead,
    options: &ImportOptions<'_>,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let mut rejects = match &options.rejects {
        Some(path) => Some((
            path.clone(),
            std::io::BufWriter::new(std::fs::File::create(path).map_err(|source| {
                ImportError::Rejects {
                    path: path.clone(),
                    source,
                }
            })?),
        )),
        None => None,
    };
    let batch_lines = options.batch_lines.max(1);
    let (tx, rx) = mpsc::sync_channel::<Vec<Input>>(2);
    let result: Result<(u64, u64), ImportError> = std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<(u64, u64), ImportError> {
            let (mut stored, mut dups) = (0, 0);
            let mut count = |outcomes: Vec<AppendOutcome>| {
                for outcome in outcomes {
                    if outcome.seq.is_some() {
                        stored += 1;
                    } else {
                        dups += 1;
                    }
                }
            };
            // One batch in flight: this thread compresses batch N+1 while
            // the store's writer flushes batch N.
            let mut in_flight: Option<PendingBatch> = None;
            for batch in rx {
                let pending = store.submit_batch(batch)?;
                if let Some(previous) = in_flight.replace(pending) {
                    count(previous.wait()?);
                }
            }
            if let Some(last) = in_flight {
                count(last.wait()?);
            }
            Ok((stored, dups))
        });
        let parsed = (|| -> Result<(), ImportError> {
            let mut batch = Vec::with_capacity(batch_lines);
            let mut line_no = 0u64;
            for line in reader.split(b'\n') {
                let mut line = line?;
                line_no += 1;
                report.bytes += line.len() as u64 + 1;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                report.lines += 1;
                match line_input_or_back(line, options.source, now_ms()) {
                    Ok(input) if input.events.is_empty() => reject(
                        &mut report,
                        &mut rejects,
                        line_no,
                        "the webhook carries no change".into(),
                        &input.raw,
                    )?,
                    Ok(input) => batch.push(input),
                    Err((e, line)) => {
                        reject(&mut report, &mut rejects, line_no, e.to_string(), &line)?
                    }
                }
                if batch.len() >= batch_lines {
                    if tx.send(std::mem::take(&mut batch)).is_err() {
                        break;
                    }
                    if let Some(p) = options.progress {
                        p(report.bytes, line_no);
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
            Ok(())
        })();
        drop(tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(ImportError::Store(ticks_engine::Error::Closed)));
        parsed?;
        written
    });
    let (stored, dups) = result?;
    report.stored = stored;
    report.duplicates = dups;
    if let Some((path, mut w)) = rejects {
        w.flush()
            .map_err(|source| ImportError::Rejects { path, source })?;
    }
    if let Some(p) = options.progress {
        p(report.bytes, report.lines);
    }
    Ok(report)
}

fn reject(
    report: &mut ImportReport,
    rejects: &mut Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    line: u64,
    reason: String,
    raw: &[u8],
) -> Result<(), ImportError> {
    report.rejected += 1;
    if report.rejections.len() < MAX_LISTED_REJECTIONS {
        report.rejections.push(Rejection { line, reason });
    }
    if let Some((path, w)) = rejects {
        w.write_all(raw)
            .and_then(|()| w.write_all(b"\n"))
            .map_err(|source| ImportError::Rejects {
                path: path.clone(),
                source,
            })?;
    }
    Ok(())
}
