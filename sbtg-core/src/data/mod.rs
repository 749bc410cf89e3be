//! **Data layer**: recordings in memory, the neuron panel, joint windows, cross-fitting
//! folds, and simulated networks with known truth. Depends on nothing but the crate's
//! base modules ([`crate::error`], [`crate::rng`]).

pub mod fold;
pub mod global_factors;
pub mod panel;
pub mod recording;
pub mod simulate;
pub mod state;
pub mod stimulus;
pub mod window;

pub use fold::{inner_split, make_folds, stopping_split, Fold, FoldBy, FoldScheme};
pub use panel::{Panel, PanelConfig, PanelRecording};
pub use recording::{long_enough, Recording};
pub use state::{FrameStates, StateSpec};
pub use stimulus::{select_stimulus, Stimulus, StimulusWindow};
pub use window::{Standardiser, Windows};
