"""Visual complexity: the features of Sarıtaş et al. (2025), where they come from, batch scoring, the paper's model."""

import streamlit as st

from components.complexity import CITATION, views

st.title("Visual complexity")
st.caption(
    f"How busy is a picture? Structure (gradients, edges), colour and segment counts, exactly as in {CITATION}. "
    "Values equal the paper's reference code, so they plug into its published regressions."
)

single_tab, batch_tab, model_tab = st.tabs(["Single image", "Batch", "The paper's model"])
with single_tab:
    views.single_image_tab()
with batch_tab:
    views.batch_tab()
with model_tab:
    views.paper_model_tab()
