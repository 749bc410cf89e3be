//! Trained score models on disk (safetensors), with the standardisation statistics of
//! their training windows, so that an interrupted `sbtg infer --resume` skips the folds
//! already trained and `sbtg score` tests new recordings with saved models.
//!
//! One file per lag and fold, `lag{r}-fold{k}.safetensors`. Every parameter is stored
//! as F64, exactly the values the edge tests use, so a resumed run is bit-identical to
//! an uninterrupted one. The header metadata holds the model configuration, the
//! panel's neurons, the window offsets and a fingerprint: SHA-256 of the standardised
//! training windows, their mask, the configuration, the seed and the random stream.
//! A checkpoint is reused only when its fingerprint equals the one the run would train.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::atomic::write_atomic;
use crate::data::Standardiser;
use crate::estimate::sbtg::MODEL_FORMAT;
use crate::estimate::{FoldModel, ModelStore};
use crate::model::energy::{CouplingParams, SelfEnergy};
use crate::model::mlp::Mlp;
use crate::model::{EnergyModel, ScoreModelConfig};
use crate::{Error, Result};

/// The metadata tag of a checkpoint file.
pub const CHECKPOINT_FORMAT: &str = MODEL_FORMAT;

/// The one safetensors metadata key (a JSON object).
const META_KEY: &str = "sbtg";

/// File name of the checkpoint of `lag`, 0-based `fold`.
pub fn file_name(lag: usize, fold: usize) -> String {
    format!("lag{lag}-fold{}.safetensors", fold + 1)
}

/// The checkpoint path of (lag, fold) in `dir`.
pub fn path(dir: &Path, lag: usize, fold: usize) -> PathBuf {
    dir.join(file_name(lag, fold))
}

fn le_bytes(v: impl Iterator<Item = f64>) -> Vec<u8> {
    v.flat_map(|x| x.to_le_bytes()).collect()
}

fn put_mlp(t: &mut Vec<(String, Vec<usize>, Vec<u8>)>, prefix: &str, m: &Mlp) {
    for (l, (w, b)) in m.weights.iter().zip(&m.biases).enumerate() {
        t.push((
            format!("{prefix}.weight.{l}"),
            w.shape().to_vec(),
            le_bytes(w.iter().copied()),
        ));
        t.push((
            format!("{prefix}.bias.{l}"),
            vec![b.len()],
            le_bytes(b.iter().copied()),
        ));
    }
}

fn put_self(t: &mut Vec<(String, Vec<usize>, Vec<u8>)>, prefix: &str, g: &SelfEnergy) {
    t.push((
        format!("{prefix}.a"),
        g.a.shape().to_vec(),
        le_bytes(g.a.iter().copied()),
    ));
    put_mlp(t, &format!("{prefix}.mlp"), &g.mlp);
}

