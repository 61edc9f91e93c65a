"""Saliency: which pixels does the classifier's decision depend on? Many methods side by side, checked."""

import streamlit as st

from components import loaders, sidebar
from components.image_input import image_picker, size_warning
from components.saliency import controls, views
from glimpse.saliency import list_methods

st.title("Saliency")
st.caption(
    "Pick an image and a class, choose methods, press **Compute**. Maps are raw and signed; the display "
    "options below the grid only change how they are drawn."
)

choice = sidebar.current()
bundle = loaders.classifier_or_stop(choice.model_id, choice.device)
infos = {m.name: m for m in list_methods()}

left, right = st.columns([1, 1.4])
with left:
    image = image_picker(key="saliency")
if image is None:
    st.info("Pick a sample image or upload one to begin.")
    st.stop()
top = loaders.predictions(choice.model_id, choice.device, image)
with left:
    size_warning(image, bundle.input_size)
with right:
    st.markdown(f"**Top-5 predictions** · `{bundle.model_id}`")
    views.predictions_view(top)
    target = controls.target_controls(bundle, top)
selected = controls.method_picker(list(infos.values()), bundle)

# No form: a parameter change reruns the page (cheap: maps are computed only on Compute), so the cost below
# and the layer check always describe the panel as it stands.
methods = controls.method_controls(bundle, selected, infos)
if selected:
    views.activation_warning(choice.model_id, choice.device, image, methods, infos)
    views.cost_view(choice.model_id, choice.device, methods, infos)
if controls.compute_button(methods):
    controls.run(choice.model_id, choice.device, image, target, methods)
views.results_view(image, choice.model_id, infos)
