"""Contract tables and derived strata on a small dim_patient-like frame."""

from __future__ import annotations

import math

import duckdb

import pandas as pd
import pytest

from prrt.analytics import (
    DEFAULT_STRATA,
    TABLES,
    add_derived_groups,
    available_strata,
    build_analytics_tables,
    build_survival_tables,
    grade_counts,
    landmark,
    median_split,
    toxicity_table,
)
from prrt.analytics.catalog import nadir_summary_sql
from prrt.analytics.strata import STRATA, STRATUM

LANDMARK = 6.0


@pytest.fixture
def cohort() -> pd.DataFrame:
    """dim_patient-like rows; the group columns as dbt derives them (cycles: >= 4; response: CR/PR vs
    SD/PD; toxicity: worst grade >= 2), and as they stood before the landmark (*_at_landmark)."""
    return pd.DataFrame(
        {
            "patient_key": list("abcdefgh"),
            "sex": ["F", "M", "F", "M", "F", "M", "F", "F"],
            "baseline_imaging": ["tc99m_octreotide"] * 8,
            "krenning_score": [3.0, 4.0, 3.0, None, 4.0, 3.0, 3.0, 4.0],
            "n_cycles": [1, 2, 3, 4, 5, 6, 7, 3],
            "cycles_group": ["<= 3", "<= 3", "<= 3", ">= 4", ">= 4", ">= 4", ">= 4", "<= 3"],
            "cycles_group_at_landmark": ["<= 3", "<= 3", "<= 3", "<= 3", ">= 4", ">= 4", "<= 3", "<= 3"],
            "cumulative_activity_gbq": [7.4, 9.25, 11.1, 22.2, 27.75, 37.0, 49.95, 18.5],
            "cumulative_activity_gbq_at_landmark": [7.4, 9.25, 11.1, 22.2, 27.75, 29.6, 22.2, 18.5],
            "best_overall_response": ["PD", "SD", "PR", "PR", "CR", "PR", "PR", None],
            "best_response_group": ["SD/PD", "SD/PD", "CR/PR", "CR/PR", "CR/PR", "CR/PR", "CR/PR", None],
            "best_response_group_at_landmark": ["SD/PD", "SD/PD", "SD/PD", "CR/PR", "CR/PR", "SD/PD", "CR/PR", None],
            "toxicity_grade_group": [">= 2", "< 2", "< 2", ">= 2", "< 2", "< 2", "< 2", "< 2"],
            "toxicity_grade_group_at_landmark": [">= 2", "< 2", "< 2", "< 2", "< 2", "< 2", "< 2", "< 2"],
            "os_months": [3.0, 6.0, 9.0, 12.0, 15.0, 18.0, 21.0, 24.0],
            "os_event": [1, 1, 0, 1, 0, 0, 0, 0],
            "age_at_first_cycle": [70, 65, 60, 55, 50, 45, 40, 35],
            "ecog_pre": [2, 2, 1, 1, 0, 0, 1, 0],
            "ecog_post": [2, 1, 1, 0, 0, 0, 1, 0],
            "kps_pre": [60, 70, 80, 80, 90, 90, 80, 100],
            "kps_post": [60, 80, 80, 90, 90, 100, 80, 100],
        }
    )


@pytest.fixture
def toxicity() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_key": ["a", "a", "b", "d"],
            "ctcae_term": ["Anemia", "White blood cell decreased", "Anemia", "Anemia"],
            "baseline_grade": [0, 0, 1, 0],
            "worst_grade": [1, 2, 1, 3],
        }
    )


@pytest.fixture
def patients(cohort) -> pd.DataFrame:
    """dim_patient as the analytics read it: worst grade over all terms (a: 2, b: 1, d: 3 in
    ``toxicity``; nothing graded for the others)."""
    return cohort.drop(columns="patient_key").assign(worst_ctcae_grade=[2, 1, None, 3, None, None, None, None])


