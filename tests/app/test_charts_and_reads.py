"""charts.py renders real images; the pages' aggregated reads (filters applied in the warehouse,
grouped counts) agree with pandas on the same rows; the pages survive missing values and take
their large-cohort paths without error."""

from __future__ import annotations

import datetime as dt
import pickle
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
import streamlit as st

from prrt.analytics.tables import landmark_frame
from prrt.analytics.cohort import summarise_cohort
from prrt.analytics.frequency import frequency_table
from prrt.analytics.labs import monthly_quartiles, value_limits
from streamlit_app import charts, data, filters
from streamlit_app.views import cohort as cohort_page
from streamlit_app.views import performance_status as performance_page
from streamlit_app.views import response as response_page
from streamlit_app.views import survival as survival_page
from streamlit_app.views import toxicity as toxicity_page

from .conftest import OUTCOME_PAGES, dataframe_with, metrics, open_page, sidebar_count

# --- charts ----------------------------------------------------------------------------


def test_a_page_chart_renders_to_png_and_svg(warehouse):
    page = survival_page.load(survival_page.survival_counts(None, survival_page.STRATA_CHOICES["Sex"]), "sex")
    chart = charts.km_plot(page.curves, page.medians[["stratum", "median"]], page.at_risk)
    png = charts.to_png(chart)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width > 1000 and height > 600  # scale 2 of a ~720 x 400 chart
    svg = charts.to_svg(chart)
    assert svg.lstrip().startswith("<svg") and "Number at risk" in svg and "Female" in svg


def test_big_charts_export_beyond_altairs_row_limit():
    frame = pd.DataFrame({"patient": [f"p{i}" for i in range(6000)], "best_pct_change": np.linspace(50, -100, 6000),
                          "best_overall_response": "PR"})
    assert charts.to_png(charts.waterfall(frame))[:4] == b"\x89PNG"


def test_ctcae_bands_follow_the_seed(warehouse):
    """CTCAE v4.03 thresholds for stated limits, worked out by hand from the criteria."""
    anemia = data.ctcae_thresholds("hemoglobin", 12.0, 16.0)
    assert anemia.set_index("grade")["threshold"].to_dict() == {1: 12.0, 2: 10.0, 3: 8.0}  # <LLN, <10, <8 g/dL
    bands = charts.ctcae_bands(anemia, 5.0, 15.0).set_index("grade")
    assert bands.to_dict("index") == {1: {"lower": 10.0, "upper": 12.0}, 2: {"lower": 8.0, "upper": 10.0},
                                      3: {"lower": 5.0, "upper": 8.0}}
    # creatinine: the higher of the ULN- and baseline-based grades -> each grade starts at the lower threshold
    creatinine = data.ctcae_thresholds("creatinine", 45, 90, 70)
    assert creatinine.set_index("grade")["threshold"].to_dict() == {1: 70.0, 2: 105.0, 3: 210.0, 4: 540.0}
    assert charts.ctcae_bands(creatinine, 50, 300)["grade"].tolist() == [1, 2, 3]
    # no baseline (NaN from pandas, or None): the ULN branch alone; no ULN either: nothing to draw
    assert data.ctcae_thresholds("creatinine", 45, 90, float("nan"))["threshold"].tolist() == [90, 135, 270, 540]
    assert data.ctcae_thresholds("creatinine", None, None).empty
    assert data.ctcae_thresholds("chromogranin_a", 0, 100).empty  # not CTCAE-graded


def _band_grade(bands: pd.DataFrame, direction: str, value: float) -> int:
    """The grade whose band holds ``value``, 0 when none: a low band is [lower, upper) (grade g
    below its threshold), a high band (lower, upper]."""
    for band in bands.itertuples():
        inside = band.lower <= value < band.upper if direction == "low" else band.lower < value <= band.upper
        if inside:
            return int(band.grade)
    return 0


