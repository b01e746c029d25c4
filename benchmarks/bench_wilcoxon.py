"""Speed of the exact conditional Wilcoxon signed-rank test (prrt.analytics.performance) on
a million pairs of ECOG / KPS scores: `.venv/bin/python benchmarks/bench_wilcoxon.py`.
Prints the method used and the seconds per call (no test times anything)."""

from __future__ import annotations

import time

import numpy as np

from prrt.analytics import paired_wilcoxon


def _pairs(rng: np.random.Generator, n: int, values: np.ndarray, p: np.ndarray, scale: int = 1):
    before = rng.choice(5, n)
    return before * scale, before * scale + rng.choice(values, n, p=p) * scale


def main() -> None:
    rng = np.random.default_rng(13)
    n = 1_000_000
    # symmetric differences (the null): moderate p-values, the costly case; an effect gives
    # p-values that Hoeffding's bound puts below float64's smallest number (instant)
    cases = {
        "ECOG, d in -1..1 (1 distinct |d|)": _pairs(rng, n, np.arange(-1, 2), np.array([.25, .5, .25])),
        "ECOG, d in -2..2 (2 distinct |d|)": _pairs(rng, n, np.arange(-2, 3), np.array([.05, .25, .4, .25, .05])),
        "ECOG, d in -3..3 (3 distinct |d|)": _pairs(rng, n, np.arange(-3, 4),
                                                    np.array([.01, .05, .24, .4, .24, .05, .01])),
        "ECOG, d in -4..4 (4 distinct |d|)": _pairs(rng, n, np.arange(-4, 5),
                                                    np.array([.002, .01, .05, .238, .4, .238, .05, .01, .002])),
        "KPS, d in -30..30 by 10 (3 distinct |d|)": _pairs(rng, n, np.arange(-3, 4),
                                                           np.array([.01, .05, .24, .4, .24, .05, .01]), 10),
        "KPS, d in -90..90 by 10 (9 distinct |d|)": (rng.choice(11, n) * 10, rng.choice(11, n) * 10),
        "ECOG, d in -3..3 with an effect": _pairs(rng, n, np.arange(-3, 4),
                                                  np.array([.01, .05, .3, .4, .18, .05, .01])),
    }
    for name, (before, after) in cases.items():
        started = time.perf_counter()
        result = paired_wilcoxon(before, after)
        seconds = time.perf_counter() - started
        # the same from pair counts (the app's GROUP BY)
        pairs, counts = np.unique(np.column_stack([before, after]), axis=0, return_counts=True)
        started = time.perf_counter()
        by_counts = paired_wilcoxon(pairs[:, 0], pairs[:, 1], weights=counts)
        counted = time.perf_counter() - started
        assert by_counts.p_value == result.p_value and by_counts.method == result.method
        print(f"{name}: {result.method}, p = {result.p_value:.6g}, {seconds:.3f} s per row, "
              f"{counted:.3f} s from {len(counts)} pair counts")


if __name__ == "__main__":
    main()