impl FoldModel {
    /// The safetensors bytes of the checkpoint.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut t: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        let st = &self.standardiser;
        t.push((
            "standardiser.mean".into(),
            vec![st.mean.len()],
            le_bytes(st.mean.iter().copied()),
        ));
        t.push((
            "standardiser.sd".into(),
            vec![st.sd.len()],
            le_bytes(st.sd.iter().copied()),
        ));
        t.push((
            "epoch_loss".into(),
            vec![self.epoch_loss.len()],
            le_bytes(self.epoch_loss.iter().copied()),
        ));
        if !self.validation_loss.is_empty() {
            t.push((
                "validation_loss".into(),
                vec![self.validation_loss.len()],
                le_bytes(self.validation_loss.iter().copied()),
            ));
        }
        put_self(&mut t, "past", &self.model.past);
        put_self(&mut t, "future", &self.model.future);
        match &self.model.coupling {
            CouplingParams::Linear { w } => {
                t.push((
                    "coupling.w".into(),
                    w.shape().to_vec(),
                    le_bytes(w.iter().copied()),
                ));
            }
            CouplingParams::FeatureBilinear { psi, phi, w } => {
                put_mlp(&mut t, "coupling.psi", psi);
                put_mlp(&mut t, "coupling.phi", phi);
                t.push((
                    "coupling.w".into(),
                    w.shape().to_vec(),
                    le_bytes(w.iter().copied()),
                ));
            }
            CouplingParams::RegimeGated { gate, w } => {
                put_mlp(&mut t, "coupling.gate", gate);
                for (k, wk) in w.iter().enumerate() {
                    t.push((
                        format!("coupling.w.{k}"),
                        wk.shape().to_vec(),
                        le_bytes(wk.iter().copied()),
                    ));
                }
            }
        }
        // One metadata entry holding a JSON object with sorted keys: safetensors
        // writes its metadata map in hash order, so several entries would make the
        // bytes of two identical checkpoints differ.
        let meta = serde_json::json!({
            "format": CHECKPOINT_FORMAT,
            "lag": self.lag,
            "fold": self.fold + 1,
            "fingerprint": self.fingerprint,
            "neurons": self.neurons,
            "offsets": self.offsets,
            "config": self.config,
            "seed": self.seed,
            "best_epoch": self.best_epoch,
            "n_past": self.model.n_past,
            "n_future": self.model.n_future,
            "sbtg_version": env!("CARGO_PKG_VERSION"),
        });
        let meta: HashMap<String, String> =
            HashMap::from([(META_KEY.to_string(), meta.to_string())]);
        let views: Vec<(String, TensorView)> = t
            .iter()
            .map(|(name, shape, data)| {
                let v = TensorView::new(Dtype::F64, shape.clone(), data)
                    .map_err(|e| Error::encode(format!("checkpoint tensor {name}"), e))?;
                Ok((name.clone(), v))
            })
            .collect::<Result<_>>()?;
        safetensors::serialize(views, Some(meta))
            .map_err(|e| Error::encode("serialising a checkpoint", e))
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// Reads a checkpoint written by [`FoldModel::save`].
    pub fn load(path: &Path) -> Result<FoldModel> {
        let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses checkpoint bytes (`path` only names the file in errors).
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<FoldModel> {
        let bad = |field: &str, msg: String| {
            Error::format(
                path,
                field,
                format!("{msg}; the checkpoint is damaged or not an sbtg score model: delete it and rerun `sbtg infer` (with --resume, only the missing folds are trained)"),
            )
        };
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| bad("header", e.to_string()))?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad("header", e.to_string()))?;
        let meta = header
            .metadata()
            .clone()
            .ok_or_else(|| bad("__metadata__", "missing".into()))?;
        let meta: serde_json::Map<String, serde_json::Value> = meta
            .get(META_KEY)
            .ok_or_else(|| bad("__metadata__", format!("no `{META_KEY}` entry")))
            .and_then(|t| serde_json::from_str(t).map_err(|e| bad(META_KEY, e.to_string())))?;
        let get = |k: &str| {
            meta.get(k)
                .cloned()
                .ok_or_else(|| bad("__metadata__", format!("no `{k}` entry")))
        };
        let format = get("format")?;
        if format != CHECKPOINT_FORMAT {
            return Err(bad(
                "format",
                format!("`{format}`, expected `{CHECKPOINT_FORMAT}`"),
            ));
        }
        let num = |k: &str| -> Result<usize> {
            get(k)?
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| bad(k, "not a whole number".into()))
        };
        let typed = |k: &str| get(k);
        let neurons: Vec<String> =
            serde_json::from_value(typed("neurons")?).map_err(|e| bad("neurons", e.to_string()))?;
        let offsets: Vec<usize> =
            serde_json::from_value(typed("offsets")?).map_err(|e| bad("offsets", e.to_string()))?;
        let config: ScoreModelConfig =
            serde_json::from_value(typed("config")?).map_err(|e| bad("config", e.to_string()))?;
        let seed: u64 = get("seed")?
            .as_u64()
            .ok_or_else(|| bad("seed", "not a whole number".into()))?;
        let (n_past, n_future) = (num("n_past")?, num("n_future")?);
        let fold = num("fold")?
            .checked_sub(1)
            .ok_or_else(|| bad("fold", "folds are numbered from 1".into()))?;
        let values = |name: &str, dims: usize| -> Result<(Vec<usize>, Vec<f64>)> {
            let v = st
                .tensor(name)
                .map_err(|e| bad(name, format!("missing tensor ({e})")))?;
            if v.dtype() != Dtype::F64 || v.shape().len() != dims {
                return Err(bad(
                    name,
                    format!(
                        "expected a {dims}-d F64 tensor, found {:?} {:?}",
                        v.dtype(),
                        v.shape()
                    ),
                ));
            }
            let data = v
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect();
            Ok((v.shape().to_vec(), data))
        };
        let vec1 = |name: &str| -> Result<Array1<f64>> { Ok(Array1::from(values(name, 1)?.1)) };
        let mat = |name: &str| -> Result<Array2<f64>> {
            let (s, d) = values(name, 2)?;
            Array2::from_shape_vec((s[0], s[1]), d).map_err(|e| bad(name, e.to_string()))
        };
        let mlp = |prefix: &str| -> Result<Mlp> {
            let (mut weights, mut biases) = (Vec::new(), Vec::new());
            while st
                .tensor(&format!("{prefix}.weight.{}", weights.len()))
                .is_ok()
            {
                let l = weights.len();
                weights.push(mat(&format!("{prefix}.weight.{l}"))?);
                biases.push(vec1(&format!("{prefix}.bias.{l}"))?);
            }
            if weights.is_empty() {
                return Err(bad(prefix, "no layers".into()));
            }
            Ok(Mlp { weights, biases })
        };
        let self_energy = |prefix: &str| -> Result<SelfEnergy> {
            Ok(SelfEnergy {
                a: mat(&format!("{prefix}.a"))?,
                mlp: mlp(&format!("{prefix}.mlp"))?,
            })
        };
        use crate::model::Coupling;
        let coupling = match config.coupling {
            Coupling::Linear | Coupling::Gaussian => CouplingParams::Linear {
                w: mat("coupling.w")?,
            },
            Coupling::FeatureBilinear { .. } => CouplingParams::FeatureBilinear {
                psi: mlp("coupling.psi")?,
                phi: mlp("coupling.phi")?,
                w: mat("coupling.w")?,
            },
            Coupling::RegimeGated { regimes } => CouplingParams::RegimeGated {
                gate: mlp("coupling.gate")?,
                w: (0..regimes)
                    .map(|k| mat(&format!("coupling.w.{k}")))
                    .collect::<Result<_>>()?,
            },
        };
        let model = EnergyModel {
            n_past,
            n_future,
            past: self_energy("past")?,
            future: self_energy("future")?,
            coupling,
        };
        let standardiser = Standardiser {
            mean: vec1("standardiser.mean")?,
            sd: vec1("standardiser.sd")?,
        };
        let width = n_past + n_future;
        if standardiser.mean.len() != width
            || standardiser.sd.len() != width
            || model.past.a.dim() != (n_past, n_past)
            || model.future.a.dim() != (n_future, n_future)
            || neurons.len() * offsets.len() != width
        {
            return Err(bad(
                "shapes",
                format!("window width {width} does not match the stored tensors and neurons"),
            ));
        }
        Ok(FoldModel {
            lag: num("lag")?,
            fold,
            fingerprint: get("fingerprint")?
                .as_str()
                .ok_or_else(|| bad("fingerprint", "not a string".into()))?
                .to_string(),
            neurons,
            offsets,
            config,
            seed,
            standardiser,
            model,
            epoch_loss: vec1("epoch_loss")?.to_vec(),
            validation_loss: if st.tensor("validation_loss").is_ok() {
                vec1("validation_loss")?.to_vec()
            } else {
                Vec::new()
            },
            best_epoch: meta
                .get("best_epoch")
                .and_then(|v| v.as_u64())
                .map(|v| v as usize),
        })
    }
}

