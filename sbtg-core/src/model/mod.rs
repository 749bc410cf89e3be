//! Score models: structured energies, their explicit input-gradients, and DSM training.

pub mod energy;
pub mod fused;
pub mod mlp;
pub mod train;

pub use energy::{Coupling, CouplingKind, EnergyModel};
pub use train::{train, TrainedModel};

use crate::{Error, Result};

/// Hyper-parameters of a score model and its training, validated by [`Self::validate`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoreModelConfig {
    /// The coupling term of the energy.
    pub coupling: Coupling,
    /// Width of every hidden layer of g, φ, ψ and the gate.
    pub hidden: usize,
    /// Number of hidden SiLU layers.
    pub depth: usize,
    /// DSM noise level σ (in standardised units).
    pub sigma: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// L1 penalty λ on the coupling matrices.
    pub l1: f64,
}

impl Default for ScoreModelConfig {
    fn default() -> Self {
        ScoreModelConfig {
            coupling: Coupling::Linear,
            hidden: 64,
            depth: 2,
            sigma: 0.1,
            epochs: 100,
            batch_size: 128,
            learning_rate: 1e-3,
            l1: 0.0,
        }
    }
}

impl ScoreModelConfig {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<()> {
        let pos = |name, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::param(
                    name,
                    format!("must be a positive number, got {v}"),
                ))
            }
        };
        pos("sigma", self.sigma)?;
        pos("learning_rate", self.learning_rate)?;
        if !(self.l1.is_finite() && self.l1 >= 0.0) {
            return Err(Error::param("l1", format!("must be ≥ 0, got {}", self.l1)));
        }
        for (name, v) in [
            ("hidden", self.hidden),
            ("depth", self.depth),
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
        ] {
            if v == 0 {
                return Err(Error::param(name, "must be at least 1"));
            }
        }
        match self.coupling {
            Coupling::FeatureBilinear { rank: 0 } => Err(Error::param(
                "rank",
                "feature-bilinear rank must be at least 1",
            )),
            Coupling::RegimeGated { regimes } if regimes < 2 => Err(Error::param(
                "regimes",
                "the regime-gated coupling needs at least 2 regimes",
            )),
            _ => Ok(()),
        }
    }
}
