"""Record cross-attention probabilities of a diffusers denoiser while it generates.

What is recorded, for the conditional sample of a classifier-free-guidance batch:

* cross-attention (UNet ``attn2``, PixArt ``attn2``): P = softmax(Q Kᵀ / √d + mask) over the text keys,
  with Q from the image positions and K from the text tokens (Vaswani et al. 2017; DAAM, Tang et al. 2023);
* joint attention (SD3 / SD3.5: [image, text]; Flux: [text, image], RoPE on both, Esser et al. 2024):
  the image-query → text-key block of softmax over the *full* key set (image + text), so that it sums with
  the image block to one.

Which layers of which denoiser are traced is the kind's adapter (:mod:`glimpse.attention.kinds`); the
recorder that stands in for each traced layer's processor computes the probabilities
(:mod:`glimpse.attention.recorders`). Neither way they have forms an attention matrix:

* fused (the stock processors ``AttnProcessor2_0``, ``JointAttnProcessor2_0``, ``FluxAttnProcessor``): the
  recorder runs the processor's own steps and gets the probabilities from the same fused SDPA call;
* wrapped (any other processor, e.g. a user's custom one): the original processor computes the output
  untouched; the recorder recomputes Q and K of the conditional sample from the layer's projections
  (with its q/k norms and RoPE) and, for joint attention,
  P_it = exp(q_i·k_t/√d − lse_i),  lse_i = logaddexp(logsumexp_j∈image(q_i·k_j/√d), logsumexp_t(q_i·k_t/√d)),
  with the image part of the normaliser accumulated in query chunks (:func:`.recorders.common.joint_text_block`).

Heads are averaged on the fly unless ``heads=True``; only the kept text positions and the requested map
resolutions are stored, as float16, on the recording device until :meth:`AttentionTracer.result` (at most
``_DEVICE_BYTES`` of them wait on an accelerator). Memory is therefore T × K × Σ h·w × 2 bytes. With
``head_sums=True`` the tracer also keeps, per layer, every head's probabilities summed over all calls,
Σ_t P^{ℓ,η}_t (float32, H × K × h·w per layer, whatever T): what DAAM's clamp per (layer, head) needs
without keeping the heads of every step.

Only the traced layers' processors are swapped (``module.set_processor``, what diffusers'
``set_attn_processor`` calls for every layer), inside one ``with`` under the pipeline's lock, and restored
in ``finally``, also when installing fails halfway.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from glimpse.attention.kinds import Kind, kind_of
from glimpse.attention.recorders.common import grid_shape

#: per-step maps wait on an accelerator up to this many bytes before they are moved to the CPU together
_DEVICE_BYTES = 256 * 2**20


class AttentionTracer:
    """Context manager that records cross-attention maps of ``denoiser`` (see module docstring).

    Parameters
    ----------
    denoiser : the UNet2DConditionModel or transformer of the pipeline.
    kind : a name in :data:`glimpse.attention.kinds.KINDS` ("unet" | "pixart" | "sd3" | "flux") or an adapter.
    lock : the pipeline's lock, held from ``__enter__`` to ``__exit__``.
    token_positions : positions in the text sequence to keep (None: all).
    image_hw : (H, W) of the image (any unit): gives the aspect ratio of the token grids.
    cfg : the batch is [unconditional, conditional] halves; record the first conditional sample.
    heads : keep the head axis instead of averaging it.
    resolutions : map heights h to record (None: all).
    exclude_resolutions : map heights h never recorded (DAAM skips the 1/8-latent maps of Stable Diffusion).
    blocks : record only the layers whose path starts with one of these prefixes (None: every layer;
        DAAM: ``("down_blocks.", "up_blocks.")``).
    head_sums : also sum every head's probabilities over all calls (see module docstring; :meth:`sums`).
    text_len : text tokens at the front of the sequence in Flux single-stream blocks (required for Flux).
    """

    def __init__(
        self,
        denoiser: torch.nn.Module,
        kind: str | Kind,
        *,
        lock: threading.RLock | None = None,
        token_positions: Sequence[int] | None = None,
        image_hw: tuple[int, int] = (1, 1),
        cfg: bool = True,
        heads: bool = False,
        resolutions: Sequence[int] | None = None,
        exclude_resolutions: Sequence[int] = (),
        blocks: Sequence[str] | None = None,
        head_sums: bool = False,
        text_len: int | None = None,
    ) -> None:
        self.adapter = kind_of(kind)
        self.denoiser = denoiser
        self.kind = self.adapter.name
        self.lock = lock
        self.token_positions = None if token_positions is None else torch.as_tensor(list(token_positions))
        self.image_hw = image_hw
        self.cfg = cfg
        self.heads = heads
        self.resolutions = None if resolutions is None else frozenset(int(r) for r in resolutions)
        self.exclude_resolutions = frozenset(int(r) for r in exclude_resolutions)
        if blocks is not None and (isinstance(blocks, str) or not len(blocks)):
            raise ValueError(f"blocks: {blocks!r} must be a non-empty sequence of layer-path prefixes")
        self.blocks = None if blocks is None else tuple(blocks)
        self.head_sums = head_sums
        self.text_len = text_len
        self._steps: dict[str, list[torch.Tensor]] = {}  # per layer, each call's maps on the device
        self._host: dict[str, list[torch.Tensor]] = {}  # per layer, stacked maps on the CPU
        self._waiting = 0  # bytes of maps waiting on an accelerator
        self._sums: dict[str, torch.Tensor] = {}
        self._grids: dict[str, tuple[int, int]] = {}
        self._hw: dict[int, tuple[int, int]] = {}  # image tokens -> grid
        self._kept: dict[Any, Any] = {}  # kept positions (tensors, slices) by text length, device, offset
        self.probes: dict[Any, torch.Tensor] = {}
        self.seen_resolutions: set[int] = set()
        self._saved: dict[str, tuple[torch.nn.Module, Any]] = {}  # layer -> (attention module, its processor)

    # ------------------------------------------------------------------ install / restore
    def __enter__(self) -> AttentionTracer:
        if self.lock is not None:
            self.lock.acquire()
        try:
            self._sums.clear()
            for name, processor in self.denoiser.attn_processors.items():
                layer = name.removesuffix(".processor")
                module = self.denoiser.get_submodule(layer)
                if self.adapter.traces(module, layer) and self._in_blocks(layer):
                    self._saved[layer] = (module, processor)
                    self._steps[layer], self._host[layer] = [], []
            if not self._steps:
                where = "" if self.blocks is None else f" in blocks {list(self.blocks)}"
                raise ValueError(f"denoiser: no cross-attention layers found{where} for kind {self.kind!r}")
            for layer, (module, processor) in self._saved.items():
                module.set_processor(self.adapter.recorder(self, layer, processor))
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc: object) -> bool:
        self._restore()
        return False

    def _restore(self) -> None:
        """Put every swapped processor back and release the lock, whatever fails on the way."""
        try:
            for module, processor in self._saved.values():
                module.set_processor(processor)
        finally:
            self._saved.clear()
            self._kept.clear()
            self.probes.clear()
            self._release()

    def _release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    # ------------------------------------------------------------------ recording
    def _in_blocks(self, layer: str) -> bool:
        return self.blocks is None or layer.startswith(self.blocks)

    def cond_index(self, batch: int) -> int:
        return batch // 2 if self.cfg else 0

    def wants(self, n_image_tokens: int) -> tuple[int, int] | None:
        """Grid (h, w) of a layer with this many image tokens, or None when its resolution is not wanted."""
        hw = self._hw.get(n_image_tokens)
        if hw is None:
            hw = self._hw[n_image_tokens] = grid_shape(n_image_tokens, self.image_hw)
        h, w = hw
        self.seen_resolutions.add(h)
        if (self.resolutions is not None and h not in self.resolutions) or h in self.exclude_resolutions:
            return None
        return h, w

    def kept(self, text_len: int, device: torch.device, start: int = 0) -> torch.Tensor:
        """Positions of the kept text tokens among ``text_len`` text keys that begin at ``start``."""
        slot = (text_len, device, start)
        kept = self._kept.get(slot)
        if kept is None:
            base = torch.arange(text_len) if self.token_positions is None else self.token_positions
            kept = self._kept[slot] = (base + start).to(device)
        return kept

    def kept_index(self, text_len: int, device: torch.device, start: int = 0) -> slice | torch.Tensor:
        """:meth:`kept` as a slice when the positions are consecutive (a prompt's tokens), so indexing is a view."""
        slot = (text_len, device, start, "index")
        index = self._kept.get(slot)
        if index is None:
            kept = self.kept(text_len, device, start)
            first = int(kept[0]) if len(kept) else start
            consecutive = torch.equal(kept.cpu(), torch.arange(first, first + len(kept)))
            index = self._kept[slot] = slice(first, first + len(kept)) if consecutive else kept
        return index

    def store(self, layer: str, probs: torch.Tensor, hw: tuple[int, int], *, restricted: bool = False) -> None:
        """probs (heads, L, N), text-major -> the kept tokens (all L when ``restricted``: the recorder kept
        them), heads averaged unless asked, float16.

        The maps stay on the recording device (an accelerator is synchronised once, in :meth:`result`, or
        whenever more than ``_DEVICE_BYTES`` wait there); ``probs`` may be a view into the layer's SDPA
        output, so what is kept is always a copy.
        """
        if not restricted and self.token_positions is not None:
            probs = probs.index_select(-2, self.kept(probs.shape[-2], probs.device))
        if self.head_sums:
            total = self._sums.get(layer)
            if total is None:
                self._sums[layer] = probs.to(torch.float32, copy=True)
            else:
                total.add_(probs)
            self._grids[layer] = hw
        if not self.heads:
            probs = probs.mean(0)
        maps = probs.to(torch.float16, memory_format=torch.contiguous_format, copy=True)
        self._steps[layer].append(maps.view(*maps.shape[:-1], *hw))
        if maps.device.type != "cpu":
            self._waiting += maps.nbytes
            if self._waiting > _DEVICE_BYTES:
                self._to_host()

    def _to_host(self) -> None:
        """Move the maps waiting on the device to the CPU, one transfer per layer."""
        for layer, steps in self._steps.items():
            if steps:
                self._host[layer].append(torch.stack(steps).to("cpu"))
                steps.clear()
        self._waiting = 0

    def _recorded(self) -> tuple[str, ...]:
        """The layers that recorded anything; RuntimeError when they were called unequally often."""
        self._to_host()
        counts = {name: sum(len(chunk) for chunk in chunks) for name, chunks in self._host.items()}
        layers = tuple(name for name, count in counts.items() if count)
        calls = {counts[name] for name in layers}
        if len(calls) > 1:
            raise RuntimeError(f"tracer: layers were called unequally often ({sorted(calls)} calls)")
        return layers

    def result(self) -> tuple[tuple[str, ...], tuple[np.ndarray, ...]]:
        """Recorded layers and their maps, (T, K, h, w) or (T, heads, K, h, w) float16 each."""
        layers = self._recorded()
        chunks = (self._host[name] for name in layers)
        return layers, tuple((c[0] if len(c) == 1 else torch.cat(c)).numpy() for c in chunks)

    def sums(self) -> tuple[np.ndarray, ...] | None:
        """Per recorded layer (order of :meth:`result`): Σ over calls of each head's map, (H, K, h, w) float32.

        None unless the tracer was made with ``head_sums=True``.
        """
        if not self.head_sums:
            return None
        out = []
        for name in self._recorded():
            total = self._sums[name]  # (H, K, N)
            out.append(total.reshape(*total.shape[:-1], *self._grids[name]).to("cpu").numpy())
        return tuple(out)
