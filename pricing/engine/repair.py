"""Text files that Polars' readers cannot read whole, found after a run fails or falls short
(`unread_found`) and marked for the runs after it: an NDJSON file patched (`Patch`: the reader
reads a copy, the lines it may not read set aside and read one by one), a CSV file ragged
(`Ragged`: rows with a surplus cell cut short), or else read line by line or record by record.
A file is not checked before its run: reading it once more cost a fifth of metering it."""

from __future__ import annotations

import codecs
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pricing.engine.sources import (
    READ_ERRORS,
    EventFile,
    chunks,
    file_stamp,
    line_count,
    line_fault,
    ndjson_schema,
    numbered,
    scan_csv,
    scan_lines,
    scan_ndjson,
    utf8,
)

# Text files that Polars' readers cannot read whole, path → `file_stamp`: so a changed file is
# looked at again. They are read line by line (NDJSON) or record by record (CSV) instead.
_UNREAD: dict[Path, tuple[int, int]] = {}


@dataclass(frozen=True, slots=True)
class Patch:
    """An NDJSON file that Polars' reader reads but for some lines, which are read one by one:
    the lines it skips (blank) or may not read (`_suspect`), set `aside` in a Parquet file with
    their numbers (`_row`); `rows`, those numbers. The reader reads `copy`, the file with an
    empty object in place of each (so that each of its rows is the file's line: those rows are
    left out). `in_place`: some of those lines may be events, which must keep their place among
    the reader's rows (the first of a transaction id's rows in input order is the one that
    counts); the others claim no transaction id. `recoded`: the file is not all UTF-8, the copy
    has U+FFFD for its other bytes."""

    stamp: tuple[int, int]
    rows: pl.Series
    aside: Path
    copy: Path
    in_place: bool
    recoded: bool

    def discard(self) -> None:
        """Remove the files made for the patch."""
        for made in (self.aside, self.copy):
            made.unlink(missing_ok=True)


# NDJSON files read so, path → their `Patch` (a changed file is looked at again)
_PATCHED: dict[Path, Patch] = {}


@dataclass(frozen=True, slots=True)
class Ragged:
    """A CSV file whose only records that Polars' reader cannot read have more cells than its
    header (`rows`, their numbers): it reads the file with those cut short, and each is an
    invalid row with its reason (`reasons`)."""

    stamp: tuple[int, int]
    rows: pl.Series
    reasons: pl.Series


# CSV files read so, path → their `Ragged`
_RAGGED: dict[Path, Ragged] = {}


# the folder of the files made for patches, made with the first one, removed when the process ends
_MADE: list[tempfile.TemporaryDirectory[str]] = []


def unread(file: EventFile) -> bool:
    stamp = _UNREAD.get(file.path)  # (a file not marked is not looked at: 5,000 files, 15,000 stats)
    return stamp is not None and stamp == file_stamp(file.path)


def patch_of(file: EventFile) -> Patch | None:
    patch = _PATCHED.get(file.path)
    return patch if patch is not None and patch.stamp == file_stamp(file.path) else None


def ragged_of(file: EventFile) -> Ragged | None:
    ragged = _RAGGED.get(file.path)
    return ragged if ragged is not None and ragged.stamp == file_stamp(file.path) else None


def _surplus(path: Path) -> Ragged | None:
    """The records of a CSV file with more cells than its header (`Ragged`), if each of its
    lines is one record (none has an odd number of quotes: a quoted value spans lines) and some
    are; None otherwise. Cells are counted by their commas, those in quoted values left out (in
    a UTF-8 copy of a file that is not all UTF-8: Polars' line reader refuses it)."""
    line = pl.col("line")
    cells = line.str.replace_all(r'"(?:[^"]|"")*"', "").str.count_matches(",", literal=True) + 1
    with _in_utf8(path) as text:
        lines = scan_lines(text).select(
            cells.alias("cells"), (line.str.count_matches('"', literal=True) % 2 == 1).alias("_open")
        )
        header = lines.head(1).collect().get_column("cells")
        width = int(header.item()) if len(header) else 0
        found = numbered(lines).filter(pl.col("_open") | (pl.col("cells") > width)).collect()
    if not width or found.is_empty() or found.get_column("_open").any():
        return None
    rows = (found.get_column("_row").cast(pl.UInt64) - 1).alias("_row")  # (the header is line 1)
    reasons = found.select(pl.format("{} cells where the header has " + str(width), "cells")).to_series()
    return Ragged(file_stamp(path), rows, reasons)


