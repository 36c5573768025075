//! # emoedge-models — the one definition of emoedge's model
//!
//! A small hybrid-experts video emotion model after Emotion-Qwen's hybrid compressor:
//!
//! ```text
//! face crop [3,S,S] ─ FrameEncoder ─ tokens [G·G, D] ─┬─ general Expert (2×2 merge + MLP) ─ [G²/4, D'] ┐
//!  (mini-XCEPTION,                                     ├─ emotion Expert (2×2 merge + MLP) ─ [G²/4, D'] ┤  frame part
//!   from fer's weights)                                └─ mean ─ pooled [D] ─────────────────────────── ┘  (per frame)
//! T frames ─ Gate (MHSA → 2×(Linear→ReLU→LayerNorm) → Linear → softmax) = (g_general, g_emotion)      clip part
//!          ─ fused = g_general·general + g_emotion·emotion ─ TemporalHead ─ emotion [7], general [K]    (per clip)
//! ```
//!
//! Without the `reference` feature this crate is only [`Config`], [`labels`],
//! [`Preprocessing`] and [`cost`]: what the edge runtime needs to check a bundle. With it
//! (the default) it adds [`reference`], the burn implementation that the trainer trains and
//! the exporter's ONNX must match.
//!
//! ## Why burn
//! Measured on this project's 2-core build machine with a 1.2 M-parameter model of this shape
//! (batch 32 × 3×64×64): burn 0.22.1 on its `flex` CPU backend took ≈ 0.76 s per training
//! step and gave every parameter a gradient; candle 0.11.1 took ≈ 1.63 s per step and its
//! fused `LayerNorm` / `softmax_last_dim` have no backward, which silently freezes parameters.
//! candle builds faster (≈ 12 vs ≈ 18 min clean) but training speed and correct gradients
//! matter more for the trainer; the edge binary links neither. The tests prove that every
//! trainable parameter receives a non-zero gradient.
//!
//! ## Parameter names
//! Safetensors tensor names are the parameters' paths in [`reference::HybridModel`]
//! (`encoder.stem.0.weight`, `encoder.modules.0.separable.0.depthwise.weight`, `general_expert.merge_proj.weight`,
//! `gate.attention.query.weight`, `head.emotion.bias`, …). Linear weights are stored
//! `[d_in, d_out]`, convolutions `[out, in/groups, k, k]`. Renaming a field is a breaking change
//! of the weights format.

pub mod config;
pub mod cost;
pub mod io;
pub mod labels;
pub mod manifest;
pub mod preprocessing;
pub mod quant;
#[cfg(feature = "reference")]
pub mod reference;
pub mod seeded;

pub use config::{Config, ConfigError, EncoderConfig};
pub use cost::ModelCost;
pub use labels::{EMOTIONS, LabelError, LabelMapping, Teacher, argmax, mean_log_probs, softmax, top};
pub use preprocessing::Preprocessing;
