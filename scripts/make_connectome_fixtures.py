"""Writes the malformed connectome spreadsheets used by tests/tests/connectome.rs.

Run from the repository root: `python3 scripts/make_connectome_fixtures.py` (needs openpyxl).
Each file is a small variant of a real layout with one defect, so that the readers'
error messages can be checked.
"""
from pathlib import Path

import openpyxl

OUT = Path("tests/fixtures/connectome")
OUT.mkdir(parents=True, exist_ok=True)
NAMES = ["AVAL", "AVAR", "AVBL", "AVBR", "AVDL", "AVDR", "AVEL", "AVER", "ASHL", "ASHR", "AIYL"]


def cook_like(path, gap_sheet=True, bad_cell=None):
    wb = openpyxl.Workbook()
    wb.active.title = "TITLE AND LEGEND"
    for title in ["hermaphrodite chemical"] + (["hermaphrodite gap jn symmetric"] if gap_sheet else []):
        ws = wb.create_sheet(title)
        for k, name in enumerate(NAMES):
            ws.cell(row=3, column=4 + k, value=name)
            ws.cell(row=4 + k, column=3, value=name)
        ws.cell(row=4 + 4, column=4 + 0, value=7)  # AVDL -> AVAL
        if bad_cell and title == "hermaphrodite chemical":
            ws.cell(row=4 + 1, column=4 + 2, value=bad_cell)  # AVAR -> AVBL, cell F5
    wb.save(path)


cook_like(OUT / "cook_without_gap_sheet.xlsx", gap_sheet=False)
cook_like(OUT / "cook_text_in_matrix.xlsx", bad_cell="n/a")
cook_like(OUT / "cook_small_valid.xlsx")

wb = openpyxl.Workbook()
ws = wb.active
ws.title = "Sheet1"
ws.append(["from", "to", "count"])
ws.append(["AVAL", "AVAR", 3])
wb.save(OUT / "unknown_layout.xlsx")