def test_every_sample_lies_in_the_band_of_the_grade_dbt_gave_it(monkeypatch, synthetic_warehouse):
    """The lab plots' bands and dbt's grades are one rule: each graded sample of 400 synthetic
    patients, drawn against its own limits (as the patient chart draws it), lies in the band of
    its fct_lab_result.ctcae_grade, and a grade 0 in none."""
    monkeypatch.setenv("PRRT_WAREHOUSE", str(synthetic_warehouse))
    st.cache_data.clear()
    with duckdb.connect(str(synthetic_warehouse), read_only=True) as con:
        samples = con.execute("SELECT analyte, value, lln, uln, baseline_value, ctcae_grade FROM marts.fct_lab_result"
                              " WHERE ctcae_grade IS NOT NULL").df()
    lowest, highest = float(samples["value"].min()) - 1, float(samples["value"].max()) + 1
    drawn = []
    for (analyte, lln, uln, baseline), group in samples.groupby(
            ["analyte", "lln", "uln", "baseline_value"], dropna=False, sort=False):
        thresholds = data.ctcae_thresholds(analyte, lln, uln, baseline)
        bands = charts.ctcae_bands(thresholds, lowest, highest)
        direction = thresholds["direction"].iloc[0]
        drawn += [_band_grade(bands, direction, round(v, 6)) for v in group["value"]]
        samples.loc[group.index, "drawn"] = drawn[-len(group):]
    st.cache_data.clear()
    wrong = samples[samples["drawn"] != samples["ctcae_grade"]]
    assert wrong.empty, wrong.head(10).to_string()
    assert {1, 2, 3} <= set(samples["ctcae_grade"]) and (samples["ctcae_grade"] == 3).sum() >= 5


def test_waterfall_thinning_keeps_the_ends():
    frame = pd.DataFrame({"x": range(10_000)})
    thinned = charts.thin_sorted(frame, 2_000)
    assert len(thinned) == 2_000 and thinned["x"].iloc[0] == 0 and thinned["x"].iloc[-1] == 9_999


# --- reads -----------------------------------------------------------------------------


def _of(rows: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    return filters.restrict(rows, patients)


def _select(dim_patient: pd.DataFrame, selection: filters.Filters) -> pd.DataFrame:
    """The filters' meaning, in pandas: the oracle of data._patients_where."""
    keep = pd.Series(True, index=dim_patient.index)
    for name, column in filters.CATEGORICAL.items():
        if getattr(selection, name):
            keep &= dim_patient[column].isin(list(getattr(selection, name)))
    if selection.period:
        start, end = (pd.Timestamp(d) for d in selection.period)
        keep &= pd.to_datetime(dim_patient[filters.PERIOD_COLUMN]).between(start, end)  # NaT: outside
    return dim_patient[keep]


def _cohort(selection: filters.Filters) -> filters.Cohort:
    return filters.Cohort(data.patient_count(selection), data.patient_count(), selection)


SELECTIONS = [
    filters.Filters(),
    filters.Filters(sex=("F",)),
    filters.Filters(primary_site=("pancreas", "gi"), baseline_imaging=("tc99m_octreotide",)),
    filters.Filters(period=(dt.date(2018, 1, 1), dt.date(2019, 3, 9))),
]


@pytest.mark.parametrize("selection", SELECTIONS)
def test_the_filters_select_in_the_warehouse_what_they_mean(warehouse, selection):
    expected = _select(data.dim_patient(), selection)
    got = data.patients(selection)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)
    assert data.patient_count(selection) == len(expected)
    assert data.patient_count(selection, treated=True) == int(expected["is_treated"].sum())
    narrow = data.patients(selection, ("patient_key", "sex"), limit=3)
    pd.testing.assert_frame_equal(narrow, expected[["patient_key", "sex"]].head(3).reset_index(drop=True),
                                  check_dtype=False)
    options = data.patient_filter_options().iloc[0]
    assert sorted(options["sex"]) == ["F", "M"] and options["n_patients"] == 16


@pytest.mark.parametrize("selection", SELECTIONS)
def test_sql_cohort_reads_match_pandas_on_the_filtered_rows(warehouse, demo_db, selection):
    patients = _select(data.dim_patient(), selection)
    labs = demo_db.execute("SELECT * FROM marts.fct_lab_result WHERE analyte = 'hemoglobin'").df()
    labs = _of(labs, patients).dropna(subset=["value"])
    dated = labs.dropna(subset=["days_from_first_cycle"])
    month = (dated["days_from_first_cycle"] / 30.4375).round()
    expected = dated.assign(month=month).groupby("month")["value"].agg(
        q1=lambda v: v.quantile(0.25), median="median", q3=lambda v: v.quantile(0.75), n="size")
    expected = expected[expected["n"] >= 3].reset_index()
    counts = data.lab_value_counts("hemoglobin", selection)
    pd.testing.assert_frame_equal(monthly_quartiles(counts), expected, check_dtype=False, check_exact=True)

    limits = value_limits(counts)
    assert limits["n"] == len(labs) and limits["uln"] == labs["uln"].median() and limits["lln"] == labs["lln"].median()
    assert [limits["p01"], limits["p99"]] == [labs["value"].quantile(0.01), labs["value"].quantile(0.99)]

    cycles = _of(demo_db.execute("SELECT * FROM marts.fct_treatment_cycle").df(), patients)
    median_days = data.median_cycle_days(selection)
    assert median_days["patients"].tolist() == cycles.groupby("cycle_number").size().tolist()
    medians = cycles.groupby("cycle_number")["days_from_first_cycle"].median()
    assert median_days["median_day"].tolist() == medians.tolist()


