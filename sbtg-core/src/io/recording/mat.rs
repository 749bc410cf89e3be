//! A reader for the subset of MATLAB's Level 5 MAT-file format that recording files use:
//! numeric, logical, char and cell arrays, each possibly inside a compressed element.
//!
//! Written by hand because no maintained crate reads these files: `matfile` drops cell
//! and char arrays (NeuroPAL traces are cells of vectors), and `matrw` rejects files
//! written by scipy's `savemat` (its header check expects MATLAB's own wording). The
//! format is MathWorks' "MAT-File Format" (Level 5): a 128-byte header, then a sequence
//! of data elements, each an 8-byte tag `(type, byte count)` — or a 4-byte "small data
//! element" tag when the data fit in 4 bytes — followed by the data padded to 8 bytes.
//! `miCOMPRESSED` elements hold one zlib-compressed element. `miMATRIX` elements hold
//! array flags, dimensions, a name, then the real part (numeric), the characters (char)
//! or one `miMATRIX` per cell (cell). Structs, objects, sparse and complex arrays are
//! read as [`MatArray::Unsupported`] so that a file holding them still opens.
//! MATLAB 7.3 files are HDF5 and are refused with a message.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// One array of a MAT-file. Data are column-major, as MATLAB stores them.
#[derive(Clone, Debug, PartialEq)]
pub enum MatArray {
    /// Numeric or logical array converted to `f64`.
    Numeric { dims: Vec<usize>, data: Vec<f64> },
    /// Character array, one string per row (trailing spaces of padded rows removed).
    Char { dims: Vec<usize>, rows: Vec<String> },
    /// Cell array; `items` in column-major order.
    Cell {
        dims: Vec<usize>,
        items: Vec<MatArray>,
    },
    /// Struct, object, sparse, complex or function-handle array, named by class.
    Unsupported { class: String },
}

