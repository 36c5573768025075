//! Training the reference model: batches, losses, schedule, stages, and the loop itself.

pub mod batch;
pub mod loss;
pub mod online_teacher;
pub mod schedule;
pub mod stage;
mod trainer;

pub use stage::Stage;
pub use trainer::{EvalReport, Item, Task, TrainOptions, Trainer, evaluate, evaluate_tapped};
