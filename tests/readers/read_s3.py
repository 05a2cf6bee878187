"""Reads a scorestream output on S3 (an S3-compatible server at ENDPOINT)
with pyarrow's own S3 client and prints what it saw as JSON: row counts
(overall, distinct event ids, per event_date/event_hour), dead letters, the
schema, the files a filter on one event_hour reads (partition pruning) and
every file the dataset would read. Credentials come from AWS_ACCESS_KEY_ID
and AWS_SECRET_ACCESS_KEY. Used by tests/object_store.rs.

usage: read_s3.py ENDPOINT BUCKET/PREFIX HOUR
"""
import json
import os
import sys
from urllib.parse import urlparse

import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyarrow import fs

endpoint, root, hour = sys.argv[1], sys.argv[2].rstrip("/"), int(sys.argv[3])
url = urlparse(endpoint)
s3 = fs.S3FileSystem(
    access_key=os.environ["AWS_ACCESS_KEY_ID"],
    secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    region=os.environ.get("AWS_REGION", "us-east-1"),
    endpoint_override=url.netloc,
    scheme=url.scheme,
)


def dataset(table, **kw):
    try:
        return ds.dataset(f"{root}/{table}", filesystem=s3, format="parquet", **kw)
    except FileNotFoundError:
        return None


out = {}
scores = dataset("scores", partitioning="hive")
if scores is None:
    out.update(pyarrow_rows=0, files=[])
else:
    table = scores.to_table()
    out["pyarrow_rows"] = table.num_rows
    out["distinct_event_ids"] = len(pc.unique(table["event_id"]))
    out["schema"] = {f.name: str(f.type) for f in scores.schema}
    by = table.group_by(["event_date", "event_hour"]).aggregate([([], "count_all")])
    out["by_partition"] = {
        f"{d}/{h:02}": n
        for d, h, n in zip(
            by["event_date"].to_pylist(), by["event_hour"].to_pylist(), by["count_all"].to_pylist()
        )
    }
    out["fragments_for_hour"] = len(
        list(scores.get_fragments(filter=ds.field("event_hour") == hour))
    )
    out["files"] = sorted(scores.files)
dead = dataset("dead_letters")
out["dead_letter_rows"] = 0 if dead is None else dead.count_rows()
print(json.dumps(out))