def _suspect(line: pl.Expr) -> pl.Expr:
    """Whether Polars' NDJSON reader may not read a line, or skips it, by checks cheaper than its
    own: blank; not starting with "{" (not an object); no transaction id that JSONPath finds (it
    finds none in malformed JSON); a `properties` member that is neither an object nor null —
    the first one, found by a pattern. A line the pattern misleads (an object's own `properties`
    before it) makes the copy fail to read as well: the file is then read line by line."""
    properties = line.str.extract(r'"properties"\s*:\s*(\S)', 1)
    return (
        (line.str.strip_chars() == "")
        | ~line.str.starts_with("{")
        | line.str.json_path_match("$.transaction_id").is_null()
        | (properties.is_not_null() & ~properties.is_in(["{", "n"]))
    )


def _made(suffix: str) -> Path:
    """A new file in a folder removed when the process ends."""
    if not _MADE:
        _MADE.append(tempfile.TemporaryDirectory(prefix="pricing-"))
    handle, name = tempfile.mkstemp(suffix=suffix, dir=_MADE[0].name)
    os.close(handle)
    return Path(name)


def _set_aside(path: Path, found: pl.Expr) -> tuple[Path, Path]:
    """The lines of a text file where `found` holds (of `line`), with their numbers (`_row`),
    into a Parquet file; and a copy of the file (decompressed) with an empty object in place of
    each of them: from one read of it."""
    aside, copy = _made(".parquet"), _made(".jsonl")
    lines = numbered(scan_lines(path)).with_columns(found.alias("_found"))
    kept = pl.when("_found").then(pl.lit("{}")).otherwise("line")
    try:
        pl.collect_all(
            [
                lines.filter("_found").select("_row", "line").sink_parquet(aside, lazy=True),
                lines.select(kept).sink_csv(copy, include_header=False, quote_style="never", lazy=True),
            ]
        )
    except READ_ERRORS:
        aside.unlink()
        copy.unlink()
        raise
    return aside, copy


@contextmanager
def _in_utf8(path: Path) -> Iterator[Path]:
    """A text file as UTF-8 text, for Polars' line reader, which refuses any other: the file
    itself, or a copy of it (decompressed, removed after use) with its bytes that are not UTF-8
    as U+FFFD, as they read line by line (`sources.lossy_lines`)."""
    if utf8(path):
        yield path
        return
    copy = _made(".jsonl")
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        with copy.open("w", encoding="utf-8", newline="") as text:
            for chunk in chunks(path):
                text.write(decoder.decode(chunk))
            text.write(decoder.decode(b"", final=True))
        yield copy
    finally:
        copy.unlink()


def _patched(file: EventFile, rows: int | None, lines: int) -> Patch | None:
    """The patch of an NDJSON file that the reader read `rows` rows of, short of its `lines`
    (each line it skipped is blank, or the file is read line by line), or failed to read (None:
    its suspect lines, found in a UTF-8 copy of a file that is not all UTF-8; if none, the copy
    is the patch); None if the file cannot be read so (no room for the copies)."""
    stamp, line = file_stamp(file.path), pl.col("line")
    try:
        if rows is not None:  # (the reader read it: it is all UTF-8)
            recoded = False
            aside, copy = _set_aside(file.path, line.str.strip_chars() == "")
        else:
            with _in_utf8(file.path) as text:
                recoded = text != file.path
                aside, copy = _set_aside(text, _suspect(line))
    except READ_ERRORS:
        return None
    kept = pl.read_parquet(aside).select(
        pl.col("_row").cast(pl.UInt64), line_fault(line).is_null().alias("_event")
    )
    events = bool(kept.get_column("_event").any())
    patch = Patch(stamp, kept.get_column("_row"), aside, copy, events, recoded)
    if (recoded or not kept.is_empty()) if rows is None else rows + kept.height == lines:
        return patch
    patch.discard()
    return None


