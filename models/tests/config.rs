// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use emoedge_models::{Config, ConfigError, ModelCost};

#[test]
fn default_config_is_valid_and_round_trips_through_json() {
    let config = Config::default();
    config.validate().unwrap();
    assert_eq!(config.token_grid(), 4);
    assert_eq!(config.expert_tokens(), 4);
    assert_eq!(Config::from_json(&config.to_json()).unwrap(), config);
}

fn refused(config: Config) -> String {
    match config.validate() {
        Err(e @ ConfigError::Invalid { .. }) => e.to_string(),
        other => panic!("expected an invalid-config error, got {other:?}"),
    }
}

#[test]
fn odd_token_grid_is_refused_naming_the_merge() {
    // 40 → 36 → 18 → 9 → 5 → 3: a 3×3 grid; the 2×2 merge cannot tile it.
    let message = refused(Config { crop_size: 40, ..Config::default() });
    assert!(message.contains("3×3") && message.contains("2×2 token merge"), "{message}");
    assert!(message.contains("crop_size"), "the fix is named: {message}");
    let message = refused(Config { crop_size: 4, ..Config::default() });
    assert!(message.contains("stem"), "{message}");
}

#[test]
fn token_dim_must_match_last_stage() {
    let message = refused(Config { token_dim: 96, ..Config::default() });
    assert!(message.contains("token_dim") && message.contains("128 channels"), "{message}");
}

#[test]
fn heads_must_divide_token_dim() {
    let message = refused(Config { gate_heads: 3, ..Config::default() });
    assert!(message.contains("gate_heads"), "{message}");
}

#[test]
fn zero_sizes_and_odd_token_grids_are_refused() {
    assert!(refused(Config { clip_length: 0, ..Config::default() }).contains("`clip_length` is 0"));
    let mut config = Config::default();
    config.encoder.modules[1] = 0;
    assert!(refused(config).contains("encoder.modules"));
    // 64 → 60 → 30 → 15 → 8 → 4 → 2 → 1: a 1×1 grid cannot be merged 2×2.
    let mut config = Config::default();
    config.encoder.modules.extend([128, 128]);
    assert!(refused(config).contains("1×1"));
    assert_eq!(Config::default().encoder_sides(), vec![60, 30, 15, 8, 4]);
    assert_eq!(emoedge_models::config::pool_padding(15), [1, 1]);
    assert_eq!(emoedge_models::config::pool_padding(60), [0, 1]);
}

#[test]
fn unknown_json_fields_and_missing_files_give_clear_errors() {
    let mut json: serde_json::Value = serde_json::from_str(&Config::default().to_json()).unwrap();
    json["tokn_dim"] = 5.into();
    let err = Config::from_json(&json.to_string()).unwrap_err().to_string();
    assert!(err.contains("unknown field `tokn_dim`"), "{err}");

    let err = Config::load("/nonexistent/config.json").unwrap_err().to_string();
    assert!(err.contains("/nonexistent/config.json"), "{err}");
}

#[test]
fn default_model_fits_the_frame_budget() {
    let cost = ModelCost::of(&Config::default());
    // The edge target: at most 60 MFLOPs per 64×64 face frame.
    assert!(cost.frame_flops <= 60_000_000, "{} FLOPs per frame", cost.frame_flops);
    assert!(cost.clip_flops > 0 && cost.frame_params > 0 && cost.clip_params > 0);
}
