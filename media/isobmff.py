"""Minimal readers for container structure: ISO BMFF (MP4/MOV/M4A) top-level boxes and the
Matroska/WebM EBML header + Segment size.

Used for two cheap checks that decoding one frame cannot do: "is the moov atom before mdat"
(`-movflags +faststart`, so browsers can start playback before the download ends) and "is
the file shorter than its own boxes/segment say" (a truncated upload whose first frames still
decode). Box layout per ISO/IEC 14496-12 §4.2: 32-bit size + 4-char type; size 1 means a
64-bit size follows, size 0 means "to end of file". EBML per RFC 8794 (variable-size ints).
Only the top level is read, so it costs a few seeks whatever the file size.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

MAX_TOP_LEVEL_BOXES = 10_000  # a real file has < 10; stop on garbage rather than loop


@dataclass(frozen=True)
class Box:
    type: str
    offset: int
    size: int  # whole box including its header; as declared (may pass EOF if truncated)


def top_level_boxes(path: str | Path) -> list[Box]:
    """The top-level boxes of an ISO BMFF file, as declared. Stops at a malformed header."""
    boxes: list[Box] = []
    file_size = os.path.getsize(path)
    with open(path, "rb") as fh:
        offset = 0
        while offset + 8 <= file_size and len(boxes) < MAX_TOP_LEVEL_BOXES:
            fh.seek(offset)
            header = fh.read(16)
            size, raw_type = struct.unpack(">I4s", header[:8])
            if size == 1:
                if len(header) < 16:
                    break
                size = struct.unpack(">Q", header[8:16])[0]
            elif size == 0:
                size = file_size - offset
            box_type = raw_type.decode("latin-1")
            if size < 8:
                break
            boxes.append(Box(box_type, offset, size))
            offset += size
    return boxes


def isobmff_truncated(path: str | Path) -> bool:
    """True when a top-level box claims more bytes than the file has."""
    file_size = os.path.getsize(path)
    return any(b.offset + b.size > file_size for b in top_level_boxes(path))


def moov_before_mdat(path: str | Path) -> bool:
    """True when the first `moov` box comes before the first `mdat` box."""
    for box in top_level_boxes(path):
        if box.type == "moov":
            return True
        if box.type == "mdat":
            return False
    return False


def _read_vint(fh, *, keep_marker: bool) -> tuple[int, int] | None:
    """One EBML variable-size integer: (value, length in bytes), None on EOF/garbage."""
    first = fh.read(1)
    if not first:
        return None
    b0 = first[0]
    length = 1
    mask = 0x80
    while length <= 8 and not b0 & mask:
        mask >>= 1
        length += 1
    if length > 8:
        return None
    rest = fh.read(length - 1)
    if len(rest) != length - 1:
        return None
    value = b0 if keep_marker else b0 & (mask - 1)
    for byte in rest:
        value = (value << 8) | byte
    return value, length


def ebml_truncated(path: str | Path) -> bool:
    """True when a Matroska/WebM Segment declares a size past the end of the file.

    A Segment of "unknown" size (all value bits set: live recordings) cannot be checked and
    counts as not truncated.
    """
    file_size = os.path.getsize(path)
    with open(path, "rb") as fh:
        offset = 0
        for _ in range(8):  # EBML header, maybe Void/CRC elements, then the Segment
            fh.seek(offset)
            elem_id = _read_vint(fh, keep_marker=True)
            size = _read_vint(fh, keep_marker=False)
            if elem_id is None or size is None:
                return offset < file_size and elem_id is not None
            (eid, id_len), (value, size_len) = elem_id, size
            data_start = offset + id_len + size_len
            unknown = value == (1 << (7 * size_len)) - 1
            if eid == 0x18538067:  # Segment
                return not unknown and data_start + value > file_size
            if unknown:
                return False
            offset = data_start + value
            if offset > file_size:
                return True
    return False
