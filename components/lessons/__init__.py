"""The Lessons lens: eight short lessons, each a claim from the literature checked live on the embedded models.

``content`` (the eight :class:`~components.lessons.content.Lesson`\\ s: text, figure, question, citation),
``services`` (the cached computations the figures read), ``controls`` (each figure's widgets, the lesson named
by the link), ``views`` (the figures and the lesson) and ``warmup`` (every figure computed at its defaults in
the background, before anyone asks for it).

Here: the models the lessons use and every figure's default controls (the warm-up computes these).
"""

from models.diffusion import EMBEDDED_T2I

CLASSIFIER = "efficientnet-lite0"
DIGITS = ("blockdigits-standard", "blockdigits-robust")
T2I = EMBEDDED_T2I
SMOOTHGRAD_DEFAULT = (10, 0.15)  # samples, noise
SANITY_IMAGE, ROBUST_IMAGE, ROBUST_METHOD = 3, 5, "gradient"
SANITY_METHODS = ("gradient", "guided_backprop")
CAMS = ("gradcam", "hirescam", "normgrad")
RELATION_SAMPLES = 10
PROMPT = "a red circle to the left of a blue square"
