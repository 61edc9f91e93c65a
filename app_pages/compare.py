"""Compare: one image through all three lenses — saliency, complexity, cross-attention — compared and exported."""

import streamlit as st

from components import compare_ui as ui
from components import compare_views as views
from components.sidebar import current

st.title("Compare")
st.caption(
    "One image, every lens on the same grid: the classifier's saliency maps, the complexity maps (MSG per scale, "
    "colour density) and, for a generated image, the prompt words' cross-attention. How far do they agree, and "
    "is the salient region the complex one? Export the run as a bundle; import one to restore it exactly."
)

choice = current()
ui.import_box()
try:
    request = ui.controls(choice.model_id, choice.device)
except ui.ModelLoadError as err:
    st.error(f"Could not load the classifier: {err}. Pick another model in the sidebar.")
    st.stop()
if request is not None:
    ui.run(choice.model_id, choice.device, *request)
if ui.stored() is None:
    st.info("Pick an image (or a prompt), choose methods and press **Compute**.")
else:
    views.results_view()
