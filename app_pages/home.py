"""Home: what Glimpse shows, links to the lenses, and a first look — the classifier's top-5 for an image."""

import streamlit as st

from components import home_ui as ui
from components.image_input import image_picker
from components.sidebar import current

st.title("Glimpse")
st.markdown(
    "**See what vision models see.** Glimpse draws what a classifier looks at (saliency), how visually "
    "complex an image is (MSG/MUC), and where a text-to-image model attends for each word (cross-attention) — "
    "and measures which of these maps deserve trust. Everything runs offline on the embedded models; every "
    "computation is also a Python function and a `python -m glimpse` command."
)
ui.lens_cards()

st.divider()
st.subheader("First look: what does the classifier see?")
choice = current()
left, right = st.columns([1, 1])
with left:
    image = image_picker(key="home")
with right:
    if image is None:
        st.info("Pick a sample or upload a photo to classify it.")
    else:
        ui.top5_view(choice.model_id, choice.device, image)
ui.optional_sources()
