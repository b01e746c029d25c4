"""Frequency tables: counts and percentages of categorical values (missing counted, not dropped).

Percentages are of all rows, so a column's levels (including 'missing') add up to 100%.
A multi-valued column (e.g. 'liver,lymph_node') can be split on a separator: each row
then counts once per level it names, and the percentages of its levels add up to more
than 100% (a multiple-response table, as "metastases: liver 13/16, lymph node 5/16").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

FREQUENCY_COLUMNS = ["variable", "level", "n", "pct"]


def _level(value: object) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def frequencies(
    values: pd.Series, *, sep: str | None = None, order: Sequence[object] | None = None,
    missing_label: str = "missing", decimals: int | None = 1,
) -> pd.DataFrame:
    """level, n, pct for one column. Levels in ``order`` first (with zero counts), then the
    rest by descending count; missing last. Booleans become 'yes'/'no'."""
    total = len(values)
    present = values.dropna()
    if pd.api.types.is_bool_dtype(present) or pd.api.types.infer_dtype(present, skipna=True) == "boolean":
        present = present.astype(bool).map({True: "yes", False: "no"})
        order = order or ["yes", "no"]
    counts = present.value_counts(sort=False)
    if sep is not None:  # split each distinct value once, then weight its levels by its row count
        parts = pd.DataFrame({"raw": counts.index, "level": counts.index.astype(str).str.split(sep)}).explode("level")
        parts["level"] = parts["level"].str.strip()
        parts = parts[parts["level"] != ""].drop_duplicates()
        parts["n"] = counts.reindex(parts["raw"]).to_numpy()
        n_missing = total - int(counts[counts.index.isin(parts["raw"])].sum())
        counts = parts.groupby("level", sort=False)["n"].sum()
    else:
        n_missing = total - len(present)
    counts = counts.sort_values(ascending=False, kind="stable")
    if order is not None:
        first = list(order)
        rest = [level for level in counts.index if level not in set(first)]
        counts = counts.reindex(first + rest, fill_value=0)
    frame = pd.DataFrame({"level": [_level(level) for level in counts.index], "n": counts.to_numpy(np.int64)})
    if n_missing:
        frame = pd.concat([frame, pd.DataFrame({"level": [missing_label], "n": [int(n_missing)]})], ignore_index=True)
    frame["pct"] = 100.0 * frame["n"] / total if total else np.nan
    if decimals is not None:
        frame["pct"] = frame["pct"].round(decimals)
    return frame.astype({"n": "int64"})


def frequency_table(
    frame: pd.DataFrame,
    columns: Mapping[str, str] | Sequence[str],
    *,
    separators: Mapping[str, str] | None = None,
    orders: Mapping[str, Sequence[object]] | None = None,
    decimals: int | None = 1,
) -> pd.DataFrame:
    """variable, level, n, pct for several columns (``columns``: variable name -> column)."""
    columns = dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}
    separators = dict(separators or {})
    orders = dict(orders or {})
    parts = []
    for variable, column in columns.items():
        if column not in frame:
            continue
        part = frequencies(frame[column], sep=separators.get(column), order=orders.get(column), decimals=decimals)
        part.insert(0, "variable", variable)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=FREQUENCY_COLUMNS)
    return pd.concat(parts, ignore_index=True)[FREQUENCY_COLUMNS]
