"""Cross-attention: which region each prompt word drives in a text-to-image diffusion model (DAAM)."""

import streamlit as st

from components.attention import CITATION_DAAM, controls, state, views

st.title("Cross-attention")
st.caption(
    "Generate an image and see where each word of the prompt looked: the cross-attention probabilities, summed "
    "over denoising steps, upsampled, clamped and averaged over layers and heads exactly as the DAAM library "
    f"does ({CITATION_DAAM}); the layer set is an option."
)

bundle, device = controls.model_or_stop()
request = controls.generation_form(bundle, device)
if request is not None:
    state.run(request)
if (found := state.stored()) is not None:
    views.results_view(*found)
elif request is None:  # (after a refused prompt the error says what to type)
    st.info("Type a prompt and press **Generate**.")
