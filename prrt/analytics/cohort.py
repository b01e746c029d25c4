"""Cohort description (the paper's Table 1 summary line): medians, ranges and counts.

Every figure here depends on one column at a time, so it can be computed from the column's
value counts (value -> patients) as well as from the rows: on a large registry the counts
come from a GROUP BY in the warehouse (``summarise_counts``) instead of a row per patient.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

# columns summarised over every patient / over the treated patients (dim_patient.is_treated) only
PATIENT_COLUMNS: tuple[str, ...] = ("sex", "age_at_first_cycle", "ecog_pre", "ecog_post", "kps_pre", "kps_post",
                                    "best_overall_response", "os_event")
TREATED_COLUMNS: tuple[str, ...] = ("n_cycles", "cumulative_activity_gbq")


def weighted_median(values: pd.Series | np.ndarray, counts: pd.Series | np.ndarray) -> float:
    """pandas' median of ``values`` each repeated ``counts`` times (no missing values), without
    repeating them: the middle value, or the mean of the two middle values."""
    values = np.asarray(values, dtype=float)
    counts = np.asarray(counts, dtype=np.int64)
    order = np.argsort(values, kind="stable")
    values, cumulative = values[order], np.cumsum(counts[order])
    total = int(cumulative[-1])
    lower = values[np.searchsorted(cumulative, (total - 1) // 2, side="right")]
    upper = values[np.searchsorted(cumulative, total // 2, side="right")]
    return float(lower) if total % 2 else float(np.mean([lower, upper]))


def _present(counts: pd.Series) -> pd.Series:
    """value -> count without missing values and empty groups."""
    counts = counts[counts.index.notna()]
    return counts[counts > 0]


@dataclass(frozen=True)
class MedianRange:
    median: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, values: pd.Series) -> MedianRange | None:
        return cls.of_counts(values.value_counts())

    @classmethod
    def of_counts(cls, counts: pd.Series) -> MedianRange | None:
        """From value counts (value -> patients; missing values ignored)."""
        counts = _present(counts)
        if counts.empty:
            return None
        values = counts.index.to_numpy(dtype=float)
        return cls(weighted_median(values, counts.to_numpy()), float(values.min()), float(values.max()))

    def __str__(self) -> str:
        return f"{self.median:g} ({self.minimum:g}-{self.maximum:g})"


@dataclass(frozen=True)
class CohortSummary:
    n_patients: int
    sex_counts: dict[str, int]
    age: MedianRange | None
    cycles: MedianRange | None
    cumulative_activity_gbq: MedianRange | None
    ecog_pre: float | None
    ecog_post: float | None
    kps_pre: float | None
    kps_post: float | None
    best_response_counts: dict[str, int]
    deaths: int


def _median(counts: pd.Series) -> float | None:
    counts = _present(counts)
    return None if counts.empty else weighted_median(counts.index.to_numpy(dtype=float), counts.to_numpy())


def summarise_cohort(patients: pd.DataFrame) -> CohortSummary:
    """``patients``: rows of ``marts.dim_patient`` (one per patient)."""
    treated = patients[patients["is_treated"].fillna(False).astype(bool)]
    return summarise_counts(
        len(patients),
        {column: patients[column].value_counts() for column in PATIENT_COLUMNS},
        {column: treated[column].value_counts() for column in TREATED_COLUMNS},
    )


def summarise_counts(
    n_patients: int, counts: Mapping[str, pd.Series], treated: Mapping[str, pd.Series]
) -> CohortSummary:
    """``summarise_cohort`` from value counts: ``counts[column]`` (value -> patients) for each of
    ``PATIENT_COLUMNS`` over the cohort, ``treated[column]`` for ``TREATED_COLUMNS`` over its
    treated patients (``is_treated``). Missing values may be in the counts (they are ignored)."""
    sex = _present(counts["sex"]).sort_index()
    response = _present(counts["best_overall_response"]).sort_values(ascending=False, kind="stable")
    events = _present(counts["os_event"])
    return CohortSummary(
        n_patients=n_patients,
        sex_counts={k: int(v) for k, v in sex.items()},
        age=MedianRange.of_counts(counts["age_at_first_cycle"]),
        cycles=MedianRange.of_counts(treated["n_cycles"]),
        cumulative_activity_gbq=MedianRange.of_counts(treated["cumulative_activity_gbq"]),
        ecog_pre=_median(counts["ecog_pre"]),
        ecog_post=_median(counts["ecog_post"]),
        kps_pre=_median(counts["kps_pre"]),
        kps_post=_median(counts["kps_post"]),
        best_response_counts={k: int(v) for k, v in response.items()},
        deaths=int(round(float((events.index.to_numpy(dtype=float) * events.to_numpy()).sum()))),
    )
