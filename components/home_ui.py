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
    (
        "app_pages/model_lab.py",
        "Model lab",
        ":material/biotech:",
        "Inside the classifier: the image a class or a channel wants most (feature visualisation, one per facet), "
        "the photographs and patches that excite a channel, and a walk from one image to another that the model "
        "cannot tell apart.",
    ),
    (
        "app_pages/lessons.py",
        "Lessons",
        ":material/school:",
        "Eight short lessons, each a claim checked live on the embedded models — noisy gradients, the sanity "
        "check, robust models, class sensitivity, complexity, a word over time, colour vs shape, left and right — "
        "with a question, its answer and the paper. A presenter mode for the classroom.",
    ),
]

#: Width of the top-5 table's probability column, in pixels: the bar and "100.00%" always fit beside any label.
PROBABILITY_WIDTH = 140


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
    table, config = top5_table(preds)
    st.dataframe(table, column_config=config, width="stretch", hide_index=True)


def top5_table(preds: list[tuple[int, str, float]]) -> tuple[pd.DataFrame, dict]:
    """The top-5 as a table and its column configuration: the probability first, at a fixed width, as a bar
    with its percentage; then the class index and the label, which takes the rest of the width (a long label
    is cut there, in full on hover). With the label first, a long one pushed the probability column down to
    "1." in a half-width column."""
    table = pd.DataFrame(
        {
            "probability": [float(p) for _, _, p in preds],
            "class": [int(idx) for idx, _, _ in preds],
            "label": [label for _, label, _ in preds],
        }
    )
    config = {
        "probability": st.column_config.ProgressColumn(
            "probability", format="percent", min_value=0.0, max_value=1.0, width=PROBABILITY_WIDTH, pinned=True
        ),
        "class": st.column_config.NumberColumn("class", format="%d", width=56),
        "label": st.column_config.TextColumn("label"),
    }
    return table, config


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
