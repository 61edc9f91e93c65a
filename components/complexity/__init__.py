"""The visual-complexity lens in the app: :mod:`~components.complexity.controls` (widget groups returning frozen
requests), :mod:`~components.complexity.services` (cached features, maps, batch scores and fits) and
:mod:`~components.complexity.views` (figures, tables and the page's three tabs)."""

CITATION = (
    'Sarıtaş, Dayan, Shen & Nath, "Complexity in Complexity: Understanding Visual Complexity Through Structure, '
    'Color, and Surprise", arXiv:2501.15890 (2025)'
)

#: One sentence per feature, shown next to its value.
EXPLAIN: dict[str, str] = {
    "MSG": "Multi-Scale Sobel Gradient: mean Sobel gradient magnitude of the [0, 1] image at scales 1, ½, ¼, ⅛, "
    "weighted 0.4/0.3/0.2/0.1. High when there are many strong edges and fine texture.",
    "MUC": "Multi-Scale Unique Colour: how many distinct colours remain when each channel keeps b bits, counted on "
    "the image at the same four scales and weighted alike. MUC4 enters the paper's models.",
    "edge_density": "Canny edge density: fraction of pixels on Canny edges (thresholds 0.67× and 1.33× the median "
    "of the blurred grey image), the paper's classic baseline.",
    "standin": "Offline STAND-INS for the paper's segment counts (SAM masks, FC-CLIP classes): scikit-image "
    "Felzenszwalb segments and merged SLIC regions. Not the paper's features; its weights do not apply to them.",
}