/// A folder of checkpoints as the store of a run's fold models.
#[derive(Clone, Debug)]
pub struct CheckpointDir {
    pub dir: PathBuf,
    /// Load a fold's model when its fingerprint matches instead of training it again
    /// (`sbtg infer --resume`).
    pub reuse: bool,
}

impl ModelStore for CheckpointDir {
    fn load(&self, lag: usize, fold: usize) -> Option<FoldModel> {
        let p = path(&self.dir, lag, fold);
        p.exists().then(|| FoldModel::load(&p).ok()).flatten()
    }
    fn reuse(&self) -> bool {
        self.reuse
    }
    fn save(&self, model: &FoldModel) -> Result<()> {
        model.save(&path(&self.dir, model.lag, model.fold))
    }
}

/// The fold models of every lag of `lags` saved in `dir` (`lag{r}-fold{k}.safetensors`,
/// k = 1, 2, … while the files exist).
///
/// `spans[l]` is the window span of the models that test the l-th lag
/// ([`crate::estimate::Sbtg::span_of`]): same-frame (lag-0) pairs and lags up to the
/// conditioning depth are scored with the models of the depth's windows.
pub fn read_models(dir: &Path, spans: &[usize]) -> Result<Vec<Vec<FoldModel>>> {
    spans
        .iter()
        .map(|&lag| {
            let mut models = Vec::new();
            while path(dir, lag, models.len()).exists() {
                models.push(FoldModel::load(&path(dir, lag, models.len()))?);
            }
            if models.is_empty() {
                return Err(Error::format(
                    dir,
                    file_name(lag, 0),
                    "missing: the run saved no score model for this lag; rerun `sbtg infer` with this sbtg version",
                ));
            }
            Ok(models)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Coupling;

    #[test]
    fn every_coupling_round_trips_bit_for_bit() {
        for c in [
            Coupling::Linear,
            Coupling::FeatureBilinear { rank: 3 },
            Coupling::RegimeGated { regimes: 3 },
        ] {
            let mut rng = crate::rng::stream(4, 0);
            let model = EnergyModel::init(6, 3, c, 5, 2, &mut rng);
            let config = ScoreModelConfig {
                coupling: c,
                hidden: 5,
                ..ScoreModelConfig::default()
            };
            let ck = FoldModel {
                lag: 2,
                fold: 1,
                fingerprint: "abc".into(),
                neurons: vec!["AVAL".into(), "AVAR".into(), "RIM".into()],
                offsets: vec![0, 1, 2],
                config: config.clone(),
                seed: 7,
                standardiser: Standardiser {
                    mean: Array1::from_shape_fn(9, |k| k as f64 * 0.1),
                    sd: Array1::from_shape_fn(9, |k| 1.0 + k as f64 / 3.0),
                },
                model,
                epoch_loss: vec![1.5, 1.25, f64::MIN_POSITIVE],
                validation_loss: vec![2.5, 2.25, 2.0],
                best_epoch: Some(2),
            };
            let bytes = ck.to_bytes().unwrap();
            let back = FoldModel::from_bytes(Path::new("x"), &bytes).unwrap();
            assert_eq!(back.to_bytes().unwrap(), bytes, "{c:?}");
            assert_eq!((back.lag, back.fold, back.seed), (2, 1, 7));
            assert_eq!(back.config, config);
            let z = Array2::from_shape_fn((4, 9), |(a, b)| ((a * 9 + b) as f64).sin());
            assert_eq!(back.model.score(z.view()), ck.model.score(z.view()));
        }
    }

    #[test]
    fn damaged_files_are_refused_with_the_fix() {
        let mut rng = crate::rng::stream(1, 0);
        let ck = FoldModel {
            lag: 1,
            fold: 0,
            fingerprint: "f".into(),
            neurons: vec!["A".into(), "B".into()],
            offsets: vec![0, 1],
            config: ScoreModelConfig::default(),
            seed: 0,
            standardiser: Standardiser {
                mean: Array1::zeros(4),
                sd: Array1::ones(4),
            },
            model: EnergyModel::init(2, 2, Coupling::Linear, 4, 2, &mut rng),
            epoch_loss: vec![1.0],
            validation_loss: Vec::new(),
            best_epoch: None,
        };
        let bytes = ck.to_bytes().unwrap();
        for cut in [0, 7, 20, bytes.len() / 2, bytes.len() - 1] {
            let err = FoldModel::from_bytes(Path::new("ck.safetensors"), &bytes[..cut])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("ck.safetensors") && err.contains("delete it"),
                "{err}"
            );
        }
    }
}
