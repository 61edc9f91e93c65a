"""ConceptAttention for joint-attention (MMDiT) denoisers: SD3 and Flux.

Helbling et al., "ConceptAttention: Diffusion Transformers Learn Highly Interpretable Features", ICML 2025
(reference code: github.com/helblazer811/ConceptAttention). Concept tokens c (one per concept word, embedded by
the pipeline's own text encoder) get a residual stream of their own that passes through every joint block with
the *text* stream's modulation, projections, output projection and feed-forward, while the image and prompt
streams run exactly as without them: image and prompt tokens never attend to the concepts; a concept attends
to the image tokens and to the concepts,

    o_c = softmax(q_c [k_x; k_c]ᵀ / √d) [v_x; v_c],

per head (q_c, k_c, v_c from the block's ``add_q/k/v_proj`` and q/k norms on the modulated concept states;
k_x, v_x the image tokens' own keys and values of that call, with their RoPE in Flux). The map of a layer is read
in the attention *output* space: o_x (the image tokens' attention output of the ordinary joint attention, before
the output projection) against o_c, heads concatenated, softmax over the concepts:

    A^ℓ_t = softmax_c( o_c · o_xᵀ ),   shape (concepts, image tokens), each image token's column summing to 1,

then the concept stream is updated like the text stream,
c ← c + g_msa ⊙ W_out o_c;  c ← c + g_mlp ⊙ FF((1 + s_mlp) ⊙ LN(c) + b_mlp).

The maps are stored as an :class:`~glimpse.attention.trace.AttentionTrace` whose "tokens" and "words" are the
concepts, one layer per joint block and one row per denoiser call, so :func:`~glimpse.attention.word_maps`
aggregates them as it does the cross-attention maps (summed over the selected steps, averaged over layers: the
paper's mean up to the number of steps) and every view of the cross-attention maps shows them.

Differences from the reference code, kept small and named: a concept's embedding is the mean of its own
tokens' states when the concept is encoded alone (the reference takes one token per concept); the concepts are
modulated by the block's own conditioning vector in Flux too (the reference zeroes Flux's pooled text vector
for them; SD3's reference uses the prompt's, as here); the reference's SD3 variant normalises the concept
vectors and reads the image outputs of the concept call, here both kinds follow the paper's Flux formulation.
With classifier-free guidance the concepts follow the conditional sample.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from glimpse.attention.generate import Denoised, generate_with_attention, prompt_tokens
from glimpse.attention.kinds import Kind, kind_of
from glimpse.attention.recorders.common import grid_shape
from glimpse.attention.trace import AttentionTrace, GenerationResult

#: ``AttentionTrace.layer_set`` of a trace of concept maps
CONCEPT_LAYERS = "concept"
#: at most this many concepts (each is one more token through every joint block)
MAX_CONCEPTS = 32
#: words left out of the default concepts: articles, prepositions, conjunctions, relation words
FUNCTION_WORDS = frozenset(
    "a an the of and or with without to in on at by for from into onto over under above below left right "
    "next beside behind near between top bottom is are be this that these those its it".split()
)


@dataclass(frozen=True)
class ConceptGeneration(GenerationResult):
    """One generation with its cross-attention maps (``trace``) and its ConceptAttention maps (``concepts``).

    ``concepts.layer_maps[i]``: ``(T, C, h, w)`` float16, softmax over the C concepts of layer ``concepts.layers[i]``
    at every denoiser call; ``concepts.words`` are the concepts.
    """

    concepts: AttentionTrace


def applies(kind: str | Kind) -> str | None:
    """None when ConceptAttention applies to ``kind``, else the reason it does not."""
    adapter = kind_of(kind)
    return None if adapter.concept_blocks is not None else adapter.no_concepts


def default_concepts(words: Sequence[str]) -> tuple[str, ...]:
    """The prompt's content words, lower-cased, each once, in order: the default concepts.

    >>> default_concepts(["A", "red", "circle", "left", "of", "a", "blue", "square", "red"])
    ('red', 'circle', 'blue', 'square')
    """
    out: list[str] = []
    for word in words:
        w = word.lower()
        if w not in FUNCTION_WORDS and w not in out and any(ch.isalnum() for ch in w):
            out.append(w)
    return tuple(out)


def check_concepts(concepts: Sequence[str] | str | None, words: Sequence[str]) -> tuple[str, ...]:
    """The concepts to trace: ``concepts`` stripped (a comma-separated string is split), or the prompt's content
    words when None or empty; ValueError for duplicates, too many, or none at all."""
    if isinstance(concepts, str):
        concepts = concepts.split(",")
    chosen = tuple(c.strip() for c in (concepts or ()) if c and c.strip())
    if not chosen:
        chosen = default_concepts(words)
        if not chosen:
            raise ValueError("concepts: the prompt has no content word; name the concepts (e.g. 'red,circle')")
    repeated = sorted({c for c in chosen if chosen.count(c) > 1})
    if repeated:
        raise ValueError(f"concepts: {repeated} named twice; name each concept once")
    if len(chosen) > MAX_CONCEPTS:
        raise ValueError(f"concepts: {len(chosen)} given, at most {MAX_CONCEPTS}")
    return chosen


def concept_states(bundle: Any, concepts: Sequence[str]) -> torch.Tensor:
    """Each concept encoded alone by the pipeline's text encoder, the mean of its own tokens' states:
    ``(C, D)``, the space of the denoiser's text input (before its ``context_embedder``)."""
    kind = kind_of(bundle.kind)
    states = kind.text_states(bundle.pipe, list(concepts), bundle.max_tokens)
    rows = []
    for i, concept in enumerate(concepts):
        tokens = prompt_tokens(bundle, concept)
        positions = [tokens.positions[j] for word in tokens.word_tokens for j in word]
        if max(positions) >= states.shape[1]:
            raise ValueError(f"concepts: {concept!r} is longer than the text encoder's sequence")
        rows.append(states[i, positions].float().mean(0))
    return torch.stack(rows)


