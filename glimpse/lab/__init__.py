"""Inside the classifier: feature visualisation, its facets, data-set examples and blind spots.

- :mod:`glimpse.lab.featurevis`: activation maximisation of a class logit or a channel (Fourier, decorrelated
  colour parameterisation with jitter, scale and rotation; lucid / lucent).
- :mod:`glimpse.lab.facets`: multifaceted feature visualisation (Nguyen, Yosinski & Clune 2016): k-means on a
  late layer's activations of real images of the class, one visualisation per cluster from its mean image.
- :mod:`glimpse.lab.examples`: the images and patches of a folder that excite a channel most.
- :mod:`glimpse.lab.blindspot`: level-set traversal ("Exploring Geometry of Blind Spots in Vision Models").

Every function takes a plain ``nn.Module`` whose input is ``(x - mean) / std`` of an RGB image in [0, 1].
"""

from glimpse.lab.blindspot import Traversal, level_set_traversal, triangle_confidence
from glimpse.lab.examples import ChannelExample, top_examples
from glimpse.lab.facets import Facets, activations, multifaceted
from glimpse.lab.featurevis import Objective, Visualization, visualize

__all__ = [
    "ChannelExample",
    "Facets",
    "Objective",
    "Traversal",
    "Visualization",
    "activations",
    "level_set_traversal",
    "multifaceted",
    "top_examples",
    "triangle_confidence",
    "visualize",
]
