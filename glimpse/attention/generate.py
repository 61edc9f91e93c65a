"""Generate an image and record its cross-attention: :func:`generate_with_attention`."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from glimpse.attention.daam import check_layer_set
from glimpse.attention.kinds import kind_of
from glimpse.attention.trace import AttentionTrace, GenerationResult
from glimpse.attention.tracer import AttentionTracer


@dataclass(frozen=True)
class PromptTokens:
    """How a prompt lands in the text sequence the denoiser attends to."""

    tokens: tuple[str, ...]  # kept token strings (start/end included where the tokenizer has them)
    positions: tuple[int, ...]  # their positions in the text sequence
    words: tuple[str, ...]
    word_tokens: tuple[tuple[int, ...], ...]  # per word, indices into ``tokens``
    text_len: int | None = None  # full text sequence length (Flux single-stream blocks)


def _check_prompt(prompt: Any, max_tokens: int) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"prompt: empty; type at least one word (the text encoder takes at most {max_tokens} tokens)")
    return prompt.strip()


def _is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def word_spans(prompt: str) -> list[tuple[int, int, str]]:
    """The prompt's words as (start, end, text): whitespace-separated, with punctuation at their edges left
    out ("circle." is the word "circle"; a tokenizer makes the full stop a token of its own, which belongs to
    no word). A run of punctuation alone ("...") stays a word, so every token has a place.

    >>> [w for _, _, w in word_spans("A red circle, left of (a) square.")]
    ['A', 'red', 'circle', 'left', 'of', 'a', 'square']
    """
    spans = []
    for m in re.finditer(r"\S+", prompt):
        start, end = m.start(), m.end()
        while start < end and _is_punctuation(prompt[start]):
            start += 1
        while end > start and _is_punctuation(prompt[end - 1]):
            end -= 1
        if start == end:
            start, end = m.start(), m.end()
        spans.append((start, end, prompt[start:end]))
    return spans


def _group_words(prompt: str, tokenizer: Any, ids: list[int]) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]:
    """Assign sub-tokens to the prompt's words (:func:`word_spans`) by character offsets (fast tokenizers)."""
    spans = word_spans(prompt)
    enc = tokenizer(prompt, add_special_tokens=True, truncation=False, return_offsets_mapping=True)
    members: list[list[int]] = [[] for _ in spans]
    for index, (start, end) in enumerate(enc["offset_mapping"]):
        if end <= start:
            continue  # special token
        for w, (ws, we, _) in enumerate(spans):
            if ws <= start < we:
                members[w].append(index)
                break
    empty = [spans[w][2] for w, m in enumerate(members) if not m]
    if empty:
        raise ValueError(f"prompt: the tokenizer produced no tokens for {empty}")
    return tuple(s[2] for s in spans), tuple(tuple(m) for m in members)


def prompt_tokens(bundle: Any, prompt: str) -> PromptTokens:
    """Tokens, words and their grouping for ``prompt``; ValueError for empty or over-long prompts."""
    prompt = _check_prompt(prompt, bundle.max_tokens)
    pipe = bundle.pipe
    if hasattr(pipe, "tokenize_words"):  # the embedded word-level model: word k is token k + 1
        # its words, lower-cased and without edge punctuation; unknown / too many words: ValueError with the limit
        words = tuple(pipe.validate_prompt(prompt))
        tokens = tuple(pipe.tokenize_words(prompt)[: len(words) + 2])
        return PromptTokens(tokens, tuple(range(len(tokens))), words, tuple((k + 1,) for k in range(len(words))))
    kind = kind_of(bundle.kind)
    tokenizer = kind.tokenizer(pipe)
    ids = tokenizer(prompt, add_special_tokens=True, truncation=False)["input_ids"]
    if len(ids) > bundle.max_tokens:
        raise ValueError(
            f"prompt: {len(ids)} tokens, but the text encoder takes at most {bundle.max_tokens} "
            "(special tokens included); shorten the prompt"
        )
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("prompt: word grouping needs a fast tokenizer (with offsets); this pipeline has a slow one")
    words, word_tokens = _group_words(prompt, tokenizer, ids)
    tokens = tuple(tokenizer.convert_ids_to_tokens(ids))
    return PromptTokens(tokens, tuple(range(len(ids))), words, word_tokens, kind.text_len(bundle.max_tokens))


