"""Train the embedded shapes MMDiT (``models/embedded/shapes_mmdit``) on the CPU.

Method
------
Rectified flow as Stable Diffusion 3 trains it (Esser et al. 2024, "Scaling Rectified Flow Transformers for
High-Resolution Image Synthesis"; Liu et al. 2023, "Flow Straight and Fast"):

    x_sigma = (1 - sigma) x_0 + sigma eps,   v = eps - x_0,   loss = || v_theta(x_sigma, 1000 sigma, text) - v ||^2,

with sigma drawn logit-normally, sigma = sigmoid(n), n ~ N(0, 1) (SD3's default), or uniformly
(``--t-sampling``); a ``--high-t-frac`` share of each batch is drawn from sigma in [0.5, 1), where the layout
is decided, as for shapes-t2i. The denoiser is an ``SD3Transformer2DModel`` (joint attention over
[image, text] tokens) on 32x32 pixels; the text encoder and tokenizer are shapes-t2i's, frozen, so their
embeddings are computed once per caption. The blocks start as the identity (adaLN-Zero, Peebles & Xie 2023):
the modulations of the image stream and the output projection are zero at initialisation.

The token grounding loss of TokenCompose (Wang et al. 2024) is the one shapes-t2i uses
(:func:`training.shapes_t2i.train.grounding_loss`), here on each joint block's image-query -> text-key block of
the joint softmax: the squared share of a colour or shape word's attention that falls outside its object.

Captions are dropped to ``""`` with probability ``--cond-dropout`` for classifier-free guidance; an EMA of the
weights is what is evaluated and shipped. ``OUT/state.pt`` allows ``--resume``; ``OUT/last`` is the EMA
pipeline, saved every ``--save-every`` steps.

Examples
--------
The shipped run: ``training/shapes_mmdit/recipe.sh``. Tiny smoke run (the test uses this)::

    python -m training.shapes_mmdit.train --out /tmp/tiny --steps 3 --batch-size 4 --tiny --eval-every 0
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from glimpse.attention.recorders.sd3 import joint_output, joint_qkv
from glimpse.evaluation.shapes_scenes import training_scenes
from models.shapes_mmdit_pipeline import ShapesMMDiTPipeline
from training.shapes_t2i.train import (
    _append,
    _eval_subset,
    _evaluate_and_keep,
    export_checkpoint,
    grounding_loss,
    grounding_targets,
    learning_rate,
    optimise,
)

TEXT_FROM = "models/embedded/shapes_t2i"
#: a tiny configuration for tests: one block of 2 heads of 16
TINY = {"layers": 1, "heads": 2, "head_dim": 16}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train the embedded shapes MMDiT (SD3-style, flow matching).")
    p.add_argument("--out", required=True, help="output folder (checkpoints, metrics.jsonl)")
    p.add_argument("--text-from", default=TEXT_FROM, help="shapes-t2i folder whose text encoder is reused, frozen")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--decay-from", type=int, default=0, help="step where the linear lr decay starts (0: never)")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--ema-decay", type=float, default=0.995)
    p.add_argument("--cond-dropout", type=float, default=0.1)
    p.add_argument("--p-single", type=float, default=0.25)
    p.add_argument("--t-sampling", choices=("logit-normal", "uniform"), default="logit-normal")
    p.add_argument("--high-t-frac", type=float, default=0.25, help="share of each batch with sigma in [0.5, 1)")
    p.add_argument("--ground-weight", type=float, default=0.1, help="token grounding loss weight (0 disables it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tiny", action="store_true", help="tiny model for tests")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=1000, help="0 disables the periodic evaluation")
    p.add_argument("--eval-prompts", type=int, default=8)
    p.add_argument("--eval-guidance", type=float, default=1.5)
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--stop-at", type=int, default=0, help="stop at this step, keeping the lr schedule of --steps")
    p.add_argument("--time-limit", type=float, default=0.0, help="stop after this many minutes (0: none)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.pt")
    p.add_argument("--export-from", default=None, metavar="SRC", help="re-save SRC into OUT with float16 weights")
    return p.parse_args(argv)


def sample_sigmas(n: int, how: str = "logit-normal", high_t_frac: float = 0.0) -> torch.Tensor:
    """``n`` noise levels sigma in (0, 1): logit-normal (SD3) or uniform, a ``high_t_frac`` share in [0.5, 1)."""
    sigma = torch.sigmoid(torch.randn(n)) if how == "logit-normal" else torch.rand(n)
    k = int(round(high_t_frac * n))
    if k:
        sigma[:k] = 0.5 + 0.5 * torch.rand(k)
    return sigma


def adaln_zero(transformer: torch.nn.Module) -> None:
    """Zero the image stream's modulations and the output projection: every block starts as the identity."""
    for block in transformer.transformer_blocks:
        torch.nn.init.zeros_(block.norm1.linear.weight)
        torch.nn.init.zeros_(block.norm1.linear.bias)
    torch.nn.init.zeros_(transformer.proj_out.weight)
    torch.nn.init.zeros_(transformer.proj_out.bias)


