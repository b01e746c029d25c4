"""The one way the app writes CSV downloads: ``csv_bytes(frame)``, safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@`` (and ``|``, ``%``) is a formula to Excel,
LibreOffice and Google Sheets (CSV injection: ``=HYPERLINK(...)``, ``+cmd|' /C calc'!A0``,
``@SUM(...)``). Such cells -- values *and* column names, which console users choose -- are
written through ``defusedcsv``, which prefixes them with ``'`` (and escapes ``|`` as ``\\|``),
so the spreadsheet shows the text instead of running it. ``defusedcsv`` 3.0 does not treat
cells starting with a tab or a carriage return, which OWASP lists too: this module prefixes
those with ``'`` itself.

Numbers stay numbers: numeric columns are written as numbers (defusedcsv leaves every
``numbers.Number`` alone, negative ones included, e.g. ``-2.5``), and a *text* cell that is
just a plain number (``-5``, ``-1,234.50``: defusedcsv's ``^-?[0-9,.]+$``) is left as it is; a
text cell such as ``-2+3`` is a formula and is prefixed. Missing values are empty cells, like
``DataFrame.to_csv``; dates and times are written as pandas prints them (ISO 8601).
"""

from __future__ import annotations

import io
from numbers import Number

from defusedcsv import csv as defusedcsv
import pandas as pd

_CONTROL_PREFIXES = ("\t", "\r")


def _cell(value):
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, Number):
        return value
    text = str(value)
    if text.startswith(_CONTROL_PREFIXES):
        return "'" + text
    return text


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """`frame` (index left out) as UTF-8 CSV with every formula-like cell neutralised."""
    out = io.StringIO()
    writer = defusedcsv.writer(out)  # excel dialect: \r\n rows, so a CR or LF inside a cell is quoted
    writer.writerow([_cell(name) for name in frame.columns])
    for row in frame.astype(object).itertuples(index=False, name=None):
        writer.writerow([_cell(value) for value in row])
    return out.getvalue().encode("utf-8")
