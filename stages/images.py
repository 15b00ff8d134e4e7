"""Turn any image file into the RGB JPEG bytes that the model pipeline reads.

`clean` writes what `normalize` returns and `predict` feeds it straight to the
model, so a file is prepared the same way for training and for prediction.
"""

import hashlib
import io
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's own decompression-bomb limit (89,478,485 pixels): the default of
# clean.max_pixels and of predict --max-pixels. We check the pixel count
# ourselves, from the header, before decoding.
PILLOW_MAX_PIXELS = Image.MAX_IMAGE_PIXELS
Image.MAX_IMAGE_PIXELS = None

SYSTEM_FILES = {"thumbs.db", "desktop.ini", "ehthumbs.db"}
JPEG_QUALITY = 95
EXIF_ORIENTATION = 0x0112


class BadImage(Exception):
    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def normalize(path, min_side=1, max_pixels=None):
    """Return (jpeg_bytes, digest of the decoded pixels), or raise BadImage.

    The file is decoded fully, so truncated and corrupt files fail here. JPEGs
    that are already plain RGB keep their original bytes (no re-encoding loss);
    everything else is converted to RGB, EXIF-rotated and encoded as JPEG.
    """
    path = Path(path)
    if path.name.startswith(".") or path.name.lower() in SYSTEM_FILES:
        raise BadImage("system_file")
    if path.stat().st_size == 0:
        raise BadImage("empty")
    try:
        image = Image.open(path)  # reads the header only
    except UnidentifiedImageError:
        raise BadImage("not_image") from None
    except Exception as error:  # a header Pillow recognises but cannot parse
        raise BadImage("corrupt", str(error)) from None
    with image:
        pixels = image.width * image.height
        if max_pixels and pixels > max_pixels:
            raise BadImage("too_large", f"{image.width}x{image.height} pixels")
        try:
            image.load()
        except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError...
            raise BadImage("corrupt", str(error)) from None
        keep_bytes = (
            image.format == "JPEG"
            and image.mode == "RGB"
            and image.getexif().get(EXIF_ORIENTATION, 1) == 1
        )
        rgb = to_rgb(ImageOps.exif_transpose(image))
    if min(rgb.size) < min_side:
        raise BadImage("too_small", f"{rgb.width}x{rgb.height}")
    digest = hashlib.sha256(repr(rgb.size).encode() + rgb.tobytes()).hexdigest()
    if keep_bytes:
        return path.read_bytes(), digest
    buffer = io.BytesIO()
    rgb.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), digest


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
