"""One image through all three lenses: the computation behind the Compare page and ``glimpse report``.

:func:`run_compare` takes an image (or a prompt, generating the image with the text-to-image model),
computes the classifier's saliency maps, the complexity maps, the prompt words' cross-attention maps,
the agreement matrix over all of them and the complexity of the salient region, and returns a
:class:`glimpse.export.RunRecord` — the plain-data record that the page draws and a bundle stores.
The page and the command line call this one function, so a bundle from either is the same.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np

from glimpse.compare.agreement import agreement_matrix
from glimpse.compare.regions import colour_density_map, msg_scale_maps, region_complexity
from glimpse.complexity.pyramid import SCALES
from glimpse.export import MapEntry, RunRecord, now
from glimpse.saliency.npz import map_meta
from glimpse.versions import library_versions

#: Default saliency methods: one CAM and one gradient map (they share one forward+backward pass).
DEFAULT_METHODS = ("gradcam", "gradient")

#: Table names in a run's ``tables``.
AGREEMENT, REGION, PREDICTIONS = "agreement", "region_complexity", "predictions"
#: Key in a run's ``params`` for display choices (set by the page when it exports).
DISPLAY = "display"


@dataclass(frozen=True)
class CompareSpec:
    """Every choice that shapes a Compare run (JSON-serialisable; stored in the bundle as ``params``).

    Parameters
    ----------
    methods : saliency registry keys (see ``glimpse.saliency.list_methods``).
    target : class name or index explained; None = the classifier's top-1 class for the image.
    layer : CAM layer; None = the classifier's suggested layer.
    seed : seed of every random draw in the saliency methods.
    k : top-k percentage for IoU, the pointing game and the salient region.
    absolute : compare |map| (both signs of a gradient map count as evidence).
    agreement_side : the longer side of the common grid on which maps are compared.
    bits : bits per channel for MUC and the colour-density map.
    colour_block : tile side (pixels) of the colour-density map.
    region_map : the saliency map (method key) whose top-k % region is analysed; None = the first method.
    prompt : when set, the image is generated from it and the words' attention maps join the run.
    t2i_model, gen_seed, steps, guidance : the text-to-image model and its sampling settings
        (steps/guidance None = the model's defaults).
    """

    methods: tuple[str, ...] = DEFAULT_METHODS
    target: str | int | None = None
    layer: str | None = None
    seed: int = 0
    k: float = 20.0
    absolute: bool = True
    agreement_side: int = 56
    bits: int = 4
    colour_block: int = 8
    region_map: str | None = None
    prompt: str | None = None
    t2i_model: str = "shapes-t2i"
    gen_seed: int = 0
    steps: int | None = None
    guidance: float | None = None

    def __post_init__(self) -> None:
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        object.__setattr__(self, "methods", methods)
        if not methods:
            raise ValueError("methods: choose at least one saliency method")
        if len(set(methods)) != len(methods):
            raise ValueError(f"methods: each method once, got {list(methods)}")
        if not 0 < float(self.k) < 100:
            raise ValueError(f"k: the top-k percentage must be in (0, 100), got {self.k}")
        if not 1 <= int(self.bits) <= 8:
            raise ValueError(f"bits: expected 1..8 bits per channel, got {self.bits}")
        if int(self.agreement_side) < 4:
            raise ValueError(f"agreement_side: expected at least 4 pixels, got {self.agreement_side}")
        if self.region_map is not None and self.region_map not in methods:
            raise ValueError(f"region_map: {self.region_map!r} is not one of the methods {list(methods)}")
        if self.prompt is not None and not str(self.prompt).strip():
            raise ValueError("prompt: empty; write a prompt or leave it out to explain an image")

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): a plain cache key and what a bundle stores."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_params(cls, params: Mapping) -> CompareSpec:
        """Rebuild from a bundle's ``params``.

        The ``display`` entry (colour scale, opacity, panels: how the page drew the run, which does not
        change a number) is skipped; any other unknown key is an error, as the bundle may come from elsewhere.
        """
        known = {f.name for f in fields(cls)}
        params = {k: v for k, v in params.items() if k != DISPLAY}
        unknown = set(params) - known
        if unknown:
            raise ValueError(f"params: unknown {sorted(unknown)}; known: {', '.join(sorted(known))}")
        values = dict(params)
        if "methods" in values:
            values["methods"] = tuple(values["methods"])
        return cls(**values)


def saliency_name(label: str) -> str:
    return f"saliency: {label}"


def attention_name(word: str, position: int) -> str:
    return f"attention: {word} (#{position + 1})"


def msg_name(scale: int) -> str:
    return f"complexity: MSG s={scale}"


def density_name(bits: int) -> str:
    return f"complexity: colours/px ({bits} bit)"


def _grid(shape: tuple[int, int], side: int) -> tuple[int, int]:
    h, w = shape
    scale = side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def run_compare(
    classifier,
    image: np.ndarray | None,
    spec: CompareSpec,
    *,
    image_name: str = "image",
    pipeline=None,
    progress: Callable[[float, str], None] | None = None,
) -> RunRecord:
    """Run all three lenses over one image and compare them.

    Parameters
    ----------
    classifier : models.registry.ClassifierBundle
    image : ndarray uint8 (H, W, 3) or None
        The image to explain; must be None when ``spec.prompt`` is set (the image is generated).
    spec : CompareSpec
    image_name : str
        A name for the image (file name or sample name) kept in the record.
    pipeline : models.diffusion.DiffusionBundle, optional
        Needed when ``spec.prompt`` is set.
    progress : callable(fraction, message), optional

    Returns
    -------
    RunRecord
        Raw maps at their native resolution (saliency at the model input, with the metadata of
        :func:`glimpse.saliency.npz.map_meta`; attention at the generated
        image's resolution, MSG at H/s × W/s, colour density per tile); tables ``agreement`` (all
        ordered pairs), ``region_complexity`` and ``predictions`` (the classifier's top 5).

    Raises
    ------
    ValueError
        Bad spec (unknown method, bad class, bad prompt, image and prompt both or neither given).
    """
    from glimpse.saliency import explain, get_method, make_target

    say = progress or (lambda fraction, message: None)
    for name in spec.methods:
        get_method(name)  # fail before any work on an unknown name
    maps: list[MapEntry] = []
    models = {"classifier": classifier.model_id}
    seeds = {"saliency": int(spec.seed)}
    if spec.prompt is not None:
        if image is not None:
            raise ValueError("image: give an image or a prompt, not both (a prompt's image is generated)")
        if pipeline is None:
            raise ValueError("pipeline: a prompt needs the text-to-image pipeline (models.diffusion.load_pipeline)")
        from glimpse.attention import generate_with_attention, word_maps

        say(0.0, f"Generating “{spec.prompt}”…")
        gen = generate_with_attention(
            pipeline,
            spec.prompt,
            seed=int(spec.gen_seed),
            steps=spec.steps,
            guidance=spec.guidance,
            progress=lambda i, n: say(0.4 * i / max(n, 1), f"Denoising step {i}/{n}"),
        )
        image = gen.image
        image_name = f"generated: {spec.prompt}"
        trace = gen.trace
        words = word_maps(trace)
        models["t2i"] = trace.model_id
        seeds["generation"] = int(trace.seed)
        for i, (word, values) in enumerate(zip(trace.words, words)):
            maps.append(
                MapEntry(
                    attention_name(word, i),
                    "attention",
                    np.asarray(values, dtype=np.float32),
                    {
                        "word": word,
                        "position": i,
                        "prompt": trace.prompt,
                        "model_id": trace.model_id,
                        "seed": int(trace.seed),
                        "steps": int(trace.steps),
                        "guidance": float(trace.guidance),
                        "aggregation": "DAAM: sum over timesteps, bicubic upsample, clamp >= 0, mean over layers",
                    },
                )
            )
    elif image is None:
        raise ValueError("image: give an image to explain, or a prompt to generate one")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image: expected uint8 RGB (H, W, 3), got {image.dtype} {image.shape}")

    say(0.45, "Classifying…")
    top = classifier.predict(image, top=5)
    target = make_target(classifier, spec.target, image=image)
    say(0.5, "Explaining…")
    sal = explain(
        classifier,
        image,
        list(spec.methods),
        target=target,
        layer=spec.layer,
        seed=int(spec.seed),
        progress=lambda f, m: say(0.5 + 0.35 * f, m),
    )
    for m in sal:
        # the saliency NPZ's per-map schema, so the bundle's saliency.npz is written from (and read back to) it
        values = np.asarray(m.values, dtype=np.float32)
        maps.append(MapEntry(saliency_name(get_method(m.method).label), "saliency", values, map_meta(m)))

    say(0.88, "Complexity maps…")
    for s, values in zip(SCALES, msg_scale_maps(image)):
        maps.append(MapEntry(msg_name(s), "complexity", values, {"feature": "MSG", "scale": s}))
    maps.append(
        MapEntry(
            density_name(spec.bits),
            "complexity",
            colour_density_map(image, bits=spec.bits, block=spec.colour_block),
            {"feature": "colour density", "bits": int(spec.bits), "block": int(spec.colour_block)},
        )
    )

    say(0.94, "Agreement…")
    matrix = agreement_matrix(
        {e.name: e.values for e in maps},
        k=spec.k,
        size=_grid(image.shape[:2], spec.agreement_side),
        absolute=spec.absolute,
    )
    region_key = spec.region_map or spec.methods[0]
    region_entry = next(e for e in maps if e.kind == "saliency" and e.meta["method"] == region_key)
    region = region_complexity(image, region_entry.values, k=spec.k, bits=spec.bits, absolute=spec.absolute)
    say(1.0, "Done")
    return RunRecord(
        image=image,
        image_name=image_name,
        maps=tuple(maps),
        params=json.loads(spec.to_json()),
        models=models,
        seeds=seeds,
        prompt=spec.prompt,
        tables={
            AGREEMENT: tuple(matrix.rows()),
            REGION: tuple({"region_map": region_entry.name, "k": spec.k, **row} for row in region.rows()),
            PREDICTIONS: tuple(
                {"rank": i + 1, "index": idx, "label": label, "probability": p} for i, (idx, label, p) in enumerate(top)
            ),
        },
        created=now(),
        versions=library_versions(),
    )


def matrix_from_rows(names: tuple[str, ...], rows, metric: str) -> np.ndarray:
    """Rebuild an (n, n) agreement matrix for ``metric`` from a run's stored ``agreement`` rows.

    ``metric`` is ``"spearman"``, ``"iou"`` or ``"pointing"``; the diagonal is 1 (a map agrees with itself).
    Reading the stored rows (not recomputing) is what lets an imported bundle show exactly its numbers.
    """
    if metric not in ("spearman", "iou", "pointing"):
        raise ValueError(f"metric: unknown {metric!r}; known: spearman, iou, pointing")
    index = {n: i for i, n in enumerate(names)}
    out = np.eye(len(names))
    column = {"spearman": "spearman", "pointing": "pointing_a_in_b"}.get(metric)
    for row in rows:
        if row["map_a"] not in index or row["map_b"] not in index:
            continue
        col = column or next(c for c in row if c.endswith("pct_iou"))
        value = row[col]
        out[index[row["map_a"]], index[row["map_b"]]] = float(value) if value is not None else math.nan
    return out
