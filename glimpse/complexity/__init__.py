"""Visual complexity: the features of Sarıtaş et al. (2025), their spatial maps, and the paper's regressions.

Sarıtaş, Dayan, Shen & Nath, "Complexity in Complexity: Understanding Visual Complexity Through Structure,
Color, and Surprise", arXiv:2501.15890. Reference code: Complexity-Project/Complexity-in-Complexity.

>>> from glimpse.complexity import complexity_features
>>> import numpy as np
>>> complexity_features(np.zeros((8, 8, 3), np.uint8)).record()["MUC5"]
1.0
"""

from glimpse.complexity.edges import edge_density, edge_map
from glimpse.complexity.features import (
    BITS,
    SCALES,
    WEIGHTS,
    ComplexityFeatures,
    complexity_batch,
    complexity_features,
    msg,
    muc,
)
from glimpse.complexity.segments import STANDINS, segment_count

__all__ = [
    "BITS",
    "SCALES",
    "STANDINS",
    "WEIGHTS",
    "ComplexityFeatures",
    "complexity_batch",
    "complexity_features",
    "edge_density",
    "edge_map",
    "msg",
    "muc",
    "segment_count",
]
