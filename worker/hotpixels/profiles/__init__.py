"""Profiles: dark models built from dark frames, a profile library, and metadata auto-match."""
