"""distinct_rows: the distinct combinations of code columns, in order, with their counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prrt.analytics.distinct import distinct_rows


def _expected(columns):
    frame = pd.DataFrame({f"c{i}": codes for i, (codes, _) in enumerate(columns)})
    return frame.value_counts(sort=False).sort_index()


@pytest.mark.parametrize("levels", [(3, 50, 2), (1000, 1000, 1000), (1000,) * 6 + (1_000_000,)],
                         ids=["counted in a table", "sorted", "key renumbered, then sorted"])
def test_distinct_combinations_in_order_with_counts(levels):
    rng = np.random.default_rng(7)
    n = 20_000
    # few distinct values per column, so combinations repeat even when the key space is huge
    columns = [(rng.choice(rng.choice(size, min(size, 4), replace=False), n), size) for size in levels]
    row, count = distinct_rows(columns)
    expected = _expected(columns)
    combos = list(zip(*(codes[row] for codes, _ in columns)))
    assert combos == list(expected.index)  # lexicographic order of the columns
    assert count.dtype == np.int64 and count.tolist() == expected.tolist()
    assert count.sum() == n


def test_no_rows():
    row, count = distinct_rows([(np.zeros(0, np.int64), 3), (np.zeros(0, np.int64), 2)])
    assert row.size == 0 and count.size == 0
