"""Performance status before vs after treatment: medians and the Wilcoxon signed-rank test.

ECOG and KPS are coarse ordinal scores, so paired differences are mostly zeros and ties.
scipy's ``wilcoxon(method='exact')`` is exact only without zeros and ties (with them it
silently uses the untied null distribution, and with ``zero_method='pratt'`` it is badly
wrong), and ``method='auto'`` falls back to the normal approximation. The choice here:

* no zero differences and no ties -> scipy ``method='exact'``                ("exact")
* otherwise -> the exact *conditional* signed-rank test: zero differences dropped
  (``zero_method='wilcox'``, as R's ``wilcox.test`` and SPSS), tied |differences| given
  mid-ranks, and the p-value taken from the exact distribution of the positive-rank sum
  over all 2^n sign assignments of those ranks                            ("exact-conditional")
  This is what scipy's ``wilcoxon(..., method=PermutationMethod())`` computes by brute
  force (and R's ``coin::wilcoxsign_test(distribution='exact')``); here it is a small
  dynamic programme, so it stays instant for any cohort size up to ``exact_max_n``.
* more than ``exact_max_n`` non-zero pairs -> scipy ``method='asymptotic'``  ("asymptotic")

The normal-approximation p (scipy, zero_method='wilcox', tie-corrected variance, no
continuity correction — SPSS's convention) is always reported alongside as
``p_value_asymptotic``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

from .cohort import weighted_median

DEFAULT_PAIRS: dict[str, tuple[str, str]] = {
    "ecog": ("ecog_pre", "ecog_post"),
    "kps": ("kps_pre", "kps_post"),
}

# which direction is an improvement: ECOG 0 is fully active, KPS 100 is normal
HIGHER_IS_BETTER: dict[str, bool] = {"ecog": False, "kps": True}


@dataclass(frozen=True)
class PairedComparison:
    """Before/after summary of one paired measure. Differences are after - before."""

    n_pairs: int
    median_before: float
    median_after: float
    n_increased: int
    n_decreased: int
    n_unchanged: int
    statistic: float  # min(W+, W-) over non-zero differences (scipy's two-sided statistic)
    p_value: float
    method: str  # 'exact' | 'exact-conditional' | 'asymptotic'
    p_value_asymptotic: float
    zero_method: str = "wilcox"


def exact_conditional_signed_rank_p(differences: Iterable[float]) -> tuple[float, float]:
    """Two-sided exact conditional Wilcoxon signed-rank test: (statistic, p_value).

    Zeros are dropped; ties get mid-ranks; the null distribution of W+ is enumerated
    exactly over all sign flips (doubling ranks makes them integers).
    """
    d = np.asarray(list(differences), dtype=float)
    d = d[d != 0]
    n = d.size
    if n == 0:
        return 0.0, 1.0
    ranks = stats.rankdata(np.abs(d))
    doubled = np.rint(2 * ranks).astype(np.int64)
    w_plus = int(doubled[d > 0].sum())
    total = int(doubled.sum())
    probability = np.zeros(total + 1)
    probability[0] = 1.0
    for r in doubled:
        shifted = np.zeros_like(probability)
        shifted[r:] = probability[:-r]
        probability = 0.5 * (probability + shifted)
    p_low = probability[: w_plus + 1].sum()
    p_high = probability[w_plus:].sum()
    statistic = min(w_plus, total - w_plus) / 2
    return float(statistic), float(min(1.0, 2 * min(p_low, p_high)))


def _numbers(values: Iterable[float]) -> np.ndarray:
    """Floats, NaN for missing or non-numeric values (no Python object per value for a numeric Series)."""
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype="object")
    if not pd.api.types.is_numeric_dtype(series):
        series = pd.to_numeric(series.astype("object"), errors="coerce")
    return series.to_numpy(dtype=float, na_value=np.nan)


def _asymptotic_from_counts(d: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """(statistic, p) of scipy's ``wilcoxon(method='asymptotic', zero_method='wilcox', correction=False)``
    on the non-zero differences ``d`` each repeated ``n`` times, without repeating them: each
    distinct |d| gets its mid-rank once. Rank sums are sums of half-integers (exact in floats),
    so only the tie term may differ from scipy's, in the last bits."""
    magnitude = np.abs(d)
    order = np.argsort(magnitude, kind="stable")
    magnitude, d, n = magnitude[order], d[order], n[order].astype(np.int64)
    levels, group = np.unique(magnitude, return_inverse=True)
    ties = np.bincount(group, weights=n).astype(np.int64)  # patients per distinct |d|
    midrank = np.cumsum(ties) - (ties - 1) / 2.0
    rank = midrank[group]
    r_plus = float(np.sum(rank * n * (d > 0)))
    r_minus = float(np.sum(rank * n * (d < 0)))
    count = float(n.sum())
    mn = count * (count + 1.0) * 0.25
    se = count * (count + 1.0) * (2.0 * count + 1.0)
    t = ties.astype(float)
    se = np.sqrt((se - np.sum(t**3 - t) / 2) / 24)
    z = (r_plus - mn) / se
    return min(r_plus, r_minus), float(2 * special.ndtr(-abs(z)))


