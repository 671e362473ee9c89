"""HotPixels: remove hot pixels from long-exposure raw (DNG) photos, in the raw CFA data."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
