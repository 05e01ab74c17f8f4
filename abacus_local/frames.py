"""Messages between the local stack and an execution environment's process: JSON documents, each
preceded by its length, over a pipe."""

import json
import os
import struct
from typing import Any

_LENGTH = struct.Struct(">Q")


def write(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    _write_all(fd, _LENGTH.pack(len(data)) + data)


def read(fd: int) -> dict[str, Any] | None:
    """The next message, or None when the other end has closed the pipe."""
    header = _read_exactly(fd, _LENGTH.size)
    if header is None:
        return None
    (length,) = _LENGTH.unpack(header)
    data = _read_exactly(fd, length)
    if data is None:
        return None
    message: dict[str, Any] = json.loads(data)
    return message


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(fd, remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
