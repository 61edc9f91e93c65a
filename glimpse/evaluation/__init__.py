"""Measurements that tell a good map from a bad one: deletion/insertion curves, randomisation sanity
checks, and localisation scores against a known region."""

from glimpse.evaluation.deletion import CurveResult, deletion_insertion
from glimpse.evaluation.localisation import pointing_game, relevance_mass
from glimpse.evaluation.sanity import SanityResult, cascade, parameter_units, randomisation_check

__all__ = [
    "CurveResult",
    "SanityResult",
    "cascade",
    "deletion_insertion",
    "parameter_units",
    "pointing_game",
    "randomisation_check",
    "relevance_mass",
]
