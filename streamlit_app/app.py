"""PRRT outcomes warehouse: `streamlit run streamlit_app/app.py` (or `python -m streamlit_app.serve`).

No page runs before the gate (streamlit_app/signin.py) has given the user a role: the
navigation holds only the pages of that role, so a page outside it is neither listed nor
reachable by its URL.
"""

import sys
from pathlib import Path

import duckdb
import streamlit as st

# Pages import the project's packages; make the repository importable when run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamlit_app import data
from streamlit_app.access import Role
from streamlit_app.signin import gate

st.set_page_config(page_title="PRRT outcomes", page_icon="☢️", layout="wide")

role = gate()  # stops the run unless the user (signed in, or local) has a role

try:
    if data.development_key_in_use():  # a Markdown line, not an alert: pages' tests count alerts
        st.markdown(":orange[**Development key:** patient_key uses the public development key, so anyone can "
                    "rebuild it from record numbers. Demo or synthetic data only.]")
except duckdb.Error:  # a truncated or damaged file: say what to do, not a bare IOException
    st.error("The published warehouse cannot be read (damaged or incomplete). Run `prrt refresh` to publish it "
             "again; its log is in `.builds/` next to the warehouse.", icon=":material/error:")
    st.stop()

PAGES = Path(__file__).parent / "views"  # not "pages/": Streamlit would also run those files as a legacy multipage app
warehouse = [st.Page(PAGES / "sql.py", title="SQL", icon=":material/terminal:")]
if role is Role.DATA_MANAGER:
    warehouse.insert(0, st.Page(PAGES / "data_quality.py", title="Data quality", icon=":material/fact_check:"))
navigation = st.navigation(
    {
        "Outcomes": [
            st.Page(PAGES / "cohort.py", title="Cohort", icon=":material/groups:", default=True),
            st.Page(PAGES / "response.py", title="Response", icon=":material/trending_down:"),
            st.Page(PAGES / "toxicity.py", title="Toxicity", icon=":material/bloodtype:"),
            st.Page(PAGES / "survival.py", title="Survival", icon=":material/monitor_heart:"),
            st.Page(PAGES / "performance_status.py", title="Performance status", icon=":material/directions_walk:"),
        ],
        "Warehouse": warehouse,
    }
)
navigation.run()
