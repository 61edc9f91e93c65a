"""Which layers, which grid: the DAAM recipe for UNet pipelines, and the labelled alternatives.

DAAM (Tang et al., "What the DAAM: Interpreting Stable Diffusion Using Cross Attention", ACL 2023) in
its reference implementation (``daam`` 0.2.0, ``daam/trace.py`` and ``daam/hook.py``):

* hooks the ``attn2`` (cross-attention) layer of every transformer block in the UNet's down and up
  blocks; the mid block is not hooked;
* aggregates on a square grid of side G, hard-coded from the default image side S = ``sample_size`` ·
  ``vae_scale_factor``: G = 64 when S is 512 or 1024 px, else G = 96 (so 64 for SD 1.x and SDXL,
  96 for SD 2.x at 768 px);
* gives each layer of h × w positions the factor f = ⌊√(⌊G² / (h·w)⌋)⌋ and skips the layers with f = 8
  (the 8×8 maps of a 64×64 latent, the 12×12 maps of a 96×96 one);
* for every kept (layer ℓ, head η) sums the conditional-branch probabilities over all denoising steps,
  upsamples the sum bicubically to G × G, clamps at zero and averages over all (ℓ, η):
  D_k = mean_{ℓ,η} max(0, Bicubic_G(Σ_t P^{ℓ,η}_{t,k})), then a word's map is the mean of its sub-tokens'
  maps, and for display the G × G map is upsampled bicubically to the image.

:data:`LAYER_SETS` names what :func:`glimpse.attention.generate_with_attention` records:

``"daam"`` (default)
    Hub UNet pipelines (Stable Diffusion 1.x / 2.x / XL): exactly the layers above (down and up blocks,
    factor-8 maps skipped), aggregated on DAAM's grid G. The embedded shapes model (pixel space, no latent):
    the down- and up-block layers at every resolution (its maps are 16×16 and 8×8 of a 32×32 image, none of
    which DAAM's rule was written for), aggregated on its image grid. Transformer pipelines (PixArt, SD3,
    Flux): every cross- or joint-attention layer, upsampled straight to the output size, as before.
``"all"``
    Every cross-attention layer, the UNet's mid block and the 1/8-latent maps included; same grid.
"""

from __future__ import annotations

import math

#: the layer sets :func:`glimpse.attention.generate_with_attention` can record (see module docstring)
LAYER_SETS: tuple[str, ...] = ("daam", "all")

#: UNet blocks whose cross-attention DAAM hooks (diffusers processor paths start with these)
DAAM_BLOCKS: tuple[str, ...] = ("down_blocks.", "up_blocks.")

#: DAAM skips the layers whose factor (grid side / map side) is this
DAAM_SKIPPED_FACTOR = 8


def check_layer_set(layers: str) -> str:
    """``layers`` if it names a layer set, else a ValueError listing them."""
    if layers not in LAYER_SETS:
        raise ValueError(f"layers: unknown {layers!r}; known: {', '.join(LAYER_SETS)}")
    return layers


def daam_grid(image_side: int) -> int:
    """DAAM's aggregation grid side G for a UNet pipeline whose default images are ``image_side`` px.

    G = 64 if S ∈ {512, 1024} else 96 (``daam/trace.py``: ``latent_hw = 4096 if h == 512 or h == 1024 else
    9216``), whatever the latent's own side is.
    """
    return 64 if int(image_side) in (512, 1024) else 96


def daam_factor(positions: int, grid: int) -> int:
    """DAAM's factor of a map with ``positions`` = h·w: f = ⌊√(⌊G² / (h·w)⌋)⌋."""
    return math.isqrt(int(grid) * int(grid) // max(1, int(positions)))


def daam_skipped_sides(grid: int) -> tuple[int, ...]:
    """Square map sides h (h·h positions) whose DAAM factor is 8 on a G-grid: the maps DAAM leaves out."""
    return tuple(h for h in range(1, int(grid) + 1) if daam_factor(h * h, grid) == DAAM_SKIPPED_FACTOR)
