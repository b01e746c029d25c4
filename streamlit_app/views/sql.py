"""SQL: read-only queries on the published warehouse, in a locked-down sandbox (prrt.sql_console)."""

import streamlit as st

from prrt import sql_console
from streamlit_app import data
from streamlit_app.downloads import csv_bytes

MAX_ROWS = 10_000
TIMEOUT_S = 10
MEMORY_LIMIT = "1GB"
MAX_CELL_CHARS = 1_000


def _user() -> str:
    """The signed-in user's identity (one query at a time each), "local" without sign-in."""
    try:
        return getattr(st.user, "email", None) or "local"
    except Exception:  # no sign-in configured
        return "local"


st.title("SQL")
st.caption(
    f"One read-only query at a time per user on a pseudonymised copy of the published warehouse's "
    f"{', '.join(f'`{s}`' for s in sql_console.ALLOWED_SCHEMAS)} schemas (DuckDB SQL). "
    f"At most {MAX_ROWS:,} rows, text cells cut at {MAX_CELL_CHARS:,} characters; a query is "
    f"stopped after {TIMEOUT_S} s or {MEMORY_LIMIT} of memory. Not available: the identifying "
    "`ingest` and `lineage` schemas, dbt's working layers, patient_id and rejected values in "
    "`audit`, server paths, hash functions (sha256, md5, hash...) and query()/query_table(); "
    "no files, no extensions, no settings."
)

if data.version() is None:
    st.error(f"No warehouse at {data.warehouse_file()}: run `prrt refresh` first.")
    st.stop()

if "sql" not in st.session_state:
    st.session_state["sql"] = next(iter(sql_console.EXAMPLES.values()))


def _load_example() -> None:
    st.session_state["sql"] = sql_console.EXAMPLES[st.session_state["example"]]
    st.session_state.pop("sql_outcome", None)


st.selectbox("Start from an example", list(sql_console.EXAMPLES), key="example", on_change=_load_example)
st.text_area("Query", key="sql", height=260)
st.html("<style>.st-key-sql textarea { font-family: 'Source Code Pro', monospace; font-size: 0.85rem; }</style>")
if st.button("Run", key="run", type="primary", icon=":material/play_arrow:", shortcut="Ctrl+Enter"):
    try:
        with st.spinner("Running…"):
            st.session_state["sql_outcome"] = sql_console.run_query(
                data.warehouse_file(), st.session_state["sql"],
                user=_user(), max_rows=MAX_ROWS, timeout_s=TIMEOUT_S, memory_limit=MEMORY_LIMIT,
                max_cell_chars=MAX_CELL_CHARS,
            )
    except sql_console.QueryRejected as rejected:
        st.session_state["sql_outcome"] = rejected

outcome = st.session_state.get("sql_outcome")
if isinstance(outcome, sql_console.QueryRejected):
    st.error(outcome.message, icon=":material/block:")
elif isinstance(outcome, sql_console.QueryResult):
    rows = len(outcome.frame)
    st.caption(f"{rows:,} row{'s' if rows != 1 else ''} in {outcome.elapsed_s:.2f} s")
    if outcome.truncated:
        st.warning(
            f"Only the first {MAX_ROWS:,} rows are shown: aggregate, filter or add a LIMIT "
            "(or use the duckdb CLI for full extracts).",
            icon=":material/content_cut:",
        )
    st.dataframe(outcome.frame, hide_index=True)
    st.download_button(
        "Download CSV", csv_bytes(outcome.frame), file_name="query.csv",
        mime="text/csv", icon=":material/download:", on_click="ignore",
    )

with st.expander("Tables and columns", icon=":material/schema:"):
    columns = sql_console.describe_columns(sql_console.visible_columns(data.console_columns()))
    tables = sql_console.table_descriptions()
    names = list(dict.fromkeys(zip(columns["schema_name"], columns["table_name"])))
    chosen = st.selectbox("Table", names, format_func=lambda name: f"{name[0]}.{name[1]}", key="schema_table")
    if chosen is not None:
        if tables.get(chosen):
            st.markdown(tables[chosen])
        st.dataframe(
            columns[(columns["schema_name"] == chosen[0]) & (columns["table_name"] == chosen[1])]
            [["column_name", "data_type", "description"]],
            hide_index=True,
            column_config={"description": st.column_config.TextColumn(width="large")},
        )
    st.caption(
        "Descriptions come from the dbt project (`dbt/models/**/*.yml`). Hidden from the console: "
        + ", ".join(f"`{s}`" for s in sql_console.HIDDEN_SCHEMAS)
        + ". Left out of the console's copy: "
        + "; ".join(f"`{schema}.{table}.{column}`" for (schema, table), columns in sql_console.HIDDEN_COLUMNS.items()
                    for column in columns)
        + "."
    )
