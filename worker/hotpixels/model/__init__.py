"""The residual hot-pixel classifier (torch): network, training data, training, loading."""
