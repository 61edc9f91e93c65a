"""Compare: one image through all three lenses — saliency, complexity, cross-attention — compared and exported."""

import streamlit as st

from components.compare import controls, state, views
from components.sidebar import current
from models.registry import ModelLoadError

st.title("Compare")
st.caption(
    "One image, every lens on the same grid: the classifier's saliency maps, the complexity maps (MSG per scale, "
    "colour density) and, for a generated image, the prompt words' cross-attention. How far do they agree, and "
    "is the salient region the complex one? Export the run as a bundle; import one to restore it exactly."
)

choice = current()
controls.import_box()
try:
    request = controls.request_form(choice.model_id, choice.device)
except ModelLoadError as err:
    st.error(f"Could not load the classifier: {err}. Pick another model in the sidebar.")
    st.stop()
if request is not None:
    state.run(request)
if state.stored() is None:
    st.info("Pick an image (or a prompt), choose methods and press **Compute**.")
else:
    views.results_view()
