"""Reading text recordings: plain or gzip files, or stdin, a line at a time."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterable, Iterator
from typing import IO


def open_bytes(path: str) -> IO[bytes]:
    """A recording opened for reading bytes: ``-`` is stdin, a gzip file (by its magic
    bytes, whatever its name) is decompressed."""
    if path == "-":
        return sys.stdin.buffer
    f = open(path, "rb")  # noqa: SIM115
    if f.read(2) == b"\x1f\x8b":
        f.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    f.seek(0)
    return f


def iter_file_lines(path: str) -> Iterator[str]:
    """Lines of a text file, gzip file (by magic bytes) or ``-`` (stdin), decoded as Latin-1."""
    f = open_bytes(path)
    try:
        for raw in f:
            yield raw.rstrip(b"\r\n").decode("latin-1")
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def chunks(it: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for x in it:
        chunk.append(x)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
