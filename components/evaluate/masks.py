"""Maps against masks: the user's own image–mask pairs, and the shapes classifier against exact object masks."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components import costs, jobs, loaders
from components.evaluate.base import BenchmarkTab, decoded, json_download, label, method_picker
from components.evaluate.leakage import DEFAULT_METHODS
from components.uploads import Upload, expand_uploads
from glimpse.evaluation.masks import METRICS, MaskResult, load_mask, mask_scores

MASKS_KEY = "evaluate_masks"
SHAPES_KEY = "evaluate_shapes"
#: shapes pairs per step (32×32 scenes: a step of the default panel takes about a second)
SHAPES_CHUNK = 8


def masks_table(result: MaskResult) -> pd.DataFrame:
    return pd.DataFrame([{"method": label(r["method"]), **{m: r[m] for m in METRICS}} for r in result.rows()])


def masks_view(result: MaskResult, key: str = "mask") -> None:
    rows = result.rows()
    frame = masks_table(result)
    st.markdown(f"**{len(result.names)} image–mask pair{'s' * (len(result.names) != 1)}** on `{result.model_id}`")
    st.dataframe(frame.style.format(precision=3), hide_index=True, width="stretch")
    fig = go.Figure()
    for metric in METRICS[1:]:
        fig.add_bar(
            name=metric,
            x=frame["method"],
            y=frame[metric],
            error_y={"type": "data", "array": [r[f"{metric}_sd"] for r in rows]},
        )
    fig.update_layout(barmode="group", yaxis_range=[0, 1], height=340, margin={"t": 20}, legend={"orientation": "h"})
    st.plotly_chart(fig, width="stretch", config={"displayModeBar": False}, key=f"{key}_chart")
    json_download(result, f"{key}_scores.json", key=f"{key}_json", text="JSON of the scores and how they were made")


# ------------------------------------------------------------------------------------------ the user's masks
@dataclass(frozen=True)
class MasksRequest:
    model_id: str
    device: str
    images: tuple[Upload, ...]
    masks: tuple[Upload, ...]
    methods: tuple[str, ...]
    k: float


def score_pair(request: MasksRequest, i: int) -> MaskResult:
    """Pair ``i``: its image, its mask (which must fit the image) and every method's scores."""
    image_file, mask_file = request.images[i], request.masks[i]
    pixels = decoded(image_file.data)
    try:
        mask = load_mask(mask_file.data, pixels.shape[:2])
    except ValueError as err:
        raise ValueError(f"{mask_file.name} (for {image_file.name}): {str(err).removeprefix('mask: mask ')}") from err
    bundle = loaders.classifier(request.model_id, request.device)
    return mask_scores(bundle, [pixels], [mask], list(request.methods), names=[image_file.name], k=request.k)


class MasksTab(BenchmarkTab):
    key = MASKS_KEY
    button = "Score against the masks"
    label = "scores against your masks"
    unit = "pair"
    failure = "Cannot score"
    kept = "pairs"

    def controls(self) -> MasksRequest | None:
        st.caption(
            "Upload images and one mask per image (the same size; white inside the region that should matter, "
            "black outside), as files or zips. Images and masks pair in the order of their names (inside a zip: "
            f"their paths). Each method's map of the top-1 class of the sidebar's classifier (`{self.model_id}`) "
            "is scored at the image's size."
        )
        c1, c2 = st.columns(2)
        images = c1.file_uploader("Images (files or a zip)", accept_multiple_files=True, key="mask_images")
        masks = c2.file_uploader("Masks (files or a zip)", accept_multiple_files=True, key="mask_masks")
        methods = method_picker(["gradient", "gradcam", "smoothgrad"], key="mask_methods")
        k = st.slider("k for the top-k % IoU", 1, 50, 10, key="mask_k")
        if not (images and masks and methods):
            return None
        (images, skipped_images), (masks, skipped_masks) = expand_uploads(images), expand_uploads(masks)
        for message in (*skipped_images, *skipped_masks):
            st.warning(f"Skipped {message}")
        images, masks = sorted(images, key=lambda f: f.name), sorted(masks, key=lambda f: f.name)
        if len(images) != len(masks):
            st.error(
                f"{len(images)} images but {len(masks)} masks: upload one mask per image (they pair by file name)."
            )
            return None
        return MasksRequest(self.model_id, self.device, tuple(images), tuple(masks), tuple(methods), float(k))

    def steps(self, request: MasksRequest) -> list[jobs.Step]:
        panel = costs.as_methods(request.methods)
        explain_s = costs.explain_seconds(request.model_id, request.device, panel)
        forward_s = costs.forward_seconds(request.model_id, request.device, 1)
        return [
            jobs.Step(
                f.name,
                lambda progress, i=i: jobs.remembered(
                    (
                        "mask",
                        request.model_id,
                        request.device,
                        panel,
                        request.k,
                        request.images[i].digest,
                        request.masks[i].digest,
                        request.images[i].name,
                    ),
                    lambda: score_pair(request, i),
                ),  # fmt: skip
                costs.total(explain_s, forward_s),
            )
            for i, f in enumerate(request.images)
        ]

    def combine(self, request: MasksRequest, parts: list[MaskResult]) -> MaskResult:
        return MaskResult.merge(parts)

    def table(self, request: MasksRequest, result: MaskResult) -> pd.DataFrame:
        return masks_table(result)

    def view(self, request: MasksRequest, result: MaskResult) -> None:
        masks_view(result, key="mask")


