"""Derived patient groupings used as survival strata. Missing inputs stay missing (NaN/None)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .toxicity import worst_grade_any_term


def cycles_group(n_cycles: pd.Series, threshold: int = 4) -> pd.Series:
    """'<= 3' / '>= 4' (for the default threshold of 4 cycles)."""
    values = pd.to_numeric(n_cycles, errors="coerce")
    labels = np.where(values >= threshold, f">= {threshold}", f"<= {threshold - 1}")
    return pd.Series(labels, index=n_cycles.index, dtype="object").where(values.notna())


def median_split(values: pd.Series, *, unit: str = "", decimals: int = 2) -> pd.Series:
    """Split at the cohort median: '<= m' / '> m' (m rounded to ``decimals``, plus ``unit``).

    Values equal to the median go to the lower group. With all values equal there is one group.
    """
    numbers = pd.to_numeric(values, errors="coerce")
    median = numbers.median()
    low, high = median_split_labels(median, unit=unit, decimals=decimals)
    labels = np.where(numbers <= median, low, high)
    return pd.Series(labels, index=values.index, dtype="object").where(numbers.notna())


def median_split_labels(median: float, *, unit: str = "", decimals: int = 2) -> tuple[str, str]:
    """The labels of ``median_split``'s two groups: ('<= m', '> m')."""
    suffix = f" {unit}" if unit else ""
    m = f"{median:.{decimals}f}{suffix}"
    return f"<= {m}", f"> {m}"


ACTIVITY_SPLIT = {"unit": "GBq"}  # cumulative_activity_group's median_split options


def cumulative_activity_group(cumulative_activity_gbq: pd.Series) -> pd.Series:
    """Median split of cumulative administered activity, labelled in GBq."""
    return median_split(cumulative_activity_gbq, **ACTIVITY_SPLIT)


RESPONSE_SCHEMES: dict[str, dict[str, str]] = {
    # objective response: responders vs non-responders
    "objective_response": {"CR": "CR/PR", "PR": "CR/PR", "SD": "SD/PD", "PD": "SD/PD"},
    # disease control: controlled vs progressive
    "disease_control": {"CR": "CR/PR/SD", "PR": "CR/PR/SD", "SD": "CR/PR/SD", "PD": "PD"},
}


def best_response_group(best_response: pd.Series, scheme: str = "objective_response") -> pd.Series:
    """Group best overall response: 'CR/PR' vs 'SD/PD' (default) or 'CR/PR/SD' vs 'PD'.

    NE and missing responses are left missing.
    """
    mapping = RESPONSE_SCHEMES[scheme]
    normalised = best_response.map(lambda v: str(v).strip().upper() if pd.notna(v) else None)
    return normalised.map(mapping).astype("object")


def toxicity_grade_group(
    fct_toxicity: pd.DataFrame,
    patient_keys: pd.Series | Sequence[str],
    *,
    threshold: int = 2,
    treatment_emergent_only: bool = False,
) -> pd.Series:
    """'>= 2' / '< 2' by each patient's worst post-baseline grade over all CTCAE terms.

    Patients absent from fct_toxicity count as grade 0. Returned aligned to
    ``patient_keys`` (same index when a Series is passed).
    """
    worst = worst_grade_any_term(fct_toxicity, patient_keys, treatment_emergent_only=treatment_emergent_only)
    index = patient_keys.index if isinstance(patient_keys, pd.Series) else pd.RangeIndex(len(worst))
    return grade_threshold_group(pd.Series(worst.to_numpy(), index=index), threshold=threshold)


def grade_threshold_group(worst_grade: pd.Series, *, threshold: int = 2) -> pd.Series:
    """'>= 2' / '< 2' from each patient's worst grade over all terms (e.g.
    ``dim_patient.worst_ctcae_grade``); a missing grade (nothing graded) counts as 0."""
    worst = pd.to_numeric(worst_grade, errors="coerce").fillna(0).to_numpy()
    labels = np.where(worst >= threshold, f">= {threshold}", f"< {threshold}")
    return pd.Series(labels, index=worst_grade.index, dtype="object")
