"""Fetching a bundle over HTTP(S): resumable, capped, with progress.

A partial download is kept as ``<downloads>/<key>.part`` with the server's validator (ETag or
Last-Modified) beside it; the next attempt asks for the rest with ``Range`` + ``If-Range``, so a
changed file on the server starts afresh instead of being stitched to the old one. The declared size
and the bytes received are both held to ``cap``: a server cannot send endless data. Nothing fetched
is trusted: the bundle is verified like any local file afterwards.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Optional, Tuple

from .errors import BundleRejected, DownloadFailed

log = logging.getLogger(__name__)

CHUNK = 1 << 16
TIMEOUT_S = 30.0
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _paths(url: str, folder: Path) -> Tuple[Path, Path, Path]:
    key = hashlib.sha256(url.encode()).hexdigest()[:20]
    return folder / f"{key}.part", folder / f"{key}.part.json", folder / f"{key}.bundle"


def _validator(headers) -> Optional[str]:
    return headers.get("ETag") or headers.get("Last-Modified")


def _open(url: str, have: int, validator: Optional[str]):
    request = urllib.request.Request(url, headers={"User-Agent": "talkerd-ota"})
    if have and validator:
        request.add_header("Range", f"bytes={have}-")
        request.add_header("If-Range", validator)
    return urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310 (http/https only, checked by is_url)


def _total(response, have: int, cap: int) -> Tuple[int, int]:
    """(offset the body starts at, total size) from a 200 or 206 reply; checks the cap."""
    if response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != have:
            raise DownloadFailed(f"the server answered a resume with a wrong range: {response.headers.get('Content-Range')!r}")
        total = int(match.group(3)) if match.group(3) != "*" else -1
        start = have
    else:
        length = response.headers.get("Content-Length")
        total, start = (int(length) if length and length.isdigit() else -1), 0
    if total > cap:
        raise BundleRejected(f"the server offers {total} bytes, over the cap of {cap} (max_bundle_mb)", code="too_large")
    return start, total


def fetch(url: str, folder: Path, *, cap: int, retries: int = 3,
          progress: Callable[[str], None] = lambda line: None) -> Path:
    """Download ``url`` into ``folder``; returns the finished file. ``DownloadFailed`` after
    ``retries`` resumes (the partial file stays for the next run); ``BundleRejected`` over the cap."""
    folder.mkdir(parents=True, exist_ok=True)
    part, meta, final = _paths(url, folder)
    attempt = 0
    while True:
        try:
            _fetch_once(url, part, meta, cap, progress)
            break
        except (OSError, http.client.HTTPException, DownloadFailed) as exc:
            why = exc.message if isinstance(exc, DownloadFailed) else f"{type(exc).__name__}: {exc}"
            attempt += 1
            if attempt > retries:
                raise DownloadFailed(f"download of {url} failed: {why}; {part.stat().st_size if part.exists() else 0} "
                                     "bytes kept, the next run resumes") from None
            log.warning("download interrupted (%s); resuming (%d of %d)", why, attempt, retries)
            progress(f"download interrupted ({why}); resuming")
            time.sleep(min(2.0 ** attempt * 0.1, 5.0))
    os.replace(part, final)
    meta.unlink(missing_ok=True)
    return final


def _fetch_once(url: str, part: Path, meta: Path, cap: int, progress: Callable[[str], None]) -> None:
    have = part.stat().st_size if part.exists() else 0
    validator = json.loads(meta.read_text()).get("validator") if have and meta.exists() else None
    try:
        response = _open(url, have, validator)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # asked for bytes past the end: the part is stale
            part.unlink()
            raise DownloadFailed("the server has a shorter file than the partial download; starting afresh") from None
        raise DownloadFailed(f"the server answered {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadFailed(f"cannot reach the server: {exc.reason}") from None
    with response:
        start, total = _total(response, have, cap)
        meta.write_text(json.dumps({"url": url, "validator": _validator(response.headers)}))
        received, shown = start, 0.0
        with part.open("r+b" if start and part.exists() else "wb") as handle:
            handle.seek(start)
            handle.truncate()
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                received += len(block)
                if received > cap:
                    raise BundleRejected(f"the download passed the cap of {cap} bytes (max_bundle_mb)", code="too_large")
                handle.write(block)
                if time.monotonic() - shown >= 1.0:
                    shown = time.monotonic()
                    progress(f"downloaded {received / 2**20:.1f} of "
                             f"{total / 2**20:.1f} MiB" if total >= 0 else f"downloaded {received / 2**20:.1f} MiB")
            handle.flush()
            os.fsync(handle.fileno())
        if total >= 0 and received != total:
            raise DownloadFailed(f"the connection closed after {received} of {total} bytes")
    progress(f"downloaded {received / 2**20:.1f} MiB")
