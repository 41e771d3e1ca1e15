//! Percentiles and the result table.

use std::time::Duration;

/// One row: a distribution of samples in milliseconds.
#[derive(Debug, Clone)]
pub struct Row {
    pub section: &'static str,
    pub variant: String,
    /// Sorted ascending.
    pub ms: Vec<f64>,
    pub unit: &'static str,
}

impl Row {
    pub fn new(section: &'static str, variant: impl Into<String>, mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        Self {
            section,
            variant: variant.into(),
            ms,
            unit: "ms",
        }
    }

    /// Nearest-rank percentile (`q` in 0..=1): the smallest sample with at least
    /// `q·n` samples at or below it.
    pub fn pct(&self, q: f64) -> f64 {
        if self.ms.is_empty() {
            return f64::NAN;
        }
        let rank = (q * self.ms.len() as f64).ceil().max(1.0) as usize;
        self.ms[rank.min(self.ms.len()) - 1]
    }

    pub fn p50(&self) -> f64 {
        self.pct(0.50)
    }
    pub fn p95(&self) -> f64 {
        self.pct(0.95)
    }
    pub fn p99(&self) -> f64 {
        self.pct(0.99)
    }
    pub fn max(&self) -> f64 {
        self.ms.last().copied().unwrap_or(f64::NAN)
    }
    pub fn mean(&self) -> f64 {
        self.ms.iter().sum::<f64>() / self.ms.len().max(1) as f64
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Prints rows as a markdown table (pasteable into docs).
pub fn print_table(rows: &[Row]) {
    println!(
        "| section | variant | n | p50 | p95 | p99 | max | mean | unit |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.section,
            r.variant,
            r.ms.len(),
            fmt(r.p50()),
            fmt(r.p95()),
            fmt(r.p99()),
            fmt(r.max()),
            fmt(r.mean()),
            r.unit
        );
    }
}

pub fn fmt(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// `a / b`, printed as `×N`.
pub fn ratio(a: f64, b: f64) -> String {
    if b <= 0.0 || a.is_nan() || b.is_nan() {
        "-".into()
    } else {
        format!("×{:.0}", a / b)
    }
}
