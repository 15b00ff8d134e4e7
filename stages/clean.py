"""Stage `clean`: keep every image that decodes, account for every one that doesn't.

Writes data/clean/images/<class>/ (RGB JPEGs), data/clean/rejected.csv
(path,reason,detail: one row per excluded file) and metrics/clean.json.
"""

import csv
import os
import shutil
from functools import partial
from pathlib import Path

from tqdm.contrib.concurrent import process_map

from stages import params
from stages.errors import run
from stages.images import BadImage, normalize
from stages.paths import CLEAN, CLEAN_IMAGES, CLEAN_REPORT, RAW, REJECTED, clean_image, raw_label, write_json

REASONS = (
    "empty",
    "system_file",
    "not_image",
    "corrupt",
    "too_small",
    "too_large",
    "duplicate",
    "conflict",
)


def clean_one(source, min_side, max_pixels):
    """Write one normalised image; return (source, reason, detail, digest)."""
    try:
        data, digest = normalize(source, min_side, max_pixels)
    except BadImage as bad:
        return str(source), bad.reason, bad.detail, None
    target = clean_image(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return str(source), None, "", digest


def drop_duplicates(results):
    """Identical pictures (same decoded pixels): keep the first by sorted path. A copy
    in another class folder is a `conflict`: one of the two labels is wrong, and the
    audit lists the pair (a wrong label is never kept silently)."""
    first = {}
    for i, (source, reason, _, digest) in enumerate(results):
        if reason is not None:
            continue
        if digest in first:
            clean_image(Path(source)).unlink()
            kept = first[digest]
            reason = "duplicate" if raw_label(kept) == raw_label(source) else "conflict"
            results[i] = (source, reason, f"same pixels as {kept}", None)
        else:
            first[digest] = source
    return results


def undecodable(paths):
    """Kept files that TensorFlow's decoder (the one training uses) still rejects."""
    import tensorflow as tf

    from stages.inputs import OPTIONS, decode

    data = tf.data.Dataset.from_tensor_slices(paths)
    data = data.map(
        lambda p: (p, tf.shape(decode(tf.io.read_file(p), 8))[0]),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).ignore_errors().with_options(OPTIONS)
    decoded = {p.decode() for p, _ in data.as_numpy_iterator()}
    return set(paths) - decoded


def recheck(results):
    kept = [str(clean_image(Path(s))) for s, reason, _, _ in results if reason is None]
    failed = undecodable(kept) if kept else set()
    for i, (source, reason, _, _) in enumerate(results):
        if reason is None and str(clean_image(Path(source))) in failed:
            clean_image(Path(source)).unlink()
            results[i] = (source, "corrupt", "rejected by the TensorFlow JPEG decoder", None)
    return results


def write_report(results):
    excluded = {reason: 0 for reason in REASONS}
    with open(REJECTED, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "reason", "detail"])
        for source, reason, detail, _ in results:
            if reason is not None:
                excluded[reason] += 1
                writer.writerow([source, reason, detail])
    report = {
        "total": len(results),
        "kept": sum(reason is None for _, reason, _, _ in results),
        "excluded": excluded,
    }
    assert report["total"] == report["kept"] + sum(excluded.values())
    write_json(CLEAN_REPORT, report)
    return report


def main():
    p = params.load()
    if CLEAN.exists():
        shutil.rmtree(CLEAN)
    CLEAN_IMAGES.mkdir(parents=True)
    sources = sorted(f for f in RAW.rglob("*") if f.is_file())
    work = partial(clean_one, min_side=p.clean.min_side, max_pixels=p.clean.max_pixels)
    results = process_map(
        work, sources, max_workers=os.cpu_count(), chunksize=64, desc="clean", unit="img"
    )
    report = write_report(recheck(drop_duplicates(results)))
    print(f"clean: kept {report['kept']} of {report['total']} images; rejected files in {REJECTED}")


if __name__ == "__main__":
    run(main)
