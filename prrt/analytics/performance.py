"""Performance status before vs after treatment: medians and the Wilcoxon signed-rank test.

ECOG and KPS are coarse ordinal scores, so paired differences are mostly zeros and ties.
scipy's ``wilcoxon(method='exact')`` is exact only without zeros and ties (with them it
silently uses the untied null distribution, and with ``zero_method='pratt'`` it is badly
wrong), and ``method='auto'`` falls back to the normal approximation. The choice here:

* no zero differences and no ties -> scipy ``method='exact'``                ("exact")
* otherwise -> the exact *conditional* signed-rank test: zero differences dropped
  (``zero_method='wilcox'``, as R's ``wilcox.test`` and SPSS; not Pratt's, which ranks the
  zeros and drops them afterwards), tied |differences| given mid-ranks, and the p-value
  taken from the exact distribution of the positive-rank sum over all 2^n sign
  assignments of those ranks                                              ("exact-conditional")
  This is R's ``coin::wilcoxsign_test(zero.method = "Wilcoxon", distribution = "exact")``
  (tests/analytics/r/) and what scipy's ``wilcoxon(..., method=PermutationMethod())``
  estimates by resampling. It is computed from the counts of each distinct |difference|
  (``signed_rank_exact_by_counts``: the positives of each are binomial), so it is exact at
  any number of pairs: ECOG and KPS differences take a handful of values.
* only when the differences take so many distinct values, with so many pairs each, that
  the enumeration would pass ``EXACT_MAX_STATES`` partial sums (e.g. KPS in a registry of
  a million patients with differences from 10 to 90): the normal approximation
  ("asymptotic").

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


# the largest number of partial sums the exact conditional p-value enumerates (see
# ``signed_rank_exact_by_counts``); beyond it the normal approximation is reported, labelled
EXACT_MAX_STATES = 100_000_000
# the probability left out of the enumeration is bounded (Hoeffding) to below this fraction of
# the p-value: the exact p-value to ~13 significant digits, as float64 sums give it anyway
_RELATIVE_ERROR = 1e-13
_SMALLEST = 5e-324  # float64's smallest positive number: a p-value bound below it is a p-value of 0
_BLOCK = 4_000_000  # partial sums per vectorised block


def _binomial_window(c: int, half: float) -> tuple[np.ndarray, np.ndarray]:
    """The counts k of Binomial(c, 1/2) within ``half`` of c / 2 whose probability is not
    zero in float64, and their probabilities."""
    k = np.arange(max(0, int(np.floor(c / 2 - half))), min(c, int(np.ceil(c / 2 + half))) + 1)
    pmf = stats.binom.pmf(k, c, 0.5)
    keep = pmf > 0
    return k[keep], pmf[keep]


def signed_rank_exact_by_counts(magnitudes: Iterable[float], positives: Iterable[int], totals: Iterable[int], *,
                                max_states: int = EXACT_MAX_STATES) -> tuple[float, float] | None:
    """Two-sided exact conditional Wilcoxon signed-rank test from counts: (statistic, p_value),
    or None when its enumeration would exceed ``max_states`` partial sums.

    ``magnitudes``: the distinct non-zero |differences|; ``totals``: how many pairs have each,
    ``positives``: how many of those are positive. Zeros are not passed (dropped beforehand,
    zero_method 'wilcox'). Tied |differences| share their mid-rank r_j; with doubled ranks
    R_j = 2 r_j (integers) the statistic is T = 2 W+ = sum_j R_j K_j, where under the null of
    symmetric differences, conditionally on the |differences|, the numbers of positive signs
    K_j are independent Binomial(c_j, 1/2) (c_j pairs with the j-th |difference|). The
    p-value is 2 min(P(T <= t), P(T >= t)), capped at 1 (T is symmetric about its mean, so
    this is P(|T - E T| >= |t - E T|)).

    It is summed over that distribution: the partial sums of every group but the largest are
    enumerated one group at a time (equal sums merged), and the largest group enters through
    its binomial distribution function, evaluated exactly. The enumeration keeps, of each
    group, the counts within h_j of c_j / 2, where Hoeffding's bound
    P(|K_j - c_j/2| >= h_j) <= 2 exp(-2 h_j^2 / c_j) puts the probability left out below
    ``_RELATIVE_ERROR`` times the p-value found (the windows are widened until it is, up to
    every count whose probability is not zero in float64); a p-value that Hoeffding's bound
    for T itself, 2 exp(-2 (t - E T)^2 / sum_j c_j R_j^2), puts below float64's smallest
    number is 0. The cost is the number of partial sums, about the product of the windows
    (~10 sqrt(c_j) counts each for a p-value near 0.05) of all groups but the largest: one or
    two distinct |differences| are instant at any n, three take about a second at a million
    pairs.
    """
    magnitudes = np.asarray(list(magnitudes) if not hasattr(magnitudes, "__array__") else magnitudes, float)
    positives = np.asarray(list(positives) if not hasattr(positives, "__array__") else positives, np.int64)
    totals = np.asarray(list(totals) if not hasattr(totals, "__array__") else totals, np.int64)
    keep = totals > 0
    magnitudes, positives, totals = magnitudes[keep], positives[keep], totals[keep]
    order = np.argsort(magnitudes, kind="stable")
    magnitudes, positives, totals = magnitudes[order], positives[order], totals[order]
    if totals.size == 0:
        return 0.0, 1.0
    if np.unique(magnitudes).size != magnitudes.size:
        raise ValueError("magnitudes must be distinct")
    if ((positives < 0) | (positives > totals)).any():
        raise ValueError("positives must be between 0 and totals")
    before = np.cumsum(totals) - totals
    doubled = 2 * before + totals + 1  # 2 x mid-rank of each group (an integer)
    t = int(doubled @ positives)
    total = int(doubled @ totals)  # 2 x n (n + 1) / 2; E T = total / 2
    statistic = float(min(t, total - t) / 2)
    spread = float((totals * doubled.astype(float) ** 2).sum())
    if 2 * np.exp(-2 * (t - total / 2) ** 2 / spread) < _SMALLEST:
        return statistic, 0.0
    last = int(np.argmax(totals))
    rest = [j for j in range(totals.size) if j != last]
    r, c = int(doubled[last]), int(totals[last])
    k_last, _ = _binomial_window(c, np.sqrt(-np.log(_SMALLEST) * c / 2) + 2)  # the rest is 0 in float64
    cdf_last = stats.binom.cdf(k_last, c, 0.5)  # P(K <= k), exact
    sf_last = stats.binom.sf(k_last - 1, c, 0.5)  # P(K >= k)

    def tails(left_out: float) -> tuple[float, float] | None:
        """(P(T <= t), P(T >= t)) with at most ``left_out`` probability left out of each."""
        half = np.sqrt(np.log(2 * max(len(rest), 1) / left_out) * totals / 2) if left_out > 0 else totals + 0.0
        windows = [_binomial_window(int(totals[j]), float(half[j])) for j in rest]
        states, low, high = 1.0, 0, 0
        for j, (k, _) in zip(rest, windows, strict=True):
            low, high = low + doubled[j] * k[0], high + doubled[j] * k[-1]
            states = min(states * k.size, high - low + 1.0)
        if states > max_states:
            return None
        values, weight = np.zeros(1, np.int64), np.ones(1)
        for j, (k, pmf) in zip(rest[:-1], windows[:-1], strict=True):
            values = (values[:, None] + doubled[j] * k[None, :]).ravel()
            weight = (weight[:, None] * pmf[None, :]).ravel()
            values, where = np.unique(values, return_inverse=True)  # equal partial sums: one state
            weight = np.bincount(where.ravel(), weights=weight, minlength=values.size)
        if rest:
            k, pmf = windows[-1]
            step = doubled[rest[-1]]
        else:
            k, pmf, step = np.zeros(1, np.int64), np.ones(1), 0
        p_low = p_high = 0.0
        block = max(1, _BLOCK // values.size)
        for i in range(0, k.size, block):
            s = (values[:, None] + step * k[None, i:i + block]).ravel()
            w = (weight[:, None] * pmf[None, i:i + block]).ravel()
            # T <= t  <=>  K_last <= floor((t - s) / r);  T >= t  <=>  K_last >= ceil((t - s) / r)
            below = np.floor_divide(t - s, r) - k_last[0]
            p_low += w @ np.where(below < 0, 0.0, cdf_last[np.clip(below, 0, k_last.size - 1)])
            above = -np.floor_divide(s - t, r) - k_last[0]
            p_high += w @ np.where(above >= k_last.size, 0.0, sf_last[np.clip(above, 0, k_last.size - 1)])
        return float(p_low), float(p_high)

    left_out = 1e-20
    while True:
        found = tails(left_out)
        if found is None:
            return None
        p = min(1.0, 2 * min(found))
        if left_out == 0 or 2 * left_out <= _RELATIVE_ERROR * p:
            return statistic, p
        left_out = _RELATIVE_ERROR * p / 4 if p > 0 else left_out * 1e-40
        if left_out < 1e-300:
            left_out = 0.0  # every count whose probability is not zero in float64


def exact_conditional_signed_rank_p(differences: Iterable[float]) -> tuple[float, float]:
    """Two-sided exact conditional Wilcoxon signed-rank test of paired differences:
    (statistic, p_value). Zeros are dropped; ties get mid-ranks (``signed_rank_exact_by_counts``
    on the distinct |differences|; raises when its enumeration is too large)."""
    d = np.asarray(list(differences), dtype=float)
    d = d[d != 0]
    result = signed_rank_exact_by_counts(*_sign_counts(d, np.ones(d.size, np.int64)), max_states=2**62)
    assert result is not None
    return result


def _sign_counts(d: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct |d|, positives, totals) of non-zero differences ``d`` with ``n`` pairs each."""
    levels, group = np.unique(np.abs(d), return_inverse=True)
    totals = np.bincount(group, weights=n, minlength=levels.size).astype(np.int64)
    positives = np.bincount(group, weights=n * (d > 0), minlength=levels.size).astype(np.int64)
    return levels, positives, totals


