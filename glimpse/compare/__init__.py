"""Comparing what different lenses see in one image: agreement between maps, complexity of salient regions.

Importable without Streamlit; the Compare page and ``python -m glimpse report`` use these functions.
"""

from glimpse.compare.agreement import (
    AgreementMatrix,
    agreement_matrix,
    common_grid,
    pointing_game,
    resample,
    spearman,
    top_k_iou,
    top_k_mask,
)
from glimpse.compare.regions import RegionComplexity, colour_density_map, msg_scale_maps, region_complexity

__all__ = [
    "AgreementMatrix",
    "RegionComplexity",
    "agreement_matrix",
    "colour_density_map",
    "common_grid",
    "msg_scale_maps",
    "pointing_game",
    "region_complexity",
    "resample",
    "spearman",
    "top_k_iou",
    "top_k_mask",
]
