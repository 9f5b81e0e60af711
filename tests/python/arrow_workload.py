#!/usr/bin/env python3
"""The workload famfs is for: an Arrow IPC file and a .npy array, written on one host and
memory-mapped on another.

    arrow_workload.py write  --seed S --rows N --arrow OUT.arrow --npy OUT.npy
    arrow_workload.py verify --seed S --rows N --arrow IN.arrow  --npy IN.npy [--max-copy BYTES]

Every value is a function of (seed, rows): `verify` recomputes the whole data set and compares
every column and the whole array with what it reads, so any byte that famfs lost, misplaced or
served stale makes it fail (exit 1) with the column and first differing row. `verify` opens the
Arrow file with pyarrow.memory_map + pyarrow.ipc.open_file and the array with
numpy.load(mmap_mode="r"): the data is read in place from the mapping, and `--max-copy` bounds
how many bytes Arrow may allocate while reading (the zero-copy check).

`write --tamper COLUMN:ROW` changes one value (test of the checker itself); `--tamper-npy I`
changes element I of the flattened array. The last line of each command is a JSON summary.
"""

import argparse
import json
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

GENERATOR = "famfs-arrow-workload/1"
BATCH_ROWS = 1 << 20
NPY_COLS = 16
# Timestamps: 2024-01-01T00:00:00Z plus up to ten years, in microseconds.
TS_BASE_US = 1_704_067_200_000_000
TS_SPAN_US = 10 * 365 * 86_400 * 1_000_000
CITIES = [
    "Amsterdam", "Boise", "Córdoba", "Dakar", "Espoo", "Fukuoka", "Graz", "Hanoi",
    "Iquitos", "Jaipur", "Kraków", "Lagos", "München", "Nuuk", "Oaxaca", "Perth",
    "Quito", "Reykjavík", "São Paulo", "Tromsø", "Ulaanbaatar", "Valparaíso", "Wrocław",
    "Xi'an", "Yerevan", "Zürich",
]

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("qty", pa.int32(), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("flag", pa.bool_(), nullable=False),
        pa.field("city", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("tags", pa.list_(pa.int16())),
        pa.field("maybe", pa.int64()),
    ]
)


def schema_for(seed, rows):
    """The schema with the metadata the writer records and the reader checks."""
    return SCHEMA.with_metadata(
        {"famfs.generator": GENERATOR, "famfs.seed": str(seed), "famfs.rows": str(rows)}
    )


