"""Data quality: is the published warehouse fresh, complete and checked? (the audit schema)."""

import pandas as pd
import streamlit as st

from streamlit_app import data
from streamlit_app.downloads import csv_bytes

st.title("Data quality")

if data.version() is None:
    st.error(f"No warehouse at {data.warehouse_file()}: run `prrt refresh` first.")
    st.stop()

last = data.last_refresh()
checks = data.check_results()
loads = data.load_summary()
rejected = data.rejected_rows()

# --- last refresh --------------------------------------------------------------------------
st.subheader("Last refresh")
if last.empty:
    st.warning("This warehouse has no refresh history.")
else:
    refresh = last.iloc[0]
    age = pd.Timestamp.now(tz="UTC") - refresh["published_at"]
    failed_checks = int((~checks["passed"]).sum())
    c = st.columns(4)
    minutes = int(age.total_seconds() // 60)
    c[0].metric("Published", "just now" if minutes < 1 else f"{minutes} min ago" if minutes < 60
                else f"{minutes // 60} h ago" if minutes < 48 * 60 else f"{minutes // 1440} d ago")
    c[1].metric("Outcome", "Published" if failed_checks == 0 else f"Published, {failed_checks} warning(s)",
                help="Only a refresh whose blocking checks all passed is published.")
    c[2].metric("Rows read / rejected", f"{refresh['rows_read']:,} / {refresh['rows_rejected']:,}")
    c[3].metric("Checks passed", f"{len(checks) - failed_checks} / {len(checks)}")
    how = f" ({refresh['mode']} refresh: {refresh['reason']})" if {"mode", "reason"} <= set(last.columns) else ""
    st.caption(
        f"Published {refresh['published_at']:%Y-%m-%d %H:%M} UTC from the export folder `{refresh['raw_dir']}`{how}. "
        "A failed refresh publishes nothing and leaves this "
        "warehouse in place: if it is older than last night, see the Dagster run or "
        "`.builds/last-refresh.log` next to the warehouse file."
    )

# --- load summary --------------------------------------------------------------------------
st.subheader("Load summary")
summary = loads.assign(reconciled=loads["rows_read"] == loads["rows_accepted"] + loads["rows_rejected"])
if summary["reconciled"].all():
    st.caption("Every file reconciles: rows read = rows accepted + rows rejected.")
else:
    st.error("Some files do not reconcile (rows read ≠ accepted + rejected).")
st.dataframe(
    summary[["source_file", "rows_read", "rows_accepted", "rows_rejected", "reconciled", "ignored_columns", "loaded_at"]],
    hide_index=True,
    column_config={
        "source_file": "File", "rows_read": "Read", "rows_accepted": "Accepted", "rows_rejected": "Rejected",
        "reconciled": st.column_config.CheckboxColumn("Reconciled"),
        "ignored_columns": "Ignored columns",
        "loaded_at": st.column_config.DatetimeColumn("Loaded (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    },
    key="load_summary",
)

# --- rejected rows -------------------------------------------------------------------------
st.subheader("Rejected rows")
if rejected.empty:
    st.success("No rejected rows: every row of the export reached the warehouse.", icon=":material/check_circle:")
else:
    by_reason = rejected.groupby(["source_file", "reason"], as_index=False).size().rename(columns={"size": "rows"})
    st.dataframe(by_reason.sort_values("rows", ascending=False), hide_index=True, key="rejected_by_reason")
    c = st.columns(2)
    files = c[0].multiselect("File", sorted(rejected["source_file"].unique()), key="rejected_file")
    reasons = c[1].multiselect("Reason", sorted(rejected["reason"].unique()), key="rejected_reason")
    shown = rejected[
        rejected["source_file"].isin(files or rejected["source_file"])
        & rejected["reason"].isin(reasons or rejected["reason"])
    ]
    st.caption(f"{len(shown):,} of {len(rejected):,} rejected rows. `source_row` is the line in the file "
               "(header = line 1); a row with several problems appears once per problem.")
    st.dataframe(shown, hide_index=True, key="rejected_rows")
    st.download_button("Download CSV", csv_bytes(shown), file_name="rejected_rows.csv",
                       mime="text/csv", icon=":material/download:", on_click="ignore")

# --- similar record numbers ---------------------------------------------------------------
similar = data.similar_patient_ids()
if not similar.empty:
    st.subheader("Similar record numbers")
    st.caption("Record numbers that differ only in case or leading zeros (raw/README.md): ids are matched "
               "exactly as written, so these are separate patients, or rows rejected as unknown patients, "
               "until the export is fixed at the source.")
    st.dataframe(similar, hide_index=True, key="similar_patient_ids")

# --- checks --------------------------------------------------------------------------------
st.subheader("Checks")
st.caption("Asset checks of the last refresh: row reconciliation, non-empty marts, the analytics, "
           "and every dbt data test.")
failed = checks[~checks["passed"]]
if failed.empty:
    st.success(f"All {len(checks)} checks passed.", icon=":material/check_circle:")
else:
    st.error(f"{len(failed)} of {len(checks)} checks failed.")
only_failed = st.toggle("Failed checks only", value=not failed.empty, key="failed_only")
st.dataframe(
    (failed if only_failed else checks)[["passed", "asset", "check_name", "severity", "evaluated_at"]],
    hide_index=True,
    column_config={
        "passed": st.column_config.CheckboxColumn("Passed"),
        "evaluated_at": st.column_config.DatetimeColumn("Evaluated (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    },
    key="checks",
)

# --- step timings --------------------------------------------------------------------------
st.subheader("Step timings")
steps = data.run_log()
st.bar_chart(steps.dropna(subset=["duration_seconds"]), x="step", y="duration_seconds", horizontal=True, sort=False,
             x_label="", y_label="seconds")
st.dataframe(
    steps[["step", "started_at", "finished_at", "duration_seconds"]],
    hide_index=True,
    column_config={
        "started_at": st.column_config.DatetimeColumn("Started (UTC)", format="HH:mm:ss"),
        "finished_at": st.column_config.DatetimeColumn("Finished (UTC)", format="HH:mm:ss"),
        "duration_seconds": st.column_config.NumberColumn("Seconds", format="%.1f"),
    },
    key="run_log",
)

# --- history -------------------------------------------------------------------------------
st.subheader("Refresh history")
st.dataframe(
    data.refresh_history().drop(columns=["run_id"], errors="ignore"),
    hide_index=True,
    column_config={"published_at": st.column_config.DatetimeColumn("Published (UTC)", format="YYYY-MM-DD HH:mm")},
    key="refresh_history",
)
