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
    rest by descending count (ties: first seen first); missing last. Booleans become 'yes'/'no'."""
    return counted_frequencies(values.value_counts(sort=False, dropna=False), sep=sep, order=order,
                               missing_label=missing_label, decimals=decimals)


def counted_frequencies(
    counts: pd.Series, *, sep: str | None = None, order: Sequence[object] | None = None,
    missing_label: str = "missing", decimals: int | None = 1,
) -> pd.DataFrame:
    """``frequencies`` from a column's value counts (value -> rows; a missing value as an index
    entry of its own), e.g. a GROUP BY in the warehouse: the same table without the rows.
    Ties between levels keep the order of ``counts``."""
    counts = counts[counts > 0]
    total = int(counts.sum())
    missing = counts.index.isna()
    n_missing = int(counts[missing].sum())
    counts = counts[~missing]
    present = pd.Series(counts.index, dtype=object if counts.index.dtype == object else counts.index.dtype)
    if pd.api.types.is_bool_dtype(present) or pd.api.types.infer_dtype(present, skipna=True) == "boolean":
        labels = present.astype(bool).map({True: "yes", False: "no"})
        counts = pd.Series(counts.to_numpy(), index=labels.to_numpy()).groupby(level=0, sort=False).sum()
        order = order or ["yes", "no"]
    if sep is not None:  # split each distinct value once, then weight its levels by its row count
        parts = pd.DataFrame({"raw": counts.index, "level": counts.index.astype(str).str.split(sep),
                              "n": counts.to_numpy()}).explode("level")
        parts["level"] = parts["level"].str.strip()
        parts = parts[parts["level"] != ""].drop_duplicates(subset=["raw", "level"])
        n_missing += int(counts[~counts.index.isin(parts["raw"])].sum())
        counts = parts.groupby("level", sort=False)["n"].sum()
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
    frame: pd.DataFrame | Mapping[str, pd.Series],
    columns: Mapping[str, str] | Sequence[str],
    *,
    separators: Mapping[str, str] | None = None,
    orders: Mapping[str, Sequence[object]] | None = None,
    decimals: int | None = 1,
) -> pd.DataFrame:
    """variable, level, n, pct for several columns (``columns``: variable name -> column).

    ``frame``: the rows, or each column's value counts (column -> ``counted_frequencies`` input)."""
    columns = dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}
    separators = dict(separators or {})
    orders = dict(orders or {})
    counted = not isinstance(frame, pd.DataFrame)
    parts = []
    for variable, column in columns.items():
        if column not in frame:
            continue
        part = (counted_frequencies if counted else frequencies)(
            frame[column], sep=separators.get(column), order=orders.get(column), decimals=decimals)
        part.insert(0, "variable", variable)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=FREQUENCY_COLUMNS)
    return pd.concat(parts, ignore_index=True)[FREQUENCY_COLUMNS]