class JointGroundingProcessor:
    """diffusers' JointAttnProcessor2_0 with softmax([q_img; q_txt] [k_img; k_txt]^T / sqrt(d)) formed explicitly
    (with gradients); appends the head-averaged image -> text block, (B, image tokens, text tokens), to ``store``."""

    def __init__(self, store: list[torch.Tensor]) -> None:
        self.store = store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, *args, **kwargs):
        n_img = hidden_states.shape[1]
        q, k, v = joint_qkv(attn, hidden_states, encoder_hidden_states)
        probs = torch.softmax(q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5, dim=-1)
        self.store.append(probs[:, :, :n_img, n_img:].mean(1))
        return joint_output(attn, probs @ v, n_img)


def install_grounding(transformer: torch.nn.Module) -> list[torch.Tensor]:
    """A :class:`JointGroundingProcessor` on every joint attention layer; returns their shared store."""
    store: list[torch.Tensor] = []
    transformer.set_attn_processor(JointGroundingProcessor(store))
    return store


class TextCache:
    """The frozen text encoder's conditioning per caption, computed once."""

    def __init__(self, pipe: ShapesMMDiTPipeline) -> None:
        self.pipe, self.cache = pipe, {}

    @torch.no_grad()
    def __call__(self, captions: list[str]) -> dict[str, torch.Tensor]:
        new = sorted({c for c in captions if c not in self.cache})
        if new:
            cond = self.pipe.conditioning(new)
            for i, c in enumerate(new):
                self.cache[c] = {k: v[i] for k, v in cond.items()}
        return {k: torch.stack([self.cache[c][k] for c in captions]) for k in self.cache[captions[0]]}


