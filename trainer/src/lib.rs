//! # emoedge-trainer
//!
//! Host-side training of the model defined in `emoedge-models` (three stages: general →
//! emotion → joint, distillation from real teachers, quantization). It trains
//! [`emoedge_models::reference::HybridModel`] itself; it never re-declares the model.

pub mod augment;
pub mod data;
pub mod eval;
pub mod figures;
pub mod finetune;
pub mod labelled;
pub mod leakage;
pub mod metrics;
pub mod plot;
pub mod predict;
pub mod prepare;
pub mod progress;
pub mod quant;
pub mod quantize_run;
pub mod recipe;
pub mod run;
pub mod teachers;
pub mod train;

pub use emoedge_models::reference::HybridModel;
