//! `arrays.npz`: the edge table as NumPy arrays in tigramite's layout, so that a notebook
//! uses sbtg's results without parsing CSV.
//!
//! **Orientation.** Every 3-D array is indexed `[source, target, lag]`, as tigramite's
//! `val_matrix[i, j, tau]` is the link `i(t − tau) → j(t)`: the *transpose* of the
//! `[target, source]` matrices inside sbtg and its reports. The lag axis runs over
//! `0, 1, …, max lag`; a lag that was not tested (lag 0 in a lagged run, say) is NaN.
//!
//! | array | shape | meaning |
//! |---|---|---|
//! | `neurons` | (n,) text | neuron names, in index order |
//! | `lags` | (k,) int64 | the lags tested |
//! | `val_matrix` | (n, n, L) | mean-test `effect` (Jacobian sign for SBTG) |
//! | `t_matrix`, `p_matrix`, `q_matrix` | (n, n, L) | its test statistic, p and FDR q |
//! | `conf_matrix` | (n, n, L, 2) | its 95% interval (low, high) |
//! | `graph` | (n, n, L) text | `-->` where the edge is selected, else empty |
//! | `volatility_val_matrix`, `volatility_p_matrix`, `volatility_q_matrix`, `volatility_graph` | (n, n, L) | the volatility-transfer test, when it ran |
//!
//! Numeric arrays are written by ndarray-npy. Text arrays are written here: NumPy's
//! `<U{k}` (UTF-32, NUL-padded) is a documented fixed layout that ndarray-npy does not
//! write.

use std::io::Write;

use ndarray::{Array1, Array3, Array4};
use ndarray_npy::WriteNpyExt;

use crate::results::EdgeTable;
use crate::stats::TestKind;
use crate::{Error, Result};

/// An `.npy` file of fixed-width text (`<U{k}`, C order) of the given shape.
fn text_npy(items: &[String], shape: &[usize]) -> Vec<u8> {
    let width = items
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(1)
        .max(1);
    let shape_text = match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '<U{width}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + length (2) + header + newline, padded to 64 bytes.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for s in items {
        let mut n = 0;
        for c in s.chars() {
            out.extend_from_slice(&(c as u32).to_le_bytes());
            n += 1;
        }
        out.extend(std::iter::repeat_n(0u8, 4 * (width - n)));
    }
    out
}

fn npy<A: WriteNpyExt + ?Sized>(a: &A, name: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    a.write_npy(&mut buf)
        .map_err(|e| Error::encode(format!("arrays.npz: {name}"), e))?;
    Ok(buf)
}

/// The `[source, target, lag]` arrays of one test.
struct TestArrays {
    val: Array3<f64>,
    t: Array3<f64>,
    p: Array3<f64>,
    q: Array3<f64>,
    conf: Array4<f64>,
    graph: Vec<String>,
}

fn test_arrays(table: &EdgeTable, test: TestKind, lags: usize) -> TestArrays {
    let n = table.neurons().len();
    let nan = || Array3::from_elem((n, n, lags), f64::NAN);
    let mut a = TestArrays {
        val: nan(),
        t: nan(),
        p: nan(),
        q: nan(),
        conf: Array4::from_elem((n, n, lags, 2), f64::NAN),
        graph: vec![String::new(); n * n * lags],
    };
    let index = |name: &str| table.neurons().iter().position(|m| m == name);
    for e in table.rows.iter().filter(|e| e.test == test) {
        let (Some(i), Some(j)) = (index(&e.source), index(&e.target)) else {
            continue;
        };
        let k = e.lag;
        // A same-frame (lag-0) pair is written both ways with tigramite's
        // contemporaneous mark `o-o`.
        let (ends, mark) = if k == 0 {
            (vec![(i, j), (j, i)], "o-o")
        } else {
            (vec![(i, j)], "-->")
        };
        for (i, j) in ends {
            a.val[[i, j, k]] = e.effect;
            a.t[[i, j, k]] = e.t;
            a.p[[i, j, k]] = e.p;
            a.q[[i, j, k]] = e.q;
            a.conf[[i, j, k, 0]] = e.ci_low;
            a.conf[[i, j, k, 1]] = e.ci_high;
            if e.selected {
                a.graph[(i * n + j) * lags + k] = mark.into();
            }
        }
    }
    a
}

/// The bytes of `arrays.npz` (module docs).
pub fn arrays_npz(table: &EdgeTable) -> Result<Vec<u8>> {
    let n = table.neurons().len();
    let lags = table.lags();
    let depth = lags.iter().copied().max().unwrap_or(0) + 1;
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        ("neurons".into(), text_npy(table.neurons(), &[n])),
        (
            "lags".into(),
            npy(&Array1::from_iter(lags.iter().map(|&l| l as i64)), "lags")?,
        ),
    ];
    let mut add = |prefix: &str, a: TestArrays| -> Result<()> {
        for (name, arr) in [
            ("val_matrix", &a.val),
            ("t_matrix", &a.t),
            ("p_matrix", &a.p),
            ("q_matrix", &a.q),
        ] {
            let key = format!("{prefix}{name}");
            entries.push((key.clone(), npy(arr, &key)?));
        }
        if prefix.is_empty() {
            entries.push(("conf_matrix".into(), npy(&a.conf, "conf_matrix")?));
        }
        entries.push((format!("{prefix}graph"), text_npy(&a.graph, &[n, n, depth])));
        Ok(())
    };
    add("", test_arrays(table, TestKind::Mean, depth))?;
    if table.rows.iter().any(|e| e.test == TestKind::Volatility) {
        add(
            "volatility_",
            test_arrays(table, TestKind::Volatility, depth),
        )?;
    }
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let zerr = |e: zip::result::ZipError| Error::encode("arrays.npz", e);
    for (name, bytes) in entries {
        zip.start_file(format!("{name}.npy"), opts).map_err(zerr)?;
        zip.write_all(&bytes)
            .map_err(|e| Error::encode("arrays.npz", e))?;
    }
    Ok(zip.finish().map_err(zerr)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_arrays_have_numpys_header_and_utf32_items() {
        let b = text_npy(&["AVAL".into(), "I2L".into()], &[2]);
        assert!(b.starts_with(b"\x93NUMPY\x01\x00"));
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0, "data starts 64-byte aligned");
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(header.starts_with("{'descr': '<U4', 'fortran_order': False, 'shape': (2,), }"));
        let data = &b[10 + hlen..];
        assert_eq!(data.len(), 2 * 4 * 4);
        assert_eq!(&data[..4], &('A' as u32).to_le_bytes());
        assert_eq!(&data[28..32], &[0, 0, 0, 0], "I2L is NUL-padded");
    }
}
