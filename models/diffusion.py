"""Text-to-image diffusion pipelines by id, loaded into a :class:`DiffusionBundle`.

Ids:
- ``shapes-t2i`` (default, embedded): the small pixel-space shapes model in ``models/embedded/shapes_t2i``
  (:class:`models.shapes_pipeline.ShapesPipeline`, a UNet); works offline on a CPU.
- ``shapes-mmdit`` (embedded): the same task with an SD3-style MMDiT (joint attention, flow matching) in
  ``models/embedded/shapes_mmdit`` (:class:`models.shapes_mmdit_pipeline.ShapesMMDiTPipeline`); traced as ``sd3``.
- a local folder written by ``save_pretrained`` (a shapes pipeline or any diffusers pipeline).
- a Hugging Face diffusers id (Stable Diffusion 1.x / 2.x / XL, PixArt-α/Σ, SD3 / SD3.5, Flux): needs the
  weights in the local cache or a reachable hub, and a GPU (``allow_cpu=True`` overrides for tiny test
  pipelines).

This module loads; what differs between denoiser kinds (``unet``, ``pixart``, ``sd3``, ``flux``: where the
denoiser is, its tokenizer and text limit, its default size, steps and guidance) is the kind's adapter in
:data:`glimpse.attention.kinds.KINDS`, which also says how its cross-attention is traced.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from glimpse.attention.kinds import KINDS as ADAPTERS
from glimpse.attention.kinds import detect, kind_of
from glimpse.devices import resolve_device
from glimpse.work_queue import ModelQueue
from models.bundle import ModelLoadError

EMBEDDED_T2I = "shapes-t2i"
EMBEDDED_MMDIT = "shapes-mmdit"
#: the embedded text-to-image models, id -> folder (the default first)
EMBEDDED_PIPELINES: dict[str, Path] = {
    name: Path(__file__).resolve().parent / "embedded" / name.replace("-", "_")
    for name in (EMBEDDED_T2I, EMBEDDED_MMDIT)
}

#: the denoiser kinds that can be traced (:data:`glimpse.attention.kinds.KINDS`)
KINDS: tuple[str, ...] = tuple(ADAPTERS)


@dataclass(frozen=True, eq=False)
class DiffusionBundle:
    """A read-only text-to-image pipeline and what is needed to trace it.

    Shared between sessions (st.cache_resource): hold ``lock`` while attention processors are swapped
    or the pipeline is run.
    """

    model_id: str
    pipe: Any  # a diffusers pipeline (ShapesPipeline for the embedded model)
    kind: str  # "unet" | "pixart" | "sd3" | "flux"
    max_tokens: int  # text encoder limit (tokens, special tokens included), stated in errors
    vocabulary: tuple[str, ...] | None  # word-level vocabulary of the embedded model, else None
    device: torch.device
    #: first come, first served line for the model (glimpse.work_queue); reentrant like an RLock
    lock: ModelQueue = field(default_factory=ModelQueue, repr=False)
    default_steps: int = 25
    default_guidance: float = 4.0
    resolution: int = 32  # generated image side in pixels

    def __post_init__(self) -> None:
        if isinstance(self.lock, ModelQueue) and self.lock.name == "model":
            self.lock.name = self.model_id

    @property
    def denoiser(self) -> torch.nn.Module:
        """The UNet or transformer whose attention processors are traced."""
        return ADAPTERS[self.kind].denoiser(self.pipe)


def detect_kind(pipe: Any) -> str:
    """``unet`` / ``pixart`` / ``sd3`` / ``flux`` from the pipeline's denoiser class."""
    adapter = detect(pipe)
    if adapter is None:
        transformer = getattr(pipe, "transformer", None)
        name = type(transformer).__name__ if transformer is not None else "none"
        supported = ", ".join(c for a in ADAPTERS.values() for c in a.denoiser_classes)
        raise ModelLoadError(f"model: denoiser {name!r} is not supported for attention tracing; supported: {supported}")
    return adapter.name


