"""Stage `split`: a stratified, seeded train/val/test split of the clean images.

Images listed in data/exclude.csv (path,reason: what you agreed with after the
audit) leave every split. Writes data/split/manifest.csv (path,label,split)
and metrics/split.json (images per split, excluded).
"""

from classifier import params
from classifier.data.splitting import check_counts, excluded, list_images, stratified
from classifier.errors import run
from classifier.files import write_json
from classifier.paths import EXCLUDE, MANIFEST, SPLIT_REPORT


def main():
    p = params.load()
    images = list_images()
    dropped = excluded(images)
    images = images[~images.path.isin(dropped)]
    check_counts(images)
    manifest = stratified(images, p.split.val, p.split.test, p.split.seed)
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    manifest.to_csv(MANIFEST, index=False)
    counts = manifest.groupby("split", sort=False).size()
    write_json(SPLIT_REPORT, {"images": len(manifest), "excluded": len(dropped), **{name: int(n) for name, n in counts.items()}})
    print("split: " + ", ".join(f"{name} {n}" for name, n in counts.items()) + f"; {len(dropped)} excluded ({EXCLUDE})")


if __name__ == "__main__":
    run(main)