def _reader_rows(path: Path, form: str, ragged: bool = False) -> int | None:
    """The rows Polars' reader reads from a text file, None if it cannot read it (NDJSON: a broken
    line, a line that is not an object, a `properties` that is not one; CSV: a row with more
    cells than the header, unless `ragged`, broken quoting)."""
    if form == "csv":
        check = scan_csv([path], ragged=ragged).select(pl.len().alias("rows"), pl.all().null_count())
    else:
        schema = {**ndjson_schema(()), "properties": pl.Struct({})}
        check = scan_ndjson([path], schema).select(pl.len().alias("rows"), pl.all().null_count())
    try:
        return int(check.collect().get_column("rows").item())
    except READ_ERRORS:
        return None


def _mark(file: EventFile, rows: int | None) -> bool:
    """Mark a text file that the reader read `rows` rows of (None: it failed), unless those are
    all its rows; whether it was marked. An NDJSON file is patched (`_patched`) if it can be and
    is not already: a stray blank line, or one broken line, cost a run line by line (1M events,
    18 s and 17 s against 2 s). Otherwise it is read line by line; a CSV file, `_mark_csv`."""
    if file.format == "csv":
        return _mark_csv(file, rows)
    lines = 0 if rows is None else line_count(file.path)
    if rows == lines:
        return False
    patch = _patched(file, rows, lines) if patch_of(file) is None else None
    old = _PATCHED.pop(file.path, None)
    if old is not None:
        old.discard()
    if patch is not None:
        _PATCHED[file.path] = patch
    else:
        _UNREAD[file.path] = file_stamp(file.path)
    return True


def _mark_csv(file: EventFile, rows: int | None) -> bool:
    """Mark a CSV file that the reader failed to read (`rows` None): with its records that have
    more cells than its header (`_surplus`), else to be read record by record, as a file so
    marked whose `rows` fall short of its records (its lines but the header) is; whether it was
    marked. (One such record cost a run record by record: 1M events, 7.4–8.3 s against 0.75 s.)"""
    ragged = ragged_of(file)
    if rows is not None and (ragged is None or rows == line_count(file.path) - 1):
        return False
    try:
        found = _surplus(file.path) if rows is None and ragged is None else None
    except READ_ERRORS:  # (no room for a UTF-8 copy)
        found = None
    _RAGGED.pop(file.path, None)
    if found is None:
        _UNREAD[file.path] = file_stamp(file.path)
    else:
        _RAGGED[file.path] = found
    return True


def _failed(file: EventFile) -> bool:
    """After a run failed: mark a text file if Polars' reader cannot read it whole, or a patched
    file whose copy it cannot read, or a ragged one it cannot read so; whether it was marked."""
    patch, ragged = patch_of(file), ragged_of(file)
    if patch is None and ragged is None:
        return _mark(file, _reader_rows(file.path, file.format))
    if _reader_rows(file.path if patch is None else patch.copy, file.format, ragged is not None) is not None:
        return False
    return _mark(file, None)


def unread_found(files: Sequence[EventFile], rows: Mapping[int, int] | None = None) -> bool:
    """Mark the text files that Polars' readers cannot read whole (`_mark`); whether any was
    found. After a failed read (`rows` None) each text file not yet marked is read to find out
    (`_failed`); after a read that succeeded, an NDJSON file that gave fewer rows (`rows`: file
    index → rows read) than it has lines (the reader skips blank lines) is marked, as a ragged CSV
    file that gave fewer rows than it has records (`_mark_csv`). A file is not checked before
    its run: reading it once more cost a fifth of metering it (a fifth of 2.4 s for 1M NDJSON
    events)."""
    text = [f for f in files if f.format != "parquet" and not unread(f)]
    if rows is None:
        marked = [_failed(f) for f in text]
    else:
        marked = [_mark(f, rows.get(f.index, 0)) for f in text if f.format == "ndjson" or ragged_of(f)]
    return any(marked)
