"""Where the images come from: each source fills a folder with one sub-folder per
class, or with split folders of them (classifier/data/folders.py).

Downloads are kept in data/downloads/ (not a DVC output), so rerunning
`download` with other params does not fetch them again.
"""

import re
from pathlib import Path

from tqdm import tqdm

from classifier.data.fetch import MAX_RATIO, get_file, unpacked_size, unzip
from classifier.errors import UserError

DOWNLOADS = Path("data/downloads")

# Microsoft's public copy of the Kaggle Dogs vs. Cats images (no account needed).
PETIMAGES_URL = (
    "https://download.microsoft.com/download/3/E/1/"
    "3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip"
)
PETIMAGES_SIZE = 824_887_076  # bytes; no SHA-256 is published for this archive

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

KAGGLE_NAME = re.compile(r"^(cat|dog)\.\d+\.jpg$")


def petimages(data, work):
    """PetImages/Cat and PetImages/Dog from Microsoft's zip, as cat/ and dog/."""
    url = data.url or PETIMAGES_URL
    size = PETIMAGES_SIZE if url == PETIMAGES_URL else None  # a mirror may differ
    archive = get_file(url, DOWNLOADS / Path(url).name, size=size)
    unzip(archive, work / "unzipped")
    classes = work / "classes"
    classes.mkdir()
    for folder in sorted((work / "unzipped/PetImages").iterdir()):
        if folder.is_dir():
            folder.rename(classes / folder.name.lower())
    return classes


def kaggle(data, work):
    """The dogs-vs-cats competition's train set; labels come from the file names."""
    try:
        import kaggle as client  # authenticates on import
    except OSError:
        raise UserError(
            "data.source: kaggle needs Kaggle API credentials: save kaggle.json (kaggle.com > "
            "Settings > API > Create New Token) as ~/.kaggle/kaggle.json, or set "
            "KAGGLE_USERNAME and KAGGLE_KEY; then accept the rules of the dogs-vs-cats "
            "competition on its page. data.source: petimages needs no account"
        ) from None
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    try:
        client.api.competition_download_files("dogs-vs-cats", path=str(DOWNLOADS), quiet=False)
    except Exception as error:
        raise UserError(
            f"Kaggle download failed ({error}). Have you accepted the dogs-vs-cats rules? "
            "No network? Use data.source: local"
        ) from None
    outer = DOWNLOADS / "dogs-vs-cats.zip"
    unzip(outer, work / "outer")
    # The inner zip may unpack to what the outer one's limit has left, not 100x again.
    unzip(work / "outer/train.zip", work / "inner", MAX_RATIO * outer.stat().st_size - unpacked_size(outer))
    return label_by_name(work / "inner", work / "classes")


def label_by_name(folder, classes):
    """cat.12.jpg -> classes/cat/cat.12.jpg; other files are listed, not lost silently."""
    others = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        match = KAGGLE_NAME.match(path.name)
        if match:
            target = classes / match.group(1) / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)
        else:
            others.append(path.name)
    if others:
        print(f"download: {len(others)} file(s) not named cat.N.jpg / dog.N.jpg left out: {others[:5]}")
    return classes


def cifar10(data, work):
    """CIFAR-10 through keras.datasets, as train/ and test/ folders: its official
    10,000-image test set stays the test split."""
    import keras

    try:
        train, test = keras.datasets.cifar10.load_data()
    except Exception as error:
        raise UserError(
            f"could not get CIFAR-10 ({error}). No network? Keras looks for "
            "cifar-10-batches-py in $KERAS_HOME/datasets/; or use data.source: local"
        ) from None
    return write_cifar10(train, test, work / "classes")


def write_cifar10(train, test, classes):
    """Arrays shaped like keras.datasets.cifar10.load_data()'s -> PNGs in
    classes/train/<class>/ and classes/test/<class>/."""
    from PIL import Image

    for part, (images, labels) in (("train", train), ("test", test)):
        for i, (image, label) in enumerate(
            tqdm(zip(images, labels.reshape(-1)), total=len(images), desc=f"cifar10 {part}")
        ):
            folder = classes / part / CIFAR10_CLASSES[int(label)]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{part}_{i:05d}.png")
    return classes


SOURCES = {"petimages": petimages, "kaggle": kaggle, "cifar10": cifar10}


def prepare(data, work):
    """Fill `work` from a network source; return its folder of class folders."""
    folder = SOURCES[data.source](data, Path(work))
    if not any(folder.iterdir()):
        raise UserError(f"data.source: {data.source} produced no images")
    return folder
