"""Evaluate: which saliency map is right, tested where the evidence is known (BlockDigits leakage)."""

import streamlit as st

from components import evaluate_ui as ui
from components.sidebar import current

st.title("Evaluate")
st.caption(
    "A saliency map is a claim; test it where the answer is known. Each BlockDigits image stacks a digit (the "
    "label depends on it) and a fixed patch that is the same for every class: evidence on the patch is leakage "
    f"({ui.CITATION}). Two small CNNs ship with Glimpse, trained normally and adversarially."
)

request = ui.controls(current().device)
if request is not None:
    ui.run(request)
if ui.stored() is None:
    st.info("Pick models and methods and press **Run**.")
else:
    ui.results_view()