def test_the_activity_median_split(cohort):
    split = median_split(cohort["cumulative_activity_gbq"], unit="GBq")
    assert split.tolist()[:4] == ["<= 20.35 GBq", "<= 20.35 GBq", "<= 20.35 GBq", "> 20.35 GBq"]
    # rows of counts: the median of the values each repeated its count times (7.4 x 3, 9.25, 11.1: 7.4)
    weighted = median_split(pd.Series([7.4, 9.25, 11.1]), weights=pd.Series([3, 1, 1]), unit="GBq")
    assert weighted.tolist() == ["<= 7.40 GBq", "> 7.40 GBq", "> 7.40 GBq"]
    assert add_derived_groups(cohort)["cumulative_activity_group"].tolist() == split.tolist()


def test_strata_known_after_day_0_are_analysed_at_the_landmark():
    later = {s.variable for s in STRATA if s.landmark_column is not None}
    # the list: best response, worst toxicity grade, number of cycles, cumulative activity
    assert later == {"best_response_group", "toxicity_grade_group", "cycles_group", "cumulative_activity_group"}
    assert {"sex", "primary_site", "baseline_imaging", "krenning_score", "tumour_grade", "ki67_group"} == set(
        DEFAULT_STRATA)
    assert all(STRATUM[v].landmark_column.endswith("_at_landmark") for v in later)


def test_the_landmark_cohort_drops_earlier_events_and_counts_time_from_the_landmark(cohort):
    at = landmark(cohort, "os_months", LANDMARK)
    # a (dead at 3 months) is dropped; b (dead at 6) stays, with an event at time 0
    assert at["patient_key"].tolist() == list("bcdefgh")
    assert at["os_months"].tolist() == [0.0, 3.0, 6.0, 9.0, 12.0, 15.0, 18.0]


def test_the_landmark_edge_in_days():
    """6 months = 182.625 days (days_per_month 30.4375): followed to day 182 is before the landmark
    (dropped), to day 183 after it (kept, 0.375 days from the landmark)."""
    frame = pd.DataFrame({"os_months": [182 / 30.4375, 183 / 30.4375], "os_event": [1, 1]})
    at = landmark(frame, "os_months", 6.0)
    assert len(at) == 1 and at["os_months"].iloc[0] * 30.4375 == pytest.approx(0.375)


def test_build_tables_with_default_strata(cohort, patients):
    prepared = add_derived_groups(cohort)
    strata = available_strata(prepared, DEFAULT_STRATA)
    assert "primary_site" not in strata and "sex" in strata and "toxicity_grade_group" not in strata
    tables = build_survival_tables(prepared, strata)

    medians = tables["km_median"]
    assert set(medians["ci_method"]) == {"log-log", "log", "plain", "spss"}
    overall = medians[(medians.stratum_variable == "all") & (medians.ci_method == "log-log")].iloc[0]
    assert (overall["stratum"], overall["n"], overall["events"]) == ("all", 8, 3)
    # S = 7/8, 6/8, then 0.6 after the third death: never <= 0.5 -> NaN, never inf
    assert math.isnan(overall["median_months"])
    assert not medians[["median_months", "ci_lower", "ci_upper"]].isin([float("inf")]).any().any()

    # missing krenning score is left out of that stratification; floats print as integers
    krenning = medians[(medians.stratum_variable == "krenning_score") & (medians.ci_method == "log")]
    assert krenning[["stratum", "n"]].values.tolist() == [["3", 4], ["4", 3]]

    logrank = tables["logrank"].set_index("stratum_variable")
    # one-level variables (baseline_imaging) get no log-rank row
    assert set(logrank.index) == {"sex", "krenning_score"}
    assert (logrank["degrees_of_freedom"] == 1).all()
    assert logrank["p_value"].between(0, 1).all()

    curve = tables["km_curve"]
    assert list(curve.columns) == ["stratum_variable", "stratum", "time_months", "survival", "ci_lower",
                                   "ci_upper", "at_risk", "events", "censored"]
    sex_f = curve[(curve.stratum_variable == "sex") & (curve.stratum == "F")]
    assert sex_f["time_months"].tolist() == [0, 3, 9, 15, 21, 24]
    assert sex_f["at_risk"].iloc[0] == 5


