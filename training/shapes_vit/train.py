"""Train the embedded shapes ViT on freshly rendered scenes and ship it as a Hugging Face folder.

    python -m training.shapes_vit.train --out models/embedded/shapes_vit

The same task, scenes and labels as the shapes CNN (``training.shapes_classifier.train``): every step renders a
new batch (one object with probability 0.25, else two in one of four relations, every caption of the grammar),
binary cross-entropy on the 12 "colour shape" classes (multi-label). The model is ``transformers``'
``ViTForImageClassification`` (4×4-pixel patches of the 32×32 scene: an 8×8 token grid and a class token), so
it loads as any ``hf:`` folder does and every ViT path of Glimpse runs on it. Evaluation: 1,000 fresh scenes
from another seed, exact-set and per-class accuracy. Writes ``OUT/config.json``, ``OUT/model.safetensors``,
``OUT/preprocessor_config.json`` and ``OUT/EVAL.json``. Float32, CPU, deterministic from the seed.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from models.shapes_classifier import LABELS, MEAN, STD
from training.common import add_common_options, settings
from training.shapes_classifier.train import batch, evaluate

#: the architecture (ViTConfig fields); README's card repeats it
ARCHITECTURE = dict(
    image_size=32,
    patch_size=4,
    num_channels=3,
    hidden_size=96,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=192,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    qkv_bias=True,
)


def build(seed: int = 0):
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        **ARCHITECTURE,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        problem_type="multi_label_classification",
    )
    torch.manual_seed(seed)
    return ViTForImageClassification(config)


class Logits(torch.nn.Module):
    """``ViTForImageClassification`` as a (B, 3, 32, 32) -> (B, 12) logits module (what ``evaluate`` calls)."""

    def __init__(self, net) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=x).logits


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--warmup", type=int, default=150)
    p.add_argument("--weight-decay", type=float, default=0.05)
    add_common_options(p, lr=1e-3)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    net = build(args.seed)
    model = Logits(net)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=args.warmup)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, args.steps - args.warmup))
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cosine], milestones=[args.warmup])
    start = time.perf_counter()
    model.train()
    for step in range(1, args.steps + 1):
        x, y = batch(rng, args.batch_size)
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0:
            print(
                f"step {step}/{args.steps}: loss {float(loss.detach()):.4f} ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    model.eval()
    report = {
        "classes": list(LABELS),
        "architecture": ARCHITECTURE,
        "parameters": sum(p.numel() for p in net.parameters()),
        "settings": settings(args),
        "train_seconds": round(time.perf_counter() - start, 1),
        **evaluate(model, seed=10_000 + args.seed),
    }
    print(json.dumps(report, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    net.save_pretrained(args.out, safe_serialization=True)
    processor = {
        "image_processor_type": "ViTImageProcessor",
        "do_resize": True,
        "size": {"height": ARCHITECTURE["image_size"], "width": ARCHITECTURE["image_size"]},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [MEAN] * 3,
        "image_std": [STD] * 3,
    }
    (args.out / "preprocessor_config.json").write_text(json.dumps(processor, indent=2) + "\n")
    (args.out / "EVAL.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
