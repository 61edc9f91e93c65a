"""Diffusion classifier: a text-to-image model scores an image against candidate prompts by denoising error."""

import streamlit as st

from components.attention.controls import model_or_stop
from components.diffusion_classifier import CITATION, controls, state, views

st.title("Diffusion classifier")
st.caption(
    "Which prompt explains this image best? The image is noised at evenly spaced timesteps (the same noise for "
    "every prompt) and the model denoises it under each candidate; the lowest error wins "
    f"({CITATION}). Hard negatives test composition: colours or shapes swapped, the relation flipped."
)

bundle, device = model_or_stop()
request = controls.request_controls(bundle, device)
if request is not None:
    state.run(request)
if state.stored() is not None:
    views.results_view()
else:
    st.info("Pick an image and candidates and press **Classify**.")
