"""The release step of ``./run.sh build``: sign the frozen worker when a certificate is configured,
then zip the plug-in folder for download and report its size.

Runs after ``build/build_worker.py`` (``./run.sh build`` calls both). Steps:

1. **Sign** (each step runs only when its settings are in the environment; otherwise it is
   skipped with a message saying which variable would enable it):

   * macOS — ``HOTPIXELS_MACOS_SIGN_IDENTITY`` (a "Developer ID Application: …" identity in the
     keychain): every Mach-O file of the worker is signed with ``codesign --force --timestamp
     --options runtime --sign IDENTITY``, the executable last. Notarization — also
     ``HOTPIXELS_NOTARY_PROFILE`` (a profile stored with ``xcrun notarytool store-credentials``):
     the zip is submitted with ``xcrun notarytool submit ZIP --keychain-profile PROFILE --wait``.
     A zip cannot be stapled; Gatekeeper checks the notarization online on first launch.
   * Windows — ``HOTPIXELS_WINDOWS_CERT`` (a .pfx file; its password in
     ``HOTPIXELS_WINDOWS_CERT_PASSWORD``): ``signtool sign /f CERT /p PASSWORD /fd SHA256 /tr
     http://timestamp.digicert.com /td SHA256`` on every .exe and .dll of the worker
     (``HOTPIXELS_TIMESTAMP_URL`` overrides the timestamp server). ``signtool`` comes with the
     Windows SDK. Unsigned, SmartScreen and antivirus scanners may delay the first start.

2. **Zip**: the plug-in folder (without the development file ``PluginPath.txt``) becomes
   ``build/dist/HotPixels-<version>-<os>-<arch>.zip`` with ``hotpixel.lrplugin/`` at its top; the
   size is printed in MB.

    python build/release.py [--plugin DIR] [--out DIR] [--dry-run]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "hotpixel.lrdevplugin"
RELEASE_NAME = "hotpixel.lrplugin"
DEV_ONLY = {"PluginPath.txt"}
MACHO_MAGIC = {b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe",
               b"\xca\xfe\xba\xbe"}
DEFAULT_TIMESTAMP_URL = "http://timestamp.digicert.com"


def plugin_version(plugin: Path) -> str:
    """``major.minor.revision`` from Info.lua's VERSION table ("0.0.0" when absent)."""
    text = (plugin / "Info.lua").read_text(encoding="utf-8")
    parts = [re.search(rf"{key}\s*=\s*(\d+)", text) for key in ("major", "minor", "revision")]
    return ".".join(m.group(1) if m else "0" for m in parts)


def worker_folders(plugin: Path) -> list[Path]:
    """The frozen workers in ``bin/<os>-<arch>/hotpixels-worker/``."""
    return sorted(p for p in (plugin / "bin").glob("*/hotpixels-worker") if p.is_dir())


def is_macho(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in MACHO_MAGIC
    except OSError:
        return False


def signing_commands(plugin: Path, platform: str, env: dict[str, str]) -> tuple[list[list[str]], str]:
    """(commands to run, a message) for signing the workers on ``platform`` ("darwin", "win32", …)."""
    workers = worker_folders(plugin)
    if platform == "darwin":
        identity = env.get("HOTPIXELS_MACOS_SIGN_IDENTITY")
        if not identity:
            return [], "signing skipped: set HOTPIXELS_MACOS_SIGN_IDENTITY to a Developer ID identity to sign"
        files = [p for w in workers for p in sorted(w.rglob("*")) if p.is_file() and is_macho(p)]
        files.sort(key=lambda p: p.name == "hotpixels-worker")  # the executable last, after its libraries
        return ([["codesign", "--force", "--timestamp", "--options", "runtime", "--sign", identity, str(p)]
                 for p in files], f"signing {len(files)} files with {identity}")
    if platform == "win32":
        cert = env.get("HOTPIXELS_WINDOWS_CERT")
        if not cert:
            return [], "signing skipped: set HOTPIXELS_WINDOWS_CERT (a .pfx) and HOTPIXELS_WINDOWS_CERT_PASSWORD"
        url = env.get("HOTPIXELS_TIMESTAMP_URL", DEFAULT_TIMESTAMP_URL)
        files = [p for w in workers for p in sorted(w.rglob("*")) if p.suffix.lower() in (".exe", ".dll")]
        base = ["signtool", "sign", "/f", cert, "/fd", "SHA256", "/tr", url, "/td", "SHA256"]
        if env.get("HOTPIXELS_WINDOWS_CERT_PASSWORD"):
            base[4:4] = ["/p", env["HOTPIXELS_WINDOWS_CERT_PASSWORD"]]
        return [base + [str(p)] for p in files], f"signing {len(files)} files with {cert}"
    return [], f"signing skipped: no code signing on {platform}"


def notarize_command(zip_path: Path, platform: str, env: dict[str, str]) -> tuple[list[str] | None, str]:
    if platform != "darwin":
        return None, "notarization: macOS only"
    profile = env.get("HOTPIXELS_NOTARY_PROFILE")
    if not profile or not env.get("HOTPIXELS_MACOS_SIGN_IDENTITY"):
        return None, "notarization skipped: set HOTPIXELS_NOTARY_PROFILE (and sign) to notarize"
    return ["xcrun", "notarytool", "submit", str(zip_path), "--keychain-profile", profile, "--wait"], \
        f"notarizing with profile {profile}"


def zip_plugin(plugin: Path, zip_path: Path) -> int:
    """Zip ``plugin`` as ``hotpixel.lrplugin/…`` (executable bits kept); returns the zip's size in bytes."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_name(zip_path.name + ".partial")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(plugin.rglob("*")):
            rel = path.relative_to(plugin)
            if rel.parts[0] in DEV_ONLY or "__pycache__" in rel.parts or path.is_symlink():
                continue
            arcname = str(Path(RELEASE_NAME) / rel)
            if path.is_dir():
                continue
            info = zipfile.ZipInfo.from_file(path, arcname)
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as fh:
                zf.writestr(info, fh.read())
    os.replace(tmp, zip_path)
    return zip_path.stat().st_size


def platform_tag() -> str:
    sys.path.insert(0, str(ROOT / "worker"))
    from hotpixels.rpc.bundle import platform_tag as tag

    return tag()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plugin", type=Path, default=PLUGIN, help="the plug-in folder (default: the checkout's)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "dist", help="where the zip goes")
    parser.add_argument("--dry-run", action="store_true", help="print the signing commands without running them")
    args = parser.parse_args(argv)

    env, platform = dict(os.environ), sys.platform
    commands, message = signing_commands(args.plugin, platform, env)
    print(f"release: {message}", file=sys.stderr)
    for cmd in commands:
        shown = ["****" if i > 0 and cmd[i - 1] == "/p" else part for i, part in enumerate(cmd)]
        print("release: " + " ".join(shown), file=sys.stderr)
        if not args.dry_run and subprocess.call(cmd) != 0:
            print("release: signing failed", file=sys.stderr)
            return 1
    zip_path = args.out / f"HotPixels-{plugin_version(args.plugin)}-{platform_tag()}.zip"
    size = zip_plugin(args.plugin, zip_path)
    print(f"release: {zip_path} ({size / 1e6:.1f} MB)", file=sys.stderr)
    notarize, message = notarize_command(zip_path, platform, env)
    print(f"release: {message}", file=sys.stderr)
    if notarize and not args.dry_run and subprocess.call(notarize) != 0:
        print("release: notarization failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
