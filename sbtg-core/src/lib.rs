//! # sbtg-core — Score-Block Time Graphs
//!
//! Directed, lag-specific circuits from calcium imaging, after Kinger, Bertram, Dyballa,
//! Yemini & Zucker, *Inferring Active Neural Circuits Using Diffusion Scores*
//! (arXiv 2605.02852).
//!
//! The pipeline, one module per step:
//! 1. [`recording`] reads traces; [`panel`] selects neurons and z-scores them per recording;
//! 2. [`window`] stacks consecutive snapshots into joint windows `z_t = [x_t, x_{t+1}]`
//!    inside each recording, and [`fold`] splits them for cross-fitting;
//! 3. [`score`] trains energy-based score models `s(z) = −∇U(z)` by denoising score
//!    matching (candle) and evaluates them on held-out windows;
//! 4. [`edge_test`] turns held-out cross-block score products into HAC t-tests with FDR
//!    control; [`infer`] runs the whole chain and [`output`] writes the tables;
//! 5. [`connectome`] reads published connectomes, [`circuit`] reads an inferred circuit
//!    back, [`compare`] measures one against the other and [`plot`] draws the figures.
//!
//! **Orientation.** Every n×n matrix in this crate is indexed `M[target, source]`
//! (row = postsynaptic / effect, column = presynaptic / cause).
//!
//! **Sign.** Stein's identity gives `μ = E[s_F s_Pᵀ] = −I_ε E[J]`; the reported
//! `effect = −μ̂` has the sign of the Jacobian (positive = excitatory).

pub mod baseline;
pub mod benchmark;
pub mod checkpoint;
pub mod circuit;
pub mod compare;
pub mod connectome;
pub mod edge_test;
pub mod error;
pub mod fold;
pub mod infer;
pub mod manifest;
pub mod metrics;
pub mod output;
pub mod panel;
pub mod plot;
pub mod recording;
pub mod rng;
pub mod run_folder;
pub mod score;
pub mod simulate;
pub mod window;

pub use error::{Error, Result};
