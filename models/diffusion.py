"""Text-to-image diffusion pipelines by id, loaded into a :class:`DiffusionBundle`.

Ids:
- ``shapes-t2i`` (default, embedded): the small pixel-space shapes model in ``models/embedded/shapes_t2i``
  (:class:`models.shapes_pipeline.ShapesPipeline`); works offline on a CPU.
- a local folder written by ``save_pretrained`` (a ShapesPipeline or any diffusers pipeline).
- a Hugging Face diffusers id (Stable Diffusion 1.x / 2.x / XL, PixArt-α/Σ, SD3 / SD3.5, Flux): needs the
  weights in the local cache or a reachable hub, and a GPU (``allow_cpu=True`` overrides for tiny test
  pipelines).

The kind of denoiser decides how cross-attention is traced (see :mod:`glimpse.attention.tracer`):
``unet`` (a UNet2DConditionModel: ``attn2`` layers), ``pixart`` (PixArtTransformer2DModel: ``attn2``),
``sd3`` (SD3Transformer2DModel: joint attention, [image, text]) and ``flux`` (FluxTransformer2DModel:
joint attention, [text, image]).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from glimpse.devices import resolve_device
from models.registry import ModelLoadError

logger = logging.getLogger(__name__)

EMBEDDED_T2I = "shapes-t2i"
EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded" / "shapes_t2i"

#: denoiser class name -> kind
TRANSFORMER_KINDS: dict[str, str] = {
    "PixArtTransformer2DModel": "pixart",
    "SD3Transformer2DModel": "sd3",
    "FluxTransformer2DModel": "flux",
}
KINDS: tuple[str, ...] = ("unet", "pixart", "sd3", "flux")

#: kind -> (default steps, default guidance), the values the model cards recommend
_DEFAULTS: dict[str, tuple[int, float]] = {
    "unet": (30, 7.5),
    "pixart": (20, 4.5),
    "sd3": (28, 7.0),
    "flux": (28, 3.5),
}


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
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    default_steps: int = 25
    default_guidance: float = 4.0
    resolution: int = 32  # generated image side in pixels

    @property
    def denoiser(self) -> torch.nn.Module:
        """The UNet or transformer whose attention processors are traced."""
        return self.pipe.unet if self.kind == "unet" else self.pipe.transformer


def detect_kind(pipe: Any) -> str:
    """``unet`` / ``pixart`` / ``sd3`` / ``flux`` from the pipeline's denoiser class."""
    unet = getattr(pipe, "unet", None)
    if unet is not None:
        return "unet"
    transformer = getattr(pipe, "transformer", None)
    name = type(transformer).__name__ if transformer is not None else "none"
    if name not in TRANSFORMER_KINDS:
        raise ModelLoadError(
            f"model: denoiser {name!r} is not supported for attention tracing; supported: UNet2DConditionModel, "
            + ", ".join(TRANSFORMER_KINDS)
        )
    return TRANSFORMER_KINDS[name]


def _max_tokens(pipe: Any, kind: str) -> int:
    if hasattr(pipe, "max_prompt_words") and hasattr(pipe, "tokenize_words"):
        return int(pipe.tokenizer.model_max_length)
    if kind == "pixart":
        # PixArt-α pipelines default to 120 T5 tokens, PixArt-Σ to 300
        return 300 if "Sigma" in type(pipe).__name__ else 120
    if kind == "flux":
        return 512
    # SD 1.x/2.x/XL and SD3: the maps come from the CLIP tokens
    return int(pipe.tokenizer.model_max_length)


def _resolution(pipe: Any, kind: str) -> int:
    scale = int(getattr(pipe, "vae_scale_factor", 1) or 1)
    if kind == "unet":
        return int(pipe.unet.config.sample_size) * scale
    if kind == "flux":
        return int(getattr(pipe, "default_sample_size", 128)) * scale
    return int(pipe.transformer.config.sample_size) * scale


def bundle_from_pipeline(pipe: Any, model_id: str, device: torch.device, *, kind: str | None = None) -> DiffusionBundle:
    """Wrap an already built pipeline (e.g. a tiny one from configs) in a :class:`DiffusionBundle`."""
    kind = kind or detect_kind(pipe)
    if kind not in KINDS:
        raise ValueError(f"kind: unknown {kind!r}; known: {', '.join(KINDS)}")
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.eval().requires_grad_(False)
    embedded = hasattr(pipe, "tokenize_words")
    if embedded:
        # The embedded model's card gives the scale its guidance sweep found best (higher scales
        # saturate and mix its colours), kept beside the pipeline class as DEFAULT_GUIDANCE_SCALE.
        from models.shapes_pipeline import DEFAULT_GUIDANCE_SCALE

        steps, guidance = 25, DEFAULT_GUIDANCE_SCALE
    else:
        steps, guidance = _DEFAULTS[kind]
    return DiffusionBundle(
        model_id=model_id,
        pipe=pipe,
        kind=kind,
        max_tokens=_max_tokens(pipe, kind),
        vocabulary=tuple(pipe.vocabulary) if embedded else None,
        device=device,
        default_steps=steps,
        default_guidance=guidance,
        resolution=_resolution(pipe, kind),
    )


def _is_shapes_folder(path: Path) -> bool:
    index = path / "model_index.json"
    if not index.is_file():
        return False
    return json.loads(index.read_text()).get("_class_name") == "ShapesPipeline"


def load_pipeline(
    model_id: str = EMBEDDED_T2I, *, device: str | torch.device = "auto", allow_cpu: bool = False
) -> DiffusionBundle:
    """Load a text-to-image pipeline by id (see module docstring) onto ``device``.

    Parameters
    ----------
    model_id : str
        ``"shapes-t2i"``, a local ``save_pretrained`` folder, or a diffusers hub id.
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
    path = EMBEDDED_DIR if model_id == EMBEDDED_T2I else Path(model_id).expanduser()
    local = path.is_dir()
    if model_id == EMBEDDED_T2I and not local:
        raise ModelLoadError(f"model: the embedded weights are missing from {EMBEDDED_DIR}; restore them from git")
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

    from models.shapes_pipeline import ShapesPipeline

    try:
        if local and _is_shapes_folder(path):
            return ShapesPipeline.from_pretrained(str(path))
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
