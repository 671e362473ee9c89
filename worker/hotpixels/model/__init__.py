"""Stage 3's residual hot-pixel classifier: a small CNN over a candidate's CFA patch and its frame.

Inference (``load.get_detector()``, ``features``) runs in numpy on the CPU from the ``.npz`` export of
the trained weights (``weights``, ``numpy_net``) and imports no torch; torch is for training
(``train``, ``dataset``, ``net``, ``export``) and for GPU inference where it is installed. The
candidate sites and the noise model it scores come from :mod:`hotpixels.candidates`.
"""
