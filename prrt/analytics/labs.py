"""Laboratory nadir after treatment: when each analyte reaches its worst value, and how far.

The per-patient nadir is computed once, in the warehouse: ``marts.fct_lab_nadir`` (dbt model
``fct_lab_nadir``), one row per patient x CTCAE-graded analyte with a post-baseline value
(a sample strictly after the first administration). There the nadir is the worst
post-baseline value — the lowest for analytes whose toxicity is a decrease (haemoglobin,
WBC, platelets, neutrophils, lymphocytes, albumin), the highest for those whose toxicity is
an increase (creatinine, AST, ALT, bilirubin), by the direction of the CTCAE criteria seed
— first reached on ``days_to_nadir``, with ``pct_change_from_baseline`` null without a
positive baseline value.

This module summarises it per analyte: medians and quartiles over patients, as R's default
``quantile(type = 7)``. The summary is one SQL aggregate (``catalog.nadir_summary_sql``, with
the other queries the analytics read; DuckDB's ``quantile_cont`` is type 7): a million
patients have ten million nadir rows, which are summarised where they are instead of being
read into Python. ``lab_nadir_table`` shapes its rows.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

DIRECTIONS = ("lowest", "highest")

LAB_NADIR_COLUMNS = ["analyte", "unit", "direction", "n_patients", "days_to_nadir_median", "days_to_nadir_q1",
                     "days_to_nadir_q3", "nadir_value_median", "nadir_value_q1", "nadir_value_q3",
                     "n_with_baseline", "baseline_value_median", "pct_change_median", "pct_change_q1",
                     "pct_change_q3"]

def _single(levels: object, what: str, analyte: str) -> object:
    levels = [] if levels is None or (np.ndim(levels) == 0 and pd.isna(levels)) else [str(v) for v in levels]
    if len(levels) > 1:
        raise ValueError(f"{analyte} has several {what}s in fct_lab_nadir: {levels}")
    return levels[0] if levels else None


def lab_nadir_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per analyte: time to nadir, nadir value and % change from baseline (median, IQR).

    ``summary``: the rows of ``catalog.nadir_summary_sql()`` (one per analyte). Each analyte must
    have one unit and a direction of ``DIRECTIONS`` (else ValueError).

    Columns: analyte, unit, direction ('lowest' / 'highest'), n_patients (patients with a
    post-baseline value), days_to_nadir_median/_q1/_q3, nadir_value_median/_q1/_q3,
    n_with_baseline (patients with a positive baseline value, i.e. a % change),
    baseline_value_median (of those), pct_change_median/_q1/_q3. Rows: 'lowest' analytes
    first, then 'highest', each alphabetically.
    """
    table = summary.assign(analyte=summary["analyte"].astype(str))
    table["unit"] = [_single(u, "unit", a) for a, u in zip(table["analyte"], table["units"], strict=True)]
    table["direction"] = [_single(d, "direction", a) for a, d in zip(table["analyte"], table["directions"],
                                                                     strict=True)]
    for analyte, direction in zip(table["analyte"], table["direction"], strict=True):
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r} for {analyte}")
    if len(table):
        order = table["direction"].map({d: i for i, d in enumerate(DIRECTIONS)}).to_numpy()
        table = table.iloc[np.lexsort((table["analyte"].to_numpy(), order))]
    quantiles = [c for c in LAB_NADIR_COLUMNS if c.endswith(("_median", "_q1", "_q3"))]
    return (table[LAB_NADIR_COLUMNS].reset_index(drop=True)
            .astype({"n_patients": "int64", "n_with_baseline": "int64", "unit": object, "direction": object,
                     **dict.fromkeys(quantiles, "float64")}))


# --- a cohort's values of one analyte, from counts -------------------------------------
# A trajectory over a large cohort is drawn as monthly quartiles. Lab values are recorded to a
# fixed precision, so an analyte has a few hundred distinct values: the warehouse counts the
# samples by (month, value, lln, uln) and the quantiles are taken from those counts here.


def counted_quantiles(values: Iterable[float], counts: Iterable[int], qs: Iterable[float]) -> list[float]:
    """Quantiles of ``values`` each repeated ``counts`` times, as pandas' ``quantile`` (numpy's
    linear interpolation between the order statistics at floor/ceil of (n - 1) q, R's type 7;
    DuckDB's ``quantile_cont`` is the same up to the last bit). No missing values; at least
    one count > 0."""
    values = np.asarray(list(values) if not hasattr(values, "__array__") else values, dtype=float)
    counts = np.asarray(list(counts) if not hasattr(counts, "__array__") else counts, dtype=np.int64)
    order = np.argsort(values, kind="stable")
    values, cumulative = values[order], np.cumsum(counts[order])
    n = int(cumulative[-1])

    def at(position: int) -> float:
        return float(values[np.searchsorted(cumulative, position, side="right")])

    out = []
    for q in qs:
        rn = (n - 1) * float(q)
        low, high = int(np.floor(rn)), int(np.ceil(rn))
        lo = at(low)
        if low == high:
            out.append(lo)
            continue
        hi, t = at(high), rn - low
        out.append(float(np.subtract(hi, (hi - lo) * (1 - t)) if t >= 0.5 else np.add(lo, (hi - lo) * t)))
    return out


def monthly_quartiles(counts: pd.DataFrame, min_samples: int = 3) -> pd.DataFrame:
    """month, q1, median, q3, n from sample counts (columns month, value, n; rows without a month or
    value ignored): the months with at least ``min_samples`` samples, in order."""
    counts = counts.dropna(subset=["month", "value"])
    counts = counts[counts["n"] > 0]
    rows = []
    for month, of_month in counts.groupby("month", sort=True):
        n = int(of_month["n"].sum())
        if n >= min_samples:
            q1, median, q3 = counted_quantiles(of_month["value"], of_month["n"], (0.25, 0.5, 0.75))
            rows.append({"month": float(month), "q1": q1, "median": median, "q3": q3, "n": n})
    return pd.DataFrame(rows, columns=["month", "q1", "median", "q3", "n"]).astype({"n": "int64"})


def value_limits(counts: pd.DataFrame) -> dict[str, float | int | None]:
    """n samples with a value, the median of their own lln and uln (missing ones ignored), and the
    1st/99th percentiles of the values (p01, p99), from sample counts (columns value, lln, uln, n)."""
    counts = counts.dropna(subset=["value"])
    counts = counts[counts["n"] > 0]
    out: dict[str, float | int | None] = {"n": int(counts["n"].sum())}
    for limit in ("lln", "uln"):
        known = counts.dropna(subset=[limit])
        out[limit] = counted_quantiles(known[limit], known["n"], (0.5,))[0] if len(known) else None
    p01, p99 = counted_quantiles(counts["value"], counts["n"], (0.01, 0.99)) if len(counts) else (None, None)
    out.update(p01=p01, p99=p99)
    return out
