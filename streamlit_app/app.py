"""PRRT outcomes warehouse: `streamlit run streamlit_app/app.py`."""

import sys
from pathlib import Path

import streamlit as st

# Pages import the project's packages; make the repository importable when run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

st.set_page_config(page_title="PRRT outcomes", page_icon="☢️", layout="wide")

PAGES = Path(__file__).parent / "pages"
navigation = st.navigation(
    [
        st.Page(PAGES / "cohort.py", title="Cohort", icon=":material/groups:", default=True),
    ]
)
navigation.run()