def bundle_from_pipeline(pipe: Any, model_id: str, device: torch.device, *, kind: str | None = None) -> DiffusionBundle:
    """Wrap an already built pipeline (e.g. a tiny one from configs) in a :class:`DiffusionBundle`."""
    adapter = kind_of(kind or detect_kind(pipe))
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.eval().requires_grad_(False)
    embedded = hasattr(pipe, "tokenize_words")
    if embedded:
        # The embedded model's card gives the scale its guidance sweep found best (higher scales
        # saturate and mix its colours), kept on the pipeline class as default_guidance_scale.
        steps, guidance = 25, float(pipe.default_guidance_scale)
    else:
        steps, guidance = adapter.default_steps, adapter.default_guidance
    return DiffusionBundle(
        model_id=model_id,
        pipe=pipe,
        kind=adapter.name,
        max_tokens=adapter.max_tokens(pipe),
        vocabulary=tuple(pipe.vocabulary) if embedded else None,
        device=device,
        default_steps=steps,
        default_guidance=guidance,
        resolution=adapter.resolution(pipe),
    )


def _shapes_class(path: Path) -> type | None:
    """The embedded pipeline class a ``save_pretrained`` folder was written by, or None for any other folder."""
    index = path / "model_index.json"
    if not index.is_file():
        return None
    from models.shapes_mmdit_pipeline import ShapesMMDiTPipeline
    from models.shapes_pipeline import ShapesPipeline

    classes = {c.__name__: c for c in (ShapesPipeline, ShapesMMDiTPipeline)}
    return classes.get(json.loads(index.read_text()).get("_class_name"))


def load_pipeline(
    model_id: str = EMBEDDED_T2I, *, device: str | torch.device = "auto", allow_cpu: bool = False
) -> DiffusionBundle:
    """Load a text-to-image pipeline by id (see module docstring) onto ``device``.

    Parameters
    ----------
    model_id : str
        ``"shapes-t2i"``, ``"shapes-mmdit"``, a local ``save_pretrained`` folder, or a diffusers hub id.
    device : str or torch.device
        ``"auto"`` picks cuda, then mps, then cpu.
    allow_cpu : bool
        Load a hub id on the CPU anyway (only sensible for tiny test pipelines).

    Raises
    ------
    ModelLoadError
        Offline with no cached weights, no GPU for a hub model, an unsupported denoiser, or a broken
        checkpoint; the message says what to do.
    """
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    model_id = model_id.strip()
    if not model_id:
        raise ModelLoadError(f"model: empty id; use {EMBEDDED_T2I!r} or a diffusers id")
    path = EMBEDDED_PIPELINES.get(model_id) or Path(model_id).expanduser()
    local = path.is_dir()
    if model_id in EMBEDDED_PIPELINES and not local:
        raise ModelLoadError(f"model: the embedded weights are missing from {path}; restore them from git")
    with _quiet_loading():
        pipe = _from_pretrained(model_id, path, local, dev, allow_cpu)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(dev)
    return bundle_from_pipeline(pipe, model_id, dev)


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hide the diffusers/transformers loading progress bars (noise on a CLI's stderr), then restore them."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    before = (dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled())
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        if before[0]:
            dlog.enable_progress_bar()
        if before[1]:
            tlog.enable_progress_bar()


def _from_pretrained(model_id: str, path: Path, local: bool, dev: torch.device, allow_cpu: bool) -> Any:
    from diffusers import DiffusionPipeline

    try:
        shapes = _shapes_class(path) if local else None
        if shapes is not None:
            return shapes.from_pretrained(str(path))
        else:
            if not local and dev.type == "cpu" and not allow_cpu:
                raise ModelLoadError(
                    f"model: {model_id!r} is a hub text-to-image model and needs a GPU (none found); "
                    f"use the embedded {EMBEDDED_T2I!r} model on this machine"
                )
            dtype = torch.float16 if dev.type == "cuda" else torch.float32
            return DiffusionPipeline.from_pretrained(str(path) if local else model_id, dtype=dtype)
    except ModelLoadError:
        raise
    except (OSError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelLoadError(
            f"model: could not load {model_id!r} ({first}); when offline, download it first "
            f"(huggingface-cli download {model_id}) or use the embedded {EMBEDDED_T2I!r} model"
        ) from err
