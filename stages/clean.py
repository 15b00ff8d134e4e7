"""Stage `clean`: keep every image that decodes, account for every one that doesn't.

Writes data/clean/images/<class>/ (RGB JPEGs), data/clean/hashes.csv
(path,phash: each kept image's perceptual hash, which `split` groups
near-identical shots by), data/clean/rejected.csv (path,reason,detail: one
row per excluded file) and metrics/clean.json.
"""

import csv
import shutil
from functools import partial

from tqdm.contrib.concurrent import process_map

from classifier import params
from classifier.data.cleaning import REASONS, clean_one, drop_duplicates, name_clashes, recheck
from classifier.data.images import DECODERS
from classifier.errors import run
from classifier.files import write_json
from classifier.paths import CLEAN, CLEAN_IMAGES, CLEAN_REPORT, HASHES, RAW, REJECTED, clean_image, printable


def write_report(results):
    excluded = {reason: 0 for reason in REASONS}
    with open(REJECTED, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "reason", "detail"])
        for source, reason, detail, *_ in results:
            if reason is not None:
                excluded[reason] += 1
                writer.writerow([printable(source), reason, detail])
    report = {
        "total": len(results),
        "kept": sum(reason is None for _, reason, *_ in results),
        "excluded": excluded,
    }
    on_disk = sum(1 for f in CLEAN_IMAGES.rglob("*") if f.is_file())
    if on_disk != report["kept"] or report["total"] != report["kept"] + sum(excluded.values()):
        raise RuntimeError(f"clean: {on_disk} images on disk, the report says {report}")  # a bug, never a user's
    write_json(CLEAN_REPORT, report)
    return report


def write_hashes(results):
    with open(HASHES, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "phash"])
        writer.writerows((clean_image(source), phash) for source, reason, *_, phash in results if reason is None)


def main():
    p = params.load()
    if CLEAN.exists():
        shutil.rmtree(CLEAN)
    CLEAN_IMAGES.mkdir(parents=True)
    sources = sorted(f for f in RAW.rglob("*") if f.is_file())
    clashes = name_clashes(sources)
    work = partial(clean_one, min_side=p.clean.min_side, max_pixels=p.clean.max_pixels, max_bytes=p.clean.max_bytes)
    cleaned = iter(process_map(
        work, [s for s in sources if s not in clashes], max_workers=DECODERS, chunksize=64, desc="clean", unit="img"
    ))
    results = [
        (s, "name_clash", f"its clean name is taken by {printable(clashes[s])}: rename one of them", None, None)
        if s in clashes else next(cleaned)
        for s in sources
    ]
    results = recheck(drop_duplicates(results))
    report = write_report(results)
    write_hashes(results)
    print(f"clean: kept {report['kept']} of {report['total']} images; rejected files in {REJECTED}")


if __name__ == "__main__":
    run(main)
