"""File-format facts shared by every reader of uploads: magic bytes and the image formats accepted."""

from __future__ import annotations

TIFF_MAGIC: tuple[bytes, ...] = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both orders
IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "TIFF", "WEBP")  # what tile endpoints decode (Pillow names)


def is_tiff(head: bytes) -> bool:
    """True when `head` (the first bytes of a file) starts like a TIFF or BigTIFF."""
    return head[:4] in TIFF_MAGIC