def generate_with_attention(
    bundle: Any,
    prompt: str,
    *,
    seed: int = 0,
    steps: int | None = None,
    guidance: float | None = None,
    heads: bool = False,
    layers: str = "daam",
    resolutions: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    wrap: Callable[[Callable[[], Denoised]], Denoised] | None = None,
) -> GenerationResult:
    """Generate one image for ``prompt`` and record its cross-attention maps.

    Parameters
    ----------
    bundle : DiffusionBundle
        From :func:`models.diffusion.load_pipeline`; its lock is held for the whole generation.
    prompt : str
        Non-empty, at most ``bundle.max_tokens`` tokens (special tokens included).
    seed : int
        Seeds the initial noise (a CPU ``torch.Generator``), so results repeat across devices.
    steps, guidance : int, float, optional
        Denoising steps and classifier-free guidance scale w (defaults: the bundle's).
    heads : bool
        Keep every head's map at every step, so that heads can be selected (default: averaged on the fly;
        UNet traces still keep each head's sum over all steps, which is what DAAM's per-head clamp needs).
    layers : {"daam", "all"}
        Which cross-attention layers to record (:mod:`glimpse.attention.daam`). ``"daam"`` (default): for
        Stable Diffusion (hub UNet) pipelines exactly DAAM 0.2.0's set — the down- and up-block ``attn2``
        layers, without the maps whose DAAM factor is 8 (the 8×8 maps of a 64×64 latent) — aggregated on
        DAAM's grid (64×64 for 512- and 1024-px models, else 96×96); for the embedded shapes model (pixel
        space, no latent) the down- and up-block layers at every resolution, aggregated on its image grid;
        for transformer pipelines every cross/joint-attention layer. ``"all"``: every cross-attention
        layer, the UNet mid block and the 1/8-latent maps included, on the same grid.
    resolutions : sequence of int, optional
        Map heights to record among the chosen layers (default: all of them, less DAAM's skipped ones).
    progress : callable, optional
        ``progress(step, steps)`` after every denoising step.
    wrap : callable, optional
        ``wrap(denoise)`` runs the generation instead of ``denoise()``, inside the tracer and the pipeline's lock:
        where more hooks go around the same denoiser calls (ConceptAttention, :mod:`glimpse.attention.concept`).

    Returns
    -------
    GenerationResult
        uint8 image and an :class:`AttentionTrace` (see :mod:`glimpse.attention.tracer` for the maths).

    Raises
    ------
    ValueError
        Empty or over-long prompt, unknown words (embedded model), bad steps, an unknown layer set, or
        resolutions the model does not have.
    """
    kind = kind_of(bundle.kind)
    tokens = prompt_tokens(bundle, prompt)
    steps = bundle.default_steps if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps: {steps} must be >= 1")
    guidance = bundle.default_guidance if guidance is None else float(guidance)

    def denoise() -> Denoised:
        seen: list[int] = []

        def on_step(pipe: Any, i: int, t: Any, kwargs: dict) -> dict:
            seen.append(int(t))
            if progress is not None:
                progress(i + 1, steps)
            return kwargs

        out = bundle.pipe(
            prompt,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=torch.Generator(device="cpu").manual_seed(int(seed)),
            output_type="np",
            callback_on_step_end=on_step,
            **kind.call_kwargs(bundle.max_tokens),
        )
        image = (np.clip(np.asarray(out.images[0], dtype=np.float32), 0.0, 1.0) * 255).round().astype(np.uint8)
        return Denoised(seen, (int(image.shape[0]), int(image.shape[1])), image)

    run = denoise if wrap is None else lambda: wrap(denoise)
    trace, image = trace_denoiser(
        bundle, tokens, run, prompt=prompt, seed=seed, steps=steps, guidance=guidance, heads=heads,
        layers=layers, resolutions=resolutions,
    )  # fmt: skip
    return GenerationResult(image=image, trace=trace)


