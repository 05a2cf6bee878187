"""Reads a job's dead letters with pyarrow and with DuckDB and prints, per
source offset, what each sees of the columns replay depends on (hex bytes),
so the test can check both readers agree with the writer."""
import json
import sys

import duckdb
import pyarrow.dataset as ds

root = sys.argv[1]
out = {"pyarrow": {}, "duckdb": {}}

table = ds.dataset(f"{root}/dead_letters", format="parquet").to_table()
for row in table.to_pylist():
    out["pyarrow"][str(row["source_offset"])] = {
        "raw": row["raw"].hex(),
        "key": None if row["key"] is None else row["key"].hex(),
        "headers": [[h["key"], None if h["value"] is None else h["value"].hex()] for h in row["headers"]],
        "reason_code": row["reason_code"],
        "stage": row["stage"],
        "source_timestamp_ms": None if row["source_timestamp"] is None
        else int(row["source_timestamp"].timestamp() * 1000),
    }

con = duckdb.connect()
rows = con.execute(
    f"""SELECT source_offset, hex(raw), hex(key), reason_code,
               [[h.key, hex(h.value)] for h in headers]
        FROM read_parquet('{root}/dead_letters/*.parquet')"""
).fetchall()
for offset, raw, key, code, headers in rows:
    out["duckdb"][str(offset)] = {
        "raw": raw.lower(),
        "key": None if key is None else key.lower(),
        "headers": [[k, None if v is None else v.lower()] for k, v in headers],
        "reason_code": code,
    }
print(json.dumps(out))
