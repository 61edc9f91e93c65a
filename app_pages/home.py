"""Home: what Glimpse shows, links to the lenses, and a first look — the classifier's top-5 for an image."""

from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from components import loaders
from components.image_input import image_picker, size_warning
from components.sidebar import current
from models.registry import ModelLoadError

ROOT = Path(__file__).resolve().parents[1]

LENSES = [
    (
        "app_pages/saliency.py",
        "Saliency",
        ":material/local_fire_department:",
        "Which pixels drove the classifier's answer? Gradient maps (vanilla, SmoothGrad, Integrated "
        "Gradients), CAMs (Grad-CAM, Grad-CAM++, Score-CAM …) and occlusion, as signed maps with their "
        "colour bars, for any class you pick.",
    ),
    (
        "app_pages/complexity.py",
        "Visual complexity",
        ":material/texture:",
        "How busy is a picture? Multi-scale gradient (MSG) and unique-colour (MUC) features, per scale, "
        "next to the map of where the edges and colours are.",
    ),
    (
        "app_pages/attention.py",
        "Cross-attention",
        ":material/chat:",
        "Where does a text-to-image diffusion model put each word of the prompt? Per-token cross-attention "
        "maps over layers and time steps, from the embedded shapes model or a Hugging Face pipeline.",
    ),
    (
        "app_pages/compare.py",
        "Compare and measure",
        ":material/balance:",
        "Which map is right? Deletion/insertion curves, sanity checks (randomised weights), agreement "
        "between methods, side by side, exportable.",
    ),
]


def lens_card(path: str, title: str, icon: str, text: str) -> None:
    with st.container(border=True):
        st.markdown(f"#### {title}")
        st.write(text)
        if (ROOT / path).is_file():
            try:
                st.page_link(path, label=f"Open {title}", icon=icon)
            except StreamlitPageNotFoundError:
                # The file exists but is not in app.SECTIONS yet (a page being written): no link, no crash.
                st.caption("Coming soon.")
        else:
            st.caption("Coming soon.")


st.title("Glimpse")
st.markdown(
    "**See what vision models see.** Glimpse draws what a classifier looks at (saliency), how visually "
    "complex an image is (MSG/MUC), and where a text-to-image model attends for each word (cross-attention) — "
    "and measures which of these maps deserve trust. Everything runs offline on the embedded models; every "
    "computation is also a Python function and a `python -m glimpse` command."
)

cols = st.columns(2)
for i, lens in enumerate(LENSES):
    with cols[i % 2]:
        lens_card(*lens)

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
        try:
            preds = loaders.predictions(choice.model_id, choice.device, image)
        except (ModelLoadError, ValueError) as err:
            st.error(f"Could not classify with {choice.model_id!r}: {err}. Pick another model in the sidebar.")
        else:
            size_warning(image, loaders.classifier(choice.model_id, choice.device).input_size)
            st.markdown(f"**Top 5** · `{choice.model_id}` on {choice.device}")
            table = pd.DataFrame(
                {"label": [label for _, label, _ in preds], "probability": [p for _, _, p in preds]},
                index=pd.Index([idx for idx, _, _ in preds], name="class"),
            )
            st.dataframe(
                table,
                column_config={
                    "probability": st.column_config.ProgressColumn(
                        "probability", format="percent", min_value=0.0, max_value=1.0
                    )
                },
                width="stretch",
            )

with st.expander("Optional model sources"):
    for name in ("torchvision", "timm"):
        problem = loaders.extra_status(name)
        if problem is None:
            st.success(f"{name} is installed: use `{name}:<name>` ids in the sidebar.")
        else:
            st.info(f"{name} is not available. {problem}")
    st.caption("Hugging Face ids (`hf:<repo id>` or `hf:/path/to/folder`) need a connection the first time.")
