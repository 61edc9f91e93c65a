"""One pixel through every lens of a run: what each map says there.

:func:`probe` reads a :class:`glimpse.export.RunRecord` (a Compare run, or a bundle read back) at one pixel
``(x, y)`` of its image: every map's value at that pixel and its rank percentile within the map, the words
whose attention is highest there (each word's share of the words' sum), and the complexity maps' values (MSG
at each scale, colours per pixel).

Maps keep their native resolution in a run (saliency at the model input, MSG at H/s × W/s, colour density per
tile, attention at the generated image's size), so a pixel is read from the cell that holds its centre: in a
map of h × w cells over an image of H × W pixels, row ``⌊(y + ½)·h / H⌋`` and column ``⌊(x + ½)·w / W⌋`` (the
nearest-neighbour resize of the map to the image). The rank percentile is the share of the map's cells whose
value is at most the pixel's (``scipy.stats.percentileofscore(..., kind="weak")``): 100 = the map's maximum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from glimpse.export import MapEntry, RunRecord

#: the table a probe adds to a run (:func:`with_probe`), read by the bundle and its HTML report
PROBE_TABLE = "probe"


def cell(shape: tuple[int, int], image_shape: tuple[int, int], x: int, y: int) -> tuple[int, int]:
    """The (row, column) of a map of ``shape`` that holds pixel ``(x, y)`` of an image of ``image_shape``.

    >>> cell((7, 7), (224, 224), 0, 223)
    (6, 0)
    >>> cell((224, 224), (224, 224), 10, 20)
    (20, 10)
    """
    (h, w), (big_h, big_w) = shape, image_shape
    return min(h - 1, int((y + 0.5) * h / big_h)), min(w - 1, int((x + 0.5) * w / big_w))


def percentile(values: np.ndarray, value: float) -> float:
    """The share (in %) of ``values`` at most ``value``; NaN cells are left out."""
    finite = values[np.isfinite(values)]
    return float("nan") if finite.size == 0 else float(100.0 * np.count_nonzero(finite <= value) / finite.size)


@dataclass(frozen=True)
class ProbeValue:
    """One map at the probed pixel: its ``value``, its ``percentile`` within the map, the ``cell`` read."""

    name: str
    kind: str  # "saliency" | "attention" | "complexity" | "diffusion classifier"
    value: float
    percentile: float
    cell: tuple[int, int]
    shape: tuple[int, int]

    def row(self) -> dict:
        return {"map": self.name, "kind": self.kind, "value": self.value, "percentile": self.percentile,
                "row": self.cell[0], "column": self.cell[1], "map_height": self.shape[0], "map_width": self.shape[1]}  # fmt: skip


@dataclass(frozen=True)
class Probe:
    """A pixel ``(x, y)`` of an image of ``image_shape`` read in every map of a run."""

    x: int
    y: int
    image_shape: tuple[int, int]
    values: tuple[ProbeValue, ...]
    #: (word, attention value, share of the words' sum at the pixel), highest first
    words: tuple[tuple[str, float, float], ...]

    def of(self, kind: str) -> tuple[ProbeValue, ...]:
        return tuple(v for v in self.values if v.kind == kind)

    def rows(self) -> list[dict]:
        """One row per map, with the pixel: the ``probe`` table of a bundle."""
        return [{"x": self.x, "y": self.y, **v.row()} for v in self.values]

    def meta(self) -> dict:
        """Plain JSON of the probe (``glimpse probe --json``)."""
        return {
            "lens": "probe",
            "x": self.x,
            "y": self.y,
            "image_height": self.image_shape[0],
            "image_width": self.image_shape[1],
            "rule": "the map cell holding the pixel's centre: row ⌊(y+½)·h/H⌋, column ⌊(x+½)·w/W⌋; percentile = "
            "share of the map's cells at most the pixel's value",
            "maps": [v.row() for v in self.values],
            "words": [{"word": w, "value": v, "share": s} for w, v, s in self.words],
        }


def probe(run: RunRecord, x: int, y: int) -> Probe:
    """Pixel ``(x, y)`` (column, row of ``run.image``) in every map of ``run`` (a diffusion-classifier error
    difference joins a run as a map: :func:`classification_entry`)."""
    image_shape = tuple(int(n) for n in np.asarray(run.image).shape[:2])
    return probe_maps(image_shape, run_maps(run), x, y)


def run_maps(run: RunRecord) -> list[tuple[str, str, np.ndarray, dict]]:
    """A run's maps as :func:`probe_maps` reads them: (name, kind, values, meta)."""
    return [(e.name, e.kind, e.values, e.meta) for e in run.maps]


