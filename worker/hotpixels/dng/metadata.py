"""Camera metadata of a DNG: what profiles match on (body, ISO, exposure, time, temperature).

Two sources:

* the file's own TIFF/EXIF/DNG tags (always; no external program): Make, Model,
  CameraSerialNumber (DNG) or BodySerialNumber (EXIF), ISO (PhotographicSensitivity), ExposureTime
  (seconds), DateTimeOriginal (+ SubSec/OffsetTime), UniqueCameraModel, Software, and the
  HotPixels "corrected" marker (XMP ``hotpixels:Corrected="1"`` or Software);
* exiftool, for what only its MakerNotes decoders know: the sensor temperature in degrees Celsius
  (first tag found in :data:`TEMPERATURE_TAGS`) and an internal serial number. One long-lived
  exiftool process (pyexiftool ``-stay_open``), started lazily, shared behind a lock and closed at
  interpreter exit. It is started from a thread of its own that lives until the process is closed:
  on Linux pyexiftool asks the kernel to SIGTERM exiftool when the *thread* that started it ends
  (``PR_SET_PDEATHSIG`` is per thread), so a process started from a short-lived worker thread died
  with that thread, and the next call or the exit-time close found it dead ("ExifTool process was
  previously running but died"). The owner thread keeps that safety net (exiftool still dies with
  us) without the early deaths. Without exiftool (not installed, or ``HOTPIXELS_NO_EXIFTOOL=1``) temperature
  and internal serial are ``None`` ("unknown"), which is a normal value: many bodies record none.
  But an exiftool *asked for* by name, ``HOTPIXELS_EXIFTOOL=/path/to/exiftool`` (the frozen worker
  sets it to its bundled copy when that exists), that is not there is a broken setting, not a body
  without a temperature: reading metadata then fails with
  :class:`~hotpixels.errors.ExiftoolMissing` (4001) instead of quietly losing the temperature.

Zero ISO or exposure (written by some converters for "unknown") are reported as ``None``.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import threading
import warnings

from ..errors import ExiftoolMissing
from .rawimage import CameraMetadata
from .tiff import (
    TAG_BODY_SERIAL, TAG_CAMERA_SERIAL, TAG_DATETIME_ORIGINAL, TAG_EXPOSURE_TIME, TAG_ISO, TAG_MAKE,
    TAG_MODEL, TAG_OFFSET_TIME_ORIGINAL, TAG_SOFTWARE, TAG_SUBSEC_TIME_ORIGINAL, TAG_UNIQUE_CAMERA_MODEL,
    TAG_XMP, TiffFile,
)

log = logging.getLogger(__name__)

HOTPIXELS_XMP_NS = "http://hotpixels.app/ns/1.0/"
HOTPIXELS_SOFTWARE = "HotPixels"
# what the writer appends to Software ("<old> + HotPixels 0.1.0"); "HotPixels simulator" is not it
_SOFTWARE_MARK = re.compile(r"(?:^|\+ )HotPixels \d+\.\d+")

# exiftool tag names (group 1 omitted: any group), most specific first. Maker notes name the same
# sensor reading differently per brand; EXIF AmbientTemperature is the air, the last resort.
TEMPERATURE_TAGS = (
    "SensorTemperature",
    "CameraTemperature",
    "SensorTemperature2",
    "CameraTemperature2",
    "BoardTemperature",
    "BatteryTemperature",
    "AmbientTemperature",
)
INTERNAL_SERIAL_TAGS = ("InternalSerialNumber",)
_STANDARD_GROUPS = {"IFD0", "ExifIFD", "SubIFD", "XMP-exif", "XMP-exifEX", "XMP-aux", "Composite"}


def exiftool_available() -> bool:
    """True when the exiftool program can be used (and ``HOTPIXELS_NO_EXIFTOOL`` is not set)."""
    if os.environ.get("HOTPIXELS_NO_EXIFTOOL") == "1":
        return False
    return _exiftool_path() is not None


def _exiftool_path() -> str | None:
    """``HOTPIXELS_EXIFTOOL`` when it names an existing file, else exiftool on the PATH (or None)."""
    named = os.environ.get("HOTPIXELS_EXIFTOOL")
    if named:
        return named if os.path.isfile(named) else None
    return shutil.which("exiftool")


def require_named_exiftool() -> None:
    """:class:`ExiftoolMissing` (4001) when ``HOTPIXELS_EXIFTOOL`` names a program that does not exist."""
    named = os.environ.get("HOTPIXELS_EXIFTOOL")
    if named and os.environ.get("HOTPIXELS_NO_EXIFTOOL") != "1" and not os.path.isfile(named):
        raise ExiftoolMissing(f"exiftool is set to {named} (HOTPIXELS_EXIFTOOL), which does not exist: install "
                              "exiftool there, or unset HOTPIXELS_EXIFTOOL to use the one on the PATH",
                              data={"exiftool": named})


class _ExiftoolProcess:
    """One lazily started ``exiftool -stay_open`` process shared by all threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._helper = None
        self._owner_done: threading.Event | None = None  # set to let the owner thread end
        atexit.register(self.close)

    def get_tags(self, path: str, tags: list[str]) -> dict:
        with self._lock:
            if self._helper is None:
                self._start_locked()
            from exiftool.exceptions import ExifToolExecuteError, ExifToolJSONInvalidError, ExifToolOutputEmptyError

            try:
                result = self._helper.get_tags([path], tags=tags)
            except (ExifToolExecuteError, ExifToolJSONInvalidError, ExifToolOutputEmptyError):
                raise  # this file's trouble: the process itself is fine and stays
            except Exception:  # noqa: BLE001 - a crashed or stuck exiftool is restarted next time
                self._close_locked()
                raise
        return result[0] if result else {}

    def _start_locked(self) -> None:
        """Start exiftool from an owner thread that stays alive until :meth:`close` (module docstring)."""
        import exiftool  # pyexiftool

        started = threading.Event()
        done = threading.Event()
        box: dict = {}

        def owner() -> None:
            try:
                helper = exiftool.ExifToolHelper(executable=_exiftool_path(), common_args=["-G1", "-n"])
                helper.run()
                box["helper"] = helper
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                box["error"] = exc
            started.set()
            if "helper" in box:
                done.wait()  # exiftool's parent thread: it must outlive the process it started

        threading.Thread(target=owner, name="hotpixels-exiftool", daemon=True).start()
        started.wait()
        if "error" in box:
            raise box["error"]
        self._helper, self._owner_done = box["helper"], done

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._helper is not None:
            try:
                with warnings.catch_warnings():
                    # pyexiftool warns when the process already died: that is what is being cleaned up
                    warnings.simplefilter("ignore", UserWarning)
                    alive = self._helper.running
                if alive:
                    self._helper.terminate()
                else:
                    log.info("exiftool had exited before it was closed")
            except Exception:  # noqa: BLE001
                pass
            self._helper = None
        if self._owner_done is not None:
            self._owner_done.set()
            self._owner_done = None


