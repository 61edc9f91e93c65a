"""Blind spots: level-set traversal from a source image towards a very different target image.

Balasubramanian, Feizi et al., "Exploring Geometry of Blind Spots in Vision Models", NeurIPS 2023
(SriramB-98/blindspots-geometry, ``level_set_traversal.py``). From the source image x (plus uniform noise of
±2/255), each step moves towards the target t within the level set of the source class's confidence:

- ``g`` = gradient of the cross-entropy of the source class at x; ``v = t - x``;
- ``v_perp = v - (<g, v> / <g, g>) g`` (the part of v orthogonal to g: no first-order change of the loss);
- ``a <- clamp(a + (adv / 2) g, -adv, adv)``, accumulated over steps (a small step back up the confidence);
- ``x' = clamp(x + step * v_perp - a, 0, 1)``, accepted only if ``p0 - p(x') < pthresh`` (p0: the starting
  confidence), else x stays.

The published run: step 1e-2, 400 iterations, pthresh 0.2, adversarial step 2e-3. The path ends close to
the target (L2, L-infinity, SSIM to it) while the model still gives the source class its confidence: a
blind spot. :func:`triangle_confidence` maps the confidence over the triangle (source, target, end).

The walk is in float32, but an image file is 8-bit: the correction ``a`` is bounded by 2e-3, about half an
8-bit level, so rounding alone can move the point off the level set. By default (``check_8bit``) a step is
also refused when its 8-bit rounding ``round(255 x') / 255`` leaves the level set, so every point of the
path, the end included, keeps its claim as a PNG at the model's input size; :attr:`Traversal.confidence_8bit`
records the rounded point's confidence beside the float one. :func:`traversal_npz_bytes` writes the float
points (through :func:`glimpse.npzfile.write`); :func:`glimpse.lab.common.written_probabilities` re-reads a
written image the way ``python -m glimpse classify`` does. Resizing a point (to the source's size, say) is
not rounding: it moves the image far off the level set, so a resized copy is only ever a view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glimpse import npzfile
from glimpse.lab.common import ModelInput, model_device, to_tensor, to_uint8
from glimpse.versions import library_versions

#: The traversal NPZ: float points of the path and the confidences (:func:`traversal_npz_bytes`).
NPZ_FORMAT = "glimpse-traversal"
NPZ_VERSION = 1


@dataclass(frozen=True)
class Traversal:
    """A traversal's path and its measures.

    Attributes
    ----------
    frames : tuple
        (step, uint8 image at the model's input size) along the path; the last is the end point. Each is the
        point rounded to 8 bits: the image a PNG of it holds.
    confidence : np.ndarray
        float64 (steps + 1,): the source class's probability at the start and after each step (float point).
    confidence_8bit : np.ndarray
        float64 (steps + 1,): the same for the point rounded to 8 bits (what a PNG of it is given).
    target_confidence : np.ndarray
        float64 (steps + 1,): the probability of the target image's own top class along the path.
    accepted : np.ndarray
        bool (steps,): whether each step was taken.
    source_class, target_class : int
    start_confidence, end_confidence : float
        The source class's probability at the (noisy, float) start and at the float end point.
    end_confidence_8bit : float
        At the end point rounded to 8 bits: ``end``, the image ``end.png`` holds.
    distances : dict
        End point to target: "l2" and "linf" (pixels in [0, 1]), "ssim"; and the same from the source.
    end : np.ndarray
        uint8 end point at the model's input size (the float end rounded to 8 bits).
    end_values : np.ndarray
        float32 (H, W, 3) in [0, 1]: the float end point, as the walk holds it.
    frame_values : np.ndarray
        float32 (frames, H, W, 3): the float points of ``frames``.
    """

    frames: tuple[tuple[int, np.ndarray], ...]
    confidence: np.ndarray
    confidence_8bit: np.ndarray
    target_confidence: np.ndarray
    accepted: np.ndarray
    source_class: int
    target_class: int
    start_confidence: float
    end_confidence: float
    end_confidence_8bit: float
    distances: dict[str, float]
    end: np.ndarray
    end_values: np.ndarray
    frame_values: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def frame_steps(self) -> tuple[int, ...]:
        return tuple(step for step, _ in self.frames)

    def summary(self) -> dict:
        return {"source_class": self.source_class, "target_class": self.target_class,
                "start_confidence": self.start_confidence, "end_confidence": self.end_confidence,
                "end_confidence_8bit": self.end_confidence_8bit,
                "accepted_steps": int(self.accepted.sum()), **self.distances}  # fmt: skip

    def meta(self, *, versions: bool = True) -> dict[str, Any]:
        out = {"lens": "model-lab", "method": "level-set-traversal", **self.params,
               "source_class": int(self.source_class), "target_class": int(self.target_class)}  # fmt: skip
        if versions:
            out["versions"] = library_versions()
        return out


def quantise(x: torch.Tensor) -> torch.Tensor:
    """``x`` in [0, 1] rounded to 8 bits, as a PNG of it holds it (:func:`to_uint8`, then ``/ 255``)."""
    return (x.clamp(0, 1) * 255.0).round() / 255.0


def project_out(direction: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """``direction`` minus its component along ``gradient``, per batch item (the null-space step)."""
    d = direction.flatten(1)
    g = gradient.flatten(1)
    coef = (g * d).sum(dim=1, keepdim=True) / (g * g).sum(dim=1, keepdim=True).clamp_min(1e-30)
    return (d - coef * g).view_as(direction)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 (H, W, 3) images (Wang et al. 2004: Gaussian window sigma 1.5, data range 1), as
    torchmetrics' ``structural_similarity_index_measure`` with its defaults (which the paper's code uses)."""
    from skimage.metrics import structural_similarity

    side = min(a.shape[:2])
    if side < 3:
        raise ValueError(f"ssim: images need at least 3 x 3 pixels, got {a.shape[:2]}")
    x, y = a.astype(np.float64) / 255, b.astype(np.float64) / 255
    if side >= 11:  # the Gaussian window (sigma 1.5, truncated at 3.5 sigma) spans 11 pixels
        return float(structural_similarity(x, y, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                           use_sample_covariance=False))  # fmt: skip
    # smaller images (a 32 x 32 model's input is fine; an 8 x 8 test image is not): the largest odd uniform window
    win = side if side % 2 else side - 1
    return float(structural_similarity(x, y, data_range=1.0, channel_axis=-1, win_size=win,
                                       use_sample_covariance=False))  # fmt: skip


def _distances(x: torch.Tensor, y: torch.Tensor, prefix: str = "") -> dict[str, float]:
    d = (x - y).flatten()
    return {f"{prefix}l2": float(d.norm()), f"{prefix}linf": float(d.abs().max()),
            f"{prefix}ssim": ssim(to_uint8(x), to_uint8(y))}  # fmt: skip


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.detach()[0].permute(1, 2, 0).float().cpu().numpy().copy()


def level_set_traversal(
    model: nn.Module,
    source: np.ndarray,
    target: np.ndarray,
    inp: ModelInput,
    *,
    source_class: int | None = None,
    steps: int = 400,
    step_size: float = 1e-2,
    pthresh: float = 0.2,
    adv_step: float = 2e-3,
    check_8bit: bool = True,
    seed: int = 0,
    frames: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> Traversal:
    """Traverse the source class's level set from ``source`` towards ``target``.

    Parameters
    ----------
    model : nn.Module
        Input ``inp.normalise(x)`` for x in [0, 1]; only read.
    source, target : np.ndarray
        uint8 images; both are resized to the model's input size.
    inp : ModelInput
    source_class : int, optional
        The class whose confidence is held (default: the model's top class on the source).
    steps, step_size, pthresh, adv_step : int, float, float, float
        Iterations, the fraction of the projected remaining difference taken per step, the largest allowed
        drop of the source class's probability from its start, and the bound of the accumulated correction.
    check_8bit : bool
        Also refuse a step whose point rounded to 8 bits drops the confidence by ``pthresh`` or more (default),
        so that a PNG of any point keeps the claim; False: the paper's rule, on the float point alone.
    seed : int
        Seeds the ±2/255 start noise.
    frames : int
        How many frames of the path to keep (evenly spaced, the end included).
    progress : callable, optional
        ``progress(step, steps)``.

    Returns
    -------
    Traversal
    """
    if steps < 1:
        raise ValueError(f"steps: must be at least 1, got {steps}")
    if not 0 < pthresh <= 1:
        raise ValueError(f"pthresh: a probability drop in (0, 1], got {pthresh}")
    if step_size <= 0 or adv_step < 0:
        raise ValueError("step_size must be positive and adv_step non-negative")
    device = model_device(model)
    src = to_tensor(source, inp.size, device)
    tgt = to_tensor(target, inp.size, device)

    def probs(x: torch.Tensor) -> torch.Tensor:
        """Probabilities of x and of x rounded to 8 bits (one batch of two): rows 0 and 1."""
        with torch.no_grad():
            return inp.probabilities(model(inp.normalise(torch.cat([x, quantise(x)]))))

    with torch.no_grad():
        p_src, p_tgt = inp.probabilities(model(inp.normalise(torch.cat([src, tgt]))))
    cls = int(p_src.argmax()) if source_class is None else int(source_class)
    if not 0 <= cls < p_src.numel():
        raise ValueError(f"source_class: {cls} is out of range (the model has {p_src.numel()} classes)")
    target_cls = int(p_tgt.argmax())
    generator = torch.Generator().manual_seed(int(seed))
    noise = (torch.rand(src.shape, generator=generator) - 0.5).to(device) * (4 / 255)
    x = (src + noise).clamp(0, 1)
    p = probs(x)
    p0 = float(p[0, cls])
    confidence, confidence_8bit, target_conf = [p0], [float(p[1, cls])], [float(p[0, target_cls])]
    accepted = np.zeros(steps, dtype=bool)
    keep = {int(round(k)) for k in np.linspace(0, steps, max(2, frames))}
    kept: list[tuple[int, torch.Tensor]] = [(0, x)]
    adv = torch.zeros_like(x)
    label = torch.tensor([cls], device=device)
    for step in range(steps):
        xg = x.detach().requires_grad_(True)
        logits = model(inp.normalise(xg))
        if inp.multilabel:
            loss = F.binary_cross_entropy_with_logits(logits[:, cls], torch.ones(1, device=device), reduction="sum")
        else:
            loss = F.cross_entropy(logits, label, reduction="sum")
        (grad,) = torch.autograd.grad(loss, [xg])
        step_dir = project_out(tgt - x, grad)
        adv = (adv + (adv_step / 2) * grad).clamp(-adv_step, adv_step)
        candidate = (x + step_size * step_dir - adv).clamp(0, 1)
        p_new = probs(candidate)
        lowest = float(p_new[:, cls].min()) if check_8bit else float(p_new[0, cls])
        if p0 - lowest < pthresh:
            x, p = candidate, p_new
            accepted[step] = True
        confidence.append(float(p[0, cls]))
        confidence_8bit.append(float(p[1, cls]))
        target_conf.append(float(p[0, target_cls]))
        if step + 1 in keep:
            kept.append((step + 1, x))
        if progress is not None:
            progress(step + 1, steps)
    distances = _distances(x, tgt)
    distances.update(_distances(src, tgt, prefix="source_"))
    params = {"steps": steps, "step_size": step_size, "pthresh": pthresh, "adv_step": adv_step,
              "check_8bit": bool(check_8bit), "seed": seed, "size": list(inp.size)}  # fmt: skip
    return Traversal(
        frames=tuple((s, to_uint8(v)) for s, v in kept),
        confidence=np.array(confidence),
        confidence_8bit=np.array(confidence_8bit),
        target_confidence=np.array(target_conf),
        accepted=accepted,
        source_class=cls,
        target_class=target_cls,
        start_confidence=p0,
        end_confidence=float(p[0, cls]),
        end_confidence_8bit=float(p[1, cls]),
        distances=distances,
        end=to_uint8(x),
        end_values=_hwc(x),
        frame_values=np.stack([_hwc(v) for _, v in kept]),
        params=params,
    )


def traversal_npz_bytes(tr: Traversal) -> bytes:
    """The traversal's float points and confidences as NPZ (:func:`glimpse.npzfile.write`), ``meta`` its
    :meth:`Traversal.meta` and summary.

    Members: ``end`` float32 (H, W, 3) in [0, 1] (the float end point: the model gives it ``end_confidence``),
    ``frames`` float32 (F, H, W, 3), ``frame_steps`` int64 (F,), ``confidence``, ``confidence_8bit`` and
    ``target_confidence`` float64 (steps + 1,), ``accepted`` bool (steps,). Read with :func:`read_traversal_npz`
    or ``numpy.load(f, allow_pickle=False)``.

    Examples
    --------
    >>> tr = level_set_traversal(nn.Sequential(nn.Flatten(), nn.Linear(48, 2)).eval(), np.zeros((4, 4, 3), np.uint8),
    ...                          np.full((4, 4, 3), 255, np.uint8), ModelInput((4, 4), (0, 0, 0), (1, 1, 1)), steps=2)
    >>> arrays, meta = read_traversal_npz(traversal_npz_bytes(tr))
    >>> arrays["end"].shape, meta["method"], meta["end_confidence"] == tr.end_confidence
    ((4, 4, 3), 'level-set-traversal', True)
    """
    arrays = {"end": tr.end_values, "frames": tr.frame_values, "frame_steps": np.array(tr.frame_steps, np.int64),
              "confidence": tr.confidence, "confidence_8bit": tr.confidence_8bit,
              "target_confidence": tr.target_confidence, "accepted": tr.accepted}  # fmt: skip
    meta = {"format": NPZ_FORMAT, "version": NPZ_VERSION, **tr.meta(), **tr.summary()}
    return npzfile.write(arrays, meta)


def read_traversal_npz(source: bytes | str | IO[bytes]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, meta)`` of a file written by :func:`traversal_npz_bytes` (checked as untrusted)."""
    return npzfile.read(source, format=NPZ_FORMAT, versions=(NPZ_VERSION,))


#: A re-read end image whose confidence differs from the float end point's by this much is named as moved.
ROUNDING_TOLERANCE = 0.005


def rounding_note(tr: Traversal, written: float) -> str | None:
    """A sentence when writing the end point as an 8-bit image moves the source class's confidence by
    :data:`ROUNDING_TOLERANCE` or more (``written``: the re-read file's confidence); None otherwise."""
    shift = written - tr.end_confidence
    if abs(shift) < ROUNDING_TOLERANCE:
        return None
    held = "still within" if tr.start_confidence - written < tr.params.get("pthresh", 1.0) else "outside"
    return (f"8-bit rounding moves the source class's confidence from {tr.end_confidence:.4f} (the float end "
            f"point) to {written:.4f} (the written image), {shift:+.4f}; {held} the level set "
            f"(start {tr.start_confidence:.4f}, largest drop {tr.params.get('pthresh')})")  # fmt: skip


@torch.no_grad()
def triangle_confidence(
    model: nn.Module,
    source: np.ndarray,
    target: np.ndarray,
    end: np.ndarray,
    inp: ModelInput,
    class_index: int,
    *,
    resolution: int = 12,
    batch_size: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """The class's probability over the triangle with corners source, target and end point.

    Points ``source + a (target - source) + b (end - source)`` for a, b on a ``resolution`` grid of [0, 1] with
    a + b <= 1. Returns ``(coords, probability)``: float (M, 2) (a, b) and float (M,).
    """
    if resolution < 2:
        raise ValueError(f"resolution: must be at least 2, got {resolution}")
    device = model_device(model)
    s, t, e = (to_tensor(im, inp.size, device) for im in (source, target, end))
    coords = [(a, b) for a in np.linspace(0, 1, resolution) for b in np.linspace(0, 1, resolution) if a + b <= 1 + 1e-9]
    values = []
    for start in range(0, len(coords), batch_size):
        chunk = coords[start : start + batch_size]
        x = torch.cat([s + a * (t - s) + b * (e - s) for a, b in chunk]).clamp(0, 1)
        values.append(inp.probabilities(model(inp.normalise(x)))[:, class_index].float().cpu().numpy())
    return np.array(coords, dtype=np.float64), np.concatenate(values).astype(np.float64)
