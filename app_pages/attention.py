"""Cross-attention: which region each prompt word drives in a text-to-image diffusion model (DAAM)."""

import streamlit as st

from components import attention_ui as ui
from components.sidebar import current

st.title("Cross-attention")
st.caption(
    "Generate an image and see where each word of the prompt looked: the cross-attention probabilities, summed "
    "over denoising steps, upsampled, clamped and averaged over layers and heads exactly as the DAAM library "
    f"does ({ui.CITATION_DAAM}); the layer set is an option."
)

device = current().device
bundle = ui.model_picker(device)
if bundle is None:
    st.stop()
request = ui.generation_form(bundle, device)
if request is not None:
    ui.run(request)
if ui.stored() is not None:
    ui.results_view()
elif request is None:  # (after a refused prompt the error says what to type)
    st.info("Type a prompt and press **Generate**.")
