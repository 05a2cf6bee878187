"""Reads a scorestream output directory's Hive-partitioned scores with DuckDB
and pyarrow and prints what each saw as JSON: row counts (overall and per
event_date/event_hour), the schema, how many files a filter on one
event_hour reads (partition pruning), and the files' compression, statistics
and row groups. Used by tests/output.rs.

usage: read_partitions.py OUTPUT_DIR HOUR
"""
import json
import re
import sys

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq

root, hour = sys.argv[1], int(sys.argv[2])
glob = f"read_parquet('{root}/scores/**/*.parquet', hive_partitioning = true)"
con = duckdb.connect()
one = lambda sql: con.execute(sql).fetchone()

out = {
    "duckdb_rows": one(f"SELECT count(*) FROM {glob}")[0],
    "duckdb_distinct_event_ids": one(f"SELECT count(DISTINCT event_id) FROM {glob}")[0],
    "duckdb_by_partition": {
        f"{d}/{h:02}": n
        for d, h, n in con.execute(
            f"SELECT CAST(event_date AS VARCHAR), event_hour, count(*) FROM {glob} GROUP BY 1, 2"
        ).fetchall()
    },
    "duckdb_rows_for_hour": one(f"SELECT count(*) FROM {glob} WHERE event_hour = {hour}")[0],
}
if out["duckdb_rows"]:
    out["duckdb_partition_types"] = list(
        one(f"SELECT typeof(event_date), typeof(event_hour) FROM {glob} LIMIT 1")
    )
    plan = con.execute(
        f"EXPLAIN ANALYZE SELECT count(*) FROM {glob} WHERE event_hour = {hour}"
    ).fetchall()[0][1]
    m = re.search(r"Total Files Read:\s*(\d+)", plan)
    out["duckdb_files_read_for_hour"] = int(m.group(1)) if m else plan

dataset = ds.dataset(f"{root}/scores", format="parquet", partitioning="hive")
table = dataset.to_table()
out["pyarrow_rows"] = table.num_rows
out["pyarrow_schema"] = {f.name: str(f.type) for f in dataset.schema}
by = table.group_by(["event_date", "event_hour"]).aggregate([([], "count_all")])
out["pyarrow_by_partition"] = {
    f"{d}/{h:02}": n
    for d, h, n in zip(
        by["event_date"].to_pylist(), by["event_hour"].to_pylist(), by["count_all"].to_pylist()
    )
}
out["pyarrow_fragments_for_hour"] = len(
    list(dataset.get_fragments(filter=ds.field("event_hour") == hour))
)

files = dataset.files
if files:
    compressions, stats, group_rows, groups = set(), True, 0, 0
    for f in files:
        meta = pq.ParquetFile(f).metadata
        groups = max(groups, meta.num_row_groups)
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            group_rows = max(group_rows, rg.num_rows)
            for c in range(rg.num_columns):
                col = rg.column(c)
                compressions.add(col.compression)
                if col.path_in_schema == "score":
                    stats = stats and col.is_stats_set and col.statistics.has_min_max
    out["compression"] = "/".join(sorted(compressions))
    out["statistics"] = stats
    out["max_row_group_rows"] = group_rows
    out["max_row_groups"] = groups
print(json.dumps(out))
