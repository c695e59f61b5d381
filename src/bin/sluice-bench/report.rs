//! Figures: each the median of several runs with their min–max, written as a Markdown table
//! and a JSON file.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

/// Several runs of one measurement.
#[derive(Debug, Clone, Default)]
pub(crate) struct Runs(pub(crate) Vec<f64>);

impl Runs {
    pub(crate) fn push(&mut self, v: f64) {
        self.0.push(v);
    }
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }
    pub(crate) fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
    pub(crate) fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }
    pub(crate) fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }
}

/// A unit and how to print it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Unit {
    /// bytes/s, printed in MB/s.
    BytesPerSec,
    /// seconds, printed in ms.
    Millis,
    /// bytes, printed in MiB.
    Mebibytes,
    /// a plain count.
    Count,
}

impl Unit {
    fn show(self, v: f64) -> String {
        match self {
            Unit::BytesPerSec => format!("{:.0} MB/s", v / 1e6),
            Unit::Millis if v * 1e3 < 10.0 => format!("{:.2} ms", v * 1e3),
            Unit::Millis => format!("{:.0} ms", v * 1e3),
            Unit::Mebibytes => format!("{:.0} MiB", v / (1024.0 * 1024.0)),
            Unit::Count => format!("{v:.0}"),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Unit::BytesPerSec => "bytes/s",
            Unit::Millis => "seconds",
            Unit::Mebibytes => "bytes",
            Unit::Count => "count",
        }
    }
}

/// One row of a section: a measurement and, optionally, what it is compared with.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) unit: Unit,
    pub(crate) runs: Runs,
    /// Other figures shown beside it (e.g. records/s beside MB/s, broker CPU per GB).
    pub(crate) extra: Vec<(String, String)>,
    /// "x% of <limit>", each.
    pub(crate) versus: Vec<(String, f64)>,
}

impl Row {
    pub(crate) fn new(name: impl Into<String>, unit: Unit, runs: Runs) -> Row {
        Row {
            name: name.into(),
            unit,
            runs,
            extra: Vec::new(),
            versus: Vec::new(),
        }
    }
    pub(crate) fn extra(mut self, k: &str, v: String) -> Row {
        self.extra.push((k.into(), v));
        self
    }
    pub(crate) fn versus(mut self, what: &str, ceiling: f64) -> Row {
        self.versus.push((what.into(), ceiling));
        self
    }
    fn cell(&self) -> String {
        let r = &self.runs;
        if r.0.len() > 1 {
            format!(
                "{} ({}–{})",
                self.unit.show(r.median()),
                self.unit.show(r.min()),
                self.unit.show(r.max())
            )
        } else {
            self.unit.show(r.median())
        }
    }
}

/// A titled table.
#[derive(Debug, Clone, Default)]
pub(crate) struct Section {
    pub(crate) title: String,
    pub(crate) note: String,
    pub(crate) rows: Vec<Row>,
}

/// The whole report.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) header: Vec<String>,
    pub(crate) sections: Vec<Section>,
    pub(crate) failures: Vec<String>,
}

impl Report {
    pub(crate) fn markdown(&self) -> String {
        let mut s = String::new();
        for h in &self.header {
            let _ = writeln!(s, "{h}");
        }
        for sec in &self.sections {
            let _ = writeln!(s, "\n### {}\n", sec.title);
            if !sec.note.is_empty() {
                let _ = writeln!(s, "{}\n", sec.note);
            }
            let _ = writeln!(s, "| measurement | median (min–max) | vs | other |");
            let _ = writeln!(s, "|---|---|---|---|");
            for r in &sec.rows {
                let vs = r
                    .versus
                    .iter()
                    .map(|(what, c)| format!("{:.0}% of {what}", 100.0 * r.runs.median() / c))
                    .collect::<Vec<_>>()
                    .join(", ");
                let other = r
                    .extra
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let _ = writeln!(s, "| {} | {} | {vs} | {other} |", r.name, r.cell());
            }
        }
        if !self.failures.is_empty() {
            let _ = writeln!(s, "\n### Failed runs\n");
            for f in &self.failures {
                let _ = writeln!(s, "- {f}");
            }
        }
        s
    }

    pub(crate) fn json(&self) -> Value {
        let sections: Vec<Value> = self
            .sections
            .iter()
            .map(|sec| {
                let rows: Vec<Value> = sec
                    .rows
                    .iter()
                    .map(|r| {
                        json!({
                            "name": r.name,
                            "unit": r.unit.name(),
                            "runs": r.runs.0,
                            "median": r.runs.median(),
                            "min": r.runs.min(),
                            "max": r.runs.max(),
                            "versus": r.versus.iter().map(|(w, c)| json!({"limit": w, "value": c, "fraction": r.runs.median() / c})).collect::<Vec<_>>(),
                            "other": r.extra.iter().map(|(k, v)| json!({k: v})).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                json!({"title": sec.title, "note": sec.note, "rows": rows})
            })
            .collect();
        json!({"header": self.header, "sections": sections, "failures": self.failures})
    }

    pub(crate) fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("results.md"), self.markdown())?;
        std::fs::write(
            dir.join("results.json"),
            serde_json::to_string_pretty(&self.json()).unwrap_or_default(),
        )
    }
}
