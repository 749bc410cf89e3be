//! End-to-end tests of the toolkit, in one test binary (one link instead of one per
//! file): simulated networks with known truth, float64 references, file formats,
//! connectomes, checkpoints, calibration under the null.

mod baselines;
mod calibration;
mod checkpoints;
mod compare;
mod connectome;
mod couplings;
mod direction;
mod empirical_null;
mod epoch_selection;
mod folds;
mod formats;
mod fuzz_readers;
mod global_factors;
mod jacobian;
mod lags;
mod missing;
mod model_grid;
mod output;
mod pooling;
mod recovery;
mod reproducibility;
mod same_frame;
mod states;
