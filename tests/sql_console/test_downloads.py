"""CSV downloads are safe to open in a spreadsheet (streamlit_app/downloads.py, on defusedcsv)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd
import pytest

from streamlit_app.downloads import csv_bytes
from tests.conftest import REPO

# OWASP CSV-injection payloads -> what the spreadsheet must get instead (text, not a formula)
PAYLOADS = {
    '=HYPERLINK("http://x","y")': '\'=HYPERLINK("http://x","y")',
    "+cmd|' /C calc'!A0": "'+cmd\\|' /C calc'!A0",
    "@SUM(1+1)": "'@SUM(1+1)",
    "-2+3": "'-2+3",
    "\t=1+1": "'\t=1+1",
    "\r=1+1": "'\r=1+1",
}


def read(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_formula_cells_are_neutralised(payload):
    rows = read(csv_bytes(pd.DataFrame({"cell": [payload]})))
    assert rows == [["cell"], [PAYLOADS[payload]]]
    assert not rows[1][0].startswith(("=", "+", "-", "@", "\t", "\r"))


def test_column_names_are_neutralised_too():
    rows = read(csv_bytes(pd.DataFrame({'=HYPERLINK("http://x","y")': [1]})))
    assert rows[0] == ['\'=HYPERLINK("http://x","y")'] and rows[1] == ["1"]


def test_numbers_survive_negative_ones_included():
    frame = pd.DataFrame({
        "float": [-1.5, 2.0, None, 1e-05],
        "int": pd.array([-2, 0, None, 7], dtype="Int64"),
        "text_number": ["-5", "-1,234.50", "3.14", None],
        "flag": [True, False, True, None],
    })
    rows = read(csv_bytes(frame))
    assert rows[0] == ["float", "int", "text_number", "flag"]
    assert [r[0] for r in rows[1:]] == ["-1.5", "2.0", "", "1e-05"]
    assert [r[1] for r in rows[1:]] == ["-2", "0", "", "7"]
    # defusedcsv leaves a text cell alone when it is only a (negative) number: ^-?[0-9,.]+$
    assert [r[2] for r in rows[1:]] == ["-5", "-1,234.50", "3.14", ""]
    assert [r[3] for r in rows[1:]] == ["True", "False", "True", ""]


def test_same_cells_as_pandas_for_ordinary_data():
    frame = pd.DataFrame({"site": ["pancreas", "small bowel, ileum"], "n": [3, 4], "p": [0.25, 0.75]})
    assert read(csv_bytes(frame)) == read(frame.to_csv(index=False).encode())


def test_every_csv_download_of_the_app_goes_through_the_helper():
    """No `.to_csv(` left in the app: every CSV download uses csv_bytes."""
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "streamlit_app").rglob("*.py")
                 if re.search(r"\.to_csv\(", p.read_text()) and p.name != "downloads.py"]
    assert offenders == []
    for name in ("views/sql.py", "views/data_quality.py", "charts.py"):
        assert "csv_bytes(" in (REPO / "streamlit_app" / name).read_text(), name
