"""Raw ticks in S3, one JSON-lines object per batch and partition, under an Athena-friendly prefix:
``<prefix>/dt=YYYY-MM-DD/symbol=XXX/<first timestamp>-<digest>.jsonl``."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence

from botocore.exceptions import ClientError

from stockpipe.aws.catalog import PartitionCatalog
from stockpipe.aws.context import ClientSource
from stockpipe.aws.errors import error_code
from stockpipe.aws.writers import finish_all, writers


class RawArchive:
    """``catalog``: optional; told of each (date, symbol) partition written, for Athena."""

    def __init__(self, aws: ClientSource, bucket: str, prefix: str, catalog: PartitionCatalog | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._s3 = aws.client("s3")
        self._catalog = catalog

    def existing(self, keys: Collection[str]) -> set[str]:
        """Those of ``keys`` that are objects here (a key outside this archive's prefix never is): one
        HEAD each, up to WRITERS in flight."""
        mine = sorted(key for key in keys if key.startswith(self.prefix + "/"))
        if len(mine) <= 1:
            return {key for key in mine if self._exists(key)}
        looks = [writers().submit(self._exists, key) for key in mine]
        finish_all(looks)
        return {key for key, look in zip(mine, looks, strict=True) if look.result()}

    def _exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def put_many(self, objects: Mapping[str, tuple[str, str, list[str]]]) -> None:
        """Up to WRITERS objects in flight (a batch of many symbols writes one object each); their
        partitions are registered once they are all written."""
        def put(key: str, lines: Sequence[str]) -> None:
            body = "".join(line + "\n" for line in lines).encode()
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson")

        if len(objects) > 1:
            finish_all([writers().submit(put, key, lines) for key, (_, _, lines) in objects.items()])
        else:
            for key, (_, _, lines) in objects.items():
                put(key, lines)
        if self._catalog is not None and objects:
            self._catalog.register(sorted({(date, symbol) for date, symbol, _ in objects.values()}))

    def keys(self) -> list[str]:
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + "/"):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def lines(self) -> Iterator[tuple[str, str, str]]:
        """(object key, symbol, raw line) of every archived record, object by object in key order (day,
        symbol, time): what `stockpipe produce --source archive` sends again after a loss."""
        for key in sorted(self.keys()):
            symbol = next((part[len("symbol="):] for part in key.split("/") if part.startswith("symbol=")), "archive")
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
            for line in body.splitlines():
                if line.strip():
                    yield key, symbol, line

    def records(self) -> list[str]:
        """Every archived raw line (reads each object: for tests and small demos)."""
        lines: list[str] = []
        for key in self.keys():
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
            lines.extend(line for line in body.splitlines() if line.strip())
        return lines

    def count_records(self) -> int:
        return len(self.records())