def train(args: argparse.Namespace) -> dict:
    """Run the training loop; return the final metrics (steps, last loss, seconds, best score)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)

    pipe = ShapesMMDiTPipeline.build(args.text_from, **(TINY if args.tiny else {"layers": args.layers}))
    pipe.set_progress_bar_config(disable=True)
    pipe.text_encoder.requires_grad_(False).eval()
    transformer = pipe.transformer
    adaln_zero(transformer)
    ema_pipe = ShapesMMDiTPipeline(copy.deepcopy(transformer), pipe.text_encoder, pipe.tokenizer, pipe.scheduler)
    ema_pipe.set_progress_bar_config(disable=True)
    ema_pipe.transformer.requires_grad_(False)
    live, ema = list(transformer.parameters()), list(ema_pipe.transformer.parameters())
    optimizer = torch.optim.AdamW(live, lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.99))

    step, best_score, elapsed_before = 0, -math.inf, 0.0
    state_path = os.path.join(args.out, "state.pt")
    if args.resume and os.path.exists(state_path):
        state = torch.load(state_path, weights_only=False)
        transformer.load_state_dict(state["transformer"])
        ema_pipe.transformer.load_state_dict(state["ema_transformer"])
        optimizer.load_state_dict(state["optimizer"])
        step, best_score, elapsed_before = state["step"], state["best_score"], state["elapsed"]
        rng = np.random.default_rng([args.seed, step])
        torch.manual_seed(args.seed + step)
        print(f"resumed at step {step} (best score {best_score:.3f})", flush=True)

    store = install_grounding(transformer) if args.ground_weight > 0 else None
    text = TextCache(pipe)
    metrics_path = os.path.join(args.out, "metrics.jsonl")
    t_start, window_t0 = time.time(), time.time()
    window: list[float] = []
    grounds: list[float] = []
    loss_value = float("nan")
    eval_captions = _eval_subset(args.eval_prompts)

    def elapsed() -> float:
        return elapsed_before + time.time() - t_start

    def save() -> None:
        ema_pipe.save_pretrained(os.path.join(args.out, "last"))
        state = {
            "transformer": transformer.state_dict(),
            "ema_transformer": ema_pipe.transformer.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "best_score": best_score,
            "elapsed": elapsed(),
            "args": vars(args),
        }
        torch.save(state, state_path + ".tmp")
        os.replace(state_path + ".tmp", state_path)  # atomic: a kill mid-save keeps the old state

    last_step = min(args.steps, args.stop_at) if args.stop_at else args.steps
    while step < last_step:
        scenes = training_scenes(rng, args.batch_size, args.p_single)
        drop = rng.random(len(scenes)) < args.cond_dropout
        cond = text(["" if d else s.caption for s, d in zip(scenes, drop)])
        x0 = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        noise = torch.randn_like(x0)
        sigma = sample_sigmas(x0.shape[0], args.t_sampling, args.high_t_frac)
        s = sigma.view(-1, 1, 1, 1)
        x_t = (1 - s) * x0 + s * noise
        lr = learning_rate(step, args)
        for group in optimizer.param_groups:
            group["lr"] = lr
        pred = transformer(hidden_states=x_t, timestep=sigma * 1000, **cond).sample
        denoise_loss = F.mse_loss(pred, noise - x0)
        loss = denoise_loss
        if store is not None:
            ground = grounding_loss(store, *grounding_targets(scenes, ~drop))
            loss = loss + args.ground_weight * ground
            grounds.append(float(ground.detach()))
            store.clear()
        step += 1
        optimise(optimizer, loss, live, (ema, live), min(args.ema_decay, (1 + step) / (10 + step)))
        loss_value = float(denoise_loss.detach())
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(f"loss became {float(loss.detach())} at step {step}")
        window.append(loss_value)

        if step % args.log_every == 0 or step == last_step:
            record = {
                "step": step,
                "loss": float(np.mean(window)),
                "lr": lr,
                "s_per_step": round((time.time() - window_t0) / len(window), 3),
                "elapsed_min": round(elapsed() / 60, 2),
                **({"ground": float(np.mean(grounds))} if grounds else {}),
            }
            print(json.dumps(record), flush=True)
            _append(metrics_path, record)
            window, grounds, window_t0 = [], [], time.time()
        if args.eval_every and step % args.eval_every == 0:
            best_score = _evaluate_and_keep(ema_pipe, eval_captions, step, best_score, args, metrics_path)
            window_t0 = time.time()
        if step % args.save_every == 0 or step == last_step:
            save()
        if args.time_limit and elapsed() > args.time_limit * 60:
            print(f"time limit reached at step {step}", flush=True)
            save()
            break
    return {"steps": step, "loss": loss_value, "seconds": elapsed(), "best_score": best_score}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.export_from:
        export_checkpoint(args.export_from, args.out, pipeline=ShapesMMDiTPipeline)
        print(f"exported {args.export_from} -> {args.out} (float16 weights)", flush=True)
        return
    print(json.dumps({"done": train(args)}), flush=True)


if __name__ == "__main__":
    main()