class ConceptStream:
    """Context manager: while installed, every call of ``denoiser`` also carries the concept tokens through its
    joint blocks (module docstring) and records their maps; the denoiser's outputs do not change.

    Only forward hooks are installed (on the joint blocks, their attention's ``to_k``, ``to_v`` and
    ``to_out[0]``), inside one ``with``, under ``lock`` when given, and removed in ``finally``. It composes with
    :class:`~glimpse.attention.tracer.AttentionTracer` (which swaps processors, not hooks).

    Parameters
    ----------
    denoiser : the pipeline's transformer (SD3Transformer2DModel, FluxTransformer2DModel).
    kind : "sd3" | "flux" or an adapter; ValueError (with the reason) for the kinds without a text stream.
    states : (C, D) concept states in the denoiser's text-input space (:func:`concept_states`).
    image_hw : (H, W) of the image (any unit): the aspect ratio of the token grid.
    cfg : the batch is [unconditional, conditional] halves; the concepts follow the conditional sample.
    lock : taken from ``__enter__`` to ``__exit__`` (None: the caller holds it).
    """

    def __init__(
        self,
        denoiser: torch.nn.Module,
        kind: str | Kind,
        states: torch.Tensor,
        *,
        image_hw: tuple[int, int] = (1, 1),
        cfg: bool = True,
        lock: threading.RLock | None = None,
    ) -> None:
        adapter = kind_of(kind)
        reason = applies(adapter)
        if reason is not None:
            raise ValueError(f"kind: {adapter.name!r}: {reason}")
        if states.ndim != 2 or states.shape[0] < 1:
            raise ValueError(f"states: shape {tuple(states.shape)}, expected (concepts >= 1, text width)")
        self.denoiser, self.states, self.image_hw, self.cfg, self.lock = denoiser, states, image_hw, cfg, lock
        self.blocks = list(getattr(denoiser, adapter.concept_blocks))
        self.layers = tuple(f"{adapter.concept_blocks}.{i}.attn" for i in range(len(self.blocks)))
        self._handles: list[Any] = []
        self._maps: list[list[torch.Tensor]] = [[] for _ in self.blocks]
        self._stream: torch.Tensor | None = None  # the concepts' residual stream in the current call
        self._seen: dict[str, torch.Tensor] = {}  # this block call's image keys, values and attention output
        self._inputs: dict[str, Any] = {}

    # ------------------------------------------------------------------ install / remove
    def __enter__(self) -> ConceptStream:
        if self.lock is not None:
            self.lock.acquire()
        try:
            self._maps = [[] for _ in self.blocks]  # each installation records its own run
            self._hook(self.denoiser.register_forward_pre_hook(self._start_call))
            for block in self.blocks:
                attn = block.attn
                if getattr(attn, "fused_projections", False):
                    raise ValueError("denoiser: fused QKV projections; unfuse them (pipe.unfuse_qkv_projections())")
                signature = inspect.signature(block.forward)
                self._hook(block.register_forward_pre_hook(self._block_inputs(signature), with_kwargs=True))
                self._hook(attn.to_k.register_forward_hook(self._first("k")))
                self._hook(attn.to_v.register_forward_hook(self._first("v")))
                self._hook(attn.to_out[0].register_forward_pre_hook(self._first_input("o")))
                self._hook(block.register_forward_hook(self._block_done(block)))
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc: object) -> bool:
        self._remove()
        return False

    def _hook(self, handle: Any) -> None:
        self._handles.append(handle)

    def _remove(self) -> None:
        try:
            for handle in self._handles:
                handle.remove()
        finally:
            self._handles.clear()
            self._seen.clear()
            self._inputs.clear()
            self._stream = None
            if self.lock is not None:
                self.lock.release()

    # ------------------------------------------------------------------ hooks
    def _start_call(self, module: torch.nn.Module, args: tuple) -> None:
        self._stream = None  # made from the concept states at the first block, on its device and dtype

    def _block_inputs(self, signature: inspect.Signature) -> Callable:
        def hook(block: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            bound = signature.bind(*args, **kwargs).arguments
            self._inputs = {"temb": bound["temb"], "rotary": bound.get("image_rotary_emb")}
            self._seen = {}

        return hook

    def _first(self, slot: str) -> Callable:
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            self._seen.setdefault(slot, output)  # the processor's own call comes first (a recorder may add more)

        return hook

    def _first_input(self, slot: str) -> Callable:
        def hook(module: torch.nn.Module, args: tuple) -> None:
            self._seen.setdefault(slot, args[0])

        return hook

    def _block_done(self, block: torch.nn.Module) -> Callable:
        index = self.blocks.index(block)

        def hook(module: torch.nn.Module, args: tuple, output: Any) -> None:
            with torch.no_grad():
                self._advance(block, index)

        return hook

    # ------------------------------------------------------------------ the concept stream
    def _advance(self, block: torch.nn.Module, index: int) -> None:
        """One joint block for the concepts: attention over [image; concepts], the map, the residual update."""
        seen, temb = self._seen, self._inputs["temb"]
        if not {"k", "v", "o"} <= seen.keys():
            raise RuntimeError(f"concepts: {self.layers[index]} did not show its image keys, values and output")
        batch = temb.shape[0]
        b = batch // 2 if self.cfg else 0
        temb = temb[b : b + 1]
        if self._stream is None:
            states = self.states.to(device=temb.device, dtype=temb.dtype)
            self._stream = self.denoiser.context_embedder(states.unsqueeze(0))
        c = self._stream
        attn = block.attn
        pre_only = getattr(block, "context_pre_only", False)  # SD3's last block: no text update after it
        if pre_only:
            norm_c, gates = block.norm1_context(c, temb), None
        else:
            norm_c, *gates = block.norm1_context(c, emb=temb)
        k_img, v_img, o_img = seen["k"][b : b + 1], seen["v"][b : b + 1], seen["o"][b : b + 1]
        o_c = concept_attention_output(attn, norm_c, k_img, v_img, self._inputs["rotary"])
        self._maps[index].append(output_space_maps(o_img[0], o_c[0]).to(torch.float16))
        if not pre_only:
            g_msa, shift_mlp, scale_mlp, g_mlp = gates
            c = c + g_msa.unsqueeze(1) * attn.to_add_out(o_c)
            normed = block.norm2_context(c) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
            c = c + g_mlp.unsqueeze(1) * block.ff_context(normed)
        self._stream = c

    def result(self) -> tuple[tuple[str, ...], tuple[np.ndarray, ...]]:
        """The joint blocks' paths and their maps, ``(T, C, h, w)`` float16 each (T: denoiser calls)."""
        counts = {len(m) for m in self._maps}
        if len(counts) != 1 or not counts.pop():
            raise RuntimeError("concepts: the joint blocks were not all called, or unequally often")
        out = []
        for maps in self._maps:
            stacked = torch.stack(maps).to("cpu")  # (T, C, N)
            h, w = grid_shape(stacked.shape[-1], self.image_hw)
            out.append(stacked.reshape(*stacked.shape[:2], h, w).numpy())
        return self.layers, tuple(out)


def concept_attention_output(
    attn: torch.nn.Module,
    norm_c: torch.Tensor,
    k_img: torch.Tensor,
    v_img: torch.Tensor,
    rotary: Any = None,
) -> torch.Tensor:
    """o_c = softmax(q_c [k_x; k_c]ᵀ/√d) [v_x; v_c] of one joint attention layer, heads concatenated.

    Parameters
    ----------
    attn : the block's joint attention module (its ``add_*_proj`` and q/k norms).
    norm_c : (1, C, D) the modulated concept states.
    k_img, v_img : (1, N, H·d) the image tokens' key and value projections (before the key norm).
    rotary : Flux's (cos, sin) over [text; image] positions, or None; the image rows get it, the concepts stand
        at position 0 (like Flux's text), where RoPE is the identity.

    Returns
    -------
    (1, C, H·d) the concepts' attention output, before ``to_add_out``.
    """
    heads = attn.heads
    d = k_img.shape[-1] // heads

    def split(x: torch.Tensor) -> torch.Tensor:  # (1, S, H·d) -> (1, S, H, d)
        return x.unflatten(-1, (heads, d))

    q_c, k_c, v_c = (split(p(norm_c)) for p in (attn.add_q_proj, attn.add_k_proj, attn.add_v_proj))
    if attn.norm_added_q is not None:
        q_c = attn.norm_added_q(q_c)
    if attn.norm_added_k is not None:
        k_c = attn.norm_added_k(k_c)
    k_x, v_x = split(k_img), split(v_img)
    if attn.norm_k is not None:
        k_x = attn.norm_k(k_x)
    if rotary is not None:
        from diffusers.models.embeddings import apply_rotary_emb

        n = k_x.shape[1]
        k_x = apply_rotary_emb(k_x, tuple(r[-n:] for r in rotary), sequence_dim=1)
    keys, values = torch.cat([k_x, k_c], dim=1), torch.cat([v_x, v_c], dim=1)
    out = F.scaled_dot_product_attention(q_c.transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2))
    return out.transpose(1, 2).flatten(2).to(norm_c.dtype)


