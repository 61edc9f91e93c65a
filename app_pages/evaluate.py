"""Evaluate: which saliency map is right, tested where the evidence is known (BlockDigits) or marked (masks)."""

import streamlit as st

from components import evaluate_ui as ui
from components.sidebar import current

st.title("Evaluate")
st.caption(
    "A saliency map is a claim; test it where the answer is known. Each BlockDigits image stacks a digit (the "
    "label depends on it) and a fixed patch that is the same for every class: evidence on the patch is leakage "
    f"({ui.CITATION}). Two small CNNs ship with Glimpse, trained normally and adversarially."
)

choice = current()
leakage_tab, roar_tab, shapes_tab, masks_tab, sensitivity_tab, pgi_tab, dataset_tab = st.tabs(
    [
        "Leakage (BlockDigits)",
        "DiffROAR (BlockDigits)",
        "Shapes (exact masks)",
        "Your masks",
        "Class sensitivity",
        "PGI / PGU",
        "A data set",
    ]
)
with leakage_tab:
    request = ui.controls(choice.device)
    if request is not None:
        ui.run(request)
    if ui.stored() is None:
        st.info("Pick models and methods and press **Run**.")
    else:
        ui.results_view()
with roar_tab:
    roar = ui.diffroar_controls(choice.device)
    if roar is not None:
        ui.diffroar_run(roar)
    ui.diffroar_view()
    st.divider()
    ui.inversion_section()
with shapes_tab:
    ui.shapes_tab(choice.device)
with masks_tab:
    ui.masks_tab(choice.model_id, choice.device)
with sensitivity_tab:
    ui.sensitivity_tab(choice.model_id, choice.device)
with pgi_tab:
    ui.pgi_tab(choice.model_id, choice.device)
with dataset_tab:
    ui.dataset_tab(choice.model_id, choice.device)
