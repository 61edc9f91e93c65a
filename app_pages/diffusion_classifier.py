"""Diffusion classifier: a text-to-image model scores an image against candidate prompts by denoising error."""

import streamlit as st

from components import attention_ui, session_results
from components import diffusion_classifier_ui as ui
from components.sidebar import current
from glimpse.display import resize_image

st.title("Diffusion classifier")
st.caption(
    "Which prompt explains this image best? The image is noised at evenly spaced timesteps (the same noise for "
    "every prompt) and the model denoises it under each candidate; the lowest error wins "
    f"({ui.CITATION}). Hard negatives test composition: colours or shapes swapped, the relation flipped."
)

device = current().device
bundle = attention_ui.model_picker(device)
if bundle is None:
    st.stop()
picked = ui.image_picker()
if picked is None:
    st.stop()
name, image = picked
left, right = st.columns([1, 3])
left.image(resize_image(image, (ui.SHOW, ui.SHOW)), caption=name, width="stretch")
with right:
    prompts = ui.candidates(bundle, name)
    samples, keep, loss, weighting, seed = ui.settings()
    go = st.button("Classify", type="primary", icon=":material/play_arrow:", disabled=len(prompts) < 2)
    if len(prompts) < 2:
        st.caption("Give at least two candidate prompts.")
    else:
        ui.cost_caption(bundle, device, tuple(prompts), samples, keep)
if go:
    ui.run(ui.Request(bundle.model_id, device, image, name, tuple(prompts), samples, keep, loss, weighting, seed))
if session_results.has(ui.RESULT_KEY):
    ui.results_view()
else:
    st.info("Pick an image and candidates and press **Classify**.")
