"""Turn any image file into the RGB JPEG bytes that the model pipeline reads.

`clean` writes what `normalize` returns and `predict` feeds it straight to the
model, so a file is prepared the same way for training and for prediction.

Files are untrusted. Reading is bounded (max_bytes), the pixel count of every
image in the file, nested ones included (an ICO holding a PNG), is checked
from its header before it is decoded (max_pixels), and anything that goes
wrong while decoding one file is that file's BadImage, never an exception
that stops the caller. A file that cannot be read for lack of permission is
`unreadable`; other I/O errors (a failing disk) are OSErrors for the caller.
"""

import hashlib
import io
import os
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's own decompression-bomb limit (89,478,485 pixels): the default of
# clean.max_pixels and of predict --max-pixels. Outside `pixel_limit`, Pillow
# checks nothing: the pipeline's own images (clean ones) were checked here.
PILLOW_MAX_PIXELS = Image.MAX_IMAGE_PIXELS
Image.MAX_IMAGE_PIXELS = None
# The default of clean.max_bytes: above any everyday photo (a 50-megapixel
# JPEG is about 30 MB), below what a padded file could make every reader hold.
MAX_BYTES = 100_000_000
# Pillow raises DecompressionBombError above 2 x MAX_IMAGE_PIXELS (set by
# pixel_limit) and only warns between 1x and 2x: the error is the check.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)
# Pillow reads its limit from a global: opens under pixel_limit take turns.
PILLOW_LIMIT = threading.Lock()

# Images decoded at once (predict's threads, clean's processes): each may hold
# max_bytes of file and about 16 bytes per pixel while decoding (14 measured),
# so memory is bounded on a machine of any core count (docs/untrusted-input.md).
DECODERS = min(os.cpu_count() or 1, 4)

SYSTEM_FILES = {"thumbs.db", "desktop.ini", "ehthumbs.db"}
JPEG_QUALITY = 95
EXIF_ORIENTATION = 0x0112
# A JPEG kept byte for byte may carry this much beyond its pixels (EXIF, ICC
# profile, thumbnail); a larger file has trailing data and is re-encoded.
METADATA_BYTES = 1 << 20
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


class BadImage(Exception):
    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def normalize(path, min_side=1, max_pixels=PILLOW_MAX_PIXELS, max_bytes=MAX_BYTES):
    """Return (jpeg_bytes, digest of the decoded pixels), or raise BadImage.

    The file is decoded fully, so truncated and corrupt files fail here. JPEGs
    that are already plain RGB keep their original bytes (no re-encoding loss);
    everything else is converted to RGB, EXIF-rotated and encoded as JPEG.
    """
    path = Path(path)
    if path.name.startswith(".") or path.name.lower() in SYSTEM_FILES:
        raise BadImage("system_file")
    data = read(path, max_bytes)
    try:
        return convert(data, min_side, max_pixels)
    except (BadImage, MemoryError):
        raise
    except Image.DecompressionBombError:
        raise BadImage("too_large", f"an image in the file has more than {max_pixels} pixels") from None
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, struct.error...
        raise BadImage("corrupt", f"{type(error).__name__}: {error}") from None


def read(path, max_bytes):
    """The file's bytes, reading no more than max_bytes + 1 of them."""
    try:
        with open(path, "rb") as file:
            data = file.read(max_bytes + 1)
    except PermissionError as error:
        raise BadImage("unreadable", error.strerror) from None
    if not data:
        raise BadImage("empty")
    if len(data) > max_bytes:
        raise BadImage("too_large", f"more than {max_bytes} bytes (clean.max_bytes)")
    return data


@contextmanager
def pixel_limit(max_pixels):
    """Make Pillow refuse, in `open`, any image over max_pixels, also the images
    that some formats decode while opening (ICO's embedded PNG)."""
    with PILLOW_LIMIT:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, (max_pixels + 1) // 2
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def convert(data, min_side, max_pixels):
    try:
        with pixel_limit(max_pixels):
            image = Image.open(io.BytesIO(data))  # reads the header only (ICO: and its image)
    except UnidentifiedImageError:
        raise BadImage("not_image") from None
    with image:
        if image.width * image.height > max_pixels:
            raise BadImage("too_large", f"{image.width}x{image.height} pixels")
        image.load()
        keep_bytes = (
            image.format == "JPEG"
            and image.mode == "RGB"
            and image.getexif().get(EXIF_ORIENTATION, 1) == 1
            and len(data) <= 3 * image.width * image.height + METADATA_BYTES
        )
        rgb = to_rgb(to_8bit(ImageOps.exif_transpose(image)))
    if min(rgb.size) < min_side:
        raise BadImage("too_small", f"{rgb.width}x{rgb.height}")
    digest = hashlib.sha256(repr(rgb.size).encode() + rgb.tobytes()).hexdigest()
    if keep_bytes:
        return data, digest
    buffer = io.BytesIO()
    rgb.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), digest


def to_8bit(image):
    """8-bit grey for images of more bits per pixel, scaled by their real range
    (Pillow's convert would clip them): 16-bit by 1/257, 32-bit integers when
    they hold 16-bit values, floats when they are in [0, 1]; others are refused."""
    if image.mode not in (*SIXTEEN_BIT, "I", "F"):
        return image
    values = np.asarray(image).astype("float64")
    if image.mode == "F":
        if not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1):
            raise BadImage("unsupported", "32-bit float pixels outside [0, 1]")
        values = values * 255
    else:
        if values.min() < 0 or values.max() > 65535:
            raise BadImage("unsupported", "32-bit integer pixels beyond the 16-bit range")
        values = values / 257
    return Image.fromarray(np.round(values).astype("uint8"), "L")


def to_rgb(image):
    """RGB on a white background for images with transparency."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")
