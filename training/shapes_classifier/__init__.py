"""Training of the embedded shapes classifier (``python -m training.shapes_classifier.train``)."""
