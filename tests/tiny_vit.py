"""A tiny Hugging Face ViT classifier saved to a folder, for the ``hf:`` loader tests (no download)."""

from __future__ import annotations

from pathlib import Path

import torch


def save_tiny_vit(path: Path, labels: dict[int, str], **config) -> Path:
    """Save a seeded ``ViTForImageClassification`` (32×32 input, 8-px patches, 2 heads) with ``labels`` to
    ``path``; ``config`` overrides the ViTConfig defaults used here (hidden 32, 2 layers, MLP 64)."""
    from transformers import ViTConfig, ViTForImageClassification

    settings = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    settings.update(config)
    cfg = ViTConfig(
        image_size=32,
        patch_size=8,
        num_labels=len(labels),
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
        **settings,
    )
    torch.manual_seed(0)
    ViTForImageClassification(cfg).save_pretrained(path)
    return path
