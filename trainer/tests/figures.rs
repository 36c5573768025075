//! Published figures reproduce: the README's and the card's tables are what the committed
//! `eval.json` says, and the committed bundle still scores what that `eval.json` says.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use emoedge_trainer::eval::{SetResult, read_results};
use emoedge_trainer::figures::{publish, render};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const PUBLISHED: &str = "models/default/eval/eval.json";
const REPRODUCE: &str = "emoedge-train eval --bundle models/default/bundle --variant fp32,fp16,int8 --teachers --out models/default/eval && emoedge-train figures";

#[test]
fn the_readme_and_card_tables_are_rendered_from_the_committed_eval_json() {
    let stale = publish(&root(), true).unwrap();
    assert!(stale.is_empty(), "{stale:?} differ from {PUBLISHED}: run `{REPRODUCE}`");
    let card = std::fs::read_to_string(root().join("models/default/MODEL_CARD.md")).unwrap();
    assert!(card.contains(&format!("<!-- figures: {PUBLISHED}")), "the card renders its results table");
}

#[test]
fn a_figure_typed_into_a_table_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("e")).unwrap();
    std::fs::copy(root().join(PUBLISHED), dir.path().join("e/eval.json")).unwrap();
    let doc = "# Results\n<!-- figures: e/eval.json compact -->\n<!-- /figures -->\nafter\n";
    let rendered = render(doc, dir.path()).unwrap();
    assert!(rendered.ends_with("<!-- /figures -->\nafter\n") && rendered.contains("| student fp32 |"), "{rendered}");
    assert_eq!(render(&rendered, dir.path()).unwrap(), rendered, "rendering is stable");
    // Someone "improves" a figure by hand: the rendering no longer matches.
    let results = read_results(&dir.path().join("e/eval.json")).unwrap();
    let shown = format!("{:.1}%", 100.0 * results[0].scores[0].accuracy);
    let typed = rendered.replacen(&shown, "99.9%", 1);
    assert_ne!(typed, rendered);
    assert_eq!(render(&typed, dir.path()).unwrap(), rendered, "the typed figure is replaced by the measured one");
    // A script's `.md` table is included as it is, and a hand edit is replaced too.
    std::fs::write(dir.path().join("e/seeds.md"), "| a | b |\n|---|---:|\n| x | 1.0% |\n").unwrap();
    let doc = "<!-- figures: e/seeds.md -->\n| x | 9.9% |\n<!-- /figures -->\n";
    assert_eq!(
        render(doc, dir.path()).unwrap(),
        "<!-- figures: e/seeds.md -->\n| a | b |\n|---|---:|\n| x | 1.0% |\n<!-- /figures -->\n"
    );
    // A marker without its end, or naming a missing file, is an error that says so.
    let err = render("<!-- figures: e/eval.json -->\n", dir.path()).unwrap_err().to_string();
    assert!(err.contains("<!-- /figures -->"), "{err}");
    let err = render("<!-- figures: e/none.json -->\n<!-- /figures -->", dir.path()).unwrap_err().to_string();
    assert!(err.contains("none.json"), "{err}");
}

/// The student rows of the published eval.json, re-measured on the committed bundle in ONNX
/// Runtime (the sets captured afresh by the runtime's face capture; no Python).
#[test]
fn the_committed_bundle_still_scores_the_published_figures() {
    let args = ["eval", "--bundle", "models/default/bundle", "--variant", "fp32,fp16,int8"];
    assert_reproduces(&args, PUBLISHED, REPRODUCE);
}

/// The card's clip head against the mean of frames, re-measured on the committed weights.
#[test]
fn the_clip_head_against_the_mean_of_frames_reproduces() {
    let args = ["eval", "--run", "models/default", "--frame-mean"];
    assert_reproduces(
        &args,
        CLIP_VS_FRAMES,
        "emoedge-train eval --run models/default --frame-mean --out models/default/eval/clip-vs-frames && emoedge-train figures",
    );
}

const CLIP_VS_FRAMES: &str = "models/default/eval/clip-vs-frames/eval.json";

/// Runs `emoedge-train ARGS --out TMP` and fails unless its scores and answers are `published`'s.
fn assert_reproduces(args: &[&str], published: &str, reproduce: &str) {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_emoedge-train"))
        .args(args)
        .arg("--out")
        .arg(out.path())
        .current_dir(root())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let now = read_results(&out.path().join("eval.json")).unwrap();
    let old = read_results(&root().join(published)).unwrap();
    assert_eq!(now.len(), old.len(), "the recipe's sets changed: run `{reproduce}`");
    for (fresh, old) in now.iter().zip(&old) {
        assert_eq!((&fresh.set, fresh.clips, &fresh.not_found), (&old.set, old.clips, &old.not_found));
        assert_eq!(fresh.predicted, old.predicted, "{}: the model's answers drifted: run `{reproduce}`", fresh.set);
        for score in &fresh.scores {
            let was = old.scores.iter().find(|s| s.predictor == score.predictor);
            assert_eq!(
                Some(score),
                was,
                "{} {}: drifted from {published}: run `{reproduce}`",
                fresh.set,
                score.predictor
            );
        }
        eprintln!("{}: {}", fresh.set, summary(fresh));
    }
}

fn summary(result: &SetResult) -> String {
    result.scores.iter().map(|s| format!("{} {:.1}%", s.predictor, 100.0 * s.accuracy)).collect::<Vec<_>>().join(", ")
}
