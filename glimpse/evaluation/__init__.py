"""Measurements that tell a good map from a bad one: deletion/insertion curves, randomisation sanity
checks, localisation against a known region or a user's masks, class sensitivity, PGI/PGU, the baselines of
path methods, and the BlockDigits benchmarks (feature leakage, DiffROAR) where the evidence is known."""

from glimpse.evaluation.baselines import BaselineResult, baseline_scores
from glimpse.evaluation.blockdigits import BlockDigits, blockdigits
from glimpse.evaluation.deletion import CurveResult, deletion_insertion
from glimpse.evaluation.diffroar import DiffRoarResult, blockdigits_diffroar, diffroar
from glimpse.evaluation.leakage import LeakageResult, leakage_benchmark, null_topk, signal_mass
from glimpse.evaluation.localisation import pointing_game, relevance_mass, relevance_rank, topk_iou
from glimpse.evaluation.masks import MaskResult, load_mask, mask_scores
from glimpse.evaluation.pgi import PgiResult, pgi_pgu
from glimpse.evaluation.sanity import SanityResult, cascade, parameter_units, randomisation_check
from glimpse.evaluation.sensitivity import SensitivityResult, class_sensitivity

__all__ = [
    "BaselineResult",
    "BlockDigits",
    "CurveResult",
    "DiffRoarResult",
    "LeakageResult",
    "MaskResult",
    "PgiResult",
    "SanityResult",
    "SensitivityResult",
    "baseline_scores",
    "blockdigits",
    "blockdigits_diffroar",
    "cascade",
    "class_sensitivity",
    "deletion_insertion",
    "diffroar",
    "leakage_benchmark",
    "load_mask",
    "mask_scores",
    "null_topk",
    "parameter_units",
    "pgi_pgu",
    "pointing_game",
    "randomisation_check",
    "relevance_mass",
    "relevance_rank",
    "signal_mass",
    "topk_iou",
]