def test_the_published_tables_compare_later_strata_at_the_landmark(patients):
    tables = build_analytics_tables({"dim_patient": patients}, landmark_at=LANDMARK)
    logrank = tables["logrank"].set_index("stratum_variable")
    assert logrank.loc["sex", "method"] == "from day 0" and math.isnan(logrank.loc["sex", "landmark_months"])
    for variable in ("cycles_group", "cumulative_activity_group", "best_response_group"):
        assert (logrank.loc[variable, "method"], logrank.loc[variable, "landmark_months"]) == ("landmark", 6.0)
    # toxicity before the landmark: only a (dropped, dead at 3 months) had grade >= 2: one group, no test
    assert "toxicity_grade_group" not in logrank.index
    medians = tables["km_median"].query("ci_method == 'log-log'").set_index(["stratum_variable", "stratum"])
    # at 6 months 7 patients are followed (b..h); by cycles before the landmark: >= 4 e, f; <= 3 b, c, d, g, h
    assert medians.loc[("cycles_group", ">= 4"), "n"] == 2 and medians.loc[("cycles_group", "<= 3"), "n"] == 5
    # b's death at 6 months is at time 0 from the landmark; d's at 12 months at 6
    assert medians.loc[("cycles_group", "<= 3"), "events"] == 2
    # response before the landmark: CR/PR d, e, g; SD/PD b, c, f; h has none (left out)
    assert medians.loc[("best_response_group", "CR/PR"), "n"] == 3
    assert medians.loc[("best_response_group", "SD/PD"), "n"] == 3
    # activity before the landmark, split at the landmark cohort's median (b..h: 9.25 ... 29.6 -> 22.2)
    activity = medians.loc["cumulative_activity_group"]
    assert activity["n"].to_dict() == {"<= 22.20 GBq": 5, "> 22.20 GBq": 2}
    curve = tables["km_curve"].query("stratum_variable == 'cycles_group' and stratum == '>= 4'")
    assert curve["time_months"].tolist() == [0.0, 9.0, 12.0]  # e at 15, f at 18 months: 9 and 12 from the landmark
    assert set(curve["method"]) == {"landmark"}
    cox = tables["cox_univariable"].set_index("covariate")
    assert cox.loc["cycles_group", "method"] == "landmark" and cox.loc["cycles_group", "n"] == 7
    assert cox.loc["age_at_first_cycle", "method"] == "from day 0" and cox.loc["age_at_first_cycle", "n"] == 8


def test_median_reached_in_a_stratum(cohort):
    tables = build_survival_tables(cohort, {"cycles": "n_cycles"})
    medians = tables["km_median"]
    one = medians[(medians.stratum_variable == "cycles") & (medians.stratum == "1")]
    assert one["median_months"].tolist() == [3.0, 3.0, 3.0, 3.0]  # log-log, log, plain, spss
    # a single patient who died: the band is undefined, so are the limits (as R: NA NA)
    assert one[["ci_lower", "ci_upper"]].isna().all().all()


def test_unknown_stratum_column_is_an_error(cohort):
    with pytest.raises(KeyError):
        build_survival_tables(cohort, ["no_such_column"])


def test_build_analytics_tables_from_marts(cohort, toxicity, patients):
    tables = build_analytics_tables({"dim_patient": patients, "toxicity_grade_counts": grade_counts(toxicity)})
    # every catalogued table but lab_nadir (no lab_nadir_summary given), in catalogue order
    assert list(tables) == [name for name in TABLES if name != "lab_nadir"]
    variables = set(tables["km_median"]["stratum_variable"])
    assert variables == {"all", "sex", "baseline_imaging", "krenning_score", "cycles_group",
                         "cumulative_activity_group", "best_response_group", "toxicity_grade_group"}
    assert set(tables["km_survival_at"]["stratum_variable"]) == variables
    # one Cox model per stratifying variable, plus age, baseline ECOG and KPS; the later strata last
    assert tables["cox_univariable"]["covariate"].unique().tolist() == [
        "sex", "baseline_imaging", "krenning_score", "age_at_first_cycle", "ecog_pre", "kps_pre", "cycles_group",
        "cumulative_activity_group", "best_response_group", "toxicity_grade_group"]
    assert tables["cox_multivariable"]["term"].tolist() == ["age_at_first_cycle", "sex=M", "ecog_pre"]
    # toxicity percentages are of the whole (treated) cohort, not of patients in fct_toxicity
    anemia = tables["toxicity_summary"].set_index("ctcae_term").loc["Anemia"]
    assert (anemia["n_patients"], anemia["grade_1_n"], anemia["grade_1_pct"]) == (8, 2, 25.0)
    # the summary from the counts is Table 2 from fct_toxicity's rows, of the treated cohort
    pd.testing.assert_frame_equal(tables["toxicity_summary"], toxicity_table(toxicity, 8, decimals=None))
    # without the toxicity groups and the counts the toxicity grouping and summary are simply absent
    without = build_analytics_tables({"dim_patient": cohort.drop(
        columns=["toxicity_grade_group", "toxicity_grade_group_at_landmark"])})
    assert "toxicity_grade_group" not in set(without["km_median"]["stratum_variable"])
    assert "toxicity_summary" not in without
    with pytest.raises(KeyError, match="kps_post"):
        build_analytics_tables({"dim_patient": cohort.drop(columns="kps_post")})


