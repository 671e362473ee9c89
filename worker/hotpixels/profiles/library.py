"""The profile library: a folder of ``*.hpprofile`` files with an index of their summaries.

Folder: ``dir``, else ``HOTPIXELS_LIBRARY``, else the user's data folder — Linux
``$XDG_DATA_HOME/HotPixels/profiles`` (``~/.local/share/...``), macOS ``~/Library/Application
Support/HotPixels/profiles``, Windows ``%APPDATA%\\HotPixels\\profiles``.

``index.json`` maps each file name to ``{size, mtime_ns, summary}``; an entry whose size or
modification time no longer matches is rebuilt from the file's ``meta`` member alone, so listing
1000 profiles reads no pixel data, and a profile copied in by hand appears at the next listing. A
file that cannot be read goes to ``errors`` and never hides the others. Summary pictures live in
``<file stem>.pictures/`` next to the profile.

Names: any text of 1-120 characters without control characters or path separators; unique
ignoring case. The file name is the name made safe (other characters become ``_``) plus a short
hash of the name whenever that changed it or it has capitals, so two names never share a file,
on case-insensitive file systems too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..errors import InvalidProfileName, ProfileExists, ProfileNotFound, as_hotpixels_error
from ..fileio import atomic_write
from ..userdirs import default_library_dir
from .profile_file import SUFFIX, Profile, load_profile, read_meta, save_profile, summary_from_meta

INDEX_NAME = "index.json"
INDEX_VERSION = 1
PICTURES_SUFFIX = ".pictures"
MAX_NAME_CHARS = 120
_SAFE = re.compile(r"[^A-Za-z0-9 ._()+,-]")


def check_name(name: str) -> str:
    """The name, stripped, or :class:`InvalidProfileName` saying what is wrong with it."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidProfileName("a profile needs a name (e.g. \"R5 ISO3200 30s 20C\")")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise InvalidProfileName(f"profile name is {len(name)} characters long; at most {MAX_NAME_CHARS}")
    if any(ord(c) < 32 or c in "/\\" for c in name) or name in (".", ".."):
        raise InvalidProfileName(f"profile name {name!r} contains a slash, backslash or control character")
    return name


def file_stem_for(name: str) -> str:
    safe = _SAFE.sub("_", name).strip(" .") or "profile"
    if safe != name or name != name.lower():
        safe = f"{safe[:80]}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"
    return safe


