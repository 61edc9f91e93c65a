"""Train the embedded shapes text-to-image model (``models/embedded/shapes_t2i``) on the CPU.

Method
------
Pixel-space diffusion (Ho et al. 2020) with the cosine noise schedule (Nichol & Dhariwal 2021,
``squaredcos_cap_v2``, 1000 steps) and the v-prediction objective of Salimans & Ho 2022
("Progressive Distillation for Fast Sampling of Diffusion Models"):

    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,   v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0,
    loss = || v_theta(x_t, t, text) - v ||^2,   t ~ U{0, ..., 999}.

Two additions aimed at placement ("a red circle to the left of a blue square"), which a first run without
them (9,300 CPU steps) never learned, staying at chance while colours were right:

* **Coordinate planes** (CoordConv, Liu et al. 2018; ``--coord-channels 2``): x and y planes in [-1, 1]
  are appended to the UNet input, so a pixel knows which half of the canvas it is in.
* **Token grounding loss** (TokenCompose, Wang et al. 2024; ``--ground-weight``): for every colour and
  shape word of a (non-dropped) caption and every cross-attention layer, the squared share of the word's
  head-averaged attention that falls outside its object's mask (known exactly, the scenes are rendered):

      loss = mse(v) + ground_weight * mean_{words, layers} (1 - sum_p A_w(p) M_w(p) / sum_p A_w(p))^2.

  It makes each word's key the one the pixels of its object read, so the text encoder must tell which
  object of the sentence goes where, and shape words must carry the shape.
* **Pixel grounding loss** (TokenCompose's second term; ``--pixel-weight``, 0 by default): binary
  cross-entropy between each grounded word's min-max normalised map and its object's mask. The token loss
  is met by a peak at the object's centre; this one asks for the whole object at the map's top value.

The UNet and the text encoder are trained jointly. Captions are replaced by the empty prompt with
probability ``--cond-dropout`` so the same network also models the unconditional distribution
needed for classifier-free guidance (Ho & Salimans 2022). An exponential moving average of the
weights, theta_ema <- d theta_ema + (1 - d) theta with d = min(decay, (1 + k) / (10 + k)) at step k
(warm-up so the early average is not dominated by the random initialisation), is what gets evaluated
and shipped: on this data the raw weights sample much worse.

Every ``--eval-every`` steps the EMA model is sampled on a subset of the held-out captions
(``training.shapes_t2i.evaluate``) and kept under ``OUT/best`` when its score (colour + shape + placement
accuracy + own-object word-map IoU) is the best so far. ``OUT/state.pt`` allows ``--resume``.

Examples
--------
The shipped checkpoint's run, three resumed phases (about 2 hours on one CPU thread)::

    training/shapes_t2i/recipe.sh .train/shapes_t2i

The loss weights and the timestep bias default to the last phase's settings.

Fine-tune from exported (float16) weights, e.g. the shipped ones; the optimiser, the EMA and the step count
start afresh (recipe.sh's phase 4)::

    python -m training.shapes_t2i.train --init-from models/embedded/shapes_t2i --out .train/shapes_t2i_px \
        --lr 2e-4 --pixel-weight 0.1 --steps 2000 --decay-from 1000

Ship the best checkpoint (float16 weights)::

    python -m training.shapes_t2i.train --export-from .train/run1/best --out models/embedded/shapes_t2i

Tiny smoke run (the test uses this)::

    python -m training.shapes_t2i.train --out /tmp/tiny --steps 3 --batch-size 4 --tiny --eval-every 0
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from glimpse.evaluation.shapes_scenes import (
    HELD_OUT_CAPTIONS,
    IMAGE_SIZE,
    RELATIONS,
    Scene,
    training_scenes,
    word_token_positions,
)
from models.shapes_pipeline import ShapesPipeline, ShapesTextPipeline

# imported up front: a lazy import mid-run would mix module versions if the files changed meanwhile
from training.shapes_t2i.evaluate import EvalConfig, evaluate

logger = logging.getLogger(__name__)

#: a tiny configuration for tests: 2 blocks of 8 and 16 channels, text width 16
TINY_UNET = {"block_out_channels": (8, 16), "cross_attention_dim": 16, "heads": 2, "norm_num_groups": 4}


def explicit_cross_attention(attn, hidden_states, encoder_hidden_states=None) -> tuple[torch.Tensor, torch.Tensor]:
    """What a stock ``attn2`` processor computes, with A = softmax(Q K^T / sqrt(d)) formed explicitly (the
    fused SDPA path never forms A) and kept differentiable for the grounding loss. Returns the layer's output
    and A as (B, heads, h*w, tokens)."""
    batch = hidden_states.shape[0]
    context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
    query = attn.head_to_batch_dim(attn.to_q(hidden_states))
    key = attn.head_to_batch_dim(attn.to_k(context))
    value = attn.head_to_batch_dim(attn.to_v(context))
    probs = attn.get_attention_scores(query, key, None)  # (B*heads, hw, T)
    out = attn.batch_to_head_dim(torch.bmm(probs, value))
    out = attn.to_out[1](attn.to_out[0](out)) / attn.rescale_output_factor
    return out, probs.view(batch, attn.heads, *probs.shape[1:])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train the embedded shapes text-to-image diffusion model.")
    p.add_argument("--out", required=True, help="output folder (checkpoints, metrics.jsonl)")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=8e-4)
    p.add_argument("--warmup", type=int, default=100, help="linear learning-rate warm-up steps")
    p.add_argument("--decay-from", type=int, default=0, help="step where the linear lr decay starts (0: never)")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--ema-decay", type=float, default=0.995)
    p.add_argument("--cond-dropout", type=float, default=0.1, help="probability of the empty caption")
    p.add_argument("--p-single", type=float, default=0.25, help="fraction of one-object scenes")
    # The layout (which object goes where) is decided in the first, noisiest sampling steps; at lower noise
    # x_t already fixes it, so uniform timesteps give the placement little signal. Drawing part of each
    # batch from the noisier half concentrates training where the layout is learned.
    p.add_argument("--high-t-frac", type=float, default=0.5, help="fraction of each batch with t from the noisier half")
    p.add_argument(
        "--ground-weight",
        type=float,
        default=0.2,
        help="weight of the token grounding loss on the cross-attention maps (0 disables it)",
    )
    p.add_argument(
        "--pixel-weight",
        type=float,
        default=0.0,
        help="weight of the pixel grounding loss (BCE of min-max normalised word maps against object masks)",
    )
    # the layout is decided at the noisiest timesteps, where the object's exact extent is not yet known
    p.add_argument(
        "--pixel-max-t",
        type=int,
        default=1000,
        help="the pixel loss applies only to timesteps below this (1000: all)",
    )
    p.add_argument(
        "--role-weight",
        type=float,
        default=0.1,
        help="weight of the auxiliary loss that makes each object word's text embedding say where its object is",
    )
    # a fine-tune (--init-from) that should not move what the text encoder already says, e.g. each object
    # word's side, which a fresh role read-out would otherwise pull on
    p.add_argument("--freeze-text-encoder", action="store_true", help="train the UNet only")
    # a fine-tune that should keep what the starting model draws (where each object goes) while an auxiliary
    # loss reshapes its attention: the starting UNet, frozen, as a teacher of the noisy steps that fix the layout
    p.add_argument(
        "--teacher-weight",
        type=float,
        default=0.0,
        help="with --init-from: weight of the squared distance to the starting UNet's prediction (0: none)",
    )
    p.add_argument("--teacher-min-t", type=int, default=0, help="the teacher loss applies only from this timestep")
    p.add_argument("--coord-channels", type=int, default=2, choices=(0, 2), help="x/y planes added to the UNet input")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    # bf16 pays only on CPUs with native bf16 (AVX512-BF16 / AMX); on an AVX2-only CPU a bf16 matmul
    # was measured 70x slower than float32, so float32 is the default
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (only with native CPU bf16 support)")
    p.add_argument("--tiny", action="store_true", help="tiny model for tests")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=1500, help="0 disables the periodic evaluation")
    p.add_argument("--eval-prompts", type=int, default=8, help="held-out captions used per evaluation")
    # measured: early checkpoints sample far better at CFG 1.5-2 than at 4 (saturated, mixed colours)
    p.add_argument("--eval-guidance", type=float, default=1.5, help="CFG scale of the periodic evaluation")
    p.add_argument("--save-every", type=int, default=500, help="steps between resumable states")
    p.add_argument(
        "--stop-at", type=int, default=0, help="stop at this step, keeping the lr schedule of --steps (0: at --steps)"
    )
    p.add_argument("--time-limit", type=float, default=0.0, help="stop after this many minutes (0: none)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.pt")
    p.add_argument(
        "--init-from",
        default=None,
        metavar="DIR",
        help="start from the weights of a saved pipeline (e.g. an export) with a fresh optimiser, EMA and step 0",
    )
    p.add_argument("--reset-best", action="store_true", help="on --resume, forget the stored best score")
    p.add_argument(
        "--export-from",
        default=None,
        metavar="SRC",
        help="instead of training, re-save the pipeline at SRC into OUT with float16 weights",
    )
    return p.parse_args(argv)


def learning_rate(step: int, args: argparse.Namespace) -> float:
    """Linear warm-up to ``lr``, constant, then (from ``decay_from``) linear decay to lr / 10 at ``steps``.

    Annealing at the end of a short budget lowers the gradient noise the EMA has to average out.
    """
    lr = args.lr * min(1.0, (step + 1) / max(1, args.warmup))
    if args.decay_from and step >= args.decay_from:
        frac = (step - args.decay_from) / max(1, args.steps - args.decay_from)
        lr *= 1.0 - 0.9 * min(1.0, frac)
    return lr


def sample_timesteps(n: int, num_train_timesteps: int, high_t_frac: float = 0.0) -> torch.Tensor:
    """``n`` training timesteps: uniform over [0, T), except that a ``high_t_frac`` share (rounded) of them
    is drawn uniformly from the noisier half [T/2, T)."""
    if not 0.0 <= high_t_frac <= 1.0:
        raise ValueError(f"--high-t-frac must be in [0, 1], got {high_t_frac}")
    t = torch.randint(0, num_train_timesteps, (n,))
    k = int(round(high_t_frac * n))
    if k:
        t[:k] = torch.randint(num_train_timesteps // 2, num_train_timesteps, (k,))
    return t


class GroundingProcessor:
    """Cross-attention processor for training: the layer's output with A = softmax(Q K^T / sqrt(d)) formed
    explicitly (with gradients); appends the head-averaged A, shape (B, h*w, T), to ``store`` so the
    grounding loss can read it."""

    def __init__(self, store: list[torch.Tensor]) -> None:
        self.store = store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        out, probs = explicit_cross_attention(attn, hidden_states, encoder_hidden_states)
        self.store.append(probs.mean(dim=1))
        return out


def install_grounding(unet) -> list[torch.Tensor]:
    """Put a :class:`GroundingProcessor` on every ``attn2`` layer of ``unet``; return their shared store."""
    store: list[torch.Tensor] = []
    processors = {
        name: GroundingProcessor(store) if name.endswith("attn2.processor") else proc
        for name, proc in unet.attn_processors.items()
    }
    unet.set_attn_processor(processors)
    return store


def grounding_targets(scenes: list[Scene], keep: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Token positions (B, K) and object masks (B, K, 32, 32) for the grounding loss.

    Every kept (caption not dropped) scene contributes its objects' colour and shape words, K = 4 slots
    (two objects x two words); unused slots have token -1 and an empty mask.
    """
    tokens = torch.full((len(scenes), 4), -1, dtype=torch.long)
    masks = torch.zeros((len(scenes), 4, IMAGE_SIZE, IMAGE_SIZE))
    for b, (scene, kept) in enumerate(zip(scenes, keep)):
        if not kept:
            continue
        for k, (positions, mask) in enumerate(zip(word_token_positions(scene.spec), scene.masks)):
            for j, role in enumerate(("colour", "shape")):
                tokens[b, 2 * k + j] = positions[role]
                masks[b, 2 * k + j] = torch.from_numpy(mask.astype(np.float32))
    return tokens, masks


