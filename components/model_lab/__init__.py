"""The Model lab lens: what a class or a channel responds to, its facets, its top images and its blind spots.

``services`` (one cached function per tab, each loop holding the model's line one step at a time),
``controls`` (each tab's widgets and button, returning a frozen request), ``state`` (a request run as a job,
the session's results) and ``views`` (the visualisation, the facets, the top images, the traversal).

Here: what the modules share.
"""

VIS_CITATION = 'Olah, Mordvintsev & Schubert, "Feature Visualization", Distill 2017 (lucid\'s parameterisation)'
FACETS_CITATION = 'Nguyen, Yosinski & Clune, "Multifaceted Feature Visualization", 2016'
BLIND_CITATION = 'Balasubramanian et al., "Exploring Geometry of Blind Spots in Vision Models", NeurIPS 2023'
SHOW = 224
#: the session-result key of each tab
KEYS = {"vis": "lab_vis", "facets": "lab_facets", "examples": "lab_examples", "blind": "lab_blind"}
