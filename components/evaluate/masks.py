"""Maps against masks: the user's own image–mask pairs, and the shapes classifier against exact object masks."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components import costs, jobs, loaders
from components.evaluate.base import BenchmarkTab, Texts, decoded, label, method_picker, step
from components.evaluate.leakage import DEFAULT_METHODS
from components.uploads import Upload, expand_uploads
from glimpse.evaluation.masks import METRICS, MaskResult, load_mask, mask_scores

MASKS_KEY = "evaluate_masks"
SHAPES_KEY = "evaluate_shapes"
#: shapes pairs per step (32×32 scenes: a step of the default panel takes about a second)
SHAPES_CHUNK = 8


def masks_table(result: MaskResult) -> pd.DataFrame:
    return pd.DataFrame([{"method": label(r["method"]), **{m: r[m] for m in METRICS}} for r in result.rows()])


class MaskScoresTab(BenchmarkTab):
    """What both mask tabs show: the pairs, the table, a bar chart of the scores and the downloads."""

    result = MaskResult

    def table(self, request, result: MaskResult) -> pd.DataFrame:
        return masks_table(result)

    def heading(self, request, result: MaskResult) -> str:
        return f"**{len(result.names)} image–mask pair{'s' * (len(result.names) != 1)}** on `{result.model_id}`"

    def view(self, request, result: MaskResult) -> None:
        super().view(request, result)
        rows, frame = result.rows(), masks_table(result)
        fig = go.Figure()
        for metric in METRICS[1:]:
            fig.add_bar(
                name=metric,
                x=frame["method"],
                y=frame[metric],
                error_y={"type": "data", "array": [r[f"{metric}_sd"] for r in rows]},
            )
        fig.update_layout(
            barmode="group", yaxis_range=[0, 1], height=340, margin={"t": 20}, legend={"orientation": "h"}
        )
        st.plotly_chart(fig, width="stretch", config={"displayModeBar": False}, key=f"{self.key}_chart")


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


class MasksTab(MaskScoresTab):
    texts = Texts(MASKS_KEY, "Score against the masks", "scores against your masks", "pair", "Cannot score", "pairs")
    stem = "mask_scores"
    intro = (
        "Upload images and one mask per image (the same size; white inside the region that should matter, black "
        "outside), as files or zips. Images and masks pair in the order of their names (inside a zip: their paths). "
        "Each method's map of the top-1 class of the sidebar's classifier (`{model_id}`) is scored at the image's size."
    )

    def controls(self) -> MasksRequest | None:
        c1, c2 = st.columns(2)
        images = c1.file_uploader("Images (files or a zip)", accept_multiple_files=True, key="mask_images")
        masks = c2.file_uploader("Masks (files or a zip)", accept_multiple_files=True, key="mask_masks")
        methods = method_picker(["gradient", "gradcam", "smoothgrad"], key="mask_methods", bundle=self.bundle())
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
        estimate = costs.total(explain_s, costs.forward_seconds(request.model_id, request.device, 1))
        return [
            step(
                image.name,
                ("mask", request.model_id, request.device, panel, request.k, image.digest, mask.digest, image.name),
                lambda progress, i=i: score_pair(request, i),
                estimate,
            )
            for i, (image, mask) in enumerate(zip(request.images, request.masks))
        ]


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


class ShapesTab(MaskScoresTab):
    texts = Texts(
        SHAPES_KEY, "Score the shapes classifier", "shapes against object masks", "batch", "Cannot score", "batches"
    )
    stem = "shape_scores"
    intro = (
        "The embedded `shapes-classifier` says which of 12 coloured shapes a 32×32 scene holds (the scenes the "
        "embedded text-to-image model learnt from). Every scene comes with exact object masks: each object's class "
        "is explained and its map scored against that object's mask."
    )

    def controls(self) -> ShapesRequest | None:
        c1, c2 = st.columns([2, 1])
        methods = method_picker(DEFAULT_METHODS, key="shape_methods", where=c1)
        scenes = c2.slider("Scenes", 5, 100, 20, step=5, key="shape_scenes", help="One or two objects each.")
        return ShapesRequest(self.device, tuple(methods), int(scenes), 0) if methods else None

    def steps(self, request: ShapesRequest) -> list[jobs.Step]:
        from models.shapes_classifier import MODEL_ID

        pairs = len(shape_pairs(request.scenes, request.seed)[0])
        explain_s = costs.explain_seconds(MODEL_ID, request.device, costs.as_methods(request.methods))
        return [
            step(
                f"objects {first + 1}–{first + n} of {pairs}",
                ("shapes", request, first, n),
                lambda progress, f=first, n=n: score_shapes(request, f, n, progress),
                None if explain_s is None else n * explain_s,
            )
            for first in range(0, pairs, SHAPES_CHUNK)
            for n in [min(SHAPES_CHUNK, pairs - first)]
        ]
