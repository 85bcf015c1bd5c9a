//! Per-epoch training history (Keras' `History`): one column per quantity, one row per epoch,
//! written as `history.csv` and `history.json`.

use crate::error::Result;

/// Per-epoch history, Keras-style: one column per quantity (`epoch`, `loss`, `accuracy`,
/// `val_loss`, `val_accuracy`, …, `grad_norm`, `grad_norm_max`, `seconds`). `grad_norm` is the
/// mean over the epoch's steps of the global L2 norm of all gradients before any clipping,
/// `grad_norm_max` its largest value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub columns: Vec<String>,
    /// One row per epoch, values in `columns` order.
    pub rows: Vec<Vec<f64>>,
    /// 1-based epoch whose weights were kept.
    pub best_epoch: usize,
    /// True if early stopping ended training.
    pub stopped_early: bool,
}

impl History {
    /// The history as CSV (header + one line per epoch).
    pub fn to_csv(&self) -> String {
        let mut s = self.columns.join(",") + "\n";
        for r in &self.rows {
            let cells: Vec<String> = r
                .iter()
                .zip(&self.columns)
                .map(|(v, c)| {
                    if c == "epoch" {
                        format!("{}", *v as u64)
                    } else {
                        format!("{v}")
                    }
                })
                .collect();
            s.push_str(&cells.join(","));
            s.push('\n');
        }
        s
    }

    /// The history as JSON: `{"epoch": [...], "loss": [...], ..., "best_epoch": n}`.
    pub fn to_json(&self) -> String {
        let mut m = serde_json::Map::new();
        for (j, c) in self.columns.iter().enumerate() {
            let col: Vec<serde_json::Value> = self
                .rows
                .iter()
                .map(|r| {
                    if c == "epoch" {
                        serde_json::json!(r[j] as u64)
                    } else {
                        serde_json::Number::from_f64(r[j])
                            .map(serde_json::Value::Number)
                            .unwrap_or(serde_json::Value::Null)
                    }
                })
                .collect();
            m.insert(c.clone(), serde_json::Value::Array(col));
        }
        m.insert("best_epoch".into(), serde_json::json!(self.best_epoch));
        m.insert(
            "stopped_early".into(),
            serde_json::json!(self.stopped_early),
        );
        serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap_or_default() + "\n"
    }

    /// Writes `history.csv` and `history.json` into `dir` (each atomically).
    pub fn save(&self, dir: &std::path::Path) -> Result<()> {
        crate::weights::write_atomic(&dir.join("history.csv"), self.to_csv().as_bytes())?;
        crate::weights::write_atomic(&dir.join("history.json"), self.to_json().as_bytes())
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let j = self.columns.iter().position(|c| c == name)?;
        Some(self.rows.iter().map(|r| r[j]).collect())
    }
}
