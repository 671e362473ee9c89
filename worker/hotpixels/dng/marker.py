"""The "corrected by HotPixels" marker written into every output DNG.

Two places, so that any tool finds it:

* IFD0 Software: ``"<old software> + HotPixels <version>"`` (or ``"HotPixels <version>"``);
* the XMP packet (tag 700): attributes in the namespace ``http://hotpixels.app/ns/1.0/`` on the
  first ``rdf:Description``: ``hotpixels:Corrected="1"``, ``hotpixels:Version`` and the caller's
  note (``hotpixels:<Key>="value"``). exiftool lists them with ``-XMP-hotpixels:all``; a plain
  byte search for ``hotpixels:Corrected="1"`` finds them too. The reader sets
  ``CameraMetadata.corrected_by_hotpixels`` from either.

The packet keeps its size when its padding (whitespace before ``<?xpacket end``) can absorb the
new attributes, so it can be rewritten in place; otherwise it grows and the writer appends it.
"""

from __future__ import annotations

import json
import re
from xml.sax.saxutils import escape

from .. import __version__
from .metadata import HOTPIXELS_SOFTWARE, HOTPIXELS_XMP_NS

_OLD_ATTRS = re.compile(rb'\s+(?:xmlns:hotpixels|hotpixels:[A-Za-z0-9_]+)\s*=\s*(?:"[^"]*"|\'[^\']*\')')
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")

EMPTY_PACKET = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
    b' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
    b'  <rdf:Description rdf:about=""/>\n'
    b' </rdf:RDF>\n'
    b'</x:xmpmeta>\n'
    + b" " * 512 + b'\n<?xpacket end="w"?>'
)


def software_value(old: str | None) -> str:
    """The new Software string; an earlier HotPixels mark is replaced, not repeated."""
    mine = f"{HOTPIXELS_SOFTWARE} {__version__}"
    if not old:
        return mine
    base = re.sub(r"\s*\+\s*HotPixels\s+\S+$", "", old).strip()
    return f"{base} + {mine}" if base else mine


def _attributes(note: dict | None) -> bytes:
    attrs = [("xmlns:hotpixels", HOTPIXELS_XMP_NS), ("hotpixels:Corrected", "1"),
             ("hotpixels:Version", __version__)]
    for key, value in (note or {}).items():
        if value is None or not _KEY.match(str(key)) or key in ("Corrected", "Version"):
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        attrs.append((f"hotpixels:{key}", text))
    return b"".join(f' {k}="{escape(str(v), {chr(34): "&quot;"})}"'.encode("utf-8") for k, v in attrs)


def mark_xmp(packet: bytes | None, note: dict | None = None) -> bytes:
    """The XMP packet with the HotPixels attributes on its first ``rdf:Description``."""
    if not packet or b"<rdf:Description" not in packet:
        packet = EMPTY_PACKET
    size = len(packet)
    packet = packet.rstrip(b"\0")
    cleaned = _OLD_ATTRS.sub(b"", packet)
    at = cleaned.index(b"<rdf:Description") + len(b"<rdf:Description")
    marked = cleaned[:at] + _attributes(note) + cleaned[at:]
    grow = len(marked) - size
    m = re.search(rb"(\s+)(<\?xpacket end)", marked)
    if m and grow > 0 and len(m.group(1)) - 1 >= grow:  # absorb the growth in the padding
        start = m.start(1)
        marked = marked[:start] + marked[start + grow:]
    elif m and grow < 0:
        marked = marked[:m.start(2)] + b" " * (-grow) + marked[m.start(2):]
    return marked
