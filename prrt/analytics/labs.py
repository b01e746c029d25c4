"""Laboratory nadir after treatment: when each analyte reaches its worst value, and how far.

The per-patient nadir is computed once, in the warehouse: ``marts.fct_lab_nadir`` (dbt model
``fct_lab_nadir``), one row per patient x CTCAE-graded analyte with a post-baseline value
(a sample strictly after the first administration). There the nadir is the worst
post-baseline value — the lowest for analytes whose toxicity is a decrease (haemoglobin,
WBC, platelets, neutrophils, lymphocytes, albumin), the highest for those whose toxicity is
an increase (creatinine, AST, ALT, bilirubin), by the direction of the CTCAE criteria seed
— first reached on ``days_to_nadir``, with ``pct_change_from_baseline`` null without a
positive baseline value.

This module summarises it per analyte: medians and quartiles over patients (quartiles as
R's default ``quantile(type = 7)``, pandas' linear interpolation).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

# the columns of marts.fct_lab_nadir the summary reads (one row per patient x analyte)
NADIR_COLUMNS = ("analyte", "unit", "direction", "baseline_value", "nadir_value", "days_to_nadir",
                 "pct_change_from_baseline")

DIRECTIONS = ("lowest", "highest")

LAB_NADIR_COLUMNS = ["analyte", "unit", "direction", "n_patients", "days_to_nadir_median", "days_to_nadir_q1",
                     "days_to_nadir_q3", "nadir_value_median", "nadir_value_q1", "nadir_value_q3",
                     "n_with_baseline", "baseline_value_median", "pct_change_median", "pct_change_q1",
                     "pct_change_q3"]


def _quartiles(values: pd.Series) -> tuple[float, float, float]:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return (np.nan, np.nan, np.nan)
    q = values.quantile([0.5, 0.25, 0.75])
    return (float(q.loc[0.5]), float(q.loc[0.25]), float(q.loc[0.75]))


def _single(values: pd.Series, what: str, analyte: str) -> object:
    levels = sorted(str(v) for v in values.dropna().unique())
    if len(levels) > 1:
        raise ValueError(f"{analyte} has several {what}s in fct_lab_nadir: {levels}")
    return levels[0] if levels else None


def _summary(analyte: str, g: pd.DataFrame) -> dict[str, object]:
    direction = _single(g["direction"], "direction", analyte)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r} for {analyte}")
    days = _quartiles(g["days_to_nadir"])
    value = _quartiles(g["nadir_value"])
    pct = _quartiles(g["pct_change_from_baseline"])
    with_baseline = g["pct_change_from_baseline"].notna()
    return {
        "analyte": analyte,
        "unit": _single(g["unit"], "unit", analyte),
        "direction": direction,
        "n_patients": len(g),
        "days_to_nadir_median": days[0], "days_to_nadir_q1": days[1], "days_to_nadir_q3": days[2],
        "nadir_value_median": value[0], "nadir_value_q1": value[1], "nadir_value_q3": value[2],
        "n_with_baseline": int(with_baseline.sum()),
        "baseline_value_median": _quartiles(g.loc[with_baseline, "baseline_value"])[0],
        "pct_change_median": pct[0], "pct_change_q1": pct[1], "pct_change_q3": pct[2],
    }


def lab_nadir_table(fct_lab_nadir: pd.DataFrame | Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Per analyte: time to nadir, nadir value and % change from baseline (median, IQR).

    ``fct_lab_nadir``: rows of ``marts.fct_lab_nadir`` (at least ``NADIR_COLUMNS``), one
    per patient x analyte, so the rows of an analyte are its patients. One frame, or
    several with each analyte's rows all in one of them (the asset reads the mart analyte
    by analyte: a million patients have ten million rows).

    Columns: analyte, unit, direction ('lowest' / 'highest'), n_patients (patients with a
    post-baseline value), days_to_nadir_median/_q1/_q3, nadir_value_median/_q1/_q3,
    n_with_baseline (patients with a positive baseline value, i.e. a % change),
    baseline_value_median (of those), pct_change_median/_q1/_q3. Rows: 'lowest' analytes
    first, then 'highest', each alphabetically.
    """
    frames = [fct_lab_nadir] if isinstance(fct_lab_nadir, pd.DataFrame) else fct_lab_nadir
    rows: dict[str, dict[str, object]] = {}
    for frame in frames:
        for analyte, g in frame[list(NADIR_COLUMNS)].groupby("analyte", sort=True, observed=True):
            analyte = str(analyte)
            if analyte in rows:
                raise ValueError(f"the rows of {analyte} are split over several frames")
            rows[analyte] = _summary(analyte, g)
    table = pd.DataFrame(list(rows.values()), columns=LAB_NADIR_COLUMNS)
    if len(table):
        order = table["direction"].map({d: i for i, d in enumerate(DIRECTIONS)}).to_numpy()
        table = table.iloc[np.lexsort((table["analyte"].to_numpy(), order))]
    return table.reset_index(drop=True).astype({"n_patients": "int64", "n_with_baseline": "int64"})


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
