//! Small dense linear algebra on `ndarray` matrices, through nalgebra's Cholesky
//! (ndarray has no factorisations of its own without a LAPACK system library).

use nalgebra::DMatrix;
use ndarray::Array2;

use crate::{Error, Result};

pub fn to_dmatrix(a: &Array2<f64>) -> DMatrix<f64> {
    DMatrix::from_fn(a.nrows(), a.ncols(), |r, c| a[[r, c]])
}

pub fn to_array(m: &DMatrix<f64>) -> Array2<f64> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(r, c)| m[(r, c)])
}

/// The submatrix `A[idx, idx]` (nalgebra, for factorisation).
pub fn submatrix(a: &Array2<f64>, rows: &[usize], cols: &[usize]) -> DMatrix<f64> {
    DMatrix::from_fn(rows.len(), cols.len(), |r, c| a[[rows[r], cols[c]]])
}

/// `(A + λI)⁻¹` of a symmetric positive semi-definite matrix by Cholesky; `what` names
/// the matrix in the error, which suggests a ridge when it is singular.
pub fn spd_inverse(a: &Array2<f64>, ridge: f64, what: &str) -> Result<Array2<f64>> {
    let mut m = to_dmatrix(a);
    for k in 0..m.nrows() {
        m[(k, k)] += ridge;
    }
    let chol = m.cholesky().ok_or_else(|| singular(what))?;
    Ok(to_array(&chol.inverse()))
}

fn singular(what: &str) -> Error {
    Error::param(
        "ridge",
        format!(
            "the {what} is singular (collinear or constant regressors); raise --ridge (for example to 0.01)"
        ),
    )
}
