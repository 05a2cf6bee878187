"""Reads a scorestream drift table the way analysts do, with pyarrow and
DuckDB, and prints what each saw as JSON. Used by tests/drift.rs."""
import json
import sys

import duckdb
import pyarrow.dataset as ds

root = sys.argv[1]
table = ds.dataset(f"{root}/drift", format="parquet").to_table()
con = duckdb.connect()
glob = f"read_parquet('{root}/drift/*.parquet')"
duck_rows = con.execute(f"SELECT count(*) FROM {glob}").fetchone()[0]
breached = con.execute(
    f"SELECT DISTINCT feature FROM {glob} WHERE len(breached) > 0 ORDER BY feature"
).fetchall()
print(json.dumps({
    "pyarrow_rows": table.num_rows,
    "pyarrow_columns": table.column_names,
    "duckdb_rows": duck_rows,
    "duckdb_breached_features": [f for (f,) in breached],
}))