_EXIFTOOL = _ExiftoolProcess()


def close_exiftool() -> None:
    """Stop the shared exiftool process (it restarts on the next call)."""
    _EXIFTOOL.close()


def exiftool_tags(path: str, tags: list[str]) -> dict:
    """``{"Group1:Tag": value}`` for the requested tags (numbers as numbers, ``-n``)."""
    return _EXIFTOOL.get_tags(os.fspath(path), tags)


def metadata_from_tags(tf: TiffFile) -> CameraMetadata:
    """Metadata from the file's own tags only (no external program)."""
    ifd0 = tf.ifd0
    exif = ifd0.exif

    def text(ifd, tag):
        return tf.text(ifd.entries[tag]) if ifd is not None and tag in ifd.entries else None

    def number(ifd, tag):
        v = tf.get1(ifd, tag)
        return float(v) if isinstance(v, (int, float)) and v > 0 else None

    meta = CameraMetadata(
        make=text(ifd0, TAG_MAKE),
        model=text(ifd0, TAG_MODEL),
        serial=text(ifd0, TAG_CAMERA_SERIAL) or text(exif, TAG_BODY_SERIAL),
        iso=number(exif, TAG_ISO) or number(ifd0, TAG_ISO),
        exposure_s=number(exif, TAG_EXPOSURE_TIME) or number(ifd0, TAG_EXPOSURE_TIME),
        capture_time=_capture_time(text(exif, TAG_DATETIME_ORIGINAL), text(exif, TAG_SUBSEC_TIME_ORIGINAL),
                                   text(exif, TAG_OFFSET_TIME_ORIGINAL)),
        unique_camera_model=text(ifd0, TAG_UNIQUE_CAMERA_MODEL),
        software=text(ifd0, TAG_SOFTWARE),
    )
    meta.corrected_by_hotpixels = is_marked_corrected(tf)
    return meta