def test_survival_tables_of_the_build_equal_the_single_table_functions(patients):
    from prrt.analytics import cox_univariable_table, km_curve_table, km_median_table, km_survival_at_table, logrank_table
    from prrt.analytics.tables import landmark_frame

    tables = build_analytics_tables({"dim_patient": patients}, landmark_at=LANDMARK)
    prepared = add_derived_groups(patients)
    strata = available_strata(prepared, DEFAULT_STRATA)
    later = {s.variable: s.landmark_column for s in STRATA if s.landmark_column}
    at = landmark_frame(prepared, "os_months", "os_event", LANDMARK, list(later.values()))

    def os_rows(name: str, method: str) -> pd.DataFrame:
        table = tables[name]
        assert set(table["endpoint"]) == {"OS"}  # no other endpoint's columns in the frame
        rows = table[table["method"] == method].drop(columns=["endpoint", "method", "landmark_months"])
        return rows.reset_index(drop=True)

    def without_all(table: pd.DataFrame) -> pd.DataFrame:
        return table[table["stratum_variable"] != "all"].reset_index(drop=True)

    singles = {"km_curve": km_curve_table, "km_median": km_median_table, "km_survival_at": km_survival_at_table}
    for name, single in singles.items():
        pd.testing.assert_frame_equal(os_rows(name, "from day 0"), single(prepared, strata))
        pd.testing.assert_frame_equal(os_rows(name, "landmark"), without_all(single(at, later)))
    pd.testing.assert_frame_equal(os_rows("logrank", "from day 0"), logrank_table(prepared, strata))
    pd.testing.assert_frame_equal(os_rows("logrank", "landmark"), logrank_table(at, later))
    pd.testing.assert_frame_equal(os_rows("cox_univariable", "from day 0"), cox_univariable_table(
        prepared, strata, ("age_at_first_cycle", "ecog_pre", "kps_pre")))
    pd.testing.assert_frame_equal(os_rows("cox_univariable", "landmark"), cox_univariable_table(at, later, ()))


def test_endpoints_are_analysed_side_by_side(patients):
    """OS and PFS always; TTP and DOR only with an event; each endpoint's rows are the single-table
    functions on its own columns (DOR: the responders with a time only)."""
    from prrt.analytics import km_median_table, logrank_table

    frame = patients.assign(
        pfs_months=[2.0, 4.0, 9.0, 5.0, 15.0, 18.0, 6.0, 24.0], pfs_event=[1, 1, 0, 1, 0, 0, 1, 0],
        ttp_months=[2.0, 4.0, 9.0, 5.0, 15.0, 18.0, 6.0, 24.0], ttp_event=[0] * 8,
        dor_months=[None, None, 6.0, 2.0, 12.0, 15.0, 3.0, None], dor_event=[None, None, 0, 1, 0, 0, 1, None],
    )
    tables = build_analytics_tables({"dim_patient": frame}, landmark_at=LANDMARK)
    prepared = add_derived_groups(frame)
    strata = available_strata(prepared, DEFAULT_STRATA)
    for name in ("km_curve", "km_median", "logrank", "km_survival_at", "cox_univariable", "cox_multivariable"):
        assert tables[name]["endpoint"].unique().tolist() == ["OS", "PFS", "DOR"], name
    assert tables["follow_up"]["endpoint"].unique().tolist() == ["OS", "PFS"]
    # DOR starts at the response, not at the first cycle: no landmark (the groups are at 6 months after it)
    methods = tables["logrank"].groupby("endpoint")["method"].unique().map(set).to_dict()
    assert methods == {"OS": {"from day 0", "landmark"}, "PFS": {"from day 0", "landmark"}, "DOR": {"from day 0"}}
    for endpoint, (time_col, event_col) in {"PFS": ("pfs_months", "pfs_event"), "DOR": ("dor_months", "dor_event")}.items():
        for name, single in {"km_median": km_median_table, "logrank": logrank_table}.items():
            table = tables[name]
            got = table[(table["endpoint"] == endpoint) & (table["method"] == "from day 0")]
            got = got.drop(columns=["endpoint", "method", "landmark_months"]).reset_index(drop=True)
            pd.testing.assert_frame_equal(got, single(prepared, strata, time_col=time_col, event_col=event_col))
    dor = tables["km_median"].query("endpoint == 'DOR' and stratum_variable == 'all'")
    assert dor[["n", "events"]].drop_duplicates().values.tolist() == [[5, 2]]