def paired_wilcoxon(
    before: Iterable[float], after: Iterable[float], *, weights: Iterable[int] | None = None, exact_max_n: int = 200
) -> PairedComparison:
    """Medians before/after and the signed-rank test on complete pairs (see module notes).

    ``weights``: patients per (before, after) row, for pair counts (e.g. a GROUP BY in the
    warehouse) instead of a row per patient: the same result; above ``exact_max_n`` non-zero
    pairs the normal approximation is computed from the counts (equal to the last bits)."""
    before, after = _numbers(before), _numbers(after)
    if before.shape != after.shape:
        raise ValueError("before and after must have the same length")
    if weights is not None:
        return _paired_wilcoxon_counts(before, after, np.asarray(list(weights) if not hasattr(weights, "__array__")
                                                                 else weights, dtype=np.int64), exact_max_n)
    frame = pd.DataFrame({"before": before, "after": after}).dropna()
    d = (frame["after"] - frame["before"]).to_numpy(float)
    nonzero = d[d != 0]
    has_ties = np.unique(np.abs(nonzero)).size < nonzero.size
    has_zeros = nonzero.size < d.size

    asymptotic = None if nonzero.size == 0 else stats.wilcoxon(nonzero, zero_method="wilcox", method="asymptotic")
    p_asym = float("nan") if asymptotic is None else float(asymptotic.pvalue)

    if nonzero.size == 0:
        statistic, p_value, method = 0.0, 1.0, "exact-conditional"
    elif not has_ties and not has_zeros:
        result = stats.wilcoxon(nonzero, method="exact")
        statistic, p_value, method = float(result.statistic), float(result.pvalue), "exact"
    elif nonzero.size <= exact_max_n:
        statistic, p_value = exact_conditional_signed_rank_p(nonzero)
        method = "exact-conditional"
    else:  # the test already run above (a large cohort's ranks are its cost)
        statistic, p_value, method = float(asymptotic.statistic), float(asymptotic.pvalue), "asymptotic"

    return PairedComparison(
        n_pairs=len(frame),
        median_before=float(frame["before"].median()) if len(frame) else float("nan"),
        median_after=float(frame["after"].median()) if len(frame) else float("nan"),
        n_increased=int((d > 0).sum()),
        n_decreased=int((d < 0).sum()),
        n_unchanged=int((d == 0).sum()),
        statistic=statistic,
        p_value=p_value,
        method=method,
        p_value_asymptotic=p_asym,
    )


PERFORMANCE_COLUMNS = ["measure", "before_column", "after_column", "better", "n_pairs", "median_before",
                       "median_after", "n_improved", "n_worsened", "n_unchanged", "statistic", "p_value",
                       "method", "p_value_asymptotic", "zero_method"]


def performance_status_change(
    dim_patient: pd.DataFrame,
    pairs: Mapping[str, tuple[str, str]] = DEFAULT_PAIRS,
    higher_is_better: Mapping[str, bool] = HIGHER_IS_BETTER,
) -> pd.DataFrame:
    """One row per measure (default ECOG and KPS) from a dim_patient-like frame.

    Columns: measure, before_column, after_column, better ('lower' / 'higher'), n_pairs
    (patients with both values), median_before, median_after, n_improved, n_worsened,
    n_unchanged (per ``higher_is_better``), statistic, p_value, method, p_value_asymptotic,
    zero_method (see ``paired_wilcoxon`` and the module notes).
    """
    rows = []
    for measure, (before_col, after_col) in pairs.items():
        result = paired_wilcoxon(dim_patient[before_col], dim_patient[after_col])
        higher = higher_is_better[measure]
        rows.append(
            {
                "measure": measure,
                "before_column": before_col,
                "after_column": after_col,
                "better": "higher" if higher else "lower",
                "n_pairs": result.n_pairs,
                "median_before": result.median_before,
                "median_after": result.median_after,
                "n_improved": result.n_increased if higher else result.n_decreased,
                "n_worsened": result.n_decreased if higher else result.n_increased,
                "n_unchanged": result.n_unchanged,
                "statistic": result.statistic,
                "p_value": result.p_value,
                "method": result.method,
                "p_value_asymptotic": result.p_value_asymptotic,
                "zero_method": result.zero_method,
            }
        )
    return pd.DataFrame(rows, columns=PERFORMANCE_COLUMNS)


def _paired_wilcoxon_counts(before: np.ndarray, after: np.ndarray, n: np.ndarray, exact_max_n: int) -> PairedComparison:
    keep = ~np.isnan(before) & ~np.isnan(after) & (n > 0)
    before, after, n = before[keep], after[keep], n[keep]
    d = after - before
    nonzero = d != 0
    magnitudes = np.abs(d[nonzero])
    has_ties = np.unique(magnitudes).size < magnitudes.size or bool((n[nonzero] > 1).any())
    if n[nonzero].sum() <= exact_max_n or not (has_ties or (~nonzero).any()):
        # few pairs, or no ties (rows of one patient each): the rows themselves are small
        return paired_wilcoxon(np.repeat(before, n), np.repeat(after, n), exact_max_n=exact_max_n)
    statistic, p_value = _asymptotic_from_counts(d[nonzero], n[nonzero])
    return PairedComparison(
        n_pairs=int(n.sum()),
        median_before=weighted_median(before, n),
        median_after=weighted_median(after, n),
        n_increased=int(n[d > 0].sum()),
        n_decreased=int(n[d < 0].sum()),
        n_unchanged=int(n[d == 0].sum()),
        statistic=statistic,
        p_value=p_value,
        method="asymptotic",
        p_value_asymptotic=p_value,
    )
