"""The saliency lens in the app: :mod:`~components.saliency.controls` (widget groups returning frozen requests),
:mod:`~components.saliency.services` (cached, bounded computations and the session's results they keep) and
:mod:`~components.saliency.views` (draw only; the page's sections)."""
