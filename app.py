"""Glimpse: the router. Page config, navigation, and the shared sidebar."""

import os
from pathlib import Path

import streamlit as st

from components.jobs import cancelled_notice, log_to_server
from components.loaders import freeze_startup_objects, import_model_libraries, limit_malloc_arenas
from components.sidebar import sidebar

# A file in the repository, not ":material/visibility:": a Material icon as page_icon makes the browser fetch the
# favicon from fonts.gstatic.com on every page, which fails offline (the sidebar's icons come with Streamlit).
FAVICON = Path(__file__).parent / "assets" / "favicon.png"
st.set_page_config(page_title="Glimpse", page_icon=str(FAVICON), layout="wide")

# One line per page; a page file is a thin script (controls -> one cached service call -> views).
SECTIONS = {
    "Glimpse": [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    ],
    "Lenses": [
        st.Page("app_pages/saliency.py", title="Saliency", icon=":material/center_focus_strong:"),
        st.Page("app_pages/attention.py", title="Cross-attention", icon=":material/text_fields:"),
        st.Page("app_pages/complexity.py", title="Visual complexity", icon=":material/texture:"),
        st.Page("app_pages/diffusion_classifier.py", title="Diffusion classifier", icon=":material/psychology:"),
    ],
    "Together": [
        st.Page("app_pages/compare.py", title="Compare", icon=":material/compare:"),
        st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
        st.Page("app_pages/model_lab.py", title="Model lab", icon=":material/biotech:"),
    ],
    "Teaching": [
        st.Page("app_pages/lessons.py", title="Lessons", icon=":material/school:"),
    ],
}

log_to_server()  # jobs finished and stopped, the lessons' warm-up
limit_malloc_arenas()  # once per process: each click's new script thread would otherwise start a fresh arena
nav = st.navigation({name: pages for name, pages in SECTIONS.items() if pages})
sidebar()
import_model_libraries()
freeze_startup_objects()  # once this first run ends: each later run's garbage collection skips the imports
cancelled_notice()  # work cancelled in the previous run, on any page (components/jobs.py)
if os.environ.get("GLIMPSE_WARM_LESSONS") == "1":  # a classroom server: every lesson ready before the first visit
    from components.lessons import warmup as lesson_warmup
    from components.sidebar import current

    lesson_warmup.start(current().device)
nav.run()
