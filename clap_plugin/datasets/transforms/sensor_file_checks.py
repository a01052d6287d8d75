"""Checks of the bytes of a sensor file, shared by the loaders and by ``tools/create_data.py --check full``.

Each returns None when the file is usable, else the reason, in words. ``jpeg_structure_problem`` is cheap (the
loaders run it on every read). ``jpeg_decode_problem`` decodes the whole image strictly: libjpeg, through
OpenCV, accepts a JPEG whose entropy-coded body is garbage (it prints "Corrupt JPEG data" and returns an image
of noise), while Pillow reports the broken data stream as an error, so the full check decodes with Pillow.
"""
import io
from typing import Optional

import numpy as np

JPEG_SOI = b'\xff\xd8'
JPEG_EOI = b'\xff\xd9'


def point_bytes_problem(data: bytes, load_dim: int = 5) -> Optional[str]:
    """A LiDAR file of float32 points with ``load_dim`` values each: whole points, finite values."""
    point_bytes = load_dim * 4
    if len(data) % point_bytes:
        return (f'truncated: {len(data)} bytes is not a multiple of {point_bytes} ({load_dim} float32 per point; '
                f'{len(data) % point_bytes} bytes over)')
    values = np.frombuffer(data, dtype=np.float32)
    bad = int(values.size - np.count_nonzero(np.isfinite(values)))
    if bad:
        return f'{bad} of its {values.size} float32 values are not finite (NaN / inf): corrupt'
    return None


def jpeg_structure_problem(data: bytes) -> Optional[str]:
    """Empty, or a JPEG (starts with the start-of-image marker) without its end-of-image marker.

    Files in other formats pass (only the decoder can judge them). Trailing zero bytes after the marker are
    allowed (some writers pad).
    """
    if not data:
        return 'empty file (0 bytes)'
    if data[:2] == JPEG_SOI and data.rstrip(b'\x00')[-2:] != JPEG_EOI:
        return 'JPEG without its end-of-image marker (FF D9): truncated, or its data is corrupt'
    return None


def jpeg_decode_problem(data: bytes, width: int = 0, height: int = 0) -> Optional[str]:
    """:func:`jpeg_structure_problem`, then a full, strict decode (Pillow, truncated images refused) and, when
    ``width`` / ``height`` are > 0, the decoded size compared with them."""
    from PIL import Image, ImageFile

    problem = jpeg_structure_problem(data)
    if problem:
        return problem
    if data[:2] != JPEG_SOI:
        return f'not a JPEG file (starts with {data[:4].hex(" ")}, not ff d8)'
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # Pillow's default; a caller may have turned it on
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            size = img.size
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, ... on broken data
        return f'cannot be decoded: {type(exc).__name__}: {exc}'
    if width > 0 and height > 0 and size != (width, height):
        return f'decodes to {size[0]}x{size[1]}, but the tables say {width}x{height}'
    return None