@pytest.mark.parametrize("selection", SELECTIONS)
def test_pages_from_counts_equal_the_same_analytics_on_the_rows(warehouse, demo_db, selection):
    """Each page's figures, computed from counts grouped in the warehouse, equal the analytics
    run on the selected patients' rows (as the pages did before)."""
    from prrt.analytics import kaplan_meier, paired_wilcoxon, response_rates

    patients = _select(data.dim_patient(), selection)
    cohort = _cohort(selection)
    page = cohort_page.load(cohort)
    assert page.summary == summarise_cohort(patients)
    km = kaplan_meier(*(patients[["os_months", "os_event"]].dropna().to_numpy().T))
    assert page.os_median == km.median("log-log")
    pfs = _of(demo_db.execute("SELECT * FROM marts.fct_time_to_event WHERE endpoint = 'PFS'").df(), patients)
    assert page.pfs_median == (kaplan_meier(pfs["months"], pfs["event"]).median("log-log") if len(pfs) else None)
    by_rows = frequency_table(patients, cohort_page.COUNTED, separators={"metastatic_sites": ","},
                              orders={"best_overall_response": ["CR", "PR", "SD", "PD"], "sex": ["F", "M"]})
    ours = page.counts.drop(columns="level").sort_values(["variable", "n", "pct"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, by_rows.drop(columns="level").sort_values(["variable", "n", "pct"])
                                  .reset_index(drop=True))
    assert page.table_1["Patient key"].tolist() == patients["patient_key"].tolist()

    rates = response_page.load(cohort).rates
    for label, column in response_page.DEFINITIONS.items():
        assert rates[label] == response_rates(patients[column])

    results = performance_page.load(cohort)
    for m in performance_page.MEASURES:
        theirs = paired_wilcoxon(patients[m.before], patients[m.after])
        assert results[m.name].__dict__.keys() == theirs.__dict__.keys()
        for field, value in theirs.__dict__.items():
            mine = results[m.name].__dict__[field]
            assert mine == value or (pd.isna(mine) and pd.isna(value)), (m.name, field)

    rows_of = survival_page.cox_input(selection, "OS")  # a row per patient with OS
    for stratum in survival_page.STRATA_CHOICES.values():
        column = stratum and stratum.variable
        grouped = survival_page.load(survival_page.survival_counts(selection, stratum), column)
        if stratum is None:
            per_patient = rows_of
        elif stratum.landmark_column is None:
            per_patient = rows_of.assign(**{column: rows_of[stratum.column]})
        else:  # the landmark cohort of the patient rows, the activity split at its own median
            per_patient = landmark_frame(rows_of, "months", "event", 6.0, [stratum.landmark_column])
            per_patient = per_patient.rename(columns={stratum.landmark_column: column})
        rows = survival_page.load(per_patient, column)
        pd.testing.assert_frame_equal(grouped.curves, rows.curves, check_exact=True)
        pd.testing.assert_frame_equal(grouped.medians, rows.medians, check_exact=True)
        pd.testing.assert_frame_equal(grouped.at_risk, rows.at_risk, check_exact=True)
        assert grouped.n_excluded == rows.n_excluded
        if rows.logrank is None:
            assert grouped.logrank is None
        else:  # the same sums in another order: equal to the last few bits
            assert grouped.logrank.p_value == pytest.approx(rows.logrank.p_value, rel=1e-9, nan_ok=True)
            assert grouped.logrank.n == rows.logrank.n and grouped.logrank.events == rows.logrank.events


def test_the_waterfall_is_read_sorted_and_thinned_in_the_warehouse(warehouse):
    full = data.waterfall()
    assert list(full.columns) == ["patient_key", "best_pct_change", "best_overall_response", "n_patients"]
    expected = full.sort_values(["best_pct_change", "patient_key"], ascending=[False, True], kind="stable")
    pd.testing.assert_frame_equal(full, expected.reset_index(drop=True))
    assert (full["n_patients"] == 16).all() and len(full) == 16
    for bars in (2, 5, 15, 16, 100):
        pd.testing.assert_frame_equal(data.waterfall(None, bars), charts.thin_sorted(full, bars).reset_index(drop=True))
    men = data.waterfall(filters.Filters(sex=("M",)))
    assert len(men) == men["n_patients"].iloc[0] == data.patient_count(filters.Filters(sex=("M",)))


def test_best_tumour_change_is_the_lowest_post_baseline_change(warehouse, demo_db):
    assessments = demo_db.execute("SELECT * FROM marts.fct_tumour_assessment").df()
    post = assessments[assessments["is_post_baseline"]]
    expected = post.groupby("patient_key")["pct_change_from_baseline_sum"].min()
    best = data.waterfall().set_index("patient_key")["best_pct_change"]  # every demo patient has one
    pd.testing.assert_series_equal(best.sort_index(), expected.sort_index(), check_names=False)


def test_toxicity_grade_counts_give_the_same_table_2_as_the_whole_mart(warehouse, demo_db):
    from prrt.analytics import toxicity_table

    whole = demo_db.execute("SELECT * FROM marts.fct_toxicity").df()
    patients = data.dim_patient()
    everyone = _cohort(filters.Filters())
    page = toxicity_page.load(everyone, data.toxicity_grade_counts(), data.toxicity_assessed())
    full = toxicity_table(whole, 16)
    pd.testing.assert_frame_equal(page.table_2, full[full["any_grade_n"] > 0].reset_index(drop=True))
    emergent = toxicity_page.load(everyone, data.toxicity_grade_counts(), data.toxicity_assessed(),
                                  treatment_emergent_only=True)
    full = toxicity_table(whole, 16, treatment_emergent_only=True)
    pd.testing.assert_frame_equal(emergent.table_2, full[full["ctcae_term"].isin(emergent.table_2["ctcae_term"])]
                                  .reset_index(drop=True))
    # dim_patient's toxicity group is fct_toxicity's worst grade over all terms, >= 2 or not (none: 0)
    worst = whole.groupby("patient_key")["worst_grade"].max().reindex(patients["patient_key"]).fillna(0)
    expected = np.where(worst.to_numpy() >= 2, ">= 2", "< 2")
    assert patients["toxicity_grade_group"].tolist() == expected.tolist()


@pytest.mark.parametrize("selection", SELECTIONS)
def test_toxicity_grade_counts_match_pandas_on_the_filtered_treated_patients(warehouse, demo_db, selection):
    patients = _select(data.dim_patient(), selection)
    treated = patients[patients["is_treated"]]
    rows = _of(demo_db.execute("SELECT * FROM marts.fct_toxicity WHERE worst_grade >= 1").df(), treated)
    by = ["ctcae_term", "worst_grade", "treatment_emergent_grade"]
    expected = rows.groupby(by, dropna=False).size().rename("n")
    counts = data.toxicity_grade_counts(selection)
    assert list(counts.columns) == [*by, "n"]
    got = counts.set_index(by)["n"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_dtype=False)
    # the heatmap's cells and the paper's Table 2 (every patient of the demo is treated)
    cells = toxicity_page.grade_counts(counts).set_index(["ctcae_term", "worst_grade"])["n"]
    assert cells.to_dict() == rows.groupby(["ctcae_term", "worst_grade"]).size().to_dict()
    if not selection.active:
        assert cells.to_dict() == {("Anemia", 1): 7, ("Anemia", 2): 3, ("Creatinine increased", 1): 2,
                                   ("Platelet count decreased", 1): 2, ("White blood cell decreased", 1): 3,
                                   ("White blood cell decreased", 2): 3}


def test_cached_reads_share_repeated_strings_without_changing_the_frame():
    n = 3_000
    frame = pd.DataFrame({
        "key": [f"{i:064x}" for i in range(n)],  # distinct: left alone
        "sex": ["".join(("fe", "male")) if i % 3 else "".join(("ma", "le")) for i in range(n)],  # one object a row
        "site": [[None, "".join(("pan", "creas")), np.nan][i % 3] for i in range(n)],
        "sites": [["liver"], ["bone"], []] * (n // 3),  # not text: left alone
        "grade": np.arange(n) % 4,
    })
    assert len({id(v) for v in frame["sex"]}) == n
    before = frame.copy(deep=True)
    shared = data._share_repeated_strings(frame)
    pd.testing.assert_frame_equal(shared, before)
    assert len({id(v) for v in shared["sex"]}) == 2
    assert len({id(v) for v in shared["site"] if isinstance(v, str)}) == 1
    assert shared["site"].iloc[0] is None and isinstance(shared["site"].iloc[2], float)  # missing values as they were
    assert len({id(v) for v in shared["key"]}) == n
    assert len(pickle.dumps(shared)) < len(pickle.dumps(before))
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(shared)), before)
    small = before.head(10)
    assert data._share_repeated_strings(small) is small


