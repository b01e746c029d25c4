"""The outcome pages show the paper's numbers, computed from the demo warehouse.

Each test runs the app from its entry point (navigation included) with AppTest and reads
what the page shows: metrics, dataframes, sidebar text, download buttons.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from streamlit_app import charts, data, filters

from .conftest import OUTCOME_PAGES, dataframe_with, metrics, open_page, sidebar_count


# --- Cohort ----------------------------------------------------------------------------


def test_cohort_shows_the_papers_table_1_summary(warehouse):
    at = open_page("cohort")
    shown = metrics(at)
    assert shown["Patients"] == "16"
    assert shown["Median age, years (range)"] == "60.5 (24-75)"
    assert shown["Median cycles (range)"] == "3.5 (1-7)"
    assert shown["Median cumulative activity, GBq (range)"] == "20.35 (7.4-49.95)"
    assert shown["ECOG median before → after"] == "1.5 → 1"
    assert shown["KPS median before → after"] == "75 → 80"
    assert shown["Deaths"] == "3"
    assert sidebar_count(at) == "16 of 16 patients"

    table_1 = dataframe_with(at, "Cumulative activity (GBq)")
    assert len(table_1) == 16 and table_1["Patient key"].is_unique
    assert {"Sex", "Age", "Primary site", "Krenning score", "Best response", "ECOG before", "KPS after"} <= set(table_1)
    assert sorted(table_1["Age"]) [0] == 24 and table_1["Cycles"].sum() == 59
    assert set(table_1["Sex"]) == {"Female", "Male"}

    counts = dataframe_with(at, "Level").set_index(["Characteristic", "Level"])
    assert counts.loc[("Metastases", "Liver"), "Patients"] == 13
    assert counts.loc[("Baseline imaging", "99mTc-octreotide"), "Patients"] == 12
    assert counts.loc[("Best response", "PR"), "Patients"] == 11
    assert {b.label for b in at.download_button} >= {"PNG", "SVG", "CSV"}


def test_cohort_shows_median_pfs_beside_os(warehouse):
    """OS 23.0 months (paper; R survfit 22.998, 95% CI 19.7-NR) and PFS 20.76 months, CI not estimable
    (R survfit(Surv(months, event) ~ 1, conf.type = "log-log") on the demo's PFS rows)."""
    from streamlit_app.views import cohort as cohort_page

    shown = metrics(open_page("cohort"))
    assert shown["Median OS, months (95% CI, log-log)"] == "23.0 (19.7–NR)"
    assert shown["Median PFS, months (95% CI, log-log)"] == "20.8 (NR–NR)"
    page = cohort_page.load(filters.Cohort(16, 16, filters.Filters()))
    assert page.pfs_median.median == pytest.approx(20.763860370, abs=1e-8)
    assert page.pfs_median.ci_lower is None and page.pfs_median.ci_upper is None
    assert page.os_median.median == pytest.approx(22.997946612, abs=1e-8)
    assert page.os_median.ci_lower == pytest.approx(19.712525667, abs=1e-8)


# the paper's Table 1, column "CgA (pre- and post-treatment)" (ng/mL; "-" = none), by patient's sex/age
PAPER_CGA = {("Female", 54): (None, 9.0), ("Male", 68): (946.0, 24.0), ("Female", 27): (73.0, 34.0),
             ("Male", 69): (72.0, 26.0)}


def test_cohort_table_1_has_chromogranin_a_before_and_after(warehouse):
    at = open_page("cohort")
    table_1 = dataframe_with(at, "CgA before (ng/mL)")
    pairs = [(None if pd.isna(a) else a, None if pd.isna(b) else b)
             for a, b in zip(table_1["CgA before (ng/mL)"], table_1["CgA after (ng/mL)"], strict=True)]
    assert sorted(pairs, key=str) == sorted([*PAPER_CGA.values(), *[(None, None)] * 12], key=str)
    # patients 4, 5 and 6 are the only ones of their sex and age; patient 1 (F/54) shares it with patient 8 (-/-)
    for (sex, age), expected in PAPER_CGA.items():
        rows = table_1[(table_1["Sex"] == sex) & (table_1["Age"] == age)]
        got = [(None if pd.isna(a) else a, None if pd.isna(b) else b)
               for a, b in zip(rows["CgA before (ng/mL)"], rows["CgA after (ng/mL)"], strict=True)]
        assert expected in got, (sex, age, got)
    # the summary's medians and ranges of the paper's values: before 72, 73, 946; after 9, 24, 26, 34
    medians = dataframe_with(at, "Minimum").set_index("Characteristic")
    assert medians.loc["Chromogranin A before (ng/mL)", ["Patients", "Median", "Minimum", "Maximum"]].tolist() == [
        3, 73, 72, 946]
    assert medians.loc["Chromogranin A after (ng/mL)", ["Patients", "Median", "Minimum", "Maximum"]].tolist() == [
        4, 25, 9, 34]


# --- Response --------------------------------------------------------------------------


def test_response_shows_best_response_and_orr_with_exact_ci(warehouse):
    at = open_page("response")
    shown = metrics(at)
    assert shown["CR / PR / SD / PD, unconfirmed"] == "2 / 11 / 1 / 2"
    assert shown["CR / PR / SD / PD, confirmed"] == "1 / 12 / 1 / 2"
    assert shown["ORR, unconfirmed"] == "13/16 (81.2%)"
    assert shown["DCR, unconfirmed"] == "14/16 (87.5%)"
    assert "95% CI 54.4–96.0% (Clopper-Pearson)" in [c.value for c in at.caption]

    rates = dataframe_with(at, "Measure").set_index(["Definition", "Measure"])
    assert rates.loc[("Unconfirmed", "ORR"), "Patients"] == 13 and rates.loc[("Unconfirmed", "ORR"), "N"] == 16
    assert rates.loc[("Unconfirmed", "ORR"), "95% CI lower (%)"] == pytest.approx(54.4, abs=0.05)

    counts = dataframe_with(at, "Best response").set_index("Best response")
    assert counts["Unconfirmed"].to_dict() == {"CR": 2, "PR": 11, "SD": 1, "PD": 2, "NE/missing": 0}
    assert counts["Confirmed"].sum() == 16

    waterfall = dataframe_with(at, "Best % change")
    assert len(waterfall) == 16
    assert list(waterfall["Best % change"]) == sorted(waterfall["Best % change"], reverse=True)
    # complete responses shrink to nothing; every PR is beyond the -30% line
    by_response = waterfall.groupby("Best response")["Best % change"]
    assert by_response.max()["CR"] == -100 and by_response.max()["PR"] <= -30
    labels = [b.label for b in at.download_button]
    assert labels.count("PNG") == 3 and labels.count("SVG") == 3  # distribution, waterfall, swimmer


# days from the first administration to the first CT/MRI CR/PR of the 13 responders, read by hand from
# raw/demo (cycles.csv, tumour_assessments.csv); none of them progressed or died (R survfit: median NA)
TTR_DAYS = [91, 93, 94, 95, 95, 96, 96, 99, 101, 102, 135, 142, 155]


def test_response_shows_duration_of_and_time_to_response(warehouse):
    at = open_page("response")
    shown = metrics(at)
    assert shown["Median DoR, months (95% CI, log-log)"] == "not reached"
    assert shown["Median TTR, months (range)"] == "3.2 (3.0–5.1)"
    captions = [c.value for c in at.caption]
    assert "13 responders (confirmed CR/PR), 0 progressed or died" in captions
    assert "13 responders (confirmed CR/PR); interquartile range 3.1–3.4 months" in captions

    from streamlit_app.views import response as response_page

    page = response_page.load(filters.Cohort(16, 16, filters.Filters()))
    assert (page.n_dor, page.dor_events, page.dor.median, page.dor.ci_lower) == (13, 0, None, None)
    month = 30.4375
    t = page.ttr
    assert t.n == 13
    assert [t.minimum, t.q1, t.median, t.q3, t.maximum] == pytest.approx(
        [91 / month, 95 / month, 96 / month, 102 / month, 155 / month])


def test_swimmer_marks_pet_apart_from_recist(warehouse):
    from streamlit_app.views import response as response_page

    _, _, assessments = response_page.swimmer_frames(filters.Cohort(16, 16, filters.Filters()), 16)
    pet = assessments[assessments["modality"] == charts.PET_MODALITY]
    # raw/demo/tumour_assessments.csv: four ga68_dotatate_pet rows, all after the first cycle (the paper's * patients)
    assert len(pet) == 4 and not pet["is_recist"].any()
    assert assessments.loc[assessments["modality"] == charts.RECIST_MODALITY, "is_recist"].all()
    at = open_page("response")
    assert any("Ga-68 DOTATATE PET, reported beside RECIST and not counted for it" in c.value for c in at.caption)
    svg = charts.to_svg(charts.swimmer(*response_page.swimmer_frames(filters.Cohort(16, 16, filters.Filters()), 16)))
    assert charts.PET_MODALITY in svg and charts.RECIST_MODALITY in svg


def test_evaluable_only_toggle_keeps_the_demo_rates(warehouse):
    at = open_page("response")
    at.toggle(key="response_evaluable_only").set_value(True).run()
    assert not at.exception
    assert metrics(at)["ORR, unconfirmed"] == "13/16 (81.2%)"  # no NE in the demo


# --- Toxicity --------------------------------------------------------------------------


def test_toxicity_table_2_equals_the_paper(warehouse):
    at = open_page("toxicity")
    table = dataframe_with(at, "CTCAE term")
    assert (table["N"] == 16).all()
    shown = table.set_index("CTCAE term")[["Grade 1", "Grade 2", "Grade 3", "Grade 4"]]
    expected = pd.DataFrame(
        {"Grade 1": [7, 3, 2, 2], "Grade 2": [3, 3, 0, 0], "Grade 3": [0, 0, 0, 0], "Grade 4": [0, 0, 0, 0]},
        index=pd.Index(["Anemia", "White blood cell decreased", "Creatinine increased", "Platelet count decreased"],
                       name="CTCAE term"),
    )
    pd.testing.assert_frame_equal(shown, expected, check_dtype=False)
    assert table.set_index("CTCAE term").loc["Anemia", "Any grade (%)"] == pytest.approx(62.5)

    at.toggle(key="toxicity_all_terms").set_value(True).run()
    everything = dataframe_with(at, "CTCAE term")
    assert len(everything) == 10 and everything["Any grade"].sum() == 20


def test_toxicity_lab_trajectories_and_patient_drill_down(warehouse):
    at = open_page("toxicity")
    assert any("Anemia" in c.value and "LLN" in c.value for c in at.caption)
    for analyte in ("creatinine", "platelets", "chromogranin_a"):
        at.selectbox(key="toxicity_analyte").set_value(analyte).run()
        assert not at.exception, analyte
    at.radio(key="toxicity_limits").set_value("Per-sample LLN/ULN").run()
    assert not at.exception

    treated = _dim_patient().query("is_treated")
    key = treated["patient_key"].iloc[0]
    at.selectbox(key="toxicity_patient").set_value(key).run()
    assert not at.exception
    labs = dataframe_with(at, "Analyte")
    assert {"hemoglobin", "wbc", "platelets", "creatinine"} <= set(labs["Analyte"])
    assert len(labs) > 10 and labs["Grade"].max() <= 4
    labels = [b.label for b in at.download_button]
    assert labels.count("PNG") == 3  # heatmap, cohort trajectory, the patient's panels
    assert labels.count("CSV") == 2  # Table 2 and the patient's labs


# --- Survival --------------------------------------------------------------------------


def test_survival_shows_the_median_os_of_the_paper(warehouse):
    at = open_page("survival")
    assert metrics(at)["Median OS, months (95% CI, log-log)"].startswith("23.0 (")
    assert metrics(at)["Deaths"] == "3"
    at_risk = dataframe_with(at, "0 mo")
    assert at_risk.iloc[0][["0 mo", "6 mo", "12 mo", "18 mo", "24 mo", "30 mo", "36 mo"]].tolist() == [
        16, 15, 10, 4, 1, 1, 0]
    assert any("equals the published" in c.value for c in at.caption)
    assert dataframe_with(at, "HR")["Covariate"].notna().all()


@pytest.mark.parametrize("method", ["log-log", "log", "plain", "spss"])
def test_unfiltered_medians_equal_the_published_km_median(warehouse, demo_db, method):
    at = open_page("survival")
    at.selectbox(key="survival_ci_method").set_value(method).run()
    assert not at.exception and not at.warning
    shown = dataframe_with(at, "Median (months)").iloc[0]
    published = demo_db.execute(
        "SELECT median_months, ci_lower, ci_upper FROM analytics.km_median"
        " WHERE endpoint = 'OS' AND stratum_variable = 'all' AND ci_method = ?", [method]).fetchone()
    for ours, theirs in zip(shown[["Median (months)", "95% CI lower", "95% CI upper"]], published, strict=True):
        assert (ours is None or math.isnan(ours)) if theirs is None or math.isnan(theirs) \
            else ours == pytest.approx(round(theirs, 2))


def test_every_stratification_draws_with_a_log_rank_p(warehouse):
    at = open_page("survival")
    options = at.selectbox(key="survival_strata").options
    assert len(options) == 11
    # the paper reports no tumour grade or Ki-67: the demo has none
    not_exported = {"Tumour grade", "Ki-67 (WHO: < 3%, 3-20%, > 20%)"}
    later = {"Cycles (≤ 3 vs ≥ 4)", "Cumulative activity (median split)", "Best response (CR/PR vs SD/PD)",
             "Worst toxicity grade (≥ 2 vs < 2)"}
    for option in options[1:]:
        at.selectbox(key="survival_strata").set_value(option).run()
        assert not at.exception, option
        if option in not_exported:
            assert any("No patient with overall survival" in i.value for i in at.info), option
            continue
        landmark = any("Landmark analysis at 6 months" in i.value for i in at.info)
        assert landmark == (option in later), option
        if landmark:  # the at-risk table: 16 at 0 months, 15 at 6
            assert any("1 patient with an event or censoring before 6 months is left out" in i.value
                       for i in at.info), option
        p = {k: v for k, v in metrics(at).items() if k.startswith("Log-rank p")}
        if option == "Worst toxicity grade (≥ 2 vs < 2)" and not p:  # one group before the landmark
            assert any("Only one group" in i.value for i in at.info)
            continue
        assert len(p) == 1 and 0 <= float(next(iter(p.values()))) <= 1, option
        assert next(iter(p)).endswith("landmark at 6 months)" if landmark else "from day 0)"), p
        medians = dataframe_with(at, "Stratum")
        # at the landmark: only the patients followed to 6 months (15 of 16 are at risk at 6 months)
        assert len(medians) >= 2 and medians["Patients"].sum() <= (15 if landmark else 16), option


def test_no_landmark_stratum_for_duration_of_response(warehouse):
    at = open_page("survival")
    at.selectbox(key="survival_endpoint").set_value("DOR").run()
    at.selectbox(key="survival_strata").set_value("Best response (CR/PR vs SD/PD)").run()
    assert not at.exception
    assert any("there is no landmark" in i.value for i in at.info)


def test_survival_by_endpoint_shows_pfs_with_its_at_risk_table_and_forest_plot(warehouse, demo_db):
    at = open_page("survival")
    assert at.selectbox(key="survival_endpoint").options == ["OS: Overall survival", "PFS: Progression-free survival",
                                                             "TTP: Time to progression", "DOR: Duration of response"]
    at.selectbox(key="survival_endpoint").set_value("PFS").run()
    assert not at.exception and at.title[0].value == "Survival"
    shown = metrics(at)
    published = demo_db.execute(
        "SELECT median_months, events FROM analytics.km_median WHERE endpoint = 'PFS' AND stratum_variable = 'all'"
        " AND ci_method = 'log-log'").fetchone()
    assert shown["Median PFS, months (95% CI, log-log)"].startswith(f"{published[0]:.1f} (")
    assert shown["Progressions or deaths"] == str(published[1])
    assert any("equals the published" in c.value for c in at.caption)
    at_risk = dataframe_with(at, "0 mo")
    assert at_risk.iloc[0]["0 mo"] == 16
    assert at_risk.iloc[0].drop("Stratum").is_monotonic_decreasing
    cox = dataframe_with(at, "HR")
    assert "Progressions or deaths" in cox.columns and set(cox["Compared"]) == {"from day 0", "landmark at 6 months"}
    labels = [b.label for b in at.download_button]
    assert labels.count("PNG") == 2  # the Kaplan-Meier plot and the forest plot
    assert any(m.value.startswith("**Forest plot: hazard ratios for progression-free survival") for m in at.markdown)


# --- Performance status ----------------------------------------------------------------


def test_performance_status_medians_and_exact_wilcoxon(warehouse):
    at = open_page("performance_status")
    shown = metrics(at)
    assert shown["ECOG median before → after"] == "1.5 → 1"
    assert shown["KPS median before → after"] == "75 → 80"
    p_values = [float(shown[f"{m} Wilcoxon p"]) for m in ("ECOG", "KPS")]
    assert len(p_values) == 2 and all(p < 0.05 for p in p_values)
    summary = dataframe_with(at, "Measure").set_index("Measure")
    assert summary.loc["ECOG", "p"] == pytest.approx(1 / 32)  # 6 improved, none worse: 2 * 2^-6
    assert summary.loc["KPS", "p"] == pytest.approx(1 / 64)
    assert set(summary["Method"]) == {"exact-conditional"}


# --- Filters ---------------------------------------------------------------------------


def test_a_sex_filter_holds_across_every_page(warehouse):
    at = open_page("cohort")
    at.sidebar.multiselect(key="_filters_widget.sex").set_value(["F"]).run()
    assert sidebar_count(at) == "9 of 16 patients"
    assert metrics(at)["Patients"] == "9"
    expected = {
        "response": lambda m: m["ORR, unconfirmed"].endswith("/9 (88.9%)"),
        "toxicity": lambda m: True,
        "survival": lambda m: m["Patients"] == "9",
        "performance_status": lambda m: True,
        "cohort": lambda m: m["Patients"] == "9" and m["Female / male"] == "9 / 0",
    }
    for page in [*expected, "data_quality", "survival"]:  # leaving the outcome pages keeps the filter
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, page
        if page == "data_quality":
            continue
        assert sidebar_count(at) == "9 of 16 patients", page
        assert expected[page](metrics(at)), (page, metrics(at))
    at.switch_page("views/toxicity.py").run()
    assert any("N = 9 treated patients" in c.value for c in at.caption)
    at.switch_page("views/performance_status.py").run()
    assert sum(c.value.startswith("9 patients with both") for c in at.caption) == 2

    at.sidebar.button[0].click().run()  # Reset filters
    assert not at.exception and sidebar_count(at) == "16 of 16 patients"
    assert at.sidebar.multiselect(key="_filters_widget.sex").value == []


def test_treatment_period_filter(warehouse):
    at = open_page("survival")
    period = (dt.date(2019, 1, 1), dt.date(2019, 8, 24))  # to the last first cycle (the widget's maximum)
    at.sidebar.date_input(key="_filters_widget.period").set_value(period).run()
    assert data.patient_count(filters.Filters(period=period)) == 9
    assert sidebar_count(at) == "9 of 16 patients"
    assert metrics(at)["Patients"] == "9"


def _dim_patient() -> pd.DataFrame:
    return data.dim_patient()


@pytest.mark.parametrize("page", OUTCOME_PAGES)
def test_an_empty_selection_is_a_message_not_a_traceback(warehouse, page):
    nobody = {"filters.sex": ["F"], "filters.primary_site": ["lung"], "filters.baseline_imaging": ["ga68_dotatate_pet"]}
    assert data.patient_count(filters.Filters(*(tuple(v) for v in nobody.values()))) == 0
    at = open_page(page, nobody)
    assert sidebar_count(at) == "0 of 16 patients"
    assert any("No patient matches the filters" in i.value for i in at.info)


# --- Downloads -------------------------------------------------------------------------


@pytest.mark.parametrize("page", OUTCOME_PAGES)
def test_every_page_offers_png_svg_and_csv(warehouse, page):
    at = open_page(page)
    labels = [b.label for b in at.download_button]
    assert labels.count("PNG") >= 1 and labels.count("PNG") == labels.count("SVG")
    assert labels.count("CSV") >= 1
    # every table has its CSV button right under it
    assert labels.count("CSV") >= len(at.dataframe)
