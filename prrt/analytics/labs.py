"""Laboratory nadir after treatment: when each analyte reaches its worst value, and how far.

Input is an ``fct_lab_result``-like frame, one row per sample x analyte, with at least
patient_key, analyte, unit, value, baseline_value, is_post_baseline and
days_from_first_cycle. Only post-baseline samples (strictly after the first
administration) with a value count.

Per patient and analyte the *nadir* is the worst post-baseline value: the lowest for
analytes whose toxicity is a decrease (haemoglobin, WBC, platelets, neutrophils,
lymphocytes, albumin) and the highest — strictly a peak — for those whose toxicity is an
increase (creatinine, AST, ALT, bilirubin); ``NADIR_DIRECTION`` holds the rule. When the
worst value recurs, the first time it is reached counts. Analytes not in
``NADIR_DIRECTION`` (e.g. chromogranin A, a tumour marker) are left out.

Per-analyte summaries are medians and quartiles over patients (quartiles as R's default
``quantile(type = 7)``, pandas' linear interpolation).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

# analyte -> 'lowest' (toxicity is a decrease) or 'highest' (toxicity is an increase)
NADIR_DIRECTION: dict[str, str] = {
    "hemoglobin": "lowest",
    "wbc": "lowest",
    "platelets": "lowest",
    "neutrophils": "lowest",
    "lymphocytes": "lowest",
    "albumin": "lowest",
    "creatinine": "highest",
    "ast": "highest",
    "alt": "highest",
    "bilirubin": "highest",
}

LAB_COLUMNS = ("patient_key", "analyte", "unit", "value", "baseline_value", "is_post_baseline", "days_from_first_cycle")

PATIENT_NADIR_COLUMNS = ["patient_key", "analyte", "unit", "direction", "baseline_value", "nadir_value",
                         "days_to_nadir", "pct_change_from_baseline", "n_post_baseline_samples"]

LAB_NADIR_COLUMNS = ["analyte", "unit", "direction", "n_patients", "days_to_nadir_median", "days_to_nadir_q1",
                     "days_to_nadir_q3", "nadir_value_median", "nadir_value_q1", "nadir_value_q3",
                     "n_with_baseline", "baseline_value_median", "pct_change_median", "pct_change_q1",
                     "pct_change_q3"]


def nadir_per_patient(
    fct_lab_result: pd.DataFrame, directions: Mapping[str, str] = NADIR_DIRECTION
) -> pd.DataFrame:
    """One row per patient x analyte with a post-baseline value.

    Columns: patient_key, analyte, unit, direction, baseline_value, nadir_value,
    days_to_nadir (days from the first administration to the first sample at the nadir),
    pct_change_from_baseline (100 * (nadir - baseline) / baseline; NaN without a
    positive baseline), n_post_baseline_samples.
    """
    labs = fct_lab_result[list(LAB_COLUMNS)]
    post = labs[labs["is_post_baseline"].fillna(False).astype(bool) & labs["value"].notna()
                & labs["analyte"].isin(list(directions))].copy()
    if post.empty:
        return pd.DataFrame(columns=PATIENT_NADIR_COLUMNS)
    post["direction"] = post["analyte"].map(directions)
    unknown = set(post["direction"]) - {"lowest", "highest"}
    if unknown:
        raise ValueError(f"direction must be 'lowest' or 'highest', got {sorted(unknown)}")
    # rank key: smaller is worse, so the first row per group after sorting is the nadir
    post["_worse_first"] = np.where(post["direction"] == "lowest", post["value"], -post["value"])
    post = post.sort_values(["patient_key", "analyte", "_worse_first", "days_from_first_cycle"], kind="stable")
    counts = post.groupby(["patient_key", "analyte"]).size().rename("n_post_baseline_samples")
    nadir = post.drop_duplicates(["patient_key", "analyte"], keep="first").set_index(["patient_key", "analyte"])
    nadir = nadir.join(counts).reset_index()
    baseline = pd.to_numeric(nadir["baseline_value"], errors="coerce")
    value = nadir["value"].astype(float)
    nadir["pct_change_from_baseline"] = np.where(baseline > 0, 100.0 * (value - baseline) / baseline, np.nan)
    out = nadir.rename(columns={"value": "nadir_value", "days_from_first_cycle": "days_to_nadir"})
    out["baseline_value"] = baseline
    out["days_to_nadir"] = out["days_to_nadir"].astype(float)
    out["n_post_baseline_samples"] = out["n_post_baseline_samples"].astype("int64")
    return out[PATIENT_NADIR_COLUMNS].sort_values(["analyte", "patient_key"]).reset_index(drop=True)


def _quartiles(values: pd.Series) -> tuple[float, float, float]:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return (np.nan, np.nan, np.nan)
    q = values.quantile([0.5, 0.25, 0.75])
    return (float(q.loc[0.5]), float(q.loc[0.25]), float(q.loc[0.75]))


def lab_nadir_table(fct_lab_result: pd.DataFrame, directions: Mapping[str, str] = NADIR_DIRECTION) -> pd.DataFrame:
    """Per analyte: time to nadir, nadir value and % change from baseline (median, IQR).

    Columns: analyte, unit, direction ('lowest' / 'highest'), n_patients (patients with a
    post-baseline value), days_to_nadir_median/_q1/_q3, nadir_value_median/_q1/_q3,
    n_with_baseline (patients with a positive baseline value), baseline_value_median,
    pct_change_median/_q1/_q3. Analytes ordered as in ``directions``.
    """
    per_patient = nadir_per_patient(fct_lab_result, directions)
    rows = []
    for analyte in [a for a in directions if a in set(per_patient["analyte"])]:
        g = per_patient[per_patient["analyte"] == analyte]
        units = sorted(g["unit"].dropna().unique())
        if len(units) > 1:
            raise ValueError(f"{analyte} has several units in fct_lab_result: {units}")
        days = _quartiles(g["days_to_nadir"])
        value = _quartiles(g["nadir_value"])
        pct = _quartiles(g["pct_change_from_baseline"])
        with_baseline = g[g["pct_change_from_baseline"].notna()]
        rows.append(
            {
                "analyte": analyte,
                "unit": units[0] if units else None,
                "direction": directions[analyte],
                "n_patients": int(g["patient_key"].nunique()),
                "days_to_nadir_median": days[0], "days_to_nadir_q1": days[1], "days_to_nadir_q3": days[2],
                "nadir_value_median": value[0], "nadir_value_q1": value[1], "nadir_value_q3": value[2],
                "n_with_baseline": int(len(with_baseline)),
                "baseline_value_median": _quartiles(with_baseline["baseline_value"])[0],
                "pct_change_median": pct[0], "pct_change_q1": pct[1], "pct_change_q3": pct[2],
            }
        )
    return pd.DataFrame(rows, columns=LAB_NADIR_COLUMNS)
