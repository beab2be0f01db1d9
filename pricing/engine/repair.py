"""Text files that Polars' readers cannot read whole, found after a run fails or falls short
(`unread_found`) and marked for the runs after it: patched (`Patch`: the reader reads a copy,
the lines it may not read set aside and read one by one), or else read line by line (NDJSON) or
record by record (CSV). A file is not checked before its run: reading it once more cost a fifth
of metering it."""

from __future__ import annotations

import codecs
import csv
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pricing.engine.sources import (
    READ_ERRORS,
    CsvRows,
    EventFile,
    chunks,
    csv_frames,
    csv_records,
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
    """A text file that Polars' reader reads but for some lines, which are read one by one: the
    lines it skips (blank NDJSON) or may not read (`_suspect`, `_unreadable`), set `aside` in a
    Parquet file with their numbers (`_row`); `rows`, those numbers. The reader reads `copy`,
    the file with a placeholder in place of each (an empty object; an empty CSV line, a row of
    nothing), so that each of its rows is the file's line (CSV: record): those rows are left
    out. An NDJSON line set aside is kept as it is (`line`), a CSV record as read by Python's
    csv module (`sources.CsvRows`). `in_place`: some of those lines may be events, which must
    keep their place among the reader's rows (the first of a transaction id's rows in input
    order is the one that counts); the others claim no transaction id. `recoded`: the file is
    not all UTF-8, the copy has U+FFFD for its other bytes."""

    stamp: tuple[int, int]
    rows: pl.Series
    aside: Path
    copy: Path
    in_place: bool
    recoded: bool
    thorough: bool  # no other checks to try if the reader fails on the copy (NDJSON: `_suspect`)

    def discard(self) -> None:
        """Remove the files made for the patch."""
        for made in (self.aside, self.copy):
            made.unlink(missing_ok=True)


# Text files read so, path → their `Patch` (a changed file is looked at again)
_PATCHED: dict[Path, Patch] = {}


@dataclass(frozen=True, slots=True)
class Records:
    """A CSV file read record by record, its rows written in `parts` (Parquet files, in order)."""

    stamp: tuple[int, int]
    parts: tuple[Path, ...]

    def discard(self) -> None:
        for part in self.parts:
            part.unlink(missing_ok=True)


# CSV files read so, path → their `Records` (a changed file is read again)
_RECORDS: dict[Path, Records] = {}


# the folder of the files made for patches, made with the first one, removed when the process ends
_MADE: list[tempfile.TemporaryDirectory[str]] = []


def unread(file: EventFile) -> bool:
    stamp = _UNREAD.get(file.path)  # (a file not marked is not looked at: 5,000 files, 15,000 stats)
    return stamp is not None and stamp == file_stamp(file.path)


def patch_of(file: EventFile) -> Patch | None:
    patch = _PATCHED.get(file.path)
    return patch if patch is not None and patch.stamp == file_stamp(file.path) else None


def record_by_record(file: EventFile) -> pl.LazyFrame:
    """A CSV file that Polars' reader cannot read, read record by record (`sources.csv_frames`)
    once for each version of the file, its rows written a chunk at a time into Parquet files
    that this run and later ones read: memory stays bounded by a chunk (it held the whole file);
    into memory if there is no room for them."""
    stamp, known = file_stamp(file.path), _RECORDS.pop(file.path, None)
    if known is not None and known.stamp != stamp:
        known.discard()
        known = None
    if known is None:
        parts: list[Path] = []
        try:
            for frame in csv_frames(file.path):
                parts.append(_made(".parquet"))
                frame.write_parquet(parts[-1])
        except Exception as exc:  # (no room for them, or a broken compressed file)
            for part in parts:
                part.unlink(missing_ok=True)
            if not isinstance(exc, READ_ERRORS):
                raise
            return pl.concat(list(csv_frames(file.path))).lazy()
        known = Records(stamp, tuple(parts))
    _RECORDS[file.path] = known
    return pl.scan_parquet(list(known.parts))


def _suspect(line: pl.Expr, thorough: bool) -> pl.Expr:
    """Whether Polars' NDJSON reader may not read a line, or skips it, by checks cheaper than its
    own: blank; not an object from "{" to "}" (a line cut short); a `properties` member that is
    neither an object nor null — the first one, found by a pattern; `thorough`, also no
    transaction id that JSONPath finds (it finds none in malformed JSON: it parses each line, two
    thirds of the cost of these checks). A line that the checks miss (malformed between its
    braces, or an object's own `properties` misleading the pattern) makes the copy fail to read
    as well: the file is then patched by the thorough checks, or else read line by line."""
    properties = line.str.extract(r'"properties"\s*:\s*(\S)', 1)
    text = line.str.strip_chars()
    found = (
        (text == "")
        | ~text.str.starts_with("{")
        | ~text.str.ends_with("}")
        | (properties.is_not_null() & ~properties.is_in(["{", "n"]))
    )
    return found | line.str.json_path_match("$.transaction_id").is_null() if thorough else found


def _made(suffix: str) -> Path:
    """A new file in a folder removed when the process ends."""
    if not _MADE:
        _MADE.append(tempfile.TemporaryDirectory(prefix="pricing-"))
    handle, name = tempfile.mkstemp(suffix=suffix, dir=_MADE[0].name)
    os.close(handle)
    return Path(name)


# What a patch's copy has in place of a line set aside, by format: a row of nothing (the reader
# skips a blank NDJSON line; it reads a blank CSV line as a row), and the copy's suffix
_PLACEHOLDERS = {"ndjson": ("{}", ".jsonl"), "csv": ("", ".csv")}


def _set_aside(path: Path, found: pl.Expr, form: str) -> tuple[Path, Path]:
    """The lines of a text file where `found` holds (of `line` and its number `_row`), with their
    numbers, into a Parquet file; and a copy of the file (decompressed) with the format's
    placeholder in place of each of them: from one read of it."""
    placeholder, suffix = _PLACEHOLDERS[form]
    aside, copy = _made(".parquet"), _made(suffix)
    lines = numbered(scan_lines(path)).with_columns(found.alias("_found"))
    kept = pl.when("_found").then(pl.lit(placeholder)).otherwise("line")
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


def _patched(file: EventFile, thorough: bool = False) -> Patch | None:
    """The patch of an NDJSON file that the reader failed to read: its suspect lines (`_suspect`,
    `thorough` or not), found in a UTF-8 copy of a file that is not all UTF-8 (if none, the copy
    is the patch); None if no line was found, or the file cannot be read so (no room for the
    copies)."""
    stamp, line = file_stamp(file.path), pl.col("line")
    try:
        with _in_utf8(file.path) as text:
            recoded = text != file.path
            aside, copy = _set_aside(text, _suspect(line, thorough), "ndjson")
    except READ_ERRORS:
        return None
    kept = pl.read_parquet(aside).select(
        pl.col("_row").cast(pl.UInt64), line_fault(line).is_null().alias("_event")
    )
    events = bool(kept.get_column("_event").any())
    patch = Patch(stamp, kept.get_column("_row"), aside, copy, events, recoded, thorough)
    if recoded or not kept.is_empty():
        return patch
    patch.discard()
    return None


def _blank_lines(path: Path) -> list[int]:
    """The numbers of a text file's blank lines (spaces, tabs, a carriage return)."""
    blank = pl.col("line").str.strip_chars() == ""
    return numbered(scan_lines(path)).filter(blank).collect().get_column("_row").to_list()


# A CSV line that both Polars' reader and Python's read as one record, the same: each cell
# unquoted, without quotes or carriage returns, or quoted, its quotes doubled
_CELL = r'(?:[^",\r]*|"(?:[^"]|"")*")'
_RECORD = rf"^{_CELL}(?:,{_CELL})*$"


def _unreadable(line: pl.Expr, width: int) -> pl.Expr:
    """Whether Polars' CSV reader may not read a line of a file whose header has `width` cells as
    it reads records: not cells as `_RECORD` has them (broken quoting, a quote in an unquoted
    cell: Polars fails the file, where Python reads it as text), or more cells than the header
    (commas in quoted values not counted)."""
    cells = line.str.replace_all(r'"(?:[^"]|"")*"', "").str.count_matches(",", literal=True) + 1
    return ~line.str.contains(_RECORD) | (cells > width)


def _one_record(line: str, read: list[list[str] | csv.Error]) -> bool:
    """Whether Python's csv module reads a CSV line, `read` alone, as it reads it in its file:
    one record or one error, no quoted value left open (the record would go on to the next
    lines) and no carriage return ending it (the next text would be a record)."""
    if len(read) != 1:
        return False
    record = read[0]
    if isinstance(record, csv.Error):
        return "\r" not in line and str(record) != "unexpected end of data"
    return line.count("\r") == sum(cell.count("\r") for cell in record)


def _aside_records(kept: pl.DataFrame, layout: CsvRows) -> pl.DataFrame | None:
    """The CSV lines set aside (`_row`, `line`), each read alone as a record and numbered as a
    record; None if one is the header or not one record alone."""
    rows: list[list[str | None]] = []
    for number, line in kept.iter_rows():
        read = list(csv_records(csv.reader([line], strict=True)))
        if number == 1 or not _one_record(line, read):
            return None
        rows.append(layout.row(read[0]))
    return layout.frame(rows).with_columns((kept.get_column("_row").cast(pl.UInt64) - 1).alias("_row"))


def _csv_patched(file: EventFile) -> Patch | None:
    """The patch of a CSV file that the reader failed to read: its lines that it may not read
    (`_unreadable`; found in a UTF-8 copy of a file that is not all UTF-8), read alone by Python's
    csv module as records (`sources.CsvRows`). None if there are none, if one of them is the
    header or not one record alone (`_one_record`: records may span lines), or if there is no
    room for the copies: the file is then read record by record."""
    stamp, line = file_stamp(file.path), pl.col("line")
    try:
        with _in_utf8(file.path) as text:
            first = scan_lines(text).head(1).collect().get_column("line").to_list()
            layout = CsvRows(next(csv.reader([first[0].removeprefix("\ufeff") if first else ""]), []))
            aside, copy = _set_aside(text, _unreadable(line, layout.width), "csv")
            recoded = text != file.path
    except (*READ_ERRORS, csv.Error):
        return None
    kept = pl.read_parquet(aside)
    records = None if kept.is_empty() else _aside_records(kept, layout)
    if records is None:
        aside.unlink()
        copy.unlink()
        return None
    records.write_parquet(aside)
    in_place = bool(records.get_column("_malformed").is_null().any())
    return Patch(stamp, records.get_column("_row"), aside, copy, in_place, recoded, True)


def _reader_rows(path: Path, form: str) -> int | None:
    """The rows Polars' reader reads from a text file, None if it cannot read it (NDJSON: a broken
    line, a line that is not an object, a `properties` that is not one; CSV: a row with more
    cells than the header, broken quoting)."""
    if form == "csv":
        check = scan_csv([path]).select(pl.len().alias("rows"), pl.all().null_count())
    else:
        schema = {**ndjson_schema(()), "properties": pl.Struct({})}
        check = scan_ndjson([path], schema).select(pl.len().alias("rows"), pl.all().null_count())
    try:
        return int(check.collect().get_column("rows").item())
    except READ_ERRORS:
        return None


def _mark(file: EventFile, rows: int | None) -> bool:
    """Mark a text file that the reader read `rows` rows of (None: it failed), unless those are
    all its rows (NDJSON: its lines, or all but the blank ones it skips, which the run counts:
    `skipped_lines`; CSV, patched: its records); whether it was marked. A file the reader failed
    on is patched if it can be and is not already (`_patched`, `_csv_patched`): one broken line
    or record cost a run line by line or record by record (1M events: NDJSON 17 s against 2 s,
    CSV 7.4–8.3 s against 0.75 s); an NDJSON file whose copy the reader fails to read is patched
    again by the thorough checks. Otherwise it is read so."""
    patched = patch_of(file)
    if file.format == "csv":
        if rows is not None and (patched is None or rows == line_count(file.path) - 1):
            return False
        patch = _csv_patched(file) if rows is None and patched is None else None
    elif rows is not None:  # (short of its lines, unless by the blank lines the reader skips)
        lines = line_count(file.path)
        if rows == lines or (patched is None and rows + len(_blank_lines(file.path)) == lines):
            return False
        patch = None
    else:
        patch = _patched(file) if patched is None else None
        # the reader failed on the copy, or the first checks found no line: the thorough ones
        if patch is None and (patched is None or not patched.thorough):
            patch = _patched(file, thorough=True)
    _remember(file, patch)
    return True


def read_alone(file: EventFile) -> None:
    """Read a text file line by line or record by record from now on."""
    _remember(file, None)


def _remember(file: EventFile, patch: Patch | None) -> None:
    """How the runs read a text file from now on: patched, or else line by line or record by
    record."""
    old = _PATCHED.pop(file.path, None)
    if old is not None:
        old.discard()
    if patch is not None:
        _PATCHED[file.path] = patch
    else:
        _UNREAD[file.path] = file_stamp(file.path)


def _failed(file: EventFile, alone: bool) -> bool:
    """After a run failed: mark a text file if Polars' reader cannot read it whole, or a patched
    file whose copy it cannot read; whether it was marked. An NDJSON file that is the run's only
    text file (`alone`), not patched, is most likely at fault: the lines it may not read are
    looked for at once, and the reader is asked (a read of the whole file, as long as the look)
    only if there are none."""
    patch = patch_of(file)
    if patch is not None:
        return _reader_rows(patch.copy, file.format) is None and _mark(file, None)
    if alone and file.format == "ndjson" and (found := _patched(file)) is not None:
        _remember(file, found)
        return True
    return _mark(file, _reader_rows(file.path, file.format))


def unread_found(files: Sequence[EventFile], failed: bool = True) -> bool:
    """After a failed run (or, not `failed`, to know how a run would read them: `pricing
    explain`): mark the text files that Polars' readers cannot read whole (each text file not yet
    marked is read to find out, `_failed`); whether any was found. A file is not checked before
    its run: reading it once more cost a fifth of metering it (a fifth of 2.4 s for 1M NDJSON
    events)."""
    text = [f for f in files if f.format != "parquet" and not unread(f)]
    alone = failed and sum(f.format != "parquet" for f in files) == 1
    marked = [_failed(f, alone) for f in text]  # (each of them)
    return any(marked)


def skipped_lines(files: Sequence[EventFile], rows: Mapping[int, int]) -> dict[int, list[int]] | None:
    """After a run that read its files (`rows`: file index → rows read): the blank lines (their
    numbers) of each NDJSON file that Polars' reader read whole but for them — it skips them
    without an error; the run's ledger counts each as an invalid row, and its other rows keep
    their numbers, without a second run (1M events with one blank line: a copy and a second run
    took 3.7–4.5 s against 2 s). None if a file had to be marked (`_mark`: an NDJSON file short of
    its lines otherwise, a patched one short of them at all, a patched CSV file short of its
    records): the run must run again."""
    skipped: dict[int, list[int]] = {}
    marked = False
    for f in files:
        if f.format == "parquet" or unread(f) or (f.format == "csv" and patch_of(f) is None):
            continue
        read = rows.get(f.index, 0)
        if f.format == "ndjson" and patch_of(f) is None:
            lines = line_count(f.path)
            blanks = [] if read == lines else _blank_lines(f.path)
            if read + len(blanks) == lines:
                if blanks:
                    skipped[f.index] = blanks
                continue
        marked = _mark(f, read) or marked
    return None if marked else skipped