# ------------------------------------------------------------------------------------------ shapes
@dataclass(frozen=True)
class ShapesRequest:
    device: str
    methods: tuple[str, ...]
    scenes: int
    seed: int


def shape_pairs(scenes: int, seed: int):
    from glimpse.evaluation.shapes_masks import mask_pairs

    return jobs.remembered(("shape-pairs", scenes, seed), lambda: mask_pairs(scenes, seed))


def score_shapes(request: ShapesRequest, first: int, n: int, progress=None) -> MaskResult:
    from models.shapes_classifier import MODEL_ID

    images, masks, classes, names = shape_pairs(request.scenes, request.seed)
    part = slice(first, first + n)
    return mask_scores(
        loaders.classifier(MODEL_ID, request.device),
        images[part],
        masks[part],
        list(request.methods),
        names=names[part],
        targets=classes[part],
        seed=request.seed,
        progress=progress,
    )


class ShapesTab(BenchmarkTab):
    key = SHAPES_KEY
    button = "Score the shapes classifier"
    label = "shapes against object masks"
    unit = "batch"
    failure = "Cannot score"
    kept = "batches"

    def controls(self) -> ShapesRequest | None:
        st.caption(
            "The embedded `shapes-classifier` says which of 12 coloured shapes a 32×32 scene holds (the scenes the "
            "embedded text-to-image model learnt from). Every scene comes with exact object masks: each object's "
            "class is explained and its map scored against that object's mask."
        )
        c1, c2 = st.columns([2, 1])
        methods = method_picker(DEFAULT_METHODS, key="shape_methods", where=c1)
        scenes = c2.slider("Scenes", 5, 100, 20, step=5, key="shape_scenes", help="One or two objects each.")
        return ShapesRequest(self.device, tuple(methods), int(scenes), 0) if methods else None

    def steps(self, request: ShapesRequest) -> list[jobs.Step]:
        from models.shapes_classifier import MODEL_ID

        pairs = len(shape_pairs(request.scenes, request.seed)[0])
        explain_s = costs.explain_seconds(MODEL_ID, request.device, costs.as_methods(request.methods))
        out = []
        for first in range(0, pairs, SHAPES_CHUNK):
            n = min(SHAPES_CHUNK, pairs - first)
            key = ("shapes", request, first, n)
            out.append(
                jobs.Step(
                    f"objects {first + 1}–{first + n} of {pairs}",
                    lambda progress, key=key, f=first, n=n: jobs.remembered(
                        key, lambda: score_shapes(request, f, n, progress)
                    ),
                    None if explain_s is None else n * explain_s,
                )
            )
        return out

    def combine(self, request: ShapesRequest, parts: list[MaskResult]) -> MaskResult:
        return MaskResult.merge(parts)

    def table(self, request: ShapesRequest, result: MaskResult) -> pd.DataFrame:
        return masks_table(result)

    def view(self, request: ShapesRequest, result: MaskResult) -> None:
        masks_view(result, key="shape")
