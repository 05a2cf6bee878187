"""Reads a scorestream output directory the way analysts do, with pyarrow and
DuckDB, and prints what each saw as JSON. Used by tests/cli.rs."""
import json
import sys

import duckdb
import pyarrow.dataset as ds

root = sys.argv[1]
scores = ds.dataset(f"{root}/scores", format="parquet", partitioning="hive")
dead = ds.dataset(f"{root}/dead_letters", format="parquet")
table = scores.to_table()
con = duckdb.connect()
duck_rows = con.execute(f"SELECT count(*) FROM read_parquet('{root}/scores/**/*.parquet', hive_partitioning = true)").fetchone()[0]
duck_ids = con.execute(
    f"SELECT count(DISTINCT event_id) FROM read_parquet('{root}/scores/**/*.parquet', hive_partitioning = true)"
).fetchone()[0]
duck_dead = con.execute(f"SELECT count(*) FROM read_parquet('{root}/dead_letters/*.parquet')").fetchone()[0]
score_range = con.execute(
    f"SELECT min(score), max(score) FROM read_parquet('{root}/scores/**/*.parquet', hive_partitioning = true)"
).fetchone()
print(json.dumps({
    "pyarrow_rows": table.num_rows,
    "pyarrow_dead_letters": dead.count_rows(),
    "pyarrow_columns": table.column_names,
    "pyarrow_score_type": str(table.schema.field("score").type),
    "duckdb_rows": duck_rows,
    "duckdb_distinct_event_ids": duck_ids,
    "duckdb_dead_letters": duck_dead,
    "duckdb_score_min": score_range[0],
    "duckdb_score_max": score_range[1],
}))
