"""The Compare lens: ``services`` (one cached run of the three lenses), ``controls`` (the bundle import, the run's
form returning a frozen :class:`~components.compare.controls.CompareRequest`, the display controls), ``state``
(the run as a job, and the widget state that follows the run: restored from a bundle, kept across page
switches) and ``views`` (the locked grid, agreement, generate→classify→explain, regions, export).

Everything drawn comes from one :class:`glimpse.export.RunRecord` in the session, computed here or imported
from a bundle, so an imported bundle shows exactly its own maps and numbers. Here: what the modules share.
"""

from glimpse.display import COLOUR_MAPS

RUN_KEY = "compare_run"
EXPORT_KEY = "compare_export"  # (token, bytes) of the last prepared bundle
IMPORTED_KEY = "compare_imported"  # digest of the last imported upload
SELECTION_KEY = "compare_selection"  # the run-specific choices and the run they belong to (see state.select_for)
SOURCES = ("Image", "Generate from a prompt")
#: the Values control's choices, as a bundle's display settings record them (views map them to value modes)
NORMS = ("raw", "|map|", "min-max per panel")
#: the colour scale of the maps that are not signed (every page's list; a bundle's choice is always one of them)
COLORSCALES = COLOUR_MAPS
