"""Vision-transformer token sequences as spatial maps.

A ViT (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words") splits the image into an ``H × W`` grid
of patches and prepends ``prefix`` extra tokens (the CLS token; DeiT's distillation token; the register
tokens of Darcet et al. 2024). CAM-style methods (Grad-CAM on ViTs, as in pytorch-grad-cam's
``reshape_transform``) need the patch tokens back on their grid:

    tokens (B, prefix + H·W, C)  ->  drop the first ``prefix``  ->  (B, H, W, C)  ->  (B, C, H, W)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TokenGrid:
    """How a ViT's token sequence maps to a spatial grid: drop ``prefix`` tokens (CLS/registers),
    reshape the rest row-major to ``(height, width)``."""

    prefix: int
    height: int
    width: int


def tokens_to_grid(tokens: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
    """Reshape a token sequence to a channel-first spatial map, dropping the prefix tokens.

    Parameters
    ----------
    tokens : torch.Tensor
        Shape (B, N, C) with ``N == grid.prefix + grid.height * grid.width``; patch tokens row-major.
    grid : TokenGrid
        How many prefix tokens to drop and the patch grid's (height, width).

    Returns
    -------
    torch.Tensor
        Shape (B, C, grid.height, grid.width); differentiable (a view where possible).

    Raises
    ------
    ValueError
        ``tokens`` is not 3-D or its token count does not match ``grid``.

    Examples
    --------
    >>> t = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)
    >>> tokens_to_grid(t, TokenGrid(prefix=1, height=2, width=2)).shape
    torch.Size([2, 3, 2, 2])
    """
    if tokens.ndim != 3:
        raise ValueError(f"tokens: expected (B, N, C), got shape {tuple(tokens.shape)}")
    b, n, c = tokens.shape
    expected = grid.prefix + grid.height * grid.width
    if n != expected:
        raise ValueError(
            f"tokens: {n} tokens do not match the grid ({grid.prefix} prefix + {grid.height}×{grid.width} = {expected})"
        )
    patches = tokens[:, grid.prefix :, :]
    return patches.reshape(b, grid.height, grid.width, c).permute(0, 3, 1, 2)


def grid_to_tokens(maps: torch.Tensor, grid: TokenGrid, prefix_value: float = 0.0) -> torch.Tensor:
    """Inverse of :func:`tokens_to_grid`: (B, C, H, W) -> (B, prefix + H·W, C), prefix tokens filled."""
    if maps.ndim != 4 or maps.shape[2:] != (grid.height, grid.width):
        raise ValueError(f"maps: expected (B, C, {grid.height}, {grid.width}), got shape {tuple(maps.shape)}")
    b, c = maps.shape[:2]
    patches = maps.permute(0, 2, 3, 1).reshape(b, grid.height * grid.width, c)
    prefix = patches.new_full((b, grid.prefix, c), prefix_value)
    return torch.cat([prefix, patches], dim=1)
