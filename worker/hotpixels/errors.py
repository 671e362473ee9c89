"""The one error table of HotPixels.

Every failure a user can meet is a subclass of :class:`HotPixelsError` with a stable numeric
``CODE`` (the JSON-RPC ``error.code`` the worker sends, the exit status family of the CLI) and a
plain ``message`` a photographer can act on. No traceback reaches a user: the CLI and the worker
catch ``HotPixelsError`` and print/send ``code`` and ``message``; anything else is wrapped as
:class:`InternalError`.

Codes: 1xxx files and DNG data, 2xxx profiles, 3xxx model, 4xxx environment, 5xxx requests.
JSON-RPC's own codes (-32700 … -32600, -32800 for a cancelled request) are used only where the
JSON-RPC 2.0 spec / LSP convention defines them.
"""

from __future__ import annotations

from typing import Any


class HotPixelsError(Exception):
    """Base of all user-facing errors: a stable ``CODE``, a ``NAME`` and a plain message."""

    CODE = 1000
    NAME = "internal"

    def __init__(self, message: str, *, path: str | None = None, data: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.data = dict(data or {})

    @property
    def code(self) -> int:
        return self.CODE

    def to_dict(self) -> dict[str, Any]:
        """The one error shape of results, reports and CLI ``--json`` output (a per-image error in
        ``image.correct``'s ``results``, a skipped photo, a broken profile in a listing):
        ``{code, name, message, path?, ...data}`` — the table's code and name, the path concerned,
        and the error's details (``param``, ``reason`` …) beside them."""
        out: dict[str, Any] = {"code": self.CODE, "name": self.NAME, "message": self.message}
        if self.path is not None:
            out["path"] = self.path
        for key, value in self.data.items():
            out.setdefault(key, value)
        return out

    def __str__(self) -> str:
        return self.message


class InternalError(HotPixelsError):
    CODE, NAME = 1000, "internal"


# --- files and DNG data (1xxx) -------------------------------------------------------------------
class FileNotFound(HotPixelsError):
    CODE, NAME = 1001, "file_not_found"


class FileNotReadable(HotPixelsError):
    CODE, NAME = 1002, "file_not_readable"


class NotTiff(HotPixelsError):
    CODE, NAME = 1003, "not_tiff"


class NotDng(HotPixelsError):
    CODE, NAME = 1004, "not_dng"


class NotCfaRaw(HotPixelsError):
    CODE, NAME = 1005, "not_cfa_raw"


class TruncatedFile(HotPixelsError):
    CODE, NAME = 1006, "truncated"


class CorruptData(HotPixelsError):
    CODE, NAME = 1007, "corrupt"


class UnsupportedCompression(HotPixelsError):
    CODE, NAME = 1008, "unsupported_compression"


class UnsupportedLinearization(HotPixelsError):
    CODE, NAME = 1009, "unsupported_linearization"


class UnsupportedLayout(HotPixelsError):
    """Bit depth, sample format, planar configuration or CFA layout we do not handle."""

    CODE, NAME = 1010, "unsupported_layout"


class DestinationUnwritable(HotPixelsError):
    CODE, NAME = 1011, "destination_unwritable"


class OutputExists(HotPixelsError):
    CODE, NAME = 1012, "output_exists"


class AlreadyCorrected(HotPixelsError):
    CODE, NAME = 1013, "already_corrected"


class BatchExpired(HotPixelsError):
    """An ``image.correct`` named a batch scan (``batch_id``) the worker does not hold (unknown, or
    pushed out by later scans): scan again, or correct without it."""

    CODE, NAME = 1014, "batch_expired"


class TooLarge(HotPixelsError):
    """Declared sizes (frame, strip/tile count, one tag's value) beyond what the file can hold or
    beyond the memory budget: refused before anything is allocated."""

    CODE, NAME = 1015, "too_large"


# --- profiles (2xxx) -----------------------------------------------------------------------------
class ProfileNotFound(HotPixelsError):
    CODE, NAME = 2001, "profile_not_found"


class ProfileCorrupt(HotPixelsError):
    CODE, NAME = 2002, "profile_corrupt"


class ProfileTooNew(HotPixelsError):
    CODE, NAME = 2003, "profile_too_new"


class DarkFramesMismatch(HotPixelsError):
    CODE, NAME = 2004, "dark_frames_mismatch"


class ProfileIncompatible(HotPixelsError):
    """The profile was made on another body / raw size / CFA than the image."""

    CODE, NAME = 2005, "profile_incompatible"


class NoMatchingProfile(HotPixelsError):
    CODE, NAME = 2006, "no_matching_profile"


class ProfileExists(HotPixelsError):
    CODE, NAME = 2007, "profile_exists"


class CorrectedFileAsDark(HotPixelsError):
    CODE, NAME = 2008, "corrected_file_as_dark"


class NotEnoughDarks(HotPixelsError):
    CODE, NAME = 2009, "not_enough_darks"


class InvalidProfileName(HotPixelsError):
    CODE, NAME = 2010, "invalid_profile_name"


class NotADarkFrame(HotPixelsError):
    """A frame given as a dark frame shows a scene, a level far above a dark's or too many hot
    sites (``data``: ``path``, ``reason``); ``allow_mismatch`` does not override it."""

    CODE, NAME = 2011, "not_a_dark_frame"


# --- model (3xxx) --------------------------------------------------------------------------------
class ModelMissing(HotPixelsError):
    CODE, NAME = 3001, "model_missing"


class ModelCorrupt(HotPixelsError):
    CODE, NAME = 3002, "model_corrupt"


# --- environment (4xxx) --------------------------------------------------------------------------
class ExiftoolMissing(HotPixelsError):
    CODE, NAME = 4001, "exiftool_missing"


class OutOfMemoryBudget(HotPixelsError):
    CODE, NAME = 4002, "out_of_memory"


# --- requests (5xxx and JSON-RPC) -----------------------------------------------------------------
class InvalidOption(HotPixelsError):
    """A CLI option or RPC parameter with a bad value; ``data['param']`` names it."""

    CODE, NAME = 5001, "invalid_option"


class Busy(HotPixelsError):
    CODE, NAME = 5002, "busy"


class Cancelled(HotPixelsError):
    """The user cancelled; JSON-RPC/LSP ``RequestCancelled``. No partial files are left behind."""

    CODE, NAME = -32800, "cancelled"


def all_error_classes() -> list[type[HotPixelsError]]:
    """Every error class, for docs and the protocol test that checks codes are unique."""
    seen: list[type[HotPixelsError]] = []
    stack: list[type[HotPixelsError]] = [HotPixelsError]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.append(sub)
                stack.append(sub)
    return sorted(seen, key=lambda c: c.CODE)


def error_class(code: int) -> type[HotPixelsError] | None:
    """The class whose ``CODE`` is ``code`` (the inverse of the table), or None for a code it lacks."""
    return next((cls for cls in all_error_classes() if cls.CODE == code), None)


def as_hotpixels_error(exc: BaseException) -> HotPixelsError:
    """Wrap any exception as a user-facing error (the traceback goes to the log, not the user)."""
    if isinstance(exc, HotPixelsError):
        return exc
    if isinstance(exc, MemoryError):
        return OutOfMemoryBudget("not enough memory for this image; close other programs or correct fewer images at once")
    if isinstance(exc, FileNotFoundError):
        return FileNotFound(f"file not found: {exc.filename}", path=exc.filename)
    if isinstance(exc, PermissionError):
        return FileNotReadable(f"permission denied: {exc.filename}", path=exc.filename)
    return InternalError(f"internal error ({type(exc).__name__}: {exc}); see the log for details")