def output_space_maps(o_img: torch.Tensor, o_c: torch.Tensor) -> torch.Tensor:
    """softmax over concepts of o_c · o_xᵀ: (N, H·d) image outputs, (C, H·d) concept outputs -> (C, N) float32.

    >>> output_space_maps(torch.eye(2), torch.eye(2) * 50).round()
    tensor([[1., 0.],
            [0., 1.]])
    """
    return torch.softmax(o_c.float() @ o_img.float().T, dim=0)


def generate_with_concepts(
    bundle: Any,
    prompt: str,
    concepts: Sequence[str] | str | None = None,
    *,
    seed: int = 0,
    steps: int | None = None,
    guidance: float | None = None,
    heads: bool = False,
    layers: str = "daam",
    progress: Callable[[int, int], None] | None = None,
) -> ConceptGeneration:
    """Generate one image and record its ConceptAttention maps beside its cross-attention maps.

    Parameters
    ----------
    bundle : DiffusionBundle of an SD3 or Flux pipeline; its lock is held for the whole generation.
    prompt : the prompt, as in :func:`~glimpse.attention.generate_with_attention`.
    concepts : the concept words (a list or a comma-separated string); default: the prompt's content words
        (:func:`default_concepts`).
    seed, steps, guidance, heads, layers, progress : as in :func:`~glimpse.attention.generate_with_attention`
        (``heads`` and ``layers`` apply to the cross-attention maps).

    Returns
    -------
    ConceptGeneration
        The image (bit-identical to the one generated without concepts), the cross-attention ``trace`` and the
        ``concepts`` trace: per joint block, ``(T, C, h, w)`` maps that sum to one over the concepts.

    Raises
    ------
    ValueError
        A kind without joint attention (UNet, PixArt: the reason is named), bad concepts, or what
        :func:`~glimpse.attention.generate_with_attention` refuses.
    """
    recording = ConceptRecording(bundle, prompt, concepts, guidance=guidance)
    result = generate_with_attention(
        bundle, prompt, seed=seed, steps=steps, guidance=guidance, heads=heads, layers=layers, progress=progress,
        wrap=recording.wrap,
    )  # fmt: skip
    return ConceptGeneration(image=result.image, trace=result.trace, concepts=recording.trace(result.trace))


