//! A synthetic card-payments world: accounts with online features and a
//! stream of transactions whose fraud risk follows a known rule. The demo
//! scores it, `scorestream train` learns from it, tests check against it.

mod events;
mod produce;
mod train;
mod world;

pub use events::{EventGen, EventKind, GenOptions};
pub use produce::{Pace, ProduceReport, produce};
pub use train::{TrainSummary, train_demo_model};
pub use world::{Account, World};
