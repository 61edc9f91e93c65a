"""Evaluate: which saliency map is right, tested where the evidence is known (BlockDigits) or marked (masks)."""

import streamlit as st

from components import evaluate
from components.sidebar import current

st.title("Evaluate")
st.caption(
    "A saliency map is a claim; test it where the answer is known. Each BlockDigits image stacks a digit (the "
    "label depends on it) and a fixed patch that is the same for every class: evidence on the patch is leakage "
    f"({evaluate.CITATION}). Two small CNNs ship with Glimpse, trained normally and adversarially."
)

choice = current()
evaluate.page(choice.model_id, choice.device)
