"""Outputs are written atomically: a temporary file beside the target, then a rename."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path


class OutputError(Exception):
    """An output that cannot be written (its folder cannot be made, no permission, a full disk)."""


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` for a temporary path in the target's folder, then rename it over `path`;
    a failure leaves no partial file behind. An operating system error is an `OutputError`
    naming the file. A symbolic link to a file is written through (the file it names is
    replaced); a device or pipe (`/dev/stdout`, a FIFO) is written to in place, as it cannot be
    replaced by a rename."""
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = 0  # not there (yet), or not reachable: the rename below says why
    if mode and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        try:
            write(path)
        except OSError as exc:
            raise OutputError(f"could not write {path}: {_reason(path, exc)}") from exc
        return
    if stat.S_ISREG(mode) and path.is_symlink():
        path = path.resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"could not write {path}: {_reason(path, exc)}") from exc
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # as an ordinary file would be, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"could not write {path}: {_reason(path, exc)}") from exc
        raise


def _reason(path: Path, exc: OSError) -> str:
    """What went wrong, in words: a file where a folder of the path should be is named."""
    blocking = next((p for p in reversed(path.parents) if p.is_file()), None)
    return f"{blocking} is a file, not a folder" if blocking is not None else exc.strerror or str(exc)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    write_lines_atomic(path, (text.encode(),))


def write_lines_atomic(path: Path, lines: Iterable[bytes]) -> None:
    """UTF-8 text made a piece at a time, written as it comes (the invoices of a run of 50,000
    customers are 330 MB of JSON: joined, they were held twice over before being written)."""

    def write(tmp: Path) -> None:
        with tmp.open("wb") as file:
            file.writelines(lines)

    write_atomic(path, write)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, lambda tmp: tmp.write_bytes(data))
