"""DNG raw I/O: the CFA convention, reading raw CFA data and metadata, writing corrected copies."""
