//! # sbtg-core — Score-Block Time Graphs
//!
//! Directed, lag-specific circuits from calcium imaging, after Kinger, Bertram, Dyballa,
//! Yemini & Zucker, *Inferring Active Neural Circuits Using Diffusion Scores*
//! (arXiv 2605.02852).
//!
//! ## Layers
//!
//! Each layer depends only on the layers above it in this list (a test,
//! `layering`, fails on any import that points the other way):
//!
//! 1. [`data`] — recordings in memory, the neuron panel, joint windows
//!    `z_t = [x_t, x_{t+1}, …]` inside each recording, cross-fitting folds, simulated
//!    networks with known truth;
//! 2. [`stats`] — per-edge product series, Newey–West HAC t-tests, FDR, metrics;
//! 3. [`model`] — energy-based score models `s(z) = −∇U(z)` and their denoising score
//!    matching (candle);
//! 4. [`estimate`] — SBTG and the baselines behind one seam ([`estimate::Estimator`]),
//!    and the test stage they share;
//! 5. [`results`] — the edge table with its typed summary, and [`results::infer`], the
//!    engine that runs an estimator, the tests and one FDR step;
//! 6. [`io`] — recording and connectome files, run folders, manifests, checkpoints,
//!    tables and circuit exports;
//! 7. [`report`] — connectome comparison, figures, the benchmark.
//!
//! [`error`], [`rng`] and [`digest`] sit below every layer.
//!
//! **Orientation.** Every n×n matrix in this crate is indexed `M[target, source]`
//! (row = postsynaptic / effect, column = presynaptic / cause).
//!
//! **Sign.** Stein's identity gives `μ = E[s_F s_Pᵀ] = −I_ε E[J]`; the reported
//! `effect = −μ̂` has the sign of the Jacobian (positive = excitatory).
//!
//! ## In a few lines
//!
//! Read the shipped recordings, infer a circuit, list its selected edges, compare it
//! with the Cook et al. (2019) connectome and write the run folder.
//! (`Method::Sbtg` trains cross-fitted score models; the fast lagged-correlation
//! baseline keeps this example quick.)
//!
//! ```
//! use sbtg_core::data::{Panel, PanelConfig};
//! use sbtg_core::estimate::{FitContext, InferConfig, Method};
//! use sbtg_core::io::connectome::{self, CellAtlas};
//! use sbtg_core::report::compare::{compare, CompareConfig};
//!
//! # fn main() -> sbtg_core::Result<()> {
//! let recordings = sbtg_core::io::load_recordings("../datasets/dag2023".as_ref())?;
//! let panel = Panel::build(&recordings, &PanelConfig::default())?;
//! let cfg = InferConfig::of(Method::LaggedCorrelation);
//! let table = sbtg_core::infer(&panel, &cfg, &FitContext::quiet())?;
//! let selected: Vec<_> = table.rows.iter().filter(|e| e.selected).collect();
//! for e in selected.iter().take(3) {
//!     println!("{} -> {} at lag {} ({} test): effect {:+.3}, q = {:.1e}",
//!              e.source, e.target, e.lag, e.test, e.effect, e.q);
//! }
//! assert!(selected.len() > 1000);
//!
//! let cook = connectome::read("../datasets/connectomes/cook2019_herm_cell.csv".as_ref())?;
//! let quick = CompareConfig { permutations: 50, bootstrap: 20, ..CompareConfig::default() };
//! let c = compare(&table, 1, &cook, &CellAtlas::cook2019()?, &quick)?;
//! let combined = c.layers.iter().find(|l| l.layer == "combined").unwrap();
//! println!("Cook 2019 AUROC {:.3} (null {:.3})", combined.auroc, combined.auroc_null_mean);
//! assert!(combined.auroc > 0.6);
//!
//! let out = std::env::temp_dir().join(format!("sbtg-doc-{}", std::process::id()));
//! let written = sbtg_core::io::write_outputs(&out, &table)?;
//! assert!(written.iter().any(|p| p.ends_with("edges.csv")));
//! # std::fs::remove_dir_all(&out).ok();
//! # Ok(())
//! # }
//! ```

pub mod data;
pub mod digest;
pub mod error;
pub mod estimate;
pub mod io;
pub mod model;
pub mod report;
pub mod results;
pub mod rng;
pub mod stats;

#[cfg(test)]
mod layering;

pub use error::{Error, Result};
pub use results::{infer, EdgeTable};
