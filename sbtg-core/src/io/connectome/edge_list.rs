//! Edge-list connectomes: Witvliet 2021 and Varshney 2011 spreadsheets, White 1986
//! tab-separated lists, Bentley 2016 extrasynaptic lists, and the plain
//! `pre,post,type,weight` CSV.

use std::path::Path;

use super::spreadsheet::{Cell, Workbook};
use super::{Connectome, ConnectomeFormat, Level, SynapseType, UNDERSTOOD_FORMATS};
use crate::{Error, Result};

/// Monoamines of Bentley et al. (2016); every other transmitter there is a neuropeptide.
const MONOAMINES: [&str; 4] = ["dopamine", "serotonin", "tyramine", "octopamine"];

fn lower(cells: &[&str]) -> Vec<String> {
    cells
        .iter()
        .map(|s| s.trim().to_ascii_lowercase())
        .collect()
}

/// Reads a Witvliet or Varshney workbook (first sheet), or `None` if its header is
/// neither.
pub(super) fn read_spreadsheet(wb: &Workbook, path: &Path) -> Result<Option<Connectome>> {
    let Some((sheet, grid)) = wb.sheets.first() else {
        return Ok(None);
    };
    let head: Vec<&str> = (0..4)
        .map(|k| grid.get(0, k).text().unwrap_or(""))
        .collect();
    let head = lower(&head);
    let format = if head == ["pre", "post", "type", "synapses"] {
        ConnectomeFormat::Witvliet
    } else if head == ["neuron 1", "neuron 2", "type", "nbr"] {
        ConnectomeFormat::Varshney
    } else {
        return Ok(None);
    };
    let mut c = Connectome::new(Level::Cell, format, path);
    for r in 1..grid.rows.len() {
        let (Some(pre), Some(post)) = (grid.get(r, 0).text(), grid.get(r, 1).text()) else {
            if grid.rows[r].iter().all(|x| *x == Cell::Empty) {
                continue;
            }
            return Err(Error::format(
                path,
                format!("sheet `{sheet}`, row {}", r + 1),
                "the first two columns must name the pre- and postsynaptic cells",
            ));
        };
        let ty = grid.get(r, 2).text().unwrap_or("");
        let w = match grid.get(r, 3) {
            Cell::Number(w) if w.is_finite() && *w >= 0.0 => *w,
            other => {
                return Err(Error::format(
                    path,
                    format!("sheet `{sheet}`, row {}, column D", r + 1),
                    format!("{other:?} is not a synapse count (a non-negative number)"),
                ))
            }
        };
        let kind = match format {
            // Varshney: S/Sp are sends (chemical), R/Rp the same synapses seen from the
            // receiving side, EJ gap junctions, NMJ neuromuscular junctions (post "NMJ").
            ConnectomeFormat::Varshney => match ty {
                "S" | "Sp" => Some(SynapseType::Chemical),
                "EJ" => Some(SynapseType::Electrical),
                "R" | "Rp" | "NMJ" => None,
                other => {
                    return Err(Error::format(
                        path,
                        format!("sheet `{sheet}`, row {}, column Type", r + 1),
                        format!("unknown type `{other}` (expected S, Sp, R, Rp, EJ or NMJ)"),
                    ))
                }
            },
            _ => Some(SynapseType::parse(ty).ok_or_else(|| {
                Error::format(
                    path,
                    format!("sheet `{sheet}`, row {}, column type", r + 1),
                    format!("unknown type `{ty}` (expected chemical or electrical)"),
                )
            })?),
        };
        if let Some(kind) = kind {
            c.add(pre, post, kind, w);
        } else {
            c.nodes.insert(super::normalise_name(pre));
        }
    }
    c.mirror_electrical();
    Ok(Some(c))
}

/// Reads a text edge list (White TSV, Bentley CSV or plain CSV).
pub(super) fn read_text(path: &Path) -> Result<Connectome> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| Error::format(path, "contents", "the file is empty"))?;
    let tab = first.contains('\t');
    let delim = if tab { b'\t' } else { b',' };
    let head_fields: Vec<&str> = first.split(delim as char).collect();
    let head = lower(&head_fields);
    let (format, has_header) = if head.len() >= 4
        && head[..3] == ["pre", "post", "type"]
        && (head[3] == "weight" || head[3] == "synapses")
    {
        if tab {
            (ConnectomeFormat::White, true)
        } else {
            (ConnectomeFormat::EdgeList, true)
        }
    } else if !tab
        && head.len() == 4
        && head
            .iter()
            .all(|f| !f.is_empty() && f.parse::<f64>().is_err())
        && !head.contains(&"pre".to_string())
    {
        (ConnectomeFormat::Bentley, false)
    } else {
        return Err(Error::format(
            path,
            "header",
            format!(
                "found `{}`; this is not a connectome layout sbtg understands. Understood: {UNDERSTOOD_FORMATS}",
                first.trim()
            ),
        ));
    };
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delim)
        .has_headers(has_header)
        .flexible(false)
        .from_reader(text.as_bytes());
    let mut c = Connectome::new(Level::Cell, format, path);
    for (k, rec) in rdr.records().enumerate() {
        let line = k + 1 + usize::from(has_header);
        let rec = rec.map_err(|e| Error::format(path, format!("line {line}"), e.to_string()))?;
        if rec.len() < 4 {
            return Err(Error::format(
                path,
                format!("line {line}"),
                format!("{} fields, expected at least 4", rec.len()),
            ));
        }
        if format == ConnectomeFormat::Bentley {
            let transmitter = rec[2].trim().to_ascii_lowercase();
            let kind = if MONOAMINES.contains(&transmitter.as_str()) {
                SynapseType::Monoamine
            } else {
                SynapseType::Neuropeptide
            };
            // One (transmitter, receptor) route per line; the weight counts routes.
            c.add(&rec[0], &rec[1], kind, 1.0);
            continue;
        }
        let kind = SynapseType::parse(&rec[2]).ok_or_else(|| {
            Error::format(
                path,
                format!("line {line}, column type"),
                format!(
                    "unknown type `{}` (expected chemical, electrical, monoamine or neuropeptide)",
                    &rec[2]
                ),
            )
        })?;
        let w: f64 = rec[3]
            .trim()
            .parse()
            .ok()
            .filter(|w: &f64| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| {
                Error::format(
                    path,
                    format!("line {line}, column {}", head_fields[3].trim()),
                    format!(
                        "`{}` is not a synapse count (a non-negative number)",
                        &rec[3]
                    ),
                )
            })?;
        c.add(&rec[0], &rec[1], kind, w);
    }
    if c.edges.is_empty() {
        return Err(Error::format(path, "contents", "no edges below the header"));
    }
    c.mirror_electrical();
    Ok(c)
}