def rng(seed, stream):
    """An independent, reproducible generator per (seed, column)."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


def variable_layout(g, rows, max_len, null_rate):
    """Validity bitmap, null count and int32 offsets of a variable-length column: lengths
    0..max_len, a share `null_rate` of nulls, which hold no values. Returns (bitmap, nulls,
    offsets, total values)."""
    valid = g.random(rows) >= null_rate
    lengths = g.integers(0, max_len + 1, rows, dtype=np.int32)
    lengths[~valid] = 0
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return bitmap, int(rows - valid.sum()), pa.py_buffer(offsets), int(offsets[-1])


def names(seed, rows):
    """Strings of 0..23 lowercase letters, about 3% null."""
    g = rng(seed, 4)
    bitmap, nulls, offsets, total = variable_layout(g, rows, 23, 0.03)
    data = g.integers(ord("a"), ord("z") + 1, total, dtype=np.uint8)
    return pa.StringArray.from_buffers(rows, offsets, pa.py_buffer(data), bitmap, nulls)


def tags(seed, rows):
    """Lists of 0..4 int16 values, about 5% null lists."""
    g = rng(seed, 8)
    bitmap, nulls, offsets, total = variable_layout(g, rows, 4, 0.05)
    values = g.integers(-(1 << 15), 1 << 15, total, dtype=np.int16)
    return pa.ListArray.from_buffers(
        pa.list_(pa.int16()), rows, [bitmap, offsets], nulls, children=[pa.array(values)]
    )


def columns(seed, rows):
    """The whole data set for (seed, rows), one array per field of SCHEMA."""
    ts = rng(seed, 5).integers(0, TS_SPAN_US, rows, dtype=np.int64) + TS_BASE_US
    city_idx = rng(seed, 7).integers(0, len(CITIES), rows, dtype=np.int32)
    g = rng(seed, 9)
    maybe_valid = g.random(rows) >= 0.1
    maybe = g.integers(-(1 << 62), 1 << 62, rows, dtype=np.int64)
    return [
        pa.array(np.arange(rows, dtype=np.int64)),
        pa.array(rng(seed, 1).integers(-(1 << 31), 1 << 31, rows, dtype=np.int32)),
        pa.array(rng(seed, 2).normal(100.0, 25.0, rows)),
        pa.array(rng(seed, 3).random(rows, dtype=np.float32)),
        names(seed, rows),
        pa.array(ts, type=pa.timestamp("us", tz="UTC")),
        pa.array(rng(seed, 6).random(rows) < 0.3),
        pa.DictionaryArray.from_arrays(pa.array(city_idx), pa.array(CITIES)),
        tags(seed, rows),
        pa.array(maybe, mask=~maybe_valid),
    ]


def matrix(seed, rows):
    """The .npy array: rows//4 (at least 1) by NPY_COLS float32 values."""
    return rng(seed, 100).standard_normal((max(rows // 4, 1), NPY_COLS), dtype=np.float32)


def tampered(arr, row):
    """`arr` with the value at `row` changed (every column type of SCHEMA)."""
    old = arr[row]
    t = arr.type
    if pa.types.is_dictionary(t):
        idx = arr.indices.to_numpy().copy()
        idx[row] = (idx[row] + 1) % len(arr.dictionary)
        return pa.DictionaryArray.from_arrays(pa.array(idx), arr.dictionary)
    if pa.types.is_list(t):
        if not old.is_valid or len(old) == 0:
            raise SystemExit(f"--tamper: row {row} holds an empty list")
        values = tampered(arr.values, arr.offsets[row].as_py())
        return pa.ListArray.from_buffers(
            t, len(arr), arr.buffers()[:2], arr.null_count, children=[values]
        )
    if pa.types.is_boolean(t):
        new = pa.scalar(not old.as_py())
    elif pa.types.is_string(t):
        new = pa.scalar((old.as_py() or "") + "x")
    elif pa.types.is_timestamp(t):
        new = pa.scalar(old.value + 1, type=t)
    elif pa.types.is_integer(t) or pa.types.is_floating(t):
        new = pa.scalar((old.as_py() or 0) + 1, type=t)
    else:
        raise SystemExit(f"--tamper: cannot change a value of type {t}")
    mask = np.zeros(len(arr), dtype=bool)
    mask[row] = True
    return pc.if_else(pa.array(mask), new, arr)


def cmd_write(a):
    started = time.perf_counter()
    cols = columns(a.seed, a.rows)
    if a.tamper:
        name, row = a.tamper.split(":")
        i = SCHEMA.get_field_index(name)
        if i < 0:
            raise SystemExit(f"--tamper: no column {name}")
        cols[i] = tampered(cols[i], int(row))
    schema = schema_for(a.seed, a.rows)
    batches = 0
    with pa.OSFile(a.arrow, "wb") as sink, pa.ipc.new_file(sink, schema) as w:
        for start in range(0, a.rows, BATCH_ROWS):
            n = min(BATCH_ROWS, a.rows - start)
            w.write_batch(pa.record_batch([c.slice(start, n) for c in cols], schema=schema))
            batches += 1
    m = matrix(a.seed, a.rows)
    if a.tamper_npy is not None:
        m.reshape(-1)[a.tamper_npy] += 1.0
    np.save(a.npy, m)
    summary = {
        "written": True,
        "rows": a.rows,
        "batches": batches,
        "columns": len(SCHEMA),
        "npy_shape": list(m.shape),
        "seconds": round(time.perf_counter() - started, 3),
    }
    print(json.dumps(summary))
    return 0


def first_difference(actual, expected):
    """Index of the first row where two equal-length chunked arrays differ (binary search)."""
    lo, hi = 0, len(expected)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if actual.slice(lo, mid - lo).equals(expected.slice(lo, mid - lo)):
            lo = mid
        else:
            hi = mid
    return lo


def check_table(a, table, errors):
    """Compares the schema, its metadata, the row count and every column with the recomputed
    data set (appends (path, message) to `errors`)."""
    if not table.schema.equals(SCHEMA):
        errors.append((a.arrow, f"schema differs:\n got {table.schema}\nwant {SCHEMA}"))
        return
    want = schema_for(a.seed, a.rows).metadata
    if table.schema.metadata != want:
        errors.append((a.arrow, f"metadata {table.schema.metadata}, want {want}"))
    if table.num_rows != a.rows:
        errors.append((a.arrow, f"{table.num_rows} rows, want {a.rows}"))
        return
    for field, exp in zip(SCHEMA, columns(a.seed, a.rows)):
        got = table.column(field.name)
        exp = pa.chunked_array([exp])
        if not got.equals(exp):
            row = first_difference(got, exp)
            errors.append(
                (
                    a.arrow,
                    f"column {field.name}: first difference at row {row}: "
                    f"read {got[row]!r}, want {exp[row]!r}",
                )
            )


def check_array(a, arr, errors):
    """Compares the memory-mapped array with the recomputed one, element by element."""
    want = matrix(a.seed, a.rows)
    if not isinstance(arr, np.memmap):
        errors.append((a.npy, f"numpy.load returned {type(arr).__name__}, not a memmap"))
    if arr.dtype != want.dtype or arr.shape != want.shape:
        errors.append((a.npy, f"array {arr.dtype}{arr.shape}, want {want.dtype}{want.shape}"))
        return
    same = np.asarray(arr) == want
    if not same.all():
        i = int(np.argmin(same.reshape(-1)))
        errors.append(
            (
                a.npy,
                f"first difference at flat index {i}: "
                f"read {arr.reshape(-1)[i]!r}, want {want.reshape(-1)[i]!r}",
            )
        )


def cmd_verify(a):
    started = time.perf_counter()
    errors = []
    source = pa.memory_map(a.arrow, "r")
    before = pa.total_allocated_bytes()
    reader = pa.ipc.open_file(source)
    table = reader.read_all()
    copied = pa.total_allocated_bytes() - before
    if a.max_copy is not None and copied > a.max_copy:
        errors.append(
            (
                a.arrow,
                f"reading allocated {copied} bytes (at most {a.max_copy}): "
                "not read in place from the mapping",
            )
        )
    check_table(a, table, errors)
    arr = np.load(a.npy, mmap_mode="r")
    check_array(a, arr, errors)
    summary = {
        "verified": not errors,
        "rows": table.num_rows,
        "batches": reader.num_record_batches,
        "columns": table.num_columns,
        "arrow_bytes": source.size(),
        "arrow_bytes_copied": copied,
        "npy_shape": list(arr.shape),
        "npy_bytes": int(arr.nbytes),
        "seconds": round(time.perf_counter() - started, 3),
    }
    for path, msg in errors:
        print(f"MISMATCH {path}: {msg}", file=sys.stderr)
    print(json.dumps(summary))
    return 0 if not errors else 1


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("write", "verify"):
        s = sub.add_parser(name)
        s.add_argument("--seed", type=int, required=True)
        s.add_argument("--rows", type=int, required=True)
        s.add_argument("--arrow", required=True, help="the Arrow IPC file")
        s.add_argument("--npy", required=True, help="the .npy array")
        if name == "write":
            s.add_argument("--tamper", metavar="COLUMN:ROW", help="change one value")
            s.add_argument("--tamper-npy", type=int, metavar="I", help="change element I")
        else:
            s.add_argument("--max-copy", type=int, metavar="BYTES",
                           help="fail if reading the Arrow file allocates more than this")
    a = p.parse_args(argv)
    if a.rows < 1:
        p.error("--rows must be at least 1")
    return cmd_write(a) if a.cmd == "write" else cmd_verify(a)


if __name__ == "__main__":
    sys.exit(main())
