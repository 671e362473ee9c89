"""Correction stages: 1 dark subtraction, 2 known hot pixels, 3 residual hot pixels."""
