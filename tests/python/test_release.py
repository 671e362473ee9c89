"""The release step of ./run.sh build (build/release.py): signing only when configured, a zip for
download with the plug-in at its top and the development file left out."""

from __future__ import annotations

import importlib.util
import stat
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("release", ROOT / "build" / "release.py")
release = importlib.util.module_from_spec(spec)
spec.loader.exec_module(release)


def make_plugin(tmp_path: Path) -> Path:
    plugin = tmp_path / "hotpixel.lrdevplugin"
    worker = plugin / "bin" / "macos-arm64" / "hotpixels-worker"
    worker.mkdir(parents=True)
    (plugin / "Info.lua").write_text("VERSION = { major = 1, minor = 2, revision = 3, build = 4 },\n")
    (plugin / "PluginPath.txt").write_text("/Users/dev/checkout\n")
    exe = worker / "hotpixels-worker"
    exe.write_bytes(b"\xcf\xfa\xed\xfe" + b"\0" * 60)  # a Mach-O 64 header
    exe.chmod(0o755)
    (worker / "_internal").mkdir()
    (worker / "_internal" / "libpython.dylib").write_bytes(b"\xcf\xfa\xed\xfe" + b"\0" * 60)
    (worker / "_internal" / "base_library.zip").write_bytes(b"PK\x03\x04")
    (worker / "helper.exe").write_bytes(b"MZ")
    return plugin


def test_without_a_certificate_signing_is_skipped_with_a_message(tmp_path):
    plugin = make_plugin(tmp_path)
    for platform in ("darwin", "win32", "linux"):
        commands, message = release.signing_commands(plugin, platform, {})
        assert commands == []
        assert message.startswith("signing skipped")
    assert "HOTPIXELS_MACOS_SIGN_IDENTITY" in release.signing_commands(plugin, "darwin", {})[1]
    assert "HOTPIXELS_WINDOWS_CERT" in release.signing_commands(plugin, "win32", {})[1]
    notarize, message = release.notarize_command(tmp_path / "x.zip", "darwin", {})
    assert notarize is None and "HOTPIXELS_NOTARY_PROFILE" in message


def test_macos_signs_every_macho_file_executable_last_and_notarizes_the_zip(tmp_path):
    plugin = make_plugin(tmp_path)
    env = {"HOTPIXELS_MACOS_SIGN_IDENTITY": "Developer ID Application: Ann (TEAM1)",
           "HOTPIXELS_NOTARY_PROFILE": "hotpixels"}
    commands, _ = release.signing_commands(plugin, "darwin", env)
    signed = [Path(c[-1]).name for c in commands]
    assert signed == ["libpython.dylib", "hotpixels-worker"], "Mach-O files only, the executable last"
    assert all(c[:6] == ["codesign", "--force", "--timestamp", "--options", "runtime", "--sign"] for c in commands)
    notarize, _ = release.notarize_command(tmp_path / "HotPixels.zip", "darwin", env)
    assert notarize[:3] == ["xcrun", "notarytool", "submit"] and "--wait" in notarize


def test_windows_signs_exe_and_dll_with_a_timestamp(tmp_path):
    plugin = make_plugin(tmp_path)
    env = {"HOTPIXELS_WINDOWS_CERT": "C:/keys/hp.pfx", "HOTPIXELS_WINDOWS_CERT_PASSWORD": "pw"}
    commands, _ = release.signing_commands(plugin, "win32", env)
    assert [Path(c[-1]).name for c in commands] == ["helper.exe"]
    assert commands[0][:6] == ["signtool", "sign", "/f", "C:/keys/hp.pfx", "/p", "pw"]
    assert "/tr" in commands[0] and "/td" in commands[0]


def test_the_zip_holds_the_plugin_folder_without_the_development_file(tmp_path):
    plugin = make_plugin(tmp_path)
    out = tmp_path / "dist" / f"HotPixels-{release.plugin_version(plugin)}-macos-arm64.zip"
    size = release.zip_plugin(plugin, out)
    assert out.name == "HotPixels-1.2.3-macos-arm64.zip"
    assert size == out.stat().st_size > 0
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert "hotpixel.lrplugin/Info.lua" in names
        assert "hotpixel.lrplugin/bin/macos-arm64/hotpixels-worker/hotpixels-worker" in names
        assert not any("PluginPath.txt" in n for n in names)
        mode = zf.getinfo("hotpixel.lrplugin/bin/macos-arm64/hotpixels-worker/hotpixels-worker").external_attr >> 16
        assert mode & stat.S_IXUSR, "the worker stays executable"
    assert not list(out.parent.glob("*.partial"))
