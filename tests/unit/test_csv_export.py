"""The one CSV helper: cells a spreadsheet would read as a formula are kept as text."""

from __future__ import annotations

import csv
import io

import pytest

from pipeline.entrypoints.csv_export import csv_text, safe_cell


@pytest.mark.parametrize("cell", ["=1+1", "+44 7700", "-2", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("a")'])
def test_formula_starts_are_prefixed_with_a_quote(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize(("value", "text"), [("Riverside", "Riverside"), (12, "12"), (0.25, "0.25"), (None, ""),
                                             ("a=b", "a=b"), ("", ""), (" =x", " =x")])
def test_other_cells_are_unchanged(value: object, text: str) -> None:
    assert safe_cell(value) == text


def test_csv_text_neutralises_every_cell_and_reads_back() -> None:
    text = csv_text(["group", "=note"], [["ALL", "-1"], ["100001", 'said "hi", then left']])
    assert list(csv.reader(io.StringIO(text))) == [["group", "'=note"], ["ALL", "'-1"],
                                                   ["100001", 'said "hi", then left']]
