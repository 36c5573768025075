//! Published figures, produced rather than typed: the evaluation tables of the README and the
//! model card are rendered from committed `eval.json` files (written by `emoedge-train eval`)
//! between markers,
//!
//! ```text
//! <!-- figures: models/default/eval/eval.json compact -->
//! …the rendered table…
//! <!-- /figures -->
//! ```
//!
//! A marker naming a `.md` file includes it as it is: a table that a measuring script wrote
//! (training runs too long for CI, such as `scripts/like-for-like`'s seeds). `emoedge-train
//! figures` rewrites every marked table; `--check` (and a test) fails when a
//! document differs from what its `eval.json` says. A second test re-scores the committed bundle
//! and fails when the `eval.json` no longer matches the model.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::eval::{SetResult, read_results, table};
use crate::quantize_run::VariantReport;

const OPEN: &str = "<!-- figures: ";
const CLOSE: &str = "<!-- /figures -->";

/// The documents whose tables are rendered, relative to the checkout.
pub const DOCUMENTS: [&str; 2] = ["README.md", "models/default/MODEL_CARD.md"];

/// How a marked table shows an `eval.json`.
enum Style {
    /// Every predictor of every set, with interval, UAR and recall (as `eval.md`).
    Full,
    /// One row per set, one accuracy column per predictor.
    Compact,
    /// `emoedge-train quantize`'s `quant-report.json`: each variant's top-1 agreement with FP32.
    Quantization,
    /// A table a measuring script wrote (`.md`, e.g. `scripts/like-for-like`'s), as it is.
    Verbatim,
}

/// `doc` with every marked table rendered afresh from its `eval.json` (paths relative to `root`).
pub fn render(doc: &str, root: &Path) -> anyhow::Result<String> {
    let mut out = String::with_capacity(doc.len());
    let mut rest = doc;
    while let Some(start) = rest.find(OPEN) {
        let line_end = rest[start..]
            .find("-->")
            .map(|i| start + i + 3)
            .ok_or_else(|| anyhow::anyhow!("a `{OPEN}` marker is not closed with `-->` on its line"))?;
        let spec = rest[start + OPEN.len()..line_end - 3].trim();
        let close = rest[line_end..]
            .find(CLOSE)
            .map(|i| line_end + i)
            .ok_or_else(|| anyhow::anyhow!("`{OPEN}{spec} -->` has no `{CLOSE}` after it"))?;
        let (file, style) = parse_spec(spec)?;
        let path = root.join(&file);
        out.push_str(&rest[..line_end]);
        out.push('\n');
        out.push_str(&match style {
            Style::Full => table(&read_results(&path)?),
            Style::Compact => compact(&read_results(&path)?),
            Style::Quantization => quantization(&path)?,
            Style::Verbatim => {
                std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
            }
        });
        out.push_str(CLOSE);
        rest = &rest[close + CLOSE.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

fn parse_spec(spec: &str) -> anyhow::Result<(PathBuf, Style)> {
    let mut words = spec.split_whitespace();
    let file = words.next().ok_or_else(|| anyhow::anyhow!("`{OPEN}-->` names no eval.json"))?;
    let style = match words.next() {
        None if file.ends_with(".md") => Style::Verbatim,
        None if file.ends_with("quant-report.json") => Style::Quantization,
        None | Some("full") => Style::Full,
        Some("compact") => Style::Compact,
        Some(other) => anyhow::bail!("`{OPEN}{spec} -->`: unknown style `{other}` (full or compact)"),
    };
    Ok((PathBuf::from(file), style))
}

/// One row per set (people, clips), one column per predictor: accuracy and its interval.
fn compact(results: &[SetResult]) -> String {
    let predictors: Vec<&str> =
        results.first().map(|r| r.scores.iter().map(|s| s.predictor.as_str()).collect()).unwrap_or_default();
    let mut text = format!("| set (people, clips) | {} |\n|---|", predictors.join(" | "));
    text.push_str(&"---:|".repeat(predictors.len()));
    text.push('\n');
    for r in results {
        let _ = write!(text, "| {} ({}, {}) |", r.set, r.people, r.clips);
        for name in &predictors {
            let cell = r.scores.iter().find(|s| s.predictor == *name).map_or("–".to_string(), |s| {
                let interval = s
                    .accuracy_ci95
                    .map_or(String::new(), |[lo, hi]| format!(" ({:.0}–{:.0}%)", 100.0 * lo, 100.0 * hi));
                format!("{:.1}%{interval}", 100.0 * s.accuracy)
            });
            let _ = write!(text, " {cell} |");
        }
        text.push('\n');
    }
    text
}

/// Each variant's top-1 agreement with FP32 on the held-out faces and digits of its run.
fn quantization(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let reports: Vec<VariantReport> =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let pct = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{:.1}%", 100.0 * v));
    let mut out =
        "| variant | top-1 = FP32, validation faces | top-1 = FP32, validation digits |\n|---|---:|---:|\n".to_string();
    for r in reports.iter().filter(|r| r.variant != "fp32") {
        let (faces, digits) = (pct(Some(r.emotion_top1_agreement_with_fp32)), pct(r.general_top1_agreement_with_fp32));
        let _ = writeln!(out, "| {} | {faces} | {digits} |", r.variant.to_uppercase());
    }
    Ok(out)
}

/// Renders every document of [`DOCUMENTS`] under `root`; with `check`, writes nothing and
/// returns the documents that differ from their rendering.
pub fn publish(root: &Path, check: bool) -> anyhow::Result<Vec<PathBuf>> {
    let mut stale = Vec::new();
    for doc in DOCUMENTS.map(|d| root.join(d)) {
        let text = std::fs::read_to_string(&doc).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", doc.display()))?;
        let rendered = render(&text, root).map_err(|e| anyhow::anyhow!("{}: {e}", doc.display()))?;
        if rendered != text {
            if !check {
                emoedge_support::write_atomic(&doc, rendered.as_bytes())?;
            }
            stale.push(doc);
        }
    }
    Ok(stale)
}