class ConceptRecording:
    """The concepts of one traced run of ``bundle``'s denoiser on ``prompt``: checked, encoded, and their stream.

    :meth:`wrap` runs a ``denoise()`` (what :func:`~glimpse.attention.generate.trace_denoiser` and
    :func:`~glimpse.attention.generate_with_attention` call, inside the cross-attention tracer and the pipeline's
    lock) with the :class:`ConceptStream` installed; :meth:`trace` gives the concept maps as a trace beside that
    run's cross-attention trace. ``guidance`` says whether the batch has CFG halves (default: the bundle's).
    """

    def __init__(
        self, bundle: Any, prompt: str, concepts: Sequence[str] | str | None, *, guidance: float | None = None,
        side: int | None = None,
    ) -> None:  # fmt: skip
        kind = kind_of(bundle.kind)
        reason = applies(kind)
        if reason is not None:
            raise ValueError(f"kind: {bundle.model_id!r} is a {kind.name} pipeline; {reason}")
        self.concepts = check_concepts(concepts, prompt_tokens(bundle, prompt).words)
        side = bundle.resolution if side is None else int(side)
        guidance = bundle.default_guidance if guidance is None else float(guidance)
        states = concept_states(bundle, self.concepts)
        self.stream = ConceptStream(bundle.denoiser, kind, states, image_hw=(side, side), cfg=kind.cfg(guidance))
        self._recorded: tuple[tuple[str, ...], tuple[np.ndarray, ...]] | None = None

    def wrap(self, denoise: Callable[[], Denoised]) -> Denoised:
        with self.stream:  # the caller holds the pipeline's lock
            run = denoise()
            self._recorded = self.stream.result()
        return run

    def trace(self, cross: AttentionTrace) -> AttentionTrace:
        """The concept maps of the run whose cross-attention is ``cross`` (its steps, model and settings)."""
        if self._recorded is None:
            raise RuntimeError("concepts: nothing recorded; run the denoiser through wrap() first")
        layers, maps = self._recorded
        if maps[0].shape[0] != len(cross.timesteps):
            raise RuntimeError(f"concepts: {maps[0].shape[0]} calls for {len(cross.timesteps)} steps")
        words = self.concepts
        return dataclasses.replace(  # the run's prompt, steps, model and settings; the concepts' maps
            cross, tokens=words, words=words, word_tokens=tuple((i,) for i in range(len(words))), layers=layers,
            layer_maps=maps, heads=False, head_sums=None, grid=None, layer_set=CONCEPT_LAYERS,
        )  # fmt: skip


__all__ = [
    "CONCEPT_LAYERS",
    "ConceptGeneration",
    "ConceptRecording",
    "ConceptStream",
    "applies",
    "check_concepts",
    "concept_attention_output",
    "concept_states",
    "default_concepts",
    "generate_with_concepts",
    "output_space_maps",
]
