"""Rows collapsed to their distinct values, with how many rows each stands for.

A million patients have a few thousand distinct survival times, so Kaplan-Meier, log-rank
(``tables``) and the Cox likelihood (``cox``) run on the distinct (stratum, time, event) or
(time, event, covariates) rows with their counts as weights: the same estimates as on one
row per patient. This is the one place that finds those rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def distinct_rows(columns: Sequence[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    """For columns of integer codes (each ``(codes, levels)``, codes in 0 .. levels-1, all of
    one length): the index of one row holding each distinct combination, in lexicographic
    order of the columns, and how many rows hold it (int64).

    The codes are combined into one integer key (renumbered when it would overflow), then
    counted with a table when the combinations fit one, else sorted."""
    key = np.zeros(len(columns[0][0]), np.int64)
    size = 1
    for codes, levels in columns:
        if size * levels >= 2**62:  # renumber the combinations seen so far (order kept)
            key, seen = pd.factorize(key, sort=True)
            size = len(seen)
        key, size = key * levels + codes, size * levels
    if size <= max(4 * key.size, 1 << 20):  # the combinations fit a table: count them
        count = np.bincount(key, minlength=size)
        present = count > 0
        codes = (np.cumsum(present) - 1)[key]
        count = count[present]
    else:
        codes, keys = pd.factorize(key, sort=True)
        count = np.bincount(codes, minlength=len(keys))
    row = np.empty(count.size, np.int64)
    row[codes] = np.arange(codes.size)  # any row of each combination: they are alike
    return row, count.astype(np.int64, copy=False)
