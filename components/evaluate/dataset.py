"""Faithfulness over a whole data set (glimpse.batch): deletion and insertion AUCs, one Parquet row per image."""

from __future__ import annotations

import streamlit as st


def dataset_tab(model_id: str, device: str) -> None:
    """Deletion and insertion AUCs of each method's map for every image of a data set (glimpse.batch)."""
    from components.batch_ui import dataset_runner
    from glimpse.batch import EvaluateTask
    from glimpse.saliency import list_methods
    from models.registry import load_classifier

    st.markdown(
        f"Faithfulness over a whole data set: for every image, each method's map on `{model_id}` (the sidebar's "
        "classifier) and the deletion and insertion AUCs of the target's probability (Petsiuk et al. 2018), one "
        "Parquet row per image."
    )
    names = [m.name for m in list_methods() if not m.slow]
    methods = st.multiselect("Methods", names, default=["gradient", "gradcam"], key="eval_ds_methods")
    steps = st.slider("Deletion/insertion steps", 5, 50, 20, key="eval_ds_steps")
    if not methods:
        st.info("Pick at least one method.")
        return

    def make(out: str, threads: int | None) -> EvaluateTask:
        return EvaluateTask(
            steps=steps, model_id=model_id, methods=tuple(methods), out=out, loader=load_classifier, device=device,
            threads=threads,
        )  # fmt: skip

    def seconds_per_image() -> float | None:
        """A panel's explain, then deletion and insertion curves: 2 × (steps + 1) forward passes per map."""
        from components import costs

        panel = costs.as_methods(methods)
        forwards = costs.forward_seconds(model_id, device, 2 * (steps + 1) * len(methods))
        return costs.total(costs.explain_seconds(model_id, device, panel), forwards)

    dataset_runner("evaluate", make, key="eval_dataset", seconds_per_image=seconds_per_image)
