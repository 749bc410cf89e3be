//! Small dense linear algebra on `ndarray` matrices (ndarray has no factorisations of
//! its own without a LAPACK system library).
//!
//! Symmetric positive definite matrices are factorised by faer's blocked, vectorised
//! Cholesky ([`SpdFactor`]): the Gaussian window model factorises and inverts one
//! window covariance (a few hundred coordinates) per point of its shrinkage grid and
//! per validation split, which with an unblocked factorisation was most of a run's
//! time. nalgebra serves the small factorisations of the regression designs.

use faer::linalg::solvers::DenseSolveCore;
use nalgebra::DMatrix;
use ndarray::{Array2, ArrayView2};

use crate::{Error, Result};

/// The submatrix `A[idx, idx]` (nalgebra, for factorisation).
pub fn submatrix(a: &Array2<f64>, rows: &[usize], cols: &[usize]) -> DMatrix<f64> {
    DMatrix::from_fn(rows.len(), cols.len(), |r, c| a[[rows[r], cols[c]]])
}

/// The Cholesky factorisation `A + λI = CCᵀ` of a symmetric matrix (its lower
/// triangle is read), when it is positive definite.
pub struct SpdFactor {
    llt: faer::linalg::solvers::Llt<f64>,
}

impl SpdFactor {
    /// Factorises `A + λI`; `None` if it is not numerically positive definite.
    pub fn new(a: &Array2<f64>, ridge: f64) -> Option<Self> {
        let n = a.nrows();
        let m = faer::Mat::<f64>::from_fn(
            n,
            n,
            |r, c| {
                if r == c {
                    a[[r, c]] + ridge
                } else {
                    a[[r, c]]
                }
            },
        );
        m.llt(faer::Side::Lower).ok().map(|llt| SpdFactor { llt })
    }

    /// `log det(A + λI) = 2 Σ_k log C_kk`.
    pub fn log_det(&self) -> f64 {
        let c = self.llt.L();
        2.0 * (0..c.nrows()).map(|k| c[(k, k)].ln()).sum::<f64>()
    }

    /// `(A + λI)⁻¹`.
    pub fn inverse(&self) -> Array2<f64> {
        let inv = self.llt.inverse();
        Array2::from_shape_fn((inv.nrows(), inv.ncols()), |(r, c)| inv[(r, c)])
    }
}

/// `tr(AB) = Σ_ij A_ij B_ji` without forming the product.
pub fn trace_of_product(a: ArrayView2<f64>, b: ArrayView2<f64>) -> f64 {
    a.iter().zip(b.t().iter()).map(|(x, y)| x * y).sum()
}

/// `(A + λI)⁻¹` of a symmetric positive semi-definite matrix by Cholesky; `what` names
/// the matrix in the error, which suggests a ridge when it is singular.
pub fn spd_inverse(a: &Array2<f64>, ridge: f64, what: &str) -> Result<Array2<f64>> {
    let factor = SpdFactor::new(a, ridge).ok_or_else(|| singular(what))?;
    Ok(factor.inverse())
}

fn singular(what: &str) -> Error {
    Error::param(
        "ridge",
        format!(
            "the {what} is singular (collinear or constant regressors); raise --ridge (for example to 0.01)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// `A = [[4, 2], [2, 3]]`: `det A = 8`, `A⁻¹ = [[3, −2], [−2, 4]] / 8` (by hand).
    #[test]
    fn spd_factor_gives_the_inverse_and_log_determinant_by_hand() {
        let a = array![[4.0, 2.0], [2.0, 3.0]];
        let f = SpdFactor::new(&a, 0.0).unwrap();
        assert!((f.log_det() - 8f64.ln()).abs() < 1e-14);
        let inv = f.inverse();
        let want = array![[3.0, -2.0], [-2.0, 4.0]] / 8.0;
        assert!((&inv - &want).iter().all(|v| v.abs() < 1e-14));
        // With a ridge of 1: [[5, 2], [2, 4]], det 16.
        let g = SpdFactor::new(&a, 1.0).unwrap();
        assert!((g.log_det() - 16f64.ln()).abs() < 1e-14);
    }

    /// `tr(AB)` of two non-symmetric matrices, by hand: `AB = [[19, 22], [43, 50]]`.
    #[test]
    fn trace_of_product_by_hand() {
        let a = array![[1.0, 2.0], [3.0, 4.0]];
        let b = array![[5.0, 6.0], [7.0, 8.0]];
        assert_eq!(trace_of_product(a.view(), b.view()), 69.0);
        assert_eq!(trace_of_product(b.view(), a.view()), 69.0);
    }

    #[test]
    fn an_indefinite_or_singular_matrix_is_refused_with_a_ridge_hint() {
        let a = array![[1.0, 2.0], [2.0, 1.0]];
        assert!(SpdFactor::new(&a, 0.0).is_none());
        let e = spd_inverse(&array![[1.0, 1.0], [1.0, 1.0]], 0.0, "test matrix")
            .unwrap_err()
            .to_string();
        assert!(e.contains("test matrix") && e.contains("--ridge"), "{e}");
    }
}