def _numbers(values: Iterable[float]) -> np.ndarray:
    """Floats, NaN for missing or non-numeric values (no Python object per value for a numeric Series)."""
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.number):
        return values.astype(float)
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
    before: Iterable[float], after: Iterable[float], *, weights: Iterable[int] | None = None,
    exact_max_states: int = EXACT_MAX_STATES,
) -> PairedComparison:
    """Medians before/after and the signed-rank test on complete pairs (see module notes).

    ``weights``: patients per (before, after) row, for pair counts (e.g. a GROUP BY in the
    warehouse) instead of a row per patient: the same result. The test is computed from the
    counts of each distinct difference either way."""
    before, after = _numbers(before), _numbers(after)
    if before.shape != after.shape:
        raise ValueError("before and after must have the same length")
    if weights is None:
        n = np.ones(before.size, np.int64)
    else:
        n = np.asarray(list(weights) if not hasattr(weights, "__array__") else weights, dtype=np.int64)
    keep = ~np.isnan(before) & ~np.isnan(after) & (n > 0)
    before, after, n = before[keep], after[keep], n[keep]
    d = after - before
    nonzero = d != 0
    magnitudes, positives, totals = _sign_counts(d[nonzero], n[nonzero])
    has_ties = bool((totals > 1).any())
    has_zeros = bool(n[~nonzero].sum() > 0)

    if totals.size == 0:
        statistic, p_value, method, p_asym = 0.0, 1.0, "exact-conditional", float("nan")
    else:
        _, p_asym = _asymptotic_from_counts(d[nonzero], n[nonzero])
        if not has_ties and not has_zeros:  # at most one pair per distinct |d|: the rows themselves
            result = stats.wilcoxon(np.repeat(d[nonzero], n[nonzero]), method="exact")
            statistic, p_value, method = float(result.statistic), float(result.pvalue), "exact"
        else:
            exact = signed_rank_exact_by_counts(magnitudes, positives, totals, max_states=exact_max_states)
            if exact is not None:
                (statistic, p_value), method = exact, "exact-conditional"
            else:  # too many distinct |differences| with many pairs each to enumerate
                statistic, p_value = _asymptotic_from_counts(d[nonzero], n[nonzero])
                method = "asymptotic"

    total = int(n.sum())
    return PairedComparison(
        n_pairs=total,
        median_before=weighted_median(before, n) if total else float("nan"),
        median_after=weighted_median(after, n) if total else float("nan"),
        n_increased=int(n[d > 0].sum()),
        n_decreased=int(n[d < 0].sum()),
        n_unchanged=int(n[d == 0].sum()),
        statistic=float(statistic),
        p_value=float(p_value),
        method=method,
        p_value_asymptotic=float(p_asym),
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