impl MatArray {
    /// Number of elements (product of the dimensions).
    pub fn len(&self) -> usize {
        match self {
            MatArray::Numeric { dims, .. }
            | MatArray::Char { dims, .. }
            | MatArray::Cell { dims, .. } => dims.iter().product(),
            MatArray::Unsupported { .. } => 0,
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A short description for error messages (`3×1 cell`, `1×240 double`, …).
    pub fn describe(&self) -> String {
        let d = |dims: &[usize]| {
            dims.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("×")
        };
        match self {
            MatArray::Numeric { dims, .. } => format!("{} numeric array", d(dims)),
            MatArray::Char { dims, .. } => format!("{} char array", d(dims)),
            MatArray::Cell { dims, .. } => format!("{} cell array", d(dims)),
            MatArray::Unsupported { class } => format!("{class} array"),
        }
    }
}

/// The variables of one MAT-file, in file order.
#[derive(Clone, Debug)]
pub struct MatFile {
    pub path: PathBuf,
    pub variables: Vec<(String, MatArray)>,
}

impl MatFile {
    /// Reads a Level 5 MAT-file.
    pub fn open(path: &Path) -> Result<MatFile> {
        let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
        Self::parse(path, &bytes)
    }

    /// Parses the bytes of a Level 5 MAT-file.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<MatFile> {
        let bad = |field: &str, msg: String| Error::format(path, field, msg);
        if bytes.len() < 128 {
            return Err(bad(
                "header",
                "shorter than the 128-byte MAT-file header; the file is truncated or not a .mat file"
                    .into(),
            ));
        }
        if bytes.len() >= 520 && &bytes[512..520] == b"\x89HDF\r\n\x1a\n" {
            return Err(bad(
                "header",
                "this is a MATLAB 7.3 (HDF5) file; re-save it in MATLAB with `save(name, '-v7')`"
                    .into(),
            ));
        }
        if bytes[..4].contains(&0) {
            return Err(bad(
                "header",
                "a MATLAB 4 file or not a MAT-file; re-save it in MATLAB with `save(name, '-v7')`"
                    .into(),
            ));
        }
        match &bytes[126..128] {
            b"IM" => {}
            b"MI" => {
                return Err(bad(
                    "header",
                    "written in big-endian byte order, which this reader does not handle; \
                     re-save it in MATLAB on a current computer"
                        .into(),
                ))
            }
            _ => return Err(bad(
                "header",
                "no MAT-file byte-order mark at bytes 126–127; the file is not a Level 5 MAT-file"
                    .into(),
            )),
        }
        let mut reader = Elements {
            path,
            bytes: &bytes[128..],
            pos: 0,
            depth: 0,
        };
        let mut variables = Vec::new();
        while let Some((ty, data)) = reader.next_element()? {
            match ty {
                MI_MATRIX => variables.push(parse_matrix(path, data, 0)?),
                MI_COMPRESSED => {
                    let inflated = inflate(path, data)?;
                    let mut inner = Elements {
                        path,
                        bytes: &inflated,
                        pos: 0,
                        depth: 0,
                    };
                    while let Some((ty, data)) = inner.next_element()? {
                        if ty == MI_MATRIX {
                            variables.push(parse_matrix(path, data, 0)?);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(MatFile {
            path: path.to_path_buf(),
            variables,
        })
    }

    /// The variable called `name`, if the file has it.
    pub fn get(&self, name: &str) -> Option<&MatArray> {
        self.variables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
    }
}

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;
const MI_UTF16: u32 = 17;
const MI_UTF32: u32 = 18;

/// Nesting limit for cells inside cells: real files nest two or three deep; the limit
/// stops a malicious file from exhausting the stack.
const MAX_DEPTH: usize = 32;

/// Cursor over a sequence of data elements.
struct Elements<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Elements<'a> {
    /// The next element's type and data, or `None` at the end.
    fn next_element(&mut self) -> Result<Option<(u32, &'a [u8])>> {
        let rest = self.bytes.len() - self.pos;
        if rest == 0 {
            return Ok(None);
        }
        if rest < 8 {
            // Trailing padding after the last element.
            if self.bytes[self.pos..].iter().all(|&b| b == 0) {
                return Ok(None);
            }
            return Err(self.truncated());
        }
        let word = u32_at(self.bytes, self.pos);
        let small = word >> 16;
        if small != 0 {
            // Small data element: 2-byte count, 2-byte type, data in the next 4 bytes.
            let ty = word & 0xffff;
            let n = small as usize;
            if n > 4 {
                return Err(self.corrupt("a small data element claims more than 4 bytes"));
            }
            let data = &self.bytes[self.pos + 4..self.pos + 4 + n];
            self.pos += 8;
            return Ok(Some((ty, data)));
        }
        let ty = word;
        let n = u32_at(self.bytes, self.pos + 4) as usize;
        let start = self.pos + 8;
        let end = start.checked_add(n).ok_or_else(|| self.truncated())?;
        if end > self.bytes.len() {
            return Err(self.truncated());
        }
        let data = &self.bytes[start..end];
        // Elements are padded to 8 bytes, except compressed ones.
        self.pos = if ty == MI_COMPRESSED {
            end
        } else {
            end.div_ceil(8).saturating_mul(8).min(self.bytes.len())
        };
        Ok(Some((ty, data)))
    }

    fn truncated(&self) -> Error {
        Error::format(
            self.path,
            "data element",
            "the file ends inside a data element; it is truncated (copy it again)",
        )
    }

    fn corrupt(&self, msg: &str) -> Error {
        Error::format(
            self.path,
            "data element",
            format!("{msg}; the file is corrupt"),
        )
    }

    fn expect(&mut self, what: &str) -> Result<(u32, &'a [u8])> {
        self.next_element()?.ok_or_else(|| {
            Error::format(
                self.path,
                "array",
                format!("an array ends before its {what}; the file is corrupt"),
            )
        })
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn inflate(path: &Path, data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .read_to_end(&mut out)
        .map_err(|e| {
            Error::format(
                path,
                "compressed element",
                format!("cannot decompress ({e}); the file is truncated or corrupt"),
            )
        })?;
    Ok(out)
}

/// Converts the data of one numeric element to `f64`.
fn numbers(path: &Path, ty: u32, data: &[u8]) -> Result<Vec<f64>> {
    macro_rules! conv {
        ($t:ty, $n:expr) => {
            data.chunks_exact($n)
                .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk size")) as f64)
                .collect()
        };
    }
    Ok(match ty {
        MI_INT8 => data.iter().map(|&b| b as i8 as f64).collect(),
        MI_UINT8 => data.iter().map(|&b| b as f64).collect(),
        MI_INT16 => conv!(i16, 2),
        MI_UINT16 => conv!(u16, 2),
        MI_INT32 => conv!(i32, 4),
        MI_UINT32 => conv!(u32, 4),
        MI_SINGLE => conv!(f32, 4),
        MI_DOUBLE => conv!(f64, 8),
        MI_INT64 => conv!(i64, 8),
        MI_UINT64 => conv!(u64, 8),
        other => {
            return Err(Error::format(
                path,
                "numeric data",
                format!("data type {other} is not a number type; the file is corrupt"),
            ))
        }
    })
}

/// Parses one `miMATRIX` element into its name and array.
fn parse_matrix(path: &Path, data: &[u8], depth: usize) -> Result<(String, MatArray)> {
    if depth > MAX_DEPTH {
        return Err(Error::format(
            path,
            "cell array",
            format!("cells nested more than {MAX_DEPTH} deep; the file is corrupt"),
        ));
    }
    if data.is_empty() {
        // An empty miMATRIX element is an empty array (MATLAB writes these in cells).
        return Ok((
            String::new(),
            MatArray::Numeric {
                dims: vec![0, 0],
                data: vec![],
            },
        ));
    }
    let mut el = Elements {
        path,
        bytes: data,
        pos: 0,
        depth,
    };
    let (_, flags) = el.expect("array flags")?;
    if flags.len() < 4 {
        return Err(Error::format(
            path,
            "array flags",
            "shorter than 4 bytes; the file is corrupt",
        ));
    }
    let class = flags[0];
    let complex = flags[1] & 0x08 != 0;
    let (dty, dims_raw) = el.expect("dimensions")?;
    let dims: Vec<usize> = numbers(path, dty, dims_raw)?
        .into_iter()
        .map(|d| {
            if d >= 0.0 && d.fract() == 0.0 {
                Ok(d as usize)
            } else {
                Err(Error::format(
                    path,
                    "dimensions",
                    format!("dimension {d} is not a size; the file is corrupt"),
                ))
            }
        })
        .collect::<Result<_>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::format(path, "dimensions", "array too large; the file is corrupt"))?;
    let (_, name_raw) = el.expect("name")?;
    let name = String::from_utf8_lossy(name_raw).into_owned();
    let unsupported = |class: &str| {
        Ok((
            name.clone(),
            MatArray::Unsupported {
                class: class.to_string(),
            },
        ))
    };
    match class {
        // mxCELL_CLASS
        1 => {
            // Bound the allocation by what the element can hold (each cell ≥ 8 bytes).
            if count > data.len() / 8 + 1 {
                return Err(el.corrupt("a cell array claims more cells than its bytes hold"));
            }
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                let (ty, cell) = el.expect("cells")?;
                if ty != MI_MATRIX {
                    return Err(el.corrupt("a cell is not an array element"));
                }
                items.push(parse_matrix(path, cell, el.depth + 1)?.1);
            }
            Ok((name, MatArray::Cell { dims, items }))
        }
        // mxCHAR_CLASS
        4 => {
            let (ty, raw) = el.next_element()?.unwrap_or((MI_UTF16, &[]));
            let units: Vec<u32> = match ty {
                MI_UTF8 | MI_UINT8 | MI_INT8 => String::from_utf8_lossy(raw)
                    .chars()
                    .map(|c| c as u32)
                    .collect(),
                MI_UTF16 | MI_UINT16 | MI_INT16 => raw
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
                    .collect(),
                MI_UTF32 | MI_UINT32 | MI_INT32 => raw
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().expect("4")))
                    .collect(),
                _ => return Err(el.corrupt("character data of a non-character type")),
            };
            let rows_n = dims.first().copied().unwrap_or(0);
            let cols_n = count.checked_div(rows_n).unwrap_or(0);
            if units.len() != count {
                return Err(el.corrupt(&format!(
                    "a char array of {count} characters holds {}",
                    units.len()
                )));
            }
            let rows = (0..rows_n)
                .map(|r| {
                    let s: String = (0..cols_n)
                        .map(|c| char::from_u32(units[c * rows_n + r]).unwrap_or('\u{fffd}'))
                        .collect();
                    s.trim_end_matches([' ', '\0']).to_string()
                })
                .collect();
            Ok((name, MatArray::Char { dims, rows }))
        }
        // double, single, int8 … uint64 (logical arrays are uint8 with a flag).
        6..=15 => {
            if complex {
                return unsupported("complex");
            }
            let (ty, raw) = el.next_element()?.unwrap_or((MI_DOUBLE, &[]));
            let values = numbers(path, ty, raw)?;
            if values.len() != count {
                return Err(el.corrupt(&format!(
                    "an array of {count} numbers holds {}",
                    values.len()
                )));
            }
            Ok((name, MatArray::Numeric { dims, data: values }))
        }
        2 => unsupported("struct"),
        3 => unsupported("object"),
        5 => unsupported("sparse"),
        16 => unsupported("function handle"),
        17 => unsupported("opaque"),
        other => Err(el.corrupt(&format!("unknown array class {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tag + data padded to 8 bytes.
    fn element(ty: u32, data: &[u8]) -> Vec<u8> {
        let mut v = ty.to_le_bytes().to_vec();
        v.extend((data.len() as u32).to_le_bytes());
        v.extend(data);
        while !v.len().is_multiple_of(8) {
            v.push(0);
        }
        v
    }

    fn matrix(class: u8, dims: &[i32], name: &str, body: &[u8]) -> Vec<u8> {
        let mut inner = element(MI_UINT32, &[class, 0, 0, 0, 0, 0, 0, 0]);
        let d: Vec<u8> = dims.iter().flat_map(|x| x.to_le_bytes()).collect();
        inner.extend(element(MI_INT32, &d));
        inner.extend(element(MI_INT8, name.as_bytes()));
        inner.extend(body);
        element(MI_MATRIX, &inner)
    }

    fn file(body: &[u8]) -> Vec<u8> {
        let mut h = b"MATLAB 5.0 MAT-file, hand-built test".to_vec();
        h.resize(116, b' ');
        h.extend([0u8; 8]);
        h.extend([0x00, 0x01]);
        h.extend(b"IM");
        h.extend(body);
        h
    }

    #[test]
    fn reads_hand_built_double_char_and_cell() {
        // x = [1 3; 2 4] as int16 data (MATLAB stores small integers compactly).
        let x = matrix(
            6,
            &[2, 2],
            "x",
            &element(
                MI_INT16,
                &[1i16, 2, 3, 4]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<_>>(),
            ),
        );
        // s = ['ab'; 'cd'] stored column-major as a, c, b, d in UTF-16.
        let s = matrix(
            4,
            &[2, 2],
            "s",
            &element(
                MI_UTF16,
                &"acbd"
                    .encode_utf16()
                    .flat_map(|u| u.to_le_bytes())
                    .collect::<Vec<_>>(),
            ),
        );
        // c = {[], 7}: an empty array then a double in a small data element.
        let mut cells = matrix(6, &[0, 0], "", &[]);
        let mut seven = MI_DOUBLE.to_le_bytes().to_vec();
        seven.extend(8u32.to_le_bytes());
        seven.extend(7.0f64.to_le_bytes());
        cells.extend(matrix(6, &[1, 1], "", &seven));
        let c = matrix(1, &[1, 2], "c", &cells);
        let mut body = x;
        body.extend(s);
        body.extend(c);
        let f = MatFile::parse(Path::new("t.mat"), &file(&body)).unwrap();
        assert_eq!(
            f.get("x"),
            Some(&MatArray::Numeric {
                dims: vec![2, 2],
                data: vec![1.0, 2.0, 3.0, 4.0]
            })
        );
        assert_eq!(
            f.get("s"),
            Some(&MatArray::Char {
                dims: vec![2, 2],
                rows: vec!["ab".into(), "cd".into()]
            })
        );
        let MatArray::Cell { dims, items } = f.get("c").unwrap() else {
            panic!("c is a cell")
        };
        assert_eq!(dims, &[1, 2]);
        assert!(items[0].is_empty());
        assert_eq!(
            items[1],
            MatArray::Numeric {
                dims: vec![1, 1],
                data: vec![7.0]
            }
        );
    }

    #[test]
    fn small_data_element_names_are_read() {
        // Names of up to 4 bytes use the compact tag: count in the upper 16 bits.
        let mut inner = element(MI_UINT32, &[6, 0, 0, 0, 0, 0, 0, 0]);
        inner.extend(element(
            MI_INT32,
            &[1i32, 1]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<_>>(),
        ));
        inner.extend((MI_INT8 | (3 << 16)).to_le_bytes());
        inner.extend(b"fps\0");
        inner.extend(element(MI_DOUBLE, &4.0f64.to_le_bytes()));
        let body = element(MI_MATRIX, &inner);
        let f = MatFile::parse(Path::new("t.mat"), &file(&body)).unwrap();
        assert_eq!(
            f.get("fps"),
            Some(&MatArray::Numeric {
                dims: vec![1, 1],
                data: vec![4.0]
            })
        );
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        let body = matrix(6, &[1, 1], "x", &element(MI_DOUBLE, &1.0f64.to_le_bytes()));
        let full = file(&body);
        for cut in [10, 130, full.len() - 9] {
            let err = MatFile::parse(Path::new("cut.mat"), &full[..cut]).unwrap_err();
            assert!(err.to_string().contains("cut.mat"), "{err}");
        }
        let mut big = full.clone();
        big[126..128].copy_from_slice(b"MI");
        assert!(MatFile::parse(Path::new("b.mat"), &big)
            .unwrap_err()
            .to_string()
            .contains("big-endian"));
        let mut v73 = full.clone();
        v73.resize(600, 0);
        v73[512..520].copy_from_slice(b"\x89HDF\r\n\x1a\n");
        assert!(MatFile::parse(Path::new("h.mat"), &v73)
            .unwrap_err()
            .to_string()
            .contains("-v7"));
    }
}

#[cfg(test)]
mod corruption_tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Random byte flips, truncations and length fields of a real scipy-written file
    /// must give an error or a value, never a panic or an allocation blow-up.
    #[test]
    fn corrupted_files_never_panic() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/formats");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for file in ["neuropal_plain.mat", "neuropal.mat"] {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            for _ in 0..400 {
                let mut b = bytes.clone();
                for _ in 0..rng.random_range(1..8) {
                    let k = rng.random_range(128..b.len());
                    b[k] = rng.random();
                }
                if rng.random_bool(0.3) {
                    let cut = rng.random_range(0..b.len());
                    b.truncate(cut);
                }
                let _ = MatFile::parse(Path::new(file), &b);
            }
        }
    }
}
