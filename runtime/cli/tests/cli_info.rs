// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::process::Command;

fn emoedge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_emoedge")).args(args).output().unwrap()
}

#[test]
fn info_prints_params_and_mflops_of_the_default_config() {
    let out = emoedge(&["info"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let cost = emoedge_models::ModelCost::of(&emoedge_models::Config::default());
    assert!(text.contains(&cost.frame_params.to_string()), "{text}");
    assert!(text.contains(&format!("{:.2}", cost.frame_flops as f64 / 1e6)), "{text}");
    assert!(text.contains("happy, sad, neutral, angry, surprise, disgust, fear"), "{text}");
}

#[test]
fn info_refuses_a_bad_config_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let config = emoedge_models::Config { crop_size: 40, ..Default::default() };
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    let out = emoedge(&["info", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("emoedge: error: invalid model config"), "{err}");
    assert!(err.contains("2×2 token merge") && err.trim_end().lines().count() == 1, "{err}");
}

#[test]
fn info_reports_a_missing_config_file() {
    let out = emoedge(&["info", "--config", "/nonexistent/config.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("cannot read model config /nonexistent/config.json"));
}