def grounding_loss(attention: list[torch.Tensor], tokens: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Token grounding loss of TokenCompose (Wang et al. 2024, "TokenCompose: Text-to-Image Diffusion with
    Token-level Supervision"): for each grounded word i and layer, with A_i its attention map over pixels
    and M_i its object's mask (area-resized to the layer's grid),

        L = mean over words and layers of (1 - sum_p A_i(p) M_i(p) / sum_p A_i(p))^2,

    i.e. the share of the word's attention that falls outside its own object, squared. ``attention``: a list
    of (B, h*w, T) head-averaged maps; ``tokens`` (B, K) with -1 for unused slots; ``masks`` (B, K, H, W).
    Returns 0 (with a gradient path) when no slot is used.
    """

    def outside_squared(per_word: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        inside = (per_word * m).sum(-1) / per_word.sum(-1).clamp_min(1e-8)
        return (1.0 - inside) ** 2

    return _mean_over_words_and_layers(attention, tokens, masks, outside_squared)


def _mean_over_words_and_layers(attention, tokens, masks, per_word_loss) -> torch.Tensor:
    """``per_word_loss(maps, masks)`` (B, K) averaged over the used slots, then over the layers; 0 (with a
    gradient path) when no slot is used."""
    valid = tokens >= 0
    if not attention or not bool(valid.any()):
        return sum((a.sum() * 0.0 for a in attention), torch.zeros(()))
    losses = [per_word_loss(*_word_maps_and_masks(a, tokens, masks))[valid].mean() for a in attention]
    return torch.stack(losses).mean()


def pixel_grounding_loss(attention: list[torch.Tensor], tokens: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Pixel grounding loss after TokenCompose (Wang et al. 2024): for each grounded word i and layer, the binary
    cross-entropy between its attention map, min-max normalised over the layer's pixels, and its object's mask
    M_i (area-resized to the layer's grid, so edge cells have fractional targets):

        Â_i = (A_i - min_p A_i) / (max_p A_i - min_p A_i),
        L = mean over words, layers and pixels of -[M_i log Â_i + (1 - M_i) log(1 - Â_i)].

    :func:`grounding_loss` is met by a peak at the object's centre, whose thresholded map covers a third of
    the object; this term asks for the whole object at the map's top value. TokenCompose applies the BCE to the
    raw map; here a colour word and a shape word share one mask and their softmax shares cannot both reach 1,
    so each map is min-max normalised first, as the evaluation does before thresholding. Â is squeezed
    linearly into [1e-3, 1 - 1e-3] (not clamped: a clamp would take the gradient from the pixels farthest off,
    a map's own minimum among them) so the loss stays bounded. Arguments as :func:`grounding_loss`.
    """

    def bce(per_word: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        low, high = per_word.amin(-1, keepdim=True), per_word.amax(-1, keepdim=True)
        normalised = (per_word - low) / (high - low).clamp_min(1e-8)
        return F.binary_cross_entropy(1e-3 + (1.0 - 2e-3) * normalised, m, reduction="none").mean(-1)  # (B, K)

    return _mean_over_words_and_layers(attention, tokens, masks, bce)


def _word_maps_and_masks(
    a: torch.Tensor, tokens: torch.Tensor, masks: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The grounded words' maps (B, K, h*w) of one layer's (B, h*w, T) attention ``a`` and their masks
    area-resized to the layer's grid, (B, K, h*w); unused slots (token -1) read token 0."""
    _, hw, _ = a.shape
    side = int(round(hw**0.5))
    m = F.adaptive_avg_pool2d(masks, side).flatten(2)
    per_word = torch.gather(a.transpose(1, 2), 1, tokens.clamp_min(0).unsqueeze(-1).expand(-1, -1, hw))
    return per_word, m


def role_targets(scenes: list[Scene], keep: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each object word's object lies relative to the other, for :func:`role_loss`.

    For the colour and shape words of both objects of every kept two-object caption: the (batch, token)
    index (N, 2) and the target (N, 2), (dx, dy) with the sign the object's offset from the other object
    has along the relation's axis and 0 on the other axis ("a red circle to the left of a blue square":
    red, circle -> (-1, 0); blue, square -> (+1, 0); "... above ...": first object (0, -1)).
    """
    index, target = [], []
    for b, (scene, kept) in enumerate(zip(scenes, keep)):
        if not kept or scene.spec.relation is None:
            continue
        axis, sign = RELATIONS[scene.spec.relation]
        for k, positions in enumerate(word_token_positions(scene.spec)):
            offset = [0.0, 0.0]
            offset[axis] = float(sign if k == 0 else -sign)
            for role in ("colour", "shape"):
                index.append((b, positions[role]))
                target.append(offset)
    return torch.tensor(index, dtype=torch.long).view(-1, 2), torch.tensor(target).view(-1, 2)


def role_loss(head: torch.nn.Module, context: torch.Tensor, index: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of a linear read-out ``head`` of the object words' text embeddings against
    :func:`role_targets`. Zero (with a gradient path) when the batch has no two-object caption.

    Which object of a caption goes left is the XOR of its position in the sentence and the relation word
    ("A left of B" vs "B left of A" vs "A right of B"); a bag of word embeddings cannot say it, and the
    diffusion loss alone never taught the text encoder to (the first run's object words changed by 3 %
    between "left" and "right"). With this read-out it learns it in about 100 steps, also for held-out
    captions; the head itself is discarded.
    """
    if index.numel() == 0:
        return context.sum() * 0.0
    return F.mse_loss(head(context[index[:, 0], index[:, 1]].float()), target)


def _ema_update(ema: list[torch.Tensor], params: list[torch.Tensor], decay: float) -> None:
    with torch.no_grad():
        torch._foreach_lerp_(ema, params, 1.0 - decay)


def optimise(
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    params: list[torch.Tensor],
    averaged: tuple[list[torch.Tensor], list[torch.Tensor]],
    decay: float,
) -> None:
    """One training step: the gradients of ``loss``, clipped at norm 1.0 over ``params``, the optimiser's update,
    then the EMA ``averaged = (ema, live)``: ema <- decay * ema + (1 - decay) * live."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    _ema_update(*averaged, decay)


def train(args: argparse.Namespace) -> dict:
    """Run the training loop; return the final metrics (last loss, steps, seconds, best score)."""
    if args.freeze_text_encoder and args.role_weight > 0:
        raise SystemExit("--freeze-text-encoder trains no role read-out: give --role-weight 0")
    if args.teacher_weight > 0 and not (args.init_from and args.freeze_text_encoder):
        # with a training text encoder the teacher would read the student's embeddings: a moving target
        raise SystemExit("--teacher-weight needs --init-from and --freeze-text-encoder (the teacher is the start)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)

    pipe = ShapesPipeline.build(**(TINY_UNET if args.tiny else {}), coord_channels=args.coord_channels)
    pipe.set_progress_bar_config(disable=True)
    unet, text_encoder, tokenizer, scheduler = pipe.unet, pipe.text_encoder, pipe.tokenizer, pipe.scheduler
    if args.init_from:  # strict loads: a saved pipeline of another configuration raises here
        init = ShapesPipeline.from_pretrained(args.init_from)
        unet.load_state_dict(init.unet.state_dict())
        text_encoder.load_state_dict(init.text_encoder.state_dict())
        del init
    # copied before the grounding processors are installed, so the teacher records no attention
    teacher = copy.deepcopy(unet).requires_grad_(False).eval() if args.teacher_weight > 0 else None
    ema_pipe = ShapesPipeline(copy.deepcopy(unet), copy.deepcopy(text_encoder), tokenizer, scheduler)
    ema_pipe.set_progress_bar_config(disable=True)
    ema_pipe.unet.requires_grad_(False)
    ema_pipe.text_encoder.requires_grad_(False)
    if args.freeze_text_encoder:
        text_encoder.requires_grad_(False)

    trainable = [p for m in (unet, text_encoder) for p in m.parameters() if p.requires_grad]
    # EMA over every floating tensor of both modules, matched by order
    live = [p for m in (unet, text_encoder) for p in m.parameters()]
    ema = [p for m in (ema_pipe.unet, ema_pipe.text_encoder) for p in m.parameters()]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.99))

    step, best_score, elapsed_before = 0, -math.inf, 0.0
    state_path = os.path.join(args.out, "state.pt")
    resumed = args.resume and os.path.exists(state_path)
    state = torch.load(state_path, weights_only=False) if resumed else {}
    # the role read-out's parameters are the optimiser's second group; a saved head is kept (and loaded) even
    # at --role-weight 0, so that the saved optimiser state, which includes its group, still loads
    saved_head = "role_head" in state
    role_head = torch.nn.Linear(text_encoder.config.hidden_size, 2) if args.role_weight > 0 or saved_head else None
    if saved_head:
        optimizer.add_param_group({"params": list(role_head.parameters())})
    if resumed:
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text_encoder"])
        ema_pipe.unet.load_state_dict(state["ema_unet"])
        ema_pipe.text_encoder.load_state_dict(state["ema_text_encoder"])
        optimizer.load_state_dict(state["optimizer"])
        if saved_head:
            role_head.load_state_dict(state["role_head"])
        step, best_score, elapsed_before = state["step"], state["best_score"], state["elapsed"]
        if args.reset_best:  # e.g. the evaluation settings changed, so old scores are not comparable
            best_score = -math.inf
        rng = np.random.default_rng([args.seed, step])
        torch.manual_seed(args.seed + step)
        print(f"resumed at step {step} (best score {best_score:.3f})", flush=True)
    if role_head is not None and not saved_head:  # a new head joins the optimiser
        optimizer.add_param_group({"params": list(role_head.parameters())})

    attention_store = install_grounding(unet) if args.ground_weight > 0 or args.pixel_weight > 0 else None
    alphas_cumprod = scheduler.alphas_cumprod.float()
    metrics_path = os.path.join(args.out, "metrics.jsonl")
    t_start = time.time()
    window: list[float] = []
    aux_windows: dict[str, list[float]] = {"ground": [], "pixel": [], "role": [], "teacher": []}
    window_t0 = time.time()
    loss_value = float("nan")
    eval_captions = _eval_subset(args.eval_prompts)

    def elapsed() -> float:
        return elapsed_before + time.time() - t_start

    last_step = min(args.steps, args.stop_at) if args.stop_at else args.steps
    while step < last_step:
        scenes = training_scenes(rng, args.batch_size, args.p_single)
        images = np.stack([s.image for s in scenes])
        drop = rng.random(len(scenes)) < args.cond_dropout
        captions = ["" if d else s.caption for s, d in zip(scenes, drop)]
        x0 = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        noise = torch.randn_like(x0)
        t = sample_timesteps(x0.shape[0], scheduler.config.num_train_timesteps, args.high_t_frac)
        abar = alphas_cumprod[t].view(-1, 1, 1, 1)
        x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        target = abar.sqrt() * noise - (1 - abar).sqrt() * x0

        lr = learning_rate(step, args)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            context = pipe.encode_prompt(captions)
            pred = unet(pipe.unet_input(x_t), t, encoder_hidden_states=context).sample
        denoise_loss = F.mse_loss(pred.float(), target)
        loss = denoise_loss
        if teacher is not None:
            taught = t >= args.teacher_min_t
            if bool(taught.any()):
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                    held = teacher(
                        pipe.unet_input(x_t[taught]), t[taught], encoder_hidden_states=context[taught]
                    ).sample
                distance = F.mse_loss(pred[taught].float(), held.float())
                loss = loss + args.teacher_weight * distance
                aux_windows["teacher"].append(float(distance.detach()))
        if attention_store is not None:
            maps, targets = [a.float() for a in attention_store], grounding_targets(scenes, ~drop)
            if args.ground_weight > 0:
                ground = grounding_loss(maps, *targets)
                loss = loss + args.ground_weight * ground
                aux_windows["ground"].append(float(ground.detach()))
            if args.pixel_weight > 0:
                pixel = pixel_grounding_loss(maps, *grounding_targets(scenes, ~drop & (t.numpy() < args.pixel_max_t)))
                loss = loss + args.pixel_weight * pixel
                aux_windows["pixel"].append(float(pixel.detach()))
            attention_store.clear()
        if args.role_weight > 0:
            role = role_loss(role_head, context, *role_targets(scenes, ~drop))
            loss = loss + args.role_weight * role
            aux_windows["role"].append(float(role.detach()))
        step += 1
        optimise(optimizer, loss, trainable, (ema, live), min(args.ema_decay, (1 + step) / (10 + step)))
        loss_value, total = float(denoise_loss.detach()), float(loss.detach())
        if not math.isfinite(total):
            raise FloatingPointError(f"loss became {total} at step {step}")
        window.append(loss_value)

        if step % args.log_every == 0 or step == last_step:
            s_per_step = (time.time() - window_t0) / len(window)
            record = {
                "step": step,
                "loss": float(np.mean(window)),
                "lr": lr,
                "s_per_step": round(s_per_step, 3),
                "elapsed_min": round(elapsed() / 60, 2),
            }
            for name, values in aux_windows.items():
                if values:
                    record[name] = float(np.mean(values))
                    values.clear()
            print(json.dumps(record), flush=True)
            _append(metrics_path, record)
            window, window_t0 = [], time.time()

        if args.eval_every and step % args.eval_every == 0:
            best_score = _evaluate_and_keep(ema_pipe, eval_captions, step, best_score, args, metrics_path)
            window_t0 = time.time()  # evaluation time is not training time

        if step % args.save_every == 0 or step == last_step:
            ema_pipe.save_pretrained(os.path.join(args.out, "last"))
            torch.save(
                {
                    "unet": unet.state_dict(),
                    "text_encoder": text_encoder.state_dict(),
                    "ema_unet": ema_pipe.unet.state_dict(),
                    "ema_text_encoder": ema_pipe.text_encoder.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    **({"role_head": role_head.state_dict()} if role_head is not None else {}),
                    "step": step,
                    "best_score": best_score,
                    "elapsed": elapsed(),
                    "args": vars(args),
                },
                state_path + ".tmp",
            )
            os.replace(state_path + ".tmp", state_path)  # atomic: a kill mid-save keeps the old state

        if args.time_limit and elapsed() > args.time_limit * 60:
            print(f"time limit reached at step {step}", flush=True)
            break

    ema_pipe.save_pretrained(os.path.join(args.out, "last"))
    return {"steps": step, "loss": loss_value, "seconds": elapsed(), "best_score": best_score}


def _eval_subset(n: int) -> list[str]:
    """n held-out captions spread over the four relations (the list is ordered in mirrored pairs)."""
    by_relation: dict[str, list[str]] = {}
    for c in HELD_OUT_CAPTIONS:
        rel = next(r for r in ("left", "right", "above", "below") if f" {r} " in f" {c} ")
        by_relation.setdefault(rel, []).append(c)
    picked: list[str] = []
    i = 0
    while len(picked) < min(n, len(HELD_OUT_CAPTIONS)):
        for rel in ("left", "right", "above", "below"):
            if i < len(by_relation[rel]) and len(picked) < n:
                picked.append(by_relation[rel][i])
        i += 1
    return picked


def _evaluate_and_keep(ema_pipe, captions, step, best_score, args, metrics_path) -> float:
    t0 = time.time()
    summary = evaluate(ema_pipe, captions, EvalConfig(seeds=(0,), guidance_scale=args.eval_guidance))["summary"]
    record = {"step": step, "eval": summary, "eval_seconds": round(time.time() - t0, 1)}
    print(json.dumps(record), flush=True)
    _append(metrics_path, record)
    if summary["score"] > best_score:
        ema_pipe.save_pretrained(os.path.join(args.out, "best"))
        with open(os.path.join(args.out, "best", "train_step.json"), "w") as f:
            json.dump({"step": step, "eval_guidance": args.eval_guidance, "summary": summary}, f, indent=1)
        print(f"new best at step {step}: score {summary['score']:.3f}", flush=True)
        return summary["score"]
    return best_score


def _append(path: str, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def export_checkpoint(
    src: str, dst: str, dtype: torch.dtype = torch.float16, *, pipeline: type[ShapesTextPipeline] = ShapesPipeline
) -> ShapesTextPipeline:
    """Re-save the ``pipeline`` at ``src`` to ``dst`` with weights stored in ``dtype`` (float16 halves the
    repository size; the shapes pipelines' ``from_pretrained`` computes in float32 again)."""
    pipe = pipeline.from_pretrained(src)
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.to(dtype)
    pipe.save_pretrained(dst)
    return pipe


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.export_from:
        export_checkpoint(args.export_from, args.out)
        print(f"exported {args.export_from} -> {args.out} (float16 weights)", flush=True)
        return
    result = train(args)
    print(json.dumps({"done": result}), flush=True)


if __name__ == "__main__":
    main()
