"""The Diffusion classifier lens: ``services`` (the cached scores, the winner's attention, the shapes
classifier's Grad-CAM), ``controls`` (image, candidates and settings, returning a frozen request), ``state``
(Classify run as a job, the session's result) and ``views`` (probabilities, error curves, the difference map,
the winner's attention and the Grad-CAM, each with its colour bar; downloads).

Here: what every module of the lens shares.
"""

CITATION = 'Li et al., "Your Diffusion Model is Secretly a Zero-Shot Classifier", ICCV 2023'
RESULT_KEY = "dc_result"
SHOW = 256  # display side of the small images
