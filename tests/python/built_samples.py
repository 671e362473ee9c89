"""Sample DNGs built at test time with the project's own DNG creator (``hotpixels.dng.create``).

They stand in for real files whose licence does not let us ship them (see tests/data/README.md,
"Built at test time"): each one has the property the real file was used for. Every builder is
deterministic (fixed seeds; the GBRG file takes its scene from the committed tinydng sample), so a
test sees the same bytes on every machine. ``conftest.sample(name)`` builds them on first use into
a folder of the test session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from hotpixels.dng.cfa import CfaPattern
from hotpixels.dng.create import BYTE, write_dng, write_linear_dng
from hotpixels.dng.rawimage import CameraMetadata

GBRG_10BIT = "built_gbrg_10bit_packed.dng"
STRIPPED_CANON = "built_canon_350d_pixels_stripped.dng"
LINEAR_RAW = "built_linear_raw_uint16.dng"
LINEAR_RAW_PHONE = "built_linear_raw_subifd_stripped.dng"

# the metadata the stripped file carries (what exiftool's own DNG.dng test file records)
CANON_350D = CameraMetadata(make="Canon", model="Canon EOS 350D DIGITAL", serial="012345678", iso=400,
                            exposure_s=1 / 15, capture_time="2005-08-03T18:59:18",
                            unique_camera_model="Canon EOS 350D")


def _gbrg_10bit(path: Path, data_dir: Path) -> None:
    """GBRG 640 x 480, 10-bit packed, uncompressed, one tile, no ColorMatrix, DNGVersion and
    DNGBackwardVersion written twice (as PiDNG writes a Raspberry Pi camera's frame).

    The scene is real: a crop of tinydng_colorchart.dng starting one row below its RGGB anchor
    (so the phase is GBRG), scaled from 14 bits (black 2056, white 15000) to 10 bits (black 16).
    """
    from hotpixels.dng.reader import read_dng

    src = read_dng(data_dir / "tinydng_colorchart.dng", metadata=False)
    t, l = src.active_area[:2]
    crop = src.cfa_dn[t + 1:t + 1 + 480, l:l + 640].astype(np.float64)
    dn10 = np.clip(np.rint((crop - 2056.0) * (1007.0 / (15000 - 2056)) + 16.0), 0, 1023).astype(np.uint16)
    write_dng(path, dn10, cfa=CfaPattern.bayer("GBRG"), active_area=(0, 0, 480, 640), black_level_dn=16,
              white_level_dn=1023, bits=10, layout="packed-tiles", tile_px=(480, 640), color_matrix=None,
              digest=False, metadata=CameraMetadata(make="RaspberryPi", model="RP_imx219"),
              extra_ifd0=[(50706, BYTE, [1, 4, 0, 0]), (50707, BYTE, [1, 2, 0, 0])])


def _stripped_canon(path: Path, data_dir: Path) -> None:
    """Canon EOS 350D metadata (serial, ISO 400, 1/15 s, capture time; no sensor temperature),
    lossless-JPEG tiles in a SubIFD behind a preview, but the pixel data stripped: the tile offsets
    point past the end of the file. LibRaw opens such a file and returns garbage."""
    rng = np.random.default_rng(350)
    cfa_dn = rng.normal(900, 40, (240, 352)).clip(0, 4095).astype(np.uint16)
    write_dng(path, cfa_dn, cfa=CfaPattern.bayer("RGGB"), active_area=(0, 0, 240, 352), black_level_dn=128,
              white_level_dn=4095, bits=12, layout="ljpeg-tiles-subifd", tile_px=(240, 256),
              metadata=CANON_350D, pixel_data=False)


def _linear_raw(path: Path, data_dir: Path) -> None:
    """LinearRaw (demosaiced) 300 x 280 uint16, three different planes, one strip in IFD0, with a
    NewRawImageDigest (2 x 2 digest tiles: the plane order inside a tile matters)."""
    rng = np.random.default_rng(34892)
    rgb = rng.integers(0, 65536, (300, 280, 3)).astype(np.uint16)
    write_linear_dng(path, rgb, metadata=CameraMetadata(make="Test", model="Linear"))


def _linear_raw_phone(path: Path, data_dir: Path) -> None:
    """LinearRaw in a SubIFD behind a preview IFD0 (as phones write ProRAW), pixel data stripped:
    "not a CFA raw" must win over "truncated"."""
    rng = np.random.default_rng(1361)
    rgb = rng.integers(0, 4096, (192, 256, 3)).astype(np.uint16)
    write_linear_dng(path, rgb, white_level_dn=4095, subifd=True, pixel_data=False,
                     metadata=CameraMetadata(make="Apple", model="iPhone 12 Pro", iso=32, exposure_s=1 / 5556))


BUILDERS: dict[str, Callable[[Path, Path], None]] = {
    GBRG_10BIT: _gbrg_10bit,
    STRIPPED_CANON: _stripped_canon,
    LINEAR_RAW: _linear_raw,
    LINEAR_RAW_PHONE: _linear_raw_phone,
}


def build(name: str, folder: Path, data_dir: Path) -> Path:
    """Path of built sample ``name`` in ``folder`` (built on first call)."""
    path = folder / name
    if not path.is_file():
        BUILDERS[name](path, data_dir)
    return path
