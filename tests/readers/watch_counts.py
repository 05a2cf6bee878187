"""Counts the scored rows with DuckDB and pyarrow over and over until STOP_FILE
exists, and prints every distinct count each saw (and how many reads failed,
for instance on a file replaced between listing and opening) as JSON. Used by
tests/output.rs while `scorestream compact` runs.

usage: watch_counts.py OUTPUT_DIR STOP_FILE READY_FILE
"""
import json
import os
import sys

import duckdb
import pyarrow.dataset as ds

root, stop, ready = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
seen = {"duckdb": {}, "pyarrow": {}}
failed = {"duckdb": 0, "pyarrow": 0}
first = True
while True:
    done = os.path.exists(stop)
    try:
        n = con.execute(
            f"SELECT count(*) FROM read_parquet('{root}/scores/**/*.parquet', hive_partitioning = true)"
        ).fetchone()[0]
        seen["duckdb"][n] = seen["duckdb"].get(n, 0) + 1
    except Exception:
        failed["duckdb"] += 1
    try:
        n = ds.dataset(f"{root}/scores", format="parquet", partitioning="hive").count_rows()
        seen["pyarrow"][n] = seen["pyarrow"].get(n, 0) + 1
    except Exception:
        failed["pyarrow"] += 1
    if first:
        open(ready, "w").close()
        first = False
    if done:
        break
print(json.dumps({"seen": seen, "failed": failed}))