def _capture_time(dt: str | None, subsec: str | None, offset: str | None) -> str | None:
    """EXIF "YYYY:MM:DD HH:MM:SS" (+ subseconds, + offset) as ISO 8601; None when blank."""
    if not dt:
        return None
    m = re.match(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})", dt)
    if not m:
        return None
    out = "{}-{}-{}T{}:{}:{}".format(*m.groups())
    if subsec and subsec.strip().isdigit():
        out += "." + subsec.strip()
    if offset and re.match(r"^[+-]\d{2}:\d{2}$", offset.strip()):
        out += offset.strip()
    return out


def xmp_packet(tf: TiffFile) -> bytes | None:
    e = tf.ifd0.entries.get(TAG_XMP)
    if e is None:
        return None
    try:
        return tf.raw_bytes(e)
    except Exception:  # noqa: BLE001 - a damaged XMP costs the marker, not the image
        return None


def is_marked_corrected(tf: TiffFile) -> bool:
    """True when HotPixels wrote this file (XMP ``hotpixels:Corrected="1"`` or the Software tag)."""
    xmp = xmp_packet(tf)
    if xmp and HOTPIXELS_XMP_NS.encode() in xmp and re.search(rb'hotpixels:Corrected\s*=\s*["\']1', xmp):
        return True
    e = tf.ifd0.entries.get(TAG_SOFTWARE)
    return bool(e is not None and _SOFTWARE_MARK.search(tf.text(e) or ""))


def add_exiftool_metadata(meta: CameraMetadata, path: str) -> CameraMetadata:
    """Fill temperature (°C) and internal serial from exiftool; leaves them None without it.

    Raises :class:`ExiftoolMissing` when ``HOTPIXELS_EXIFTOOL`` names a missing program (see above).
    """
    require_named_exiftool()
    if not exiftool_available():
        return meta
    try:
        found = exiftool_tags(path, list(TEMPERATURE_TAGS + INTERNAL_SERIAL_TAGS))
    except Exception as exc:  # noqa: BLE001 - exiftool trouble costs the temperature, not the image
        log.warning("exiftool failed on %s: %s", path, exc)
        return meta
    by_name: dict[str, list[tuple[str, object]]] = {}
    for key, value in found.items():
        group, _, name = key.rpartition(":")
        by_name.setdefault(name, []).append((key, value))
    for name in TEMPERATURE_TAGS:
        # a maker-note group (Canon, Pentax, …) before the standard EXIF/XMP copies of a tag
        for key, value in sorted(by_name.get(name, []), key=lambda kv: kv[0].split(":")[0] in _STANDARD_GROUPS):
            if isinstance(value, (int, float)) and -60.0 <= float(value) <= 150.0:
                meta.temperature_c = float(value)
                meta.temperature_source = key
                break
        if meta.temperature_c is not None:
            break
    for name in INTERNAL_SERIAL_TAGS:
        for _key, value in by_name.get(name, []):
            if str(value).strip():
                meta.internal_serial = str(value).strip()
                break
    return meta
