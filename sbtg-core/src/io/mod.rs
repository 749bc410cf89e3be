//! **I/O layer**: everything that touches a file. Recording readers, connectome files
//! and the Cook et al. (2019) cell atlas, the run folder and its `run.json` manifest,
//! score-model checkpoints, the edge tables and circuit exports. Depends on every layer
//! below it (data, stats, model, estimate, results).

pub mod arrays;
pub mod atomic;
pub mod checkpoint;
pub mod circuit;
pub mod connectome;
pub mod manifest;
pub mod recording;
pub mod run_folder;
pub mod tables;

pub use atomic::write_atomic;
pub use recording::{load_recordings, load_recordings_with, LoadOptions};
pub use tables::{read_table, write_outputs};