class ProfileLibrary:
    """A folder of profiles (see the module docstring)."""

    def __init__(self, dir: str | os.PathLike | None = None):
        self.dir = (Path(dir).expanduser() if dir is not None else default_library_dir()).absolute()
        self._index_cache: tuple[tuple[int, int], dict[str, Any]] | None = None  # ((size, mtime_ns), entries)

    # -- listing ------------------------------------------------------------------------------------
    def list(self) -> dict[str, Any]:
        """``{"library", "profiles": [summary...], "errors": [{file, code, name, message}...]}``."""
        profiles, errors = self._scan()
        return {"library": str(self.dir), "profiles": sorted(profiles, key=lambda s: s["name"].casefold()),
                "errors": errors}

    def summaries(self) -> list[dict[str, Any]]:
        return self.list()["profiles"]

    def _scan(self) -> tuple[list[dict], list[dict]]:
        if not self.dir.is_dir():
            return [], []
        index = self._read_index()
        entries: dict[str, Any] = {}
        profiles, errors = [], []
        changed = False
        with os.scandir(self.dir) as it:
            listing = list(it)
        files = [e for e in listing if e.name.endswith(SUFFIX) and not e.name.startswith(".") and e.is_file()]
        picture_dirs = {e.name for e in listing if e.name.endswith(PICTURES_SUFFIX)}
        for e in files:
            st = e.stat()
            old = index.get(e.name)
            if old and old.get("size") == st.st_size and old.get("mtime_ns") == st.st_mtime_ns:
                entry = old
            else:
                changed = True
                try:
                    entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                             "summary": summary_from_meta(read_meta(e.path))}
                except Exception as exc:  # noqa: BLE001 - one bad file must not hide the others
                    entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                             "error": as_hotpixels_error(exc).to_dict()}
            entries[e.name] = entry
            if "error" in entry:
                errors.append({"file": e.name, "path": e.path, **entry["error"]})
            else:
                stem = e.name[: -len(SUFFIX)]
                pictures = self._pictures_of(Path(e.path)) if stem + PICTURES_SUFFIX in picture_dirs else {}
                profiles.append(self._decorate(dict(entry["summary"]), e.name, st.st_size, pictures))
        if changed or set(entries) != set(index):
            self._write_index(entries)
        return profiles, errors

    def _decorate(self, summary: dict, file_name: str, size: int, pictures: dict | None = None) -> dict:
        path = os.path.join(self.dir, file_name)
        summary.update(file=file_name, path=path, bytes=size,
                       pictures=self._pictures_of(Path(path)) if pictures is None else pictures)
        return summary

    def _pictures_of(self, path: Path) -> dict[str, str]:
        """The pictures folder's PNGs by name (absolute paths; no per-file checks beyond listing)."""
        folder = path.with_name(path.stem + PICTURES_SUFFIX)
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".png") and not n.startswith("."))
        except OSError:
            return {}
        base = os.path.abspath(folder)
        return {n[:-4]: os.path.join(base, n) for n in names}

    def _read_index(self) -> dict[str, Any]:
        """The index entries; parsed once per change of ``index.json`` (a long-lived worker lists often)."""
        path = self.dir / INDEX_NAME
        try:
            st = path.stat()
            key = (st.st_size, st.st_mtime_ns)
            if self._index_cache is not None and self._index_cache[0] == key:
                return self._index_cache[1]
            data = json.loads(path.read_text("utf-8"))
            if data.get("version") == INDEX_VERSION and isinstance(data.get("entries"), dict):
                self._index_cache = (key, data["entries"])
                return data["entries"]
        except (OSError, ValueError, AttributeError):
            pass
        return {}

    def _write_index(self, entries: dict[str, Any]) -> None:
        try:
            _atomic_write_text(self.dir / INDEX_NAME, json.dumps({"version": INDEX_VERSION, "entries": entries}))
        except OSError:
            pass  # a read-only library still lists; the index is only a cache

    # -- lookup -------------------------------------------------------------------------------------
    def path_of(self, name: str) -> Path:
        """The file of profile ``name`` (exact name first, then ignoring case)."""
        direct = self.dir / (file_stem_for(name.strip()) + SUFFIX) if isinstance(name, str) and name.strip() else None
        profiles = self.summaries()
        for s in profiles:
            if s["name"] == name:
                return Path(s["path"])
        for s in profiles:
            if s["name"].casefold() == str(name).strip().casefold():
                return Path(s["path"])
        if direct is not None and direct.is_file():  # present but unreadable: let the loader explain
            return direct
        known = ", ".join(repr(s["name"]) for s in profiles[:8]) or "none"
        raise ProfileNotFound(f"no profile named {name!r} in {self.dir} (profiles: {known})")

    def exists(self, name: str) -> bool:
        try:
            self.path_of(name)
            return True
        except ProfileNotFound:
            return False

    def get(self, name: str) -> Profile:
        """The full profile (dark model included)."""
        return load_profile(self.path_of(name))

    def summary(self, name: str) -> dict[str, Any]:
        """One profile's summary with frames, mismatches and pictures (regenerated when missing)."""
        path = self.path_of(name)
        meta = read_meta(path)
        out = self._decorate(summary_from_meta(meta), path.name, path.stat().st_size)
        out["frames"] = meta.get("frames", [])
        out["mismatches"] = meta.get("mismatches", [])
        if not out["pictures"]:
            out["pictures"] = self.write_pictures(load_profile(path, with_master=False))
        return out

    # -- changes ------------------------------------------------------------------------------------
    def save(self, profile: Profile, *, overwrite: bool = False) -> dict[str, Any]:
        """Store ``profile`` under its name; :class:`ProfileExists` unless ``overwrite``."""
        profile.name = check_name(profile.name)
        if self.exists(profile.name):
            if not overwrite:
                raise ProfileExists(f"a profile named {profile.name!r} already exists; choose another name or "
                                    "delete/rename the old one")
            self.delete(profile.name)
        path = self.dir / (file_stem_for(profile.name) + SUFFIX)
        written = save_profile(path, profile)
        written["pictures"] = self.write_pictures(profile)
        return written

    def write_pictures(self, profile: Profile) -> dict[str, str]:
        """Write the summary PNGs next to the profile's file; ``{picture name: absolute path}``."""
        from .pictures import write_pictures

        path = self.dir / (file_stem_for(profile.name) + SUFFIX)
        folder = path.with_name(path.stem + PICTURES_SUFFIX)
        try:
            return write_pictures(profile, folder)
        except OSError:
            return {}

    def delete(self, name: str) -> None:
        path = self.path_of(name)
        path.unlink()
        shutil.rmtree(path.with_name(path.stem + PICTURES_SUFFIX), ignore_errors=True)

    def rename(self, old: str, new: str) -> dict[str, Any]:
        new = check_name(new)
        path = self.path_of(old)
        if new.casefold() != old.casefold() and self.exists(new):
            raise ProfileExists(f"a profile named {new!r} already exists")
        profile = load_profile(path)
        profile.name = new
        new_path = self.dir / (file_stem_for(new) + SUFFIX)
        written = save_profile(new_path, profile)
        if new_path != path:
            path.unlink()
            shutil.rmtree(path.with_name(path.stem + PICTURES_SUFFIX), ignore_errors=True)
        written["pictures"] = self.write_pictures(profile)
        return {"name": new, **written}

    def import_file(self, path: str | os.PathLike, name: str | None = None, *, overwrite: bool = False) -> dict[str, Any]:
        """Copy a profile file into the library (checked by loading it fully), optionally renamed."""
        profile = load_profile(path)
        if name:
            profile.name = name
        return {"name": profile.name, **self.save(profile, overwrite=overwrite)}

    def export(self, name: str, dst: str | os.PathLike) -> dict[str, Any]:
        """Copy profile ``name`` to ``dst`` (a file, or a folder to put it in), atomically."""
        src = self.path_of(name)
        dst = Path(dst)
        if dst.is_dir():
            dst = dst / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dst, lambda fh: _copy_into(src, fh))
        return {"name": name, "path": str(dst), "bytes": dst.stat().st_size}


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)


def _copy_into(src: Path, fh) -> None:
    with open(src, "rb") as fin:
        shutil.copyfileobj(fin, fh)