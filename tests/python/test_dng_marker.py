"""The "corrected by HotPixels" marker: Software and XMP, found again by the reader, never
duplicated when a file is marked twice, and kept in place when the XMP padding allows."""

from __future__ import annotations

import re

import numpy as np
import tifffile

from hotpixels.dng.marker import EMPTY_PACKET, mark_xmp, software_value
from hotpixels.dng.reader import read_dng
from hotpixels.dng.writer import write_corrected_dng

ADOBE_PACKET = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0">\n'
    b' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
    b'  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="3"/>\n'
    b' </rdf:RDF>\n</x:xmpmeta>\n' + b" " * 2000 + b'\n<?xpacket end="w"?>'
)


def test_marker_fits_into_the_packet_padding_and_keeps_its_size():
    marked = mark_xmp(ADOBE_PACKET, {"Profile": "EOS R5 ISO1600"})
    assert len(marked) == len(ADOBE_PACKET)
    assert b'hotpixels:Corrected="1"' in marked and b'xmp:Rating="3"' in marked
    assert b'xmlns:hotpixels="http://hotpixels.app/ns/1.0/"' in marked
    assert b'hotpixels:Profile="EOS R5 ISO1600"' in marked


def test_marking_twice_replaces_the_old_marker():
    once = mark_xmp(ADOBE_PACKET, {"Profile": "a"})
    twice = mark_xmp(once, {"Profile": "b"})
    assert twice.count(b"hotpixels:Corrected") == 1 and twice.count(b"xmlns:hotpixels") == 1
    assert b'hotpixels:Profile="b"' in twice and b'hotpixels:Profile="a"' not in twice
    assert software_value(software_value("Adobe DNG Converter 16.0")) == "Adobe DNG Converter 16.0 + HotPixels 0.1.0"


def test_note_values_are_escaped_and_bad_keys_skipped():
    marked = mark_xmp(None, {"Note": 'a "quoted" <value> & more', "bad key": 1, "Sites": [1, 2]})
    assert b'bad key' not in marked
    text = marked.decode("utf-8")
    assert 'hotpixels:Note="a &quot;quoted&quot; &lt;value&gt; &amp; more"' in text
    assert re.search(r'hotpixels:Sites="\[1, 2\]"', text)
    assert marked.startswith(EMPTY_PACKET[:20])


def test_a_file_without_xmp_or_software_gets_both_and_reads_as_corrected(tmp_path):
    """Adding tags the source lacks writes a new IFD0 at the end; everything else stays."""
    a = np.random.default_rng(0).integers(0, 4096, (40, 60)).astype(np.uint16)
    ext = [(33421, "H", 2, (2, 2), False), (33422, "B", 4, (0, 1, 1, 2), False),
           (50706, "B", 4, (1, 4, 0, 0), False), (50717, "H", 1, (4095,), False)]
    src = tmp_path / "bare.dng"
    tifffile.imwrite(src, a, photometric=32803, extratags=ext, subfiletype=0, software=False)
    raw = read_dng(src, metadata=False)
    assert raw.metadata.software is None and not raw.metadata.corrected_by_hotpixels
    new = a.copy()
    new[3, 3] = 0
    write_corrected_dng(raw, new, tmp_path / "out.dng", note={"Profile": "p"})
    out = read_dng(tmp_path / "out.dng", metadata=False)
    assert out.metadata.corrected_by_hotpixels and out.metadata.software == "HotPixels 0.1.0"
    np.testing.assert_array_equal(out.cfa_dn, new)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.dng"), new)


def test_simulator_software_name_is_not_taken_for_the_marker(tmp_path):
    from hotpixels.dng.cfa import CfaPattern
    from hotpixels.dng.create import write_dng

    p = tmp_path / "sim.dng"
    write_dng(p, np.zeros((32, 32), np.uint16), cfa=CfaPattern.bayer("RGGB"), active_area=(0, 0, 32, 32),
              black_level_dn=0, white_level_dn=4095, bits=12)
    assert not read_dng(p, metadata=False).metadata.corrected_by_hotpixels
