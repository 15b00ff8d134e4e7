"""Download a file reliably and unpack an archive safely.

`get_file` streams to `<file>.part` with a progress bar, resumes it with an
HTTP Range request, retries transient errors, verifies size and SHA-256, and
only then renames it: a half file is never taken for a whole one.
"""

import hashlib
import os
import stat
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import requests
import urllib3
from tqdm import tqdm

from classifier.errors import UserError

CHUNK = 1 << 20
RETRIES = 4
TIMEOUT = 30  # seconds without a byte before a try counts as failed
MAX_RATIO = 100  # uncompressed / compressed: beyond this an archive is a bomb
MAX_MEMBERS = 500_000  # PetImages has 25,002


class Transient(Exception):
    """A failure worth retrying: the connection broke or the server had a moment."""


def get_file(url, target, size=None, sha256=None):
    target = Path(target)
    if target.exists() and not mismatch(target, size, sha256):
        print(f"download: using {target} (already downloaded and verified)")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for attempt in range(RETRIES + 1):
        try:
            fetch_into(url, part)
            break
        except Transient as error:
            if attempt == RETRIES:
                raise UserError(
                    f"could not download {url} after {RETRIES + 1} tries ({error}). "
                    f"No network? Fetch the images yourself and use data.source: local. "
                    f"Rerunning resumes from {part}"
                ) from None
            wait = 2**attempt
            print(f"download: {error}; retrying in {wait}s")
            time.sleep(wait)
    problem = mismatch(part, size, sha256)
    if problem:
        part.unlink()
        raise UserError(f"{url}: {problem}; the download was deleted, rerun to fetch it again")
    os.replace(part, target)
    return target


def fetch_into(url, part):
    """Append the rest of url to part (all of it if the server ignores Range)."""
    have = part.stat().st_size if part.exists() else 0
    # identity: byte offsets must be the file's own, not a compressed stream's.
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        with requests.get(url, headers=headers, stream=True, timeout=TIMEOUT) as response:
            if response.status_code == 416:  # nothing left to fetch
                return
            if response.status_code >= 500 or response.status_code in (408, 429):
                raise Transient(f"HTTP {response.status_code}")
            if response.status_code >= 400:
                raise UserError(f"{url}: HTTP {response.status_code} {response.reason}")
            if response.status_code != 206:
                have = 0  # a full response: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length else None
            name = PurePosixPath(urlsplit(url).path).name
            with open(part, "ab" if have else "wb") as out, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=name
            ) as bar:
                # read1 returns bytes as they arrive, so a broken transfer
                # keeps everything received before the break.
                while chunk := response.raw.read1(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
    except requests.ConnectionError as error:
        raise Transient(f"connection failed: {error}") from None
    except (requests.Timeout, urllib3.exceptions.HTTPError) as error:
        raise Transient(f"transfer interrupted: {error}") from None
    if total and part.stat().st_size < total:
        raise Transient(f"transfer interrupted at {part.stat().st_size} of {total} bytes")


def mismatch(path, size, sha256):
    """What is wrong with a downloaded file, or None."""
    actual = path.stat().st_size
    if size is not None and actual != size:
        return f"size is {actual} bytes, expected {size}"
    if sha256 is not None:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                digest.update(block)
        if digest.hexdigest() != sha256:
            return f"SHA-256 is {digest.hexdigest()}, expected {sha256}"
    return None


def unsafe_member(info):
    name = PurePosixPath(info.filename)
    if not name.parts or name.parts == (".",):
        return "an empty name"
    if name.is_absolute() or info.filename.startswith("\\") or ":" in name.parts[0]:
        return "an absolute path"
    if ".." in name.parts:
        return "a path that leaves the folder"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link"
    return None


def unpacked_size(archive):
    """Bytes the archive's members say they hold."""
    with zipfile.ZipFile(archive) as zipped:
        return sum(info.file_size for info in zipped.infolist())


def unzip(archive, folder, limit=None):
    """Unpack a zip into folder, refusing anything that could land outside it,
    overwrite another member, or unpack to more than `limit` bytes (by default
    MAX_RATIO x the archive's size; an archive inside an archive gets what its
    parent left of the parent's limit)."""
    archive, folder = Path(archive), Path(folder)
    limit = MAX_RATIO * max(archive.stat().st_size, 1) if limit is None else limit
    try:
        zipped = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise UserError(f"{archive} is not a zip archive: delete it and rerun") from None
    with zipped:
        members = zipped.infolist()
        if len(members) > MAX_MEMBERS:
            raise UserError(f"{archive} has {len(members)} members, over {MAX_MEMBERS}: refusing it")
        seen = set()
        for info in members:
            problem = unsafe_member(info)
            if problem is None and PurePosixPath(info.filename) in seen:
                problem = "a second member of the same name"
            if problem:
                raise UserError(f"{archive}: refusing member {info.filename!r}, {problem}")
            seen.add(PurePosixPath(info.filename))
        unpacked = sum(info.file_size for info in members)
        if unpacked > limit:
            raise UserError(f"{archive} would unpack to {unpacked} bytes, over its limit of {limit}: refusing it")
        for info in tqdm(members, desc=f"unzip {archive.name}", unit="file"):
            try:
                zipped.extract(info, folder)  # writes no more than the size the member states
            except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                raise UserError(f"{archive}: member {info.filename!r} is damaged ({error}): delete the archive and rerun") from None
    return folder