@dataclass(frozen=True)
class Denoised:
    """What one traced run of the denoiser did: :func:`trace_denoiser`'s ``denoise()`` returns it."""

    timesteps: Sequence[int]  # the timestep of every denoiser call (CFG halves are one call), in order
    image_shape: tuple[int, int]  # (H, W) in pixels of the image the maps lie on
    output: Any = None  # handed back to the caller (the generated image)


def trace_denoiser(
    bundle: Any,
    tokens: PromptTokens,
    denoise: Callable[[], Denoised],
    *,
    prompt: str,
    seed: int,
    guidance: float,
    steps: int | None = None,
    side: int | None = None,
    heads: bool = False,
    layers: str = "daam",
    resolutions: Sequence[int] | None = None,
) -> tuple[AttentionTrace, Any]:
    """Run ``denoise()`` with ``bundle``'s cross-attention recorded: the one tracer set-up of the library.

    :func:`generate_with_attention` (a whole generation) and the diffusion classifier's
    :func:`glimpse.diffusion_classifier.attention.trace_prompt` (one prompt over a noised image) are its two
    callers. It chooses the layers and grid (the kind's :meth:`~glimpse.attention.kinds.Kind.layer_plan`),
    installs the recorders under the bundle's lock (:class:`AttentionTracer`), calls ``denoise()`` inside,
    and checks what came back.

    Parameters
    ----------
    bundle : DiffusionBundle
    tokens : PromptTokens
        :func:`prompt_tokens` of the prompt the denoiser is conditioned on.
    denoise : callable
        Runs the denoiser once per timestep (with the bundle's lock held and the recorders installed) and
        returns a :class:`Denoised`.
    prompt, seed, guidance
        Recorded in the trace; ``guidance`` > 1 also means the batch is [unconditional, conditional] halves
        (``Kind.cfg``), whose conditional half is recorded.
    steps : int, optional
        The step count recorded in the trace (default: the number of timesteps).
    side : int, optional
        Image side in pixels that the layer plan is made for (default ``bundle.resolution``).
    heads, layers, resolutions
        As in :func:`generate_with_attention`.

    Returns
    -------
    (AttentionTrace, the ``output`` of ``denoise()``)

    Raises
    ------
    ValueError
        An unknown layer set, or no layer recorded (``resolutions`` the model does not have).
    RuntimeError
        The layers recorded a different number of calls than ``denoise()`` reports timesteps.
    """
    check_layer_set(layers)
    kind = kind_of(bundle.kind)
    side = bundle.resolution if side is None else int(side)
    plan = kind.layer_plan(bundle.pipe, side, layers, resolutions)
    tracer = AttentionTracer(
        bundle.denoiser,
        kind,
        lock=bundle.lock,
        token_positions=tokens.positions,
        image_hw=(side, side),
        cfg=kind.cfg(guidance),
        heads=heads,
        resolutions=resolutions,
        exclude_resolutions=plan.exclude,
        blocks=plan.blocks,
        head_sums=kind.head_sums and not heads,
        text_len=tokens.text_len,
    )
    with tracer:
        run = denoise()
        names, maps = tracer.result()
        sums = tracer.sums()
    if not names:
        raise ValueError(
            f"resolutions: {list(resolutions or [])} match no cross-attention layer; "
            f"this model has {sorted(tracer.seen_resolutions)}"
        )
    if maps[0].shape[0] != len(run.timesteps):
        raise RuntimeError(f"tracer: {maps[0].shape[0]} denoiser calls recorded for {len(run.timesteps)} steps")
    trace = AttentionTrace(
        prompt=prompt,
        tokens=tokens.tokens,
        words=tokens.words,
        word_tokens=tokens.word_tokens,
        timesteps=np.asarray(run.timesteps, dtype=np.int64),
        layers=names,
        layer_maps=maps,
        model_id=bundle.model_id,
        seed=int(seed),
        steps=len(run.timesteps) if steps is None else int(steps),
        guidance=float(guidance),
        image_shape=run.image_shape,
        heads=heads,
        head_sums=sums,
        grid=plan.grid,
        layer_set=layers,
    )
    return trace, run.output
