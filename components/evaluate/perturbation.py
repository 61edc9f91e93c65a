"""Benchmarks over a set of photographs on the sidebar's classifier: class sensitivity and PGI / PGU."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from components import costs, jobs, loaders
from components.evaluate.base import (
    BenchmarkTab,
    ImagesRequest,
    Texts,
    image_uploader,
    images_or_samples,
    label,
    method_picker,
    per_image,
    uploads_of,
)
from glimpse.evaluation.pgi import PgiResult, pgi_pgu
from glimpse.evaluation.sensitivity import SensitivityResult, class_sensitivity

SENSITIVITY_KEY = "evaluate_class_sensitivity"
PGI_KEY = "evaluate_pgi"


# ------------------------------------------------------------------------------------------ class sensitivity
SensitivityRequest = ImagesRequest


class SensitivityTab(BenchmarkTab):
    texts = Texts(
        SENSITIVITY_KEY, "Measure class sensitivity", "class sensitivity", "image", "Cannot measure", "images"
    )
    result = SensitivityResult
    intro = (
        "Does a method's map change with the class it explains? Per image, the Spearman correlation between its map "
        "of the most likely and of the least likely class of the sidebar's classifier (`{model_id}`); the mean over "
        "the images. 1 = the same map for any class; lower is better."
    )

    def controls(self) -> SensitivityRequest | None:
        uploads = image_uploader("sens_images")
        methods = method_picker(["gradient", "guided_backprop", "gradcam", "smoothgrad"], key="sens_methods",
                                bundle=self.bundle())  # fmt: skip
        if not methods:
            return None
        return SensitivityRequest(self.model_id, self.device, uploads_of(uploads), tuple(methods))

    def steps(self, request: SensitivityRequest) -> list[jobs.Step]:
        panel = costs.as_methods(request.methods)
        explain_s = costs.explain_seconds(request.model_id, request.device, panel)
        estimate = costs.total(explain_s, explain_s, costs.forward_seconds(request.model_id, request.device, 1))

        def run(i, name, pixels, progress):
            bundle = loaders.classifier(request.model_id, request.device)
            return class_sensitivity(bundle, [pixels], list(request.methods), names=[name])

        key = ("sensitivity", request.model_id, request.device, panel)
        return per_image(images_or_samples(request.uploads), run, key, estimate)

    def table(self, request: SensitivityRequest, result: SensitivityResult) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "method": label(r["method"]),
                    "class sensitivity (ρ)": r["class_sensitivity"],
                    "sd": r["class_sensitivity_sd"],
                    "images": r["images"],
                }
                for r in result.rows()
            ]
        )

    def heading(self, request: SensitivityRequest, result: SensitivityResult) -> str:
        return f"**{len(result.image_names)} images** on `{result.model_id}`"


# ------------------------------------------------------------------------------------------ PGI / PGU
@dataclass(frozen=True)
class PgiRequest(ImagesRequest):
    ks: tuple[float, ...]
    perturbation: str
    draws: int


class PgiTab(BenchmarkTab):
    texts = Texts(PGI_KEY, "Measure PGI / PGU", "PGI / PGU", "image", "Cannot measure", "images")
    result, stem, precision = PgiResult, "pgi_pgu", 4
    intro = (
        "Perturb the superpixels a map ranks highest (PGI: the prediction should move, higher is better) or all the "
        "others (PGU: it should not, lower is better), on the sidebar's classifier (`{model_id}`). No method wins "
        "every neighbourhood, so each k is shown."
    )

    def controls(self) -> PgiRequest | None:
        uploads = image_uploader("pgi_images")
        methods = method_picker(["gradient", "gradcam", "occlusion"], key="pgi_methods", bundle=self.bundle())
        c1, c2, c3 = st.columns(3)
        ks = c1.multiselect("k (share of superpixels)", [0.1, 0.25, 0.5], default=[0.25], key="pgi_ks")
        perturbation = c2.radio("Perturbation", ["gaussian", "baseline"], horizontal=True, key="pgi_perturbation")
        draws = c3.slider("Noise draws", 5, 100, 20, step=5, key="pgi_draws", disabled=perturbation == "baseline")
        if not (methods and ks):
            return None
        return PgiRequest(
            self.model_id, self.device, uploads_of(uploads), tuple(methods), tuple(sorted(ks)), perturbation, int(draws)
        )

    def steps(self, request: PgiRequest) -> list[jobs.Step]:
        panel = costs.as_methods(request.methods)
        explain_s = costs.explain_seconds(request.model_id, request.device, panel)
        draws = request.draws if request.perturbation == "gaussian" else 1
        forwards = 2 + len(request.methods) * len(request.ks) * 2 * draws  # top-1, p0, then every perturbation
        estimate = costs.total(explain_s, costs.forward_seconds(request.model_id, request.device, forwards))

        def run(i, name, pixels, progress):
            bundle = loaders.classifier(request.model_id, request.device)
            return pgi_pgu(
                bundle,
                [pixels],
                list(request.methods),
                names=[name],
                ks=request.ks,
                perturbation=request.perturbation,
                draws=request.draws,
                first=i,
            )

        key = ("pgi", request.model_id, request.device, panel, request.ks, request.perturbation, request.draws)
        return per_image(images_or_samples(request.uploads), run, key, estimate)

    def table(self, request: PgiRequest, result: PgiResult) -> pd.DataFrame:
        return pd.DataFrame(
            [{"method": label(r["method"]), "k": r["k"], "PGI ↑": r["pgi"], "PGU ↓": r["pgu"]} for r in result.rows()]
        )

    def heading(self, request: PgiRequest, result: PgiResult) -> str:
        return f"**{len(result.names)} images** on `{result.model_id}` · {result.perturbation} perturbation"