def test_follow_up_is_the_reverse_kaplan_meier(cohort):
    """Reverse KM of os_months (3, 6, 9, ..., 24; deaths at 3, 6, 12): censorings are the events,
    deaths are censored. At risk 8 at 3 (a death: censored), 7 at 6 (death), 6 at 9 -> S = 5/6,
    5 at 12 (death), 4 at 15 -> 5/6 * 3/4 = 0.625, 3 at 18 -> 0.625 * 2/3 = 0.41667 <= 0.5:
    median follow-up 18 months."""
    from prrt.analytics import follow_up_table

    table = follow_up_table(cohort)
    assert table["ci_method"].tolist() == ["log-log", "log", "plain"]
    assert table[["n", "events", "censored"]].drop_duplicates().values.tolist() == [[8, 3, 5]]
    assert (table["median_months"] == 18.0).all()


def test_categorical_text_columns_give_the_same_tables(patients):
    # the asset reads text columns as categoricals (DuckDB ENUMs)
    text = ["sex", "baseline_imaging", "best_overall_response"]
    plain = build_analytics_tables({"dim_patient": patients})
    categorical = build_analytics_tables({"dim_patient": patients.astype({c: "category" for c in text})})
    for name in plain:
        pd.testing.assert_frame_equal(categorical[name], plain[name], obj=name)


def test_every_built_table_has_exactly_the_documented_columns(patients, toxicity):
    nadir = pd.DataFrame(
        {"patient_key": ["a"], "analyte": ["wbc"], "unit": ["10^9/L"], "direction": ["lowest"],
         "baseline_value": [6.0], "nadir_value": [4.0], "days_to_nadir": [30], "pct_change_from_baseline": [-100 / 3],
         "n_post_baseline_samples": [1]}
    )
    con = duckdb.connect()
    con.register("nadir", nadir)
    tables = build_analytics_tables({"dim_patient": patients, "toxicity_grade_counts": grade_counts(toxicity),
                                     "lab_nadir_summary": con.execute(nadir_summary_sql("nadir")).df()})
    assert list(tables) == list(TABLES)
    for name, frame in tables.items():
        assert list(frame.columns) == list(TABLES[name].columns), name
        assert all(TABLES[name].columns.values()), name


def test_ki67_hazard_ratios_are_against_who_grade_1():
    """'< 3%' (G1) sorts after '3-20%': the reference is named, not the first label in sorted order."""
    from prrt.analytics.tables import cox_univariable_analyses

    frame = pd.DataFrame({"os_months": [2.0, 4.0, 6.0, 8.0, 10.0, 12.0], "os_event": [1, 0, 1, 1, 0, 1],
                          "ki67_group": ["< 3%", "3-20%", "> 20%", "< 3%", "3-20%", "> 20%"]})
    cox = cox_univariable_analyses(frame, "os_months", "os_event", None)
    assert set(cox["reference"]) == {"< 3%"}
    assert cox["term"].tolist() == ["ki67_group=3-20%", "ki67_group=> 20%"]
