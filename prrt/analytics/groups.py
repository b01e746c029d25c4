"""The one patient grouping that depends on the cohort analysed: the median split (of cumulative
activity, at the cohort's or the landmark cohort's median). The other groups (cycles, response,
toxicity grade, Ki-67) are marts.dim_patient columns, defined once in dbt. Missing inputs stay
missing (NaN/None)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .cohort import weighted_median


def median_split(values: pd.Series, *, weights: pd.Series | None = None, unit: str = "",
                 decimals: int = 2) -> pd.Series:
    """Split at the cohort median: '<= m' / '> m' (m rounded to ``decimals``, plus ``unit``).

    Values equal to the median go to the lower group. With all values equal there is one group.
    ``weights``: how many patients each row stands for (rows of counts), else one each.
    """
    numbers = pd.to_numeric(values, errors="coerce")
    present = numbers.notna().to_numpy()
    if weights is None or not present.any():
        median = numbers.median()
    else:
        median = weighted_median(numbers[present], np.asarray(weights)[present])
    low, high = median_split_labels(median, unit=unit, decimals=decimals)
    labels = np.where(numbers <= median, low, high)
    return pd.Series(labels, index=values.index, dtype="object").where(numbers.notna())


def median_split_labels(median: float, *, unit: str = "", decimals: int = 2) -> tuple[str, str]:
    """The labels of ``median_split``'s two groups: ('<= m', '> m')."""
    suffix = f" {unit}" if unit else ""
    m = f"{median:.{decimals}f}{suffix}"
    return f"<= {m}", f"> {m}"


ACTIVITY_SPLIT = {"unit": "GBq"}  # cumulative_activity_group's median_split options


def cumulative_activity_group(cumulative_activity_gbq: pd.Series, weights: pd.Series | None = None) -> pd.Series:
    """Median split of cumulative administered activity, labelled in GBq (untreated patients, with
    no activity, have no group and do not count for the median; ``weights``: as ``median_split``)."""
    return median_split(cumulative_activity_gbq, weights=weights, **ACTIVITY_SPLIT)
