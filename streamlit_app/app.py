"""PRRT outcomes warehouse: `streamlit run streamlit_app/app.py`."""

import sys
from pathlib import Path

import streamlit as st

# Pages import the project's packages; make the repository importable when run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

st.set_page_config(page_title="PRRT outcomes", page_icon="☢️", layout="wide")

PAGES = Path(__file__).parent / "views"  # not "pages/": Streamlit would also run those files as a legacy multipage app
navigation = st.navigation(
    {
        "Outcomes": [
            st.Page(PAGES / "cohort.py", title="Cohort", icon=":material/groups:", default=True),
            st.Page(PAGES / "response.py", title="Response", icon=":material/trending_down:"),
            st.Page(PAGES / "toxicity.py", title="Toxicity", icon=":material/bloodtype:"),
            st.Page(PAGES / "survival.py", title="Survival", icon=":material/monitor_heart:"),
            st.Page(PAGES / "performance_status.py", title="Performance status", icon=":material/directions_walk:"),
        ],
        "Warehouse": [
            st.Page(PAGES / "data_quality.py", title="Data quality", icon=":material/fact_check:"),
            st.Page(PAGES / "sql.py", title="SQL", icon=":material/terminal:"),
        ],
    }
)
navigation.run()
