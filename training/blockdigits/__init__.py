"""Training of the BlockDigits classifiers (``python -m training.blockdigits.train``)."""