def test_swimmer_lanes_end_at_fct_survival(warehouse, demo_db):
    lanes, cycles, assessments = response_page.swimmer_frames(_cohort(filters.Filters()), 16)
    survival = demo_db.execute("SELECT patient_key, os_months, os_event FROM marts.fct_survival").df()
    merged = lanes.merge(survival, on="patient_key")
    assert len(merged) == 16 and (merged["followup_end"] == merged["os_months"]).all()
    assert (merged["outcome"] == "Death").sum() == 3
    assert len(cycles) == 59 and (assessments["recist_response"] != "NE").all()


# --- missing values ----------------------------------------------------------------------


@pytest.fixture
def holey_warehouse(monkeypatch, demo_warehouse, tmp_path):
    """The demo warehouse with holes: no post values, responses, scans, labs or survival for some."""
    copy = tmp_path / "holey.duckdb"
    shutil.copy(demo_warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("UPDATE marts.dim_patient SET ecog_post = NULL, kps_post = NULL")
        con.execute("UPDATE marts.dim_patient SET best_overall_response = NULL, confirmed_best_overall_response = NULL,"
                    " krenning_score = NULL, metastatic_sites = NULL WHERE age_at_first_cycle > 60")
        con.execute("UPDATE marts.dim_patient SET os_months = NULL, os_event = NULL WHERE sex = 'M'")
        con.execute("DELETE FROM marts.fct_survival WHERE patient_key IN"
                    " (SELECT patient_key FROM marts.dim_patient WHERE sex = 'M')")
        con.execute("UPDATE marts.fct_time_to_event SET months = NULL, event = NULL WHERE endpoint = 'OS'"
                    " AND patient_key IN (SELECT patient_key FROM marts.dim_patient WHERE sex = 'M')")
        con.execute("DELETE FROM marts.fct_tumour_assessment")
        con.execute("UPDATE marts.dim_patient SET best_pct_change_from_baseline_sum = NULL")  # derived from it
        con.execute("DELETE FROM marts.fct_lab_result WHERE analyte = 'hemoglobin' AND patient_key IN"
                    " (SELECT patient_key FROM marts.dim_patient WHERE sex = 'M')")
        con.execute("DELETE FROM marts.fct_toxicity")
    monkeypatch.setenv("PRRT_WAREHOUSE", str(copy))
    st.cache_data.clear()
    yield copy
    st.cache_data.clear()


@pytest.mark.parametrize("page", OUTCOME_PAGES)
def test_pages_survive_missing_values(holey_warehouse, page):
    at = open_page(page)
    assert not at.exception and not at.error
    assert sidebar_count(at) == "16 of 16 patients"
    if page == "performance_status":
        assert len(at.info) == 2  # no after-treatment ECOG or KPS
    if page == "response":
        with duckdb.connect(str(holey_warehouse), read_only=True) as con:
            responders = con.execute("SELECT count(*) FROM marts.dim_patient"
                                     " WHERE best_overall_response IN ('CR', 'PR')").fetchone()[0]
        # a missing best response counts in the denominator as a non-responder
        assert metrics(at)["ORR, unconfirmed"] == f"{responders}/16 ({100 * responders / 16:.1f}%)"
        assert any("No post-baseline measurement" in i.value for i in at.info)
    if page == "toxicity":
        assert any("No grade ≥ 1 toxicity" in i.value for i in at.info)
        men = open_page(page, {"filters.sex": ["M"]})
        assert not men.exception and any("No Haemoglobin results" in i.value for i in men.info)
    if page == "survival":
        assert metrics(at)["Patients"] == "9"
        assert any(c.value.startswith("7 patients without a time and status") for c in at.caption)


# --- a larger cohort ---------------------------------------------------------------------


@pytest.mark.parametrize("page", OUTCOME_PAGES)
def test_large_cohort_paths(monkeypatch, synthetic_warehouse, page):
    monkeypatch.setenv("PRRT_WAREHOUSE", str(synthetic_warehouse))
    st.cache_data.clear()
    at = open_page(page)
    assert not at.exception and not at.error
    assert sidebar_count(at) == "400 of 400 patients"
    captions = " ".join(c.value for c in at.caption)
    if page == "toxicity":
        assert "too many for one row each" in captions and "monthly median and interquartile range" in captions
    if page == "response":
        assert "of 400 patients shown" in captions
        at.slider(key="response_lanes").set_value(120).run()
        assert not at.exception and "120 of 400 patients shown" in " ".join(c.value for c in at.caption)
    if page == "performance_status":
        assert "line width: patients" in captions
    if page == "survival":
        assert metrics(at)["Patients"] == "400"
        assert len(dataframe_with(at, "HR")) >= 10
    st.cache_data.clear()
