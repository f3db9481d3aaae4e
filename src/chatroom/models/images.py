"""Images among uploaded files: check, clean (metadata removed) and thumbnail them.

These functions read and write local files and use Pillow: they block, and the
controller runs them off the event loop.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

#: Thumbnails fit in a square of this many pixels.
THUMBNAIL_PIXELS = 320
#: The largest image (width x height) that is decoded; larger ones are refused
#: before any pixel is read (a "decompression bomb" declares a huge size).
MAX_IMAGE_PIXELS = 50_000_000


class ImageRejected(ValueError):
    """The file claims to be an image Pillow can read but cannot be used: truncated,
    damaged, or too large to decode safely."""


@dataclass(frozen=True)
class ImageInfo:
    """What processing an image gave: its size as shown (after EXIF rotation), a
    replacement file without metadata (or None: the upload is served as it is), and a
    thumbnail file (or None: the image is small enough to be its own thumbnail)."""

    width: int
    height: int
    cleaned: Path | None
    thumbnail: Path | None


#: Image metadata that is safe to keep (colour and geometry); anything else in
#: ``Image.info`` (EXIF with GPS position, XMP, comments, PNG text) means re-encoding.
_HARMLESS_INFO = {
    "dpi",
    "gamma",
    "icc_profile",
    "transparency",
    "srgb",
    "chromaticity",
    "aspect",
    "jfif",
    "jfif_version",
    "jfif_unit",
    "jfif_density",
    "progressive",
    "progression",
    "adobe",
    "adobe_transform",
    "interlace",
    "duration",
    "loop",
    "background",
    "version",
    "extension",
    "timestamp",
    "blend",
    "disposal",
}


def process_image(path: Path, kind: str, work_dir: Path) -> ImageInfo:
    """Check, clean and thumbnail the image at ``path`` (``kind`` as sniffed).

    ``ImageRejected`` when it declares more than ``MAX_IMAGE_PIXELS`` (checked from
    the header, before decoding) or when it does not decode (truncated or damaged).
    An image with metadata is re-encoded with its EXIF orientation applied and its
    EXIF/XMP/text (camera location among them) left out. Files it writes are the
    caller's to remove.
    """
    from PIL import Image, ImageOps

    made: list[Path] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                with Image.open(path) as image:
                    width, height = image.size
                    if width * height > MAX_IMAGE_PIXELS:
                        raise ImageRejected(
                            f"the image is {width}x{height} pixels; at most "
                            f"{MAX_IMAGE_PIXELS:,} pixels are accepted"
                        )
                    image.load()
                    metadata = set(image.info) - _HARMLESS_INFO
                    orientation = image.getexif().get(0x0112, 1)
                    animated = getattr(image, "is_animated", False)
                    if orientation != 1 and not animated:
                        shown = ImageOps.exif_transpose(image)
                    else:
                        shown = image.copy()
                    cleaned = None
                    if (metadata or orientation != 1) and kind != "image/gif":
                        cleaned = _save_clean(image, shown, kind, animated, work_dir)
                        made.append(cleaned)
                    thumbnail = None
                    if max(shown.size) > THUMBNAIL_PIXELS:
                        thumbnail = _save_thumbnail(shown, work_dir)
                        made.append(thumbnail)
                    return ImageInfo(shown.width, shown.height, cleaned, thumbnail)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise ImageRejected(f"the image is too large to decode safely: {exc}") from None
            except ImageRejected:
                raise
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise ImageRejected(
                    f"the image is damaged or truncated and cannot be shown ({exc})"
                ) from None
    except BaseException:
        for file in made:
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
        raise


def _temp(work_dir: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(dir=work_dir, suffix=suffix)
    os.close(fd)
    return Path(name)


def _save_clean(original, shown, kind: str, animated: bool, work_dir: Path) -> Path:
    """The image re-encoded without metadata (same format; JPEG at quality 95)."""
    target = _temp(work_dir, ".clean")
    icc = original.info.get("icc_profile")
    extra = {"icc_profile": icc} if icc else {}
    if kind == "image/jpeg":
        shown.save(target, "JPEG", quality=95, **extra)
    elif kind == "image/webp":
        if animated:
            original.save(target, "WEBP", save_all=True, lossless=True, **extra)
        else:
            shown.save(target, "WEBP", lossless=True, **extra)
    else:
        shown.save(target, "PNG", **extra)
    return target


def _save_thumbnail(shown, work_dir: Path) -> Path:
    """A small copy: PNG when it has transparency, else JPEG."""
    target = _temp(work_dir, ".thumb")
    thumb = shown.copy()
    thumb.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
    if thumb.mode in ("RGBA", "LA", "P") and (thumb.mode != "P" or "transparency" in thumb.info):
        thumb.save(target, "PNG")
    else:
        thumb.convert("RGB").save(target, "JPEG", quality=85)
    return target
