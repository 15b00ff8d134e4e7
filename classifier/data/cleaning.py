"""What clean does to each file, and to the set: normalise it (or say why not),
hash it, refuse clean names that would collide, drop identical pictures, and
recheck the kept files with TensorFlow's decoder.
"""

import io
from concurrent.futures import ThreadPoolExecutor

import imagehash
from PIL import Image

from classifier.data.images import DECODERS, BadImage, normalize
from classifier.errors import UserError
from classifier.paths import clean_image, printable, raw_label

# Why a file is excluded: rejected.csv's reasons, metrics/clean.json's keys.
REASONS = (
    "empty",
    "system_file",
    "unreadable",
    "not_image",
    "corrupt",
    "unsupported",
    "too_small",
    "too_large",
    "name_clash",
    "duplicate",
    "conflict",
)


def perceptual_hash(jpeg):
    """imagehash's pHash (64 bits, hex) of a clean JPEG: near-identical shots (re-saved,
    resized, recompressed) differ in a few bits. pHash looks at 32x32 grey pixels,
    so the JPEG is decoded at a reduced scale (Pillow's draft), several times faster."""
    with Image.open(io.BytesIO(jpeg)) as image:
        image.draft("L", (64, 64))
        return str(imagehash.phash(image))


def clean_one(source, min_side, max_pixels, max_bytes):
    """Write one normalised image; return (source, reason, detail, digest, perceptual hash)."""
    try:
        data, digest = normalize(source, min_side, max_pixels, max_bytes)
    except BadImage as bad:
        return source, bad.reason, bad.detail, None, None
    except OSError as error:  # not the file's fault (a failing disk): stop, drop nothing
        raise UserError(f"clean: could not read {printable(source)} ({error}); fix it and rerun") from None
    target = clean_image(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return source, None, "", digest, perceptual_hash(data)


def name_clashes(sources):
    """{source: the earlier source (by path) that already has its clean name}:
    a.png and a.png.jpg would both be a.png.jpg (compared ignoring case, as
    macOS and Windows disks do)."""
    taken, clashes = {}, {}
    for source in sources:
        name = str(clean_image(source)).casefold()
        if name in taken:
            clashes[source] = taken[name]
        else:
            taken[name] = source
    return clashes


def drop_duplicates(results):
    """Identical pictures (same decoded pixels): keep the first by sorted path. A copy
    in another class folder is a `conflict`: one of the two labels is wrong, and the
    audit lists the pair (a wrong label is never kept silently)."""
    first = {}
    for i, (source, reason, _, digest, _) in enumerate(results):
        if reason is not None:
            continue
        if digest in first:
            clean_image(source).unlink()
            kept = first[digest]
            reason = "duplicate" if raw_label(kept) == raw_label(source) else "conflict"
            results[i] = (source, reason, f"same pixels as {printable(kept)}", None, None)
        else:
            first[digest] = source
    return results


def undecodable(paths):
    """{path: why} for kept files that TensorFlow's decoder (the one training uses)
    rejects as bad data. Any other error (I/O, memory) stops the stage."""
    import tensorflow as tf

    from classifier.data.inputs import decode

    def refused(path):
        try:
            decode(tf.io.read_file(path), 8)
        except tf.errors.InvalidArgumentError as error:
            return path, error.message
        except tf.errors.OpError as error:
            raise UserError(f"clean: TensorFlow could not read {path} ({error.message}); fix it and rerun") from None
        return None

    with ThreadPoolExecutor(DECODERS) as pool:  # eager ops release the GIL
        return dict(found for found in pool.map(refused, paths) if found)


def recheck(results):
    kept = [str(clean_image(s)) for s, reason, *_ in results if reason is None]
    failed = undecodable(kept) if kept else {}
    for i, (source, reason, *_) in enumerate(results):
        why = failed.get(str(clean_image(source))) if reason is None else None
        if why is not None:
            clean_image(source).unlink()
            results[i] = (source, "corrupt", f"rejected by the TensorFlow JPEG decoder: {why}", None, None)
    return results
