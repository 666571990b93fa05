//! What every scenario shares: latency percentiles, a plain-text table, and the
//! choice between that table and JSON.

use std::time::Duration;

use serde::Serialize;

/// A scenario's result: a table for people, JSON (the same fields) for scripts.
pub trait Outcome: Serialize {
    /// The plain-text table, lines ending in `\n`.
    fn table(&self) -> String;
}

/// Prints `outcome` to stdout as a table, or as pretty JSON when `json` is set.
pub fn emit<T: Outcome>(outcome: &T, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(outcome)?);
    } else {
        print!("{}", outcome.table());
    }
    Ok(())
}

/// Latency distribution of one operation, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub count: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Summarises `samples` (any order). All zero when there are none.
    pub fn from_samples(samples: &[Duration]) -> Latency {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let mean_ms = if ms.is_empty() {
            0.0
        } else {
            ms.iter().sum::<f64>() / ms.len() as f64
        };
        Latency {
            count: ms.len(),
            mean_ms,
            p50_ms: percentile(&ms, 50.0),
            p90_ms: percentile(&ms, 90.0),
            p99_ms: percentile(&ms, 99.0),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// The `p`th percentile (0..=100) of ascending `sorted` by the nearest-rank method:
/// the smallest sample with at least p% of the samples at or below it. 0 if empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A plain-text table: the first column left-aligned (labels), the others
/// right-aligned (numbers), columns two spaces apart.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<I, S>(headers: I) -> Table
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<I, S>(&mut self, cells: I) -> &mut Table
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.headers.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, cell) in line.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let mut text = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = line.get(i).map(String::as_str).unwrap_or("");
                if i > 0 {
                    text.push_str("  ");
                }
                if i == 0 {
                    text.push_str(&format!("{cell:<width$}"));
                } else {
                    text.push_str(&format!("{cell:>width$}"));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Formats a float with `decimals` places.
pub fn fixed(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
}

/// Bytes as mebibytes with one decimal.
pub fn mib(bytes: u64) -> String {
    fixed(bytes as f64 / (1024.0 * 1024.0), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        let small = [1.0, 2.0, 3.0];
        assert_eq!(percentile(&small, 50.0), 2.0);
        assert_eq!(percentile(&small, 99.0), 3.0);
    }

    #[test]
    fn latency_summary() {
        let samples: Vec<Duration> = [4u64, 1, 3, 2].map(Duration::from_millis).to_vec();
        let l = Latency::from_samples(&samples);
        assert_eq!(l.count, 4);
        assert_eq!(l.p50_ms, 2.0);
        assert_eq!(l.max_ms, 4.0);
        assert!((l.mean_ms - 2.5).abs() < 1e-9);
        assert_eq!(Latency::from_samples(&[]).max_ms, 0.0);
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(["mode", "msg/s"]);
        t.row(["FULL", "12.5"]).row(["NORMAL", "1234.0"]);
        assert_eq!(
            t.render(),
            "mode     msg/s\nFULL      12.5\nNORMAL  1234.0\n"
        );
    }
}
