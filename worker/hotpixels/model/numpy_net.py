"""The residual classifier's forward pass in numpy (float32): what the CLI and the frozen worker run.

The same network as :class:`hotpixels.model.net.PatchNet` (three valid 3x3 convolutions with ReLU,
the frame context joined before two fully connected layers), from the same weights
(:mod:`hotpixels.model.weights`), without torch. Each convolution is a matrix product: the 3x3
neighbourhoods of every output position are laid side by side (``im2col``, channels-last: column
``(dy * 3 + dx) * C + c``) and multiplied by the kernel reshaped to ``(9 C, out)``, in cache-sized
batches of candidates spread over a few threads. The torch flatten order (channel, row, column) is
folded into the first fully connected layer's columns once, at load. Logits agree with torch's to
float32 rounding (``tests/python/test_model_numpy.py``: within 1e-4; 4.8e-6 on a 24 MP star field).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..parallel import map_chunks
from .features import N_CHANNELS, N_CONTEXT, PATCH

KERNEL = 3
BATCH = 256  # candidates per batch: every layer's columns stay in the L2 cache (about 3 MB)
# Candidates per matrix product inside a batch. OpenBLAS runs a product on all its threads once
# m * n * k passes 2**18; ours are small, and its busy-waiting threads on top of our own made them
# 2-5x slower on a loaded 2-core machine. Products of 4 candidates (at most 196 x 54 by 54 x 16)
# stay single-threaded and, stacked, are as fast as one big product.
GROUP = 4


def _im2col(x: np.ndarray) -> np.ndarray:
    """(N, H, W, C) -> (N * (H-2) * (W-2), 9 C): the 3x3 neighbourhood of each valid output position.

    One copy of a strided view (axes n, y, x, dy, dx, c): for each (n, y, x, dy) the (dx, c) run is
    contiguous in both arrays, so numpy copies 3 C floats at a time (3.5x faster than 9 slice copies).
    """
    n, h, w, c = x.shape
    x = np.ascontiguousarray(x)
    s_n, s_y, s_x, s_c = x.strides
    view = as_strided(x, (n, h - KERNEL + 1, w - KERNEL + 1, KERNEL, KERNEL, c), (s_n, s_y, s_x, s_y, s_x, s_c),
                      writeable=False)
    return view.reshape(n * (h - KERNEL + 1) * (w - KERNEL + 1), KERNEL * KERNEL * c)


class NumpyPatchNet:
    """Forward pass of ``patchcnn-ctx-v2`` from a state dict of numpy arrays (torch key names)."""

    def __init__(self, state: dict[str, np.ndarray]):
        f32 = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}
        self.n_params = int(sum(v.size for v in state.values()))
        self.convs = []
        for key in ("convs.0", "convs.2", "convs.4"):
            w = f32[f"{key}.weight"]  # (out, in, 3, 3)
            if w.shape[2:] != (KERNEL, KERNEL):
                raise ValueError(f"{key}: kernel {w.shape[2:]}, expected 3x3")
            self.convs.append((np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0])),
                               f32[f"{key}.bias"]))
        width = self.convs[-1][0].shape[1]
        if self.convs[0][0].shape[0] != KERNEL * KERNEL * N_CHANNELS:
            raise ValueError(f"first convolution takes {self.convs[0][0].shape[0] // 9} channels, "
                             f"expected {N_CHANNELS}")
        side = PATCH - 3 * (KERNEL - 1)
        w1 = f32["head.0.weight"]  # (hidden, width * side * side + N_CONTEXT), torch flatten order (c, y, x)
        if w1.shape[1] != width * side * side + N_CONTEXT:
            raise ValueError(f"head takes {w1.shape[1]} inputs, expected {width * side * side + N_CONTEXT}")
        conv_part = w1[:, :width * side * side].reshape(-1, width, side, side).transpose(2, 3, 1, 0)
        self.head_conv = np.ascontiguousarray(conv_part.reshape(side * side * width, -1))  # rows (y, x, c)
        self.head_ctx = np.ascontiguousarray(w1[:, width * side * side:].T)
        self.head_bias = f32["head.0.bias"]
        self.out_w = np.ascontiguousarray(f32["head.2.weight"].T)  # (hidden, 1)
        self.out_b = f32["head.2.bias"]

    def __call__(self, x: np.ndarray, ctx: np.ndarray, batch: int = BATCH) -> np.ndarray:
        """(N,) float32 logits for (N, N_CHANNELS, PATCH, PATCH) patches and (N, N_CONTEXT) context."""
        n = len(x)
        out = np.empty(n, dtype=np.float32)
        xl = np.asarray(x, dtype=np.float32).transpose(0, 2, 3, 1)  # channels-last (a view for patch_features')
        ctx = np.asarray(ctx, dtype=np.float32)

        batch = max(GROUP, batch - batch % GROUP)

        def run(i: int) -> None:
            xb, cb = xl[i:i + batch], ctx[i:i + batch]
            m = len(xb)
            if m % GROUP:  # the last batch: pad to whole groups
                pad = GROUP - m % GROUP
                xb = np.concatenate([xb, np.zeros((pad,) + xb.shape[1:], np.float32)])
                cb = np.concatenate([cb, np.zeros((pad, cb.shape[1]), np.float32)])
            out[i:i + m] = self._forward(xb, cb)[:m]

        map_chunks(run, range(0, n, batch))
        return out

    def _forward(self, h: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        """Logits of a batch whose size is a multiple of :data:`GROUP`."""
        n = len(h)
        for w, b in self.convs:
            side = h.shape[1] - KERNEL + 1
            y = _products(_im2col(h), w, n)
            y += b
            np.maximum(y, 0.0, out=y)
            h = y.reshape(n, side, side, -1)
        z = _products(h.reshape(n, -1), self.head_conv, n)
        z += _products(ctx, self.head_ctx, n)
        z += self.head_bias
        np.maximum(z, 0.0, out=z)
        return (z @ self.out_w)[:, 0] + self.out_b[0]


def _products(a: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """``a @ w`` for ``a`` holding the rows of ``n`` candidates, as stacked products of GROUP candidates."""
    k = a.shape[1]
    return np.matmul(a.reshape(n // GROUP, -1, k), w).reshape(a.shape[0], w.shape[1])
