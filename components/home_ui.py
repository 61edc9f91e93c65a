"""The home page's pieces: the lens cards, the first look (the classifier's top-5) and the optional sources."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from components import loaders
from components.image_input import ImageChoice, size_warning
from models.registry import ModelLoadError

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
        "app_pages/diffusion_classifier.py",
        "Diffusion classifier",
        ":material/psychology:",
        "A text-to-image model as a zero-shot classifier: which prompt does it find most likely for an image? "
        "Error curves over timesteps, where the top two prompts differ, and hard negatives that test colour, "
        "shape and place.",
    ),
    (
        "app_pages/compare.py",
        "Compare",
        ":material/balance:",
        "Every lens on one image, side by side: agreement between methods, complexity inside the salient "
        "region, generate → classify → explain, exportable as a bundle.",
    ),
    (
        "app_pages/evaluate.py",
        "Evaluate",
        ":material/fact_check:",
        "Which map is right? Tested where the evidence is known: leakage onto a null patch (BlockDigits, "
        "standard vs robust model), DiffROAR, exact object masks, your own masks, class sensitivity.",
    ),
]


def lens_cards() -> None:
    """One card per lens, two a row, each with a link to its page."""
    cols = st.columns(2)
    for i, (path, title, icon, text) in enumerate(LENSES):
        with cols[i % 2], st.container(border=True):
            st.markdown(f"#### {title}")
            st.write(text)
            try:
                st.page_link(path, label=f"Open {title}", icon=icon)
            except StreamlitPageNotFoundError:  # a page file not (yet) in app.SECTIONS: no link, no crash
                st.caption("Coming soon.")


def top5_view(model_id: str, device: str, image: ImageChoice) -> None:
    """The classifier's top-5 for the image as a table with probability bars, or what went wrong."""
    try:
        preds = loaders.predictions(model_id, device, image)
    except (ModelLoadError, ValueError) as err:
        st.error(f"Could not classify with {model_id!r}: {err}. Pick another model in the sidebar.")
        return
    size_warning(image, loaders.classifier(model_id, device).input_size)
    st.markdown(f"**Top 5** · `{model_id}` on {device}")
    table = pd.DataFrame(
        {"label": [label for _, label, _ in preds], "probability": [p for _, _, p in preds]},
        index=pd.Index([idx for idx, _, _ in preds], name="class"),
    )
    probability = st.column_config.ProgressColumn("probability", format="percent", min_value=0.0, max_value=1.0)
    st.dataframe(table, column_config={"probability": probability}, width="stretch")


def optional_sources() -> None:
    """Whether torchvision and timm import here, and what Hugging Face ids need."""
    with st.expander("Optional model sources"):
        for name in ("torchvision", "timm"):
            problem = loaders.extra_status(name)
            if problem is None:
                st.success(f"{name} is installed: use `{name}:<name>` ids in the sidebar.")
            else:
                st.info(f"{name} is not available. {problem}")
        st.caption("Hugging Face ids (`hf:<repo id>` or `hf:/path/to/folder`) need a connection the first time.")
