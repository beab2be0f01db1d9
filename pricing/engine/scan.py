"""Event files (`sources`) to one normalised LazyFrame, collected by the run. A text file is
read by Polars' reader (parallel) until a run finds it cannot be; from then on it is read as
`repair` marked it: patched (the reader reads a copy; the lines it may not read are read one by
one, in their place), or else line by line (NDJSON: still lazily, unless it is not all UTF-8) or
record by record (CSV: once, into Parquet files): each bad line or record a row of its own with
its reason.
Bytes that are not UTF-8 are read as U+FFFD: the row still reaches the ledger (as an unknown
customer, say).

Consecutive files that Polars reads alike (NDJSON read whole; CSV of one header; Parquet whose
columns agree) are read by one scan. Every input row keeps where it came from (`_file`; `_row`,
numbered across its scan's files), so the ledger can account for it.
Properties that the plan needs become String columns `p.<name>`, compared as text; a number is
written by its shortest decimal text (`2.50` → `"2.5"`). Timestamps become UTC datetimes; a row
whose timestamp does not parse keeps a null `timestamp` and is counted invalid by the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl
from polars._typing import PolarsDataType as DType

from pricing.engine.repair import Patch, patch_of, read_alone, record_by_record, unread
from pricing.engine.sources import (
    FIELDS,
    READ_ERRORS,
    EventFile,
    EventReadError,
    line_fault,
    line_text,
    lossy_lines,
    ndjson_schema,
    numbered,
    scan_csv,
    scan_lines,
    scan_ndjson,
    scan_parquet,
    utf8,
)

PREFIX = "p."  # our columns


FLAT = "properties."  # flat property columns in CSV and Parquet files


UTC_TIME = pl.Datetime("us", "UTC")


TEXT_FIELDS = ("transaction_id", "customer_id", "event_type")  # the fields but the timestamp


def _as_text(column: pl.Expr, dtype: DType) -> pl.Expr:
    """A field or property column as text, whatever its type: numbers by their shortest decimal
    form; a list or struct (not a property value a metric can use) as its JSON text, as the
    NDJSON reader gives it; a duration in ISO 8601 (`PT1S`); bytes as UTF-8 text (null where
    they are not, at any depth: `_not_utf8` makes the row invalid)."""
    if dtype == pl.String:
        return column
    if dtype.is_nested() or isinstance(dtype, pl.Duration):
        value = _bytes_as_text(column, dtype).alias("v")  # (the JSON writer takes no bytes)
        encoded = pl.struct(value).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")
        text = encoded if dtype.is_nested() else encoded.str.strip_chars('"')
        return pl.when(column.is_not_null()).then(text)
    if isinstance(dtype, pl.Decimal):
        # "2.50" → "2.5", "3.00" → "3"
        return column.cast(pl.String).str.replace(r"(\.\d*?)0+$", "$1").str.replace(r"\.$", "")
    if dtype == pl.Binary:
        return _bytes_as_text(column, dtype)
    if dtype.is_float():
        return _float_text(column)
    return column.cast(pl.String)


def _float_text(column: pl.Expr) -> pl.Expr:
    """A float column's values as NDJSON's numbers read: the shortest digits that give the float
    back, written out without an exponent or a `.0` (100.0 → "100", 1e-7 → "0.0000001", 1e+20 →
    "100000000000000000000"; NaN and inf as they are), where Polars' own text of the float is
    "100.0", "1e-7", "1e+20"."""
    text = column.cast(pl.String)
    parts = text.str.extract_groups(r"^(-?)(\d+)(?:\.(\d+))?e([+-]?\d+)$")
    sign, whole = parts.struct.field("1"), parts.struct.field("2")
    digits = whole + parts.struct.field("3").fill_null("")
    exponent = parts.struct.field("4").cast(pl.Int64)
    point = whole.str.len_chars().cast(pl.Int64) + exponent  # where the point goes in the digits
    width = digits.str.len_chars().cast(pl.Int64)
    at = point.clip(0, None)  # (every branch is computed: lengths are never negative)
    shifted = (
        pl.when(point <= 0)
        .then(sign + "0." + digits.str.zfill(width - point))
        .when(point >= width)
        .then(sign + digits.str.pad_end(at, "0"))
        .otherwise(sign + digits.str.head(at) + "." + digits.str.slice(at))
    )
    return pl.when(exponent.is_not_null()).then(shifted).otherwise(text.str.replace(r"\.0$", ""))


def _bytes_as_text(column: pl.Expr, dtype: DType) -> pl.Expr:
    """`column` with its bytes, at any depth (in a list, an array, a struct), as UTF-8 text, or
    null where they are not (`_not_utf8` makes the row invalid)."""
    if not _holds_bytes(dtype):
        return column
    if isinstance(dtype, pl.List):
        return column.list.eval(_bytes_as_text(pl.element(), dtype.inner))
    if isinstance(dtype, pl.Array):
        return _bytes_as_text(column.arr.to_list(), pl.List(dtype.inner)).list.to_array(dtype.shape[0])
    if isinstance(dtype, pl.Struct):
        fields = [_bytes_as_text(column.struct.field(f.name), f.dtype).alias(f.name) for f in dtype.fields]
        return pl.when(column.is_not_null()).then(pl.struct(fields))
    # Bytes hidden by a null are cast too, so all are emptied first but UTF-8 text; exactly
    # so: other forms of this (`when(~utf8).then(b"")`, a null kept null) failed the query.
    utf8 = _all_utf8(column, dtype)
    return pl.when(utf8).then(pl.when(utf8).then(column).otherwise(pl.lit(b"")).cast(pl.String))


def _holds_bytes(dtype: DType) -> bool:
    if isinstance(dtype, pl.List | pl.Array):
        return _holds_bytes(dtype.inner)
    if isinstance(dtype, pl.Struct):
        return any(_holds_bytes(f.dtype) for f in dtype.fields)
    return dtype == pl.Binary


# Bytes that are UTF-8 text (RFC 3629: no overlong forms, surrogates or code points past
# U+10FFFF), as their hex text: Polars' cast of bytes to text fails the query at the first that
# are not, even where they are left out or the cast is not strict.
_UTF8_HEX = (
    "^(?:[0-7][0-9a-f]|(?:c[2-9a-f]|d[0-9a-f])[89ab][0-9a-f]|e0[ab][0-9a-f][89ab][0-9a-f]"
    "|e[1-9a-cef][89ab][0-9a-f][89ab][0-9a-f]|ed[89][0-9a-f][89ab][0-9a-f]"
    "|f0(?:9[0-9a-f]|[ab][0-9a-f])(?:[89ab][0-9a-f]){2}|f[1-3](?:[89ab][0-9a-f]){3}"
    "|f48[0-9a-f](?:[89ab][0-9a-f]){2})*$"
)


def _all_utf8(column: pl.Expr, dtype: DType) -> pl.Expr:
    """Whether every value of bytes in `column`, at any depth (in a list, an array, a struct),
    is UTF-8 text; null for a null value of bytes or list."""
    if isinstance(dtype, pl.List):
        return column.list.eval(_all_utf8(pl.element(), dtype.inner).fill_null(True)).list.all()
    if isinstance(dtype, pl.Array):
        return _all_utf8(column.arr.to_list(), pl.List(dtype.inner))
    if isinstance(dtype, pl.Struct):
        fields = [
            _all_utf8(column.struct.field(f.name), f.dtype) for f in dtype.fields if _holds_bytes(f.dtype)
        ]
        return pl.all_horizontal(f.fill_null(True) for f in fields)
    return column.bin.encode("hex").str.contains(_UTF8_HEX)


def _not_utf8(column: pl.Expr, dtype: DType, name: str) -> pl.Expr:
    """Why a row is invalid when bytes in its value (at any depth) are not UTF-8 text (null:
    they are)."""
    return pl.when(~_all_utf8(column, dtype)).then(pl.lit(f"{name} is not UTF-8 text"))


RFC_3339 = "%Y-%m-%dT%H:%M:%S%.f%#z"  # an offset: Z, +02:00, +0200 or +02


WITHOUT_OFFSET = "%Y-%m-%dT%H:%M:%S%.f"  # read as UTC


DATE = "%Y-%m-%d"  # midnight UTC


def _parsed(text: pl.Expr, form: str) -> pl.Expr:
    return text.str.to_datetime(form, time_zone="UTC", strict=False, time_unit="us")


def _timestamp(column: pl.Expr, dtype: DType) -> pl.Expr:
    if dtype == pl.Binary:
        return _timestamp(_as_text(column, dtype), pl.String)
    if dtype == pl.String:
        # Each value read on its own (Polars' format inference would read every value of a
        # column by the first one's format: after a time without an offset, each "Z" was
        # unparseable). RFC 3339 as written; else with a space for the "T", in either case,
        # among spaces, without an offset (UTC), or a bare date (midnight UTC).
        loose = column.str.strip_chars().str.to_uppercase().str.replace(" ", "T", literal=True)
        exact = _parsed(column, RFC_3339)
        fallback = pl.coalesce(*(_parsed(loose, form) for form in (RFC_3339, WITHOUT_OFFSET, DATE)))
        return pl.when(exact.is_not_null()).then(exact).otherwise(fallback)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return column.dt.replace_time_zone("UTC").cast(UTC_TIME)
        return column.dt.convert_time_zone("UTC").cast(UTC_TIME)
    if isinstance(dtype, pl.Date):
        return column.cast(UTC_TIME)
    return pl.lit(None, dtype=UTC_TIME)


def _map_values(dtype: DType | None) -> DType | None:
    """The type of a map's values, when `dtype` is one: a list of key and value pairs with text
    keys, as Polars reads a Parquet MAP column (Spark and Arrow write `properties` so)."""
    if not isinstance(dtype, pl.List) or not isinstance(dtype.inner, pl.Struct):
        return None
    fields = {f.name: f.dtype for f in dtype.inner.fields}
    return fields["value"] if fields.keys() == {"key", "value"} and fields["key"] == pl.String else None


def _absent(column: pl.Expr, dtype: DType) -> pl.Expr:
    """No value, or empty text."""
    if dtype in (pl.String, pl.Binary):
        return column.is_null() | (column == ("" if dtype == pl.String else b""))
    return column.is_null()


def _json_path(*names: str) -> str:
    """A JSONPath selecting a nested member by exact name (any characters)."""
    return "$" + "".join("[" + json.dumps(name) + "]" for name in names)


def _as_read(
    frame: pl.LazyFrame, name: str, members: pl.Expr, matched: Mapping[str, pl.Expr]
) -> tuple[pl.LazyFrame, dict[str, pl.Expr]]:
    """Members of a JSON object, each matched by its JSONPath (which gives a number as its
    float's text: `1000.0`, `1e-7`), as Polars' NDJSON reader gives them (`1000`, `0.0000001`):
    `members`, the object's JSON text, decoded once into column `name` with every member as
    text — so lines read one by one filter and group as they would read by the reader. A row
    where one of them is a list or an object (or text that starts like one) does not decode
    so: its members stay as matched."""
    if not matched:
        return frame, {}
    nested = pl.any_horizontal(*(m.str.contains(r"^[\[{]") for m in matched.values())).fill_null(False)
    frame = frame.with_columns(nested.alias(name + "_nested")).with_columns(
        pl.when(members.str.starts_with("{") & ~pl.col(name + "_nested"))
        .then(members)
        .str.json_decode(pl.Struct(dict.fromkeys(matched, pl.String())))
        .alias(name)
    )
    field, kept = pl.col(name).struct.field, pl.col(name + "_nested")
    return frame, {member: pl.when(kept).then(m).otherwise(field(member)) for member, m in matched.items()}


def _property_columns(
    available: Mapping[str, DType], properties: Sequence[str]
) -> tuple[dict[str, pl.Expr], dict[str, DType], str | None]:
    """Each property of a CSV or Parquet file (a `properties.<name>` column, else a field of a
    `properties` struct or map) and its type; and why the rows are invalid, when the file has a
    `properties` column of another type (they would silently be absent: every event unmatched)."""
    props: dict[str, pl.Expr] = {}
    types: dict[str, DType] = {}
    column = available.get("properties")
    fields = {f.name: f.dtype for f in column.fields} if isinstance(column, pl.Struct) else {}
    map_values = _map_values(column)
    for name in properties:
        flat = FLAT + name
        if flat in available:
            props[name], types[name] = pl.col(flat), available[flat]
        elif name in fields:
            props[name], types[name] = pl.col("properties").struct.field(name), fields[name]
        elif map_values is not None:
            entry = pl.element()
            value = entry.filter(entry.struct.field("key") == name).struct.field("value")
            props[name], types[name] = pl.col("properties").list.eval(value).list.first(), map_values
        else:
            props[name], types[name] = pl.lit(None, dtype=pl.String), pl.String()
    unknown = column is not None and not isinstance(column, pl.Struct) and map_values is None
    if not (unknown and any(FLAT + name not in available for name in properties)):
        return props, types, None
    wrong = f"the properties column is {column}: neither a struct nor a map of names to values"
    return props, types, f"{wrong} (nor are they {FLAT}<name> columns)"


@dataclass(frozen=True, slots=True)
class _Batch:
    """Consecutive files that one scan reads, and the columns each has (CSV, Parquet)."""

    files: tuple[EventFile, ...]
    columns: pl.Schema | None


def _columns(file: EventFile, properties: Sequence[str]) -> pl.Schema | None:
    """The columns of a file that Polars reads whole, as its scan reads them: of a CSV file, its
    header; of a Parquet file, those the run reads; of NDJSON, none (its schema is given). None
    for a file read on its own: line by line, record by record, or patched (`repair.Patch`)."""
    if unread(file) or patch_of(file) is not None:
        return None
    if file.format == "ndjson":
        return pl.Schema()
    try:
        if file.format == "csv":
            header = scan_csv([file.path]).collect_schema()
            if not any("\r" in name for name in header):
                return header
            # Records that end at a carriage return alone (Excel's "CSV (Macintosh)"): Polars'
            # reader reads the file as one header line, and none of its rows (nor a word)
            read_alone(file)
            return None
        available = scan_parquet([file.path]).collect_schema()
    except READ_ERRORS as exc:
        reason = str(exc).strip().splitlines()[0]
        raise EventReadError(f"could not read {file.path.as_posix()}: {reason}") from exc
    read = {*FIELDS, "properties", *(FLAT + name for name in properties)}
    # (and a field's name in other case, to say so: `_table_fields`)
    return pl.Schema({c: t for c, t in available.items() if c in read or c.lower() in FIELDS})


def _merged(batch: pl.Schema, columns: pl.Schema, parquet: bool) -> pl.Schema | None:
    """The columns of a batch with a file's added, if one scan can read them: NDJSON files, CSV
    files with one header; Parquet files whose columns agree in type, where a file that lacks a
    column has it null (a property absent, as it is from the file itself) — unless they hold a
    `properties` struct or map, whose fields could stand for another file's columns."""
    if batch == columns:
        return batch
    if not parquet or "properties" in batch or "properties" in columns:
        return None
    if any(batch[c] != t for c, t in columns.items() if c in batch):
        return None
    return pl.Schema({**batch, **columns})


def _batches(files: Sequence[EventFile], properties: Sequence[str]) -> list[_Batch]:
    """The files in runs that one scan each reads (`_merged`); a file read line by line, record
    by record, or patched is read on its own. (A scan per file cost about 1 ms a file to
    plan and run: 500,000 events in 5,000 files, 5.5–8.1 s, now 2.6–3.1 s.)"""
    runs: list[tuple[list[EventFile], pl.Schema | None]] = []
    for file in files:
        columns = _columns(file, properties)
        if runs and (last := runs[-1])[1] is not None and columns is not None:
            same = last[0][-1].format == file.format
            merged = _merged(last[1], columns, file.format == "parquet") if same else None
            if merged is not None:
                runs[-1] = (last[0] + [file], merged)
                continue
        runs.append(([file], columns))
    return [_Batch(tuple(run), columns) for run, columns in runs]


@dataclass(frozen=True, slots=True)
class _Fields:
    """Where a scan's rows have each field and property, of which type, and why a row is invalid
    whatever its values (null: it is not)."""

    columns: Mapping[str, pl.Expr]
    types: Mapping[str, DType]
    props: Mapping[str, pl.Expr]
    prop_types: Mapping[str, DType]
    malformed: pl.Expr


def _text_fields(columns: Mapping[str, pl.Expr], props: Mapping[str, pl.Expr], malformed: pl.Expr) -> _Fields:
    """Fields and properties that are all text, as NDJSON's are."""
    text = pl.String()
    return _Fields(columns, dict.fromkeys(columns, text), props, dict.fromkeys(props, text), malformed)


def _line_fields(lines: pl.LazyFrame, properties: Sequence[str]) -> tuple[pl.LazyFrame, _Fields]:
    """An NDJSON file's lines (`line`) read one by one, so that a broken line is an invalid row
    with its reason, not a failed run."""
    line, whole = line_text(pl.col("line"))
    fields = {f: line.str.json_path_match(_json_path(f)) for f in FIELDS}
    lines, columns = _as_read(lines, "_fields", whole, fields)
    lines, props = _as_read(
        lines,
        "_properties",
        line.str.json_path_match(_json_path("properties")),
        {name: line.str.json_path_match(_json_path("properties", name)) for name in properties},
    )
    return lines, _text_fields(columns, props, line_fault(pl.col("line")))


def _table_fields(
    frame: pl.LazyFrame, available: pl.Schema, csv: bool, properties: Sequence[str], malformed: pl.Expr
) -> tuple[pl.LazyFrame, _Fields]:
    """CSV or Parquet rows, their columns (`available`) as fields and properties; `malformed`, why
    a row is invalid whatever its values (see `_Fields`)."""
    if csv:  # an empty cell, quoted ("") or not, is an absent value
        read = [c for c in (*FIELDS, *(FLAT + n for n in properties)) if c in available]
        frame = frame.with_columns(pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in read)
        twice = _repeated(available, read)
        if twice:  # which of the columns holds a row's value? neither is read
            malformed = pl.coalesce(malformed, pl.lit(twice))
    columns = {f: pl.col(f) if f in available else pl.lit(None, dtype=pl.String) for f in FIELDS}
    types = {f: available.get(f, pl.String()) for f in FIELDS}
    kind = types["timestamp"]
    if not (kind in (pl.String, pl.Binary) or isinstance(kind, pl.Datetime | pl.Date)):
        malformed = pl.lit(f"the timestamp column is {kind}: neither a timestamp nor RFC 3339 text")
    props, prop_types, wrong = _property_columns(available, properties)
    if wrong is not None:
        malformed = pl.coalesce(malformed, pl.lit(wrong))
    # a field's column named in other case (Snowflake exports TRANSACTION_ID): each row is
    # missing the field anyway; its reason says why
    cased = {c.lower(): c for c in available if c.lower() in FIELDS and c.lower() not in available}
    if cased:
        wanted, found = ", ".join(cased), ", ".join(cased.values())
        hint = f"no {wanted} column{'s' if len(cased) > 1 else ''}: the file has {found}"
        malformed = pl.coalesce(malformed, pl.lit(f"{hint} (column names are case-sensitive)"))
    named: list[tuple[pl.Expr, DType, str]] = [(columns[f], types[f], f) for f in TEXT_FIELDS]
    named += [(props[n], prop_types[n], f"property '{n}'") for n in properties]
    undecoded = [_not_utf8(column, dtype, name) for column, dtype, name in named if _holds_bytes(dtype)]
    if undecoded:
        malformed = pl.coalesce(malformed, *undecoded)
    return frame, _Fields(columns, types, props, prop_types, malformed)


def _repeated(available: pl.Schema, read: Sequence[str]) -> str | None:
    """Why every row of a CSV file is invalid if its header names a column the run reads more
    than once (Polars' reader names the second `<name>_duplicated_0`: `sources.column_names`),
    else None."""
    counts: dict[str, int] = {}
    for name in read:
        copies = 0
        while f"{name}_duplicated_{copies}" in available:
            copies += 1
        if copies:
            counts[name] = copies + 1
    if not counts:
        return None
    named = ", ".join(f"{count} columns named {name}" for name, count in counts.items())
    return f"the header has {named}: which holds the value is unclear"


def _selected(
    frame: pl.LazyFrame, fields: _Fields, index: pl.Expr, properties: Sequence[str]
) -> pl.LazyFrame:
    """Rows numbered `_row` as the run reads them: `_file` (`index`), `_row`, FIELDS as text, the
    timestamp parsed, `_malformed`, each property as text."""
    columns, types, props = fields.columns, fields.types, fields.props
    return frame.select(
        index.alias("_file"),
        pl.col("_row").cast(pl.UInt64),
        *(_as_text(columns[f], types[f]).alias(f) for f in TEXT_FIELDS),
        _timestamp(columns["timestamp"], types["timestamp"]).alias("timestamp"),
        _absent(columns["timestamp"], types["timestamp"]).alias("_no_timestamp"),
        fields.malformed.alias("_malformed"),
        *(_as_text(props[n], fields.prop_types[n]).alias(PREFIX + n) for n in properties),
    )


def _scan(batch: _Batch, properties: Sequence[str]) -> pl.LazyFrame:
    """The files of a batch with FIELDS, the properties and where each row came from: `_file`
    (its index) and `_row` (numbered from 1 across the batch's files)."""
    file, paths = batch.files[0], [f.path for f in batch.files]
    include = "_path" if len(paths) > 1 else None
    if include is None:
        index = pl.lit(file.index, dtype=pl.UInt32)
    else:  # (the batch's files are consecutive in input order)
        names = pl.Enum([str(p) for p in paths])
        index = pl.col(include).cast(names).to_physical().cast(pl.UInt32) + file.index
    if unread(file):
        return _selected(*_one_by_one(file, None, properties), index, properties)
    patch = patch_of(file)
    rows = _selected(*_read_whole(batch, include, patch, properties), index, properties)
    if patch is None:
        return rows
    return _patched(rows, _selected(*_one_by_one(file, patch, properties), index, properties), patch)


def _read_whole(
    batch: _Batch, include: str | None, patch: Patch | None, properties: Sequence[str]
) -> tuple[pl.LazyFrame, _Fields]:
    """The rows that Polars' reader reads of a batch's files, or of a file's patch's copy."""
    form, paths, whole = batch.files[0].format, [f.path for f in batch.files], pl.lit(None, dtype=pl.String)
    if form == "ndjson":
        read = scan_ndjson([patch.copy] if patch else paths, ndjson_schema(properties), include)
        props = {name: pl.col("properties").struct.field(name) for name in properties}
        return numbered(read), _text_fields({f: pl.col(f) for f in FIELDS}, props, whole)
    if form == "parquet":
        read = scan_parquet(paths, include, batch.columns)
    else:
        read = scan_csv([patch.copy] if patch else paths, include)
    available = read.collect_schema() if batch.columns is None else batch.columns
    return _table_fields(numbered(read), available, form == "csv", properties, whole)


def _one_by_one(
    file: EventFile, patch: Patch | None, properties: Sequence[str]
) -> tuple[pl.LazyFrame, _Fields]:
    """A text file that Polars' reader cannot read, line by line (NDJSON, lazily if it is all
    UTF-8) or record by record (CSV, `repair.record_by_record`); or the lines a patch set aside,
    read so."""
    if file.format == "ndjson":
        if patch is not None:
            return _line_fields(pl.scan_parquet(patch.aside), properties)
        lines = scan_lines(file.path) if utf8(file.path) else lossy_lines(file.path)
        return _line_fields(numbered(lines), properties)
    records = numbered(record_by_record(file)) if patch is None else pl.scan_parquet(patch.aside)
    return _table_fields(records, records.collect_schema(), True, properties, pl.col("_malformed"))


def _patched(rows: pl.LazyFrame, one_by_one: pl.LazyFrame, patch: Patch) -> pl.LazyFrame:
    """The rows the reader read of a patch's copy, those of its lines set aside left out, and the
    rows of those lines read one by one: in line order if they must be (a merge took 0.6 s of
    2.6 s for 1M events). (A mapping from the rows the reader reads of a file to their lines held
    all of them in memory.)"""
    rows = rows.filter(~pl.col("_row").is_in(patch.rows.implode()))
    return rows.merge_sorted(one_by_one, "_row") if patch.in_place else pl.concat([rows, one_by_one])


FORMAT_NAMES = {"ndjson": "NDJSON", "csv": "CSV", "parquet": "Parquet"}


def reading(files: Sequence[EventFile], properties: Iterable[str]) -> list[str]:
    """How a run reads the files (`pricing explain`): each scan, its files and how."""
    batches = _batches(files, sorted(set(properties)))
    lines = [f"events: {len(files)} file(s), {len(batches)} scan(s)"]
    for batch in batches:
        first, last = batch.files[0], batch.files[-1]
        kind = FORMAT_NAMES[first.format]
        named = first.path.as_posix()
        if len(batch.files) > 1:
            named += f" … {last.path.as_posix()} ({len(batch.files)} {kind} files)"
        how = f"Polars' {kind} reader"
        unit, skips = (
            ("line", "skips or may not read") if first.format == "ndjson" else ("record", "may not read")
        )
        if unread(first):
            how = f"{unit} by {unit} (a {unit} {how} cannot read)"
        elif (patch := patch_of(first)) is not None:
            how += " (of a copy, bytes that are not UTF-8 as U+FFFD)" if patch.recoded else " (of a copy)"
            if len(patch.rows):
                how += f", but for {len(patch.rows):,} {unit}(s) it {skips}, read one by one"
        lines.append(f"  {named}: {how}")
    return lines


def scan_events(files: Sequence[EventFile], properties: Iterable[str]) -> pl.LazyFrame:
    """All files as one lazy frame, in input order, with the given properties as columns."""
    names = sorted(set(properties))
    return pl.concat([_scan(batch, names) for batch in _batches(files, names)], how="vertical")