def probe_maps(
    image_shape: tuple[int, int], maps: Iterable[tuple[str, str, np.ndarray, dict]], x: int, y: int
) -> Probe:
    """Pixel ``(x, y)`` of an image of ``image_shape`` (H, W) in each map ``(name, kind, values, meta)``; an
    attention map's word is ``meta["word"]`` (else its name). What :func:`probe` reads from a run, for a page
    that holds its maps itself (Saliency, Cross-attention).

    >>> found = probe_maps((4, 4), [("a", "saliency", np.arange(4.0).reshape(2, 2), {})], 3, 0)
    >>> found.values[0].value, found.values[0].cell, found.values[0].percentile
    (1.0, (0, 1), 50.0)
    """
    image_shape = (int(image_shape[0]), int(image_shape[1]))
    x, y = int(x), int(y)
    if not (0 <= x < image_shape[1] and 0 <= y < image_shape[0]):
        raise ValueError(
            f"xy: ({x}, {y}) is outside the {image_shape[1]}×{image_shape[0]} image (x in 0..{image_shape[1] - 1}, "
            f"y in 0..{image_shape[0] - 1})"
        )
    values, words = [], []
    for name, kind, array, meta in maps:
        array = np.asarray(array, dtype=np.float64)
        if array.ndim != 2:
            raise ValueError(f"map: {name!r} is {array.ndim}-D; a probe reads 2-D maps")
        r, c = cell(array.shape, image_shape, x, y)
        v = float(array[r, c])
        values.append(ProbeValue(name, kind, v, percentile(array, v), (r, c), tuple(array.shape)))
        if kind == "attention":
            words.append((str(meta.get("word", name)), v))
    return Probe(x, y, image_shape, tuple(values), word_shares(words))


def word_shares(words: Iterable[tuple[str, float]]) -> tuple[tuple[str, float, float], ...]:
    """(word, value, share of the words' positive sum), highest value first; shares NaN when nothing is positive.

    >>> word_shares([("a", 1.0), ("b", 3.0)])
    (('b', 3.0, 0.75), ('a', 1.0, 0.25))
    """
    words = list(words)
    total = sum(max(v, 0.0) for _, v in words)
    ranked = sorted(words, key=lambda wv: -wv[1])
    return tuple((w, v, (max(v, 0.0) / total) if total > 0 else float("nan")) for w, v in ranked)


def word_steps(
    image_shape: tuple[int, int], frames: np.ndarray, words: Sequence[str], x: int, y: int, timesteps=None
) -> list[dict]:
    """Per denoising step, each word's share of the words' attention at pixel ``(x, y)``: one row per step of
    ``frames`` (steps, words, h, w), with ``step`` (1-based), ``t`` (the scheduler's timestep, when given), the
    ``top`` word and one ``share: <word>`` column per word (NaN where no word attends there).

    >>> frames = np.zeros((2, 2, 2, 2)); frames[0, 0] = 1.0; frames[1, 1] = 3.0; frames[1, 0] = 1.0
    >>> [(r["step"], r["top"], r["share: b"]) for r in word_steps((4, 4), frames, ["a", "b"], 0, 0)]
    [(1, 'a', 0.0), (2, 'b', 0.75)]
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 4 or frames.shape[1] != len(words):
        raise ValueError(f"frames: want (steps, {len(words)} words, h, w), got {frames.shape}")
    rows = []
    for i, step in enumerate(frames):
        found = probe_maps(image_shape, [(w, "attention", m, {"word": w}) for w, m in zip(words, step)], x, y)
        shares = {w: s for w, _, s in found.words}
        row = {"step": i + 1} | ({} if timesteps is None else {"t": int(timesteps[i])})
        rows.append(row | {"top": found.words[0][0]} | {f"share: {w}": shares[w] for w in words})
    return rows


#: the kind of a diffusion-classifier map in a run and a probe
CLASSIFIER_KIND = "diffusion classifier"
#: the kind of a ConceptAttention map (Helbling et al. 2025; :mod:`glimpse.attention.concept`) in a probe: a
#: concept's share of the pixel among the concepts, not one of the prompt's words
CONCEPT_KIND = "concept attention"


def classification_entry(result, image_name: str = "") -> MapEntry:
    """A diffusion-classifier result (:class:`glimpse.diffusion_classifier.DiffusionClassification`) as a run's
    map: its error difference (the runner-up's per-pixel error minus the winner's, positive where the winner fits
    the image better; :meth:`~glimpse.diffusion_classifier.DiffusionClassification.difference_map`), with the two
    prompts and the model in its meta, so a probe reads it like any other map."""
    first, second = (result.prompts[p] for p in result.ranking()[:2])
    meta = {"model": result.model_id, "winner": first, "runner_up": second, "image": image_name}
    return MapEntry(f"{CLASSIFIER_KIND}: error difference", CLASSIFIER_KIND, result.difference_map(), meta)


def with_probe(run: RunRecord, found: Probe) -> RunRecord:
    """``run`` with the probe as its ``probe`` table (what its bundle and HTML report then hold)."""
    from dataclasses import replace

    return replace(run, tables={**run.tables, PROBE_TABLE: tuple(found.rows())})
