"""Check 7, the query path: the Glue table reads the folder process-ticks writes (the seeds' "Athena
empty: verify the LOCATION"), it has partitions, each inside that folder, and a test query through
``stockpipe query``'s own path (Athena, or DuckDB in this process where there is none) returns a row."""

from __future__ import annotations

from typing import Any

from stockpipe import query
from stockpipe.aws.catalog import QueryError
from stockpipe.aws.errors import AwsError, unsupported
from stockpipe.doctor.model import Finding, Look, ok, problem, skipped, warning
from stockpipe.provision.model import Found

GROUP = "query"
PARTITIONS_READ = 1000


def check(look: Look) -> list[Finding]:
    settings = look.settings
    bucket = look.aws.where.raw_bucket
    wanted = settings.raw_location(bucket)
    if not look.exists("bucket"):
        return [skipped(GROUP, "location", f"the query path not checked: bucket {bucket} missing (see existence)")]
    objects = _raw_objects(look, bucket, settings.raw_prefix)
    findings: list[Finding] = []
    table = f"{settings.athena_database}.{settings.athena_table}"
    if "glue-table" in look.unlookable:
        findings.append(skipped(GROUP, "location", f"Glue table {table} not checked: {look.unlookable['glue-table']}"))
    elif not look.exists("glue-table"):
        findings.append(skipped(GROUP, "location", f"Glue table {table} not checked: it does not exist "
                                "(see existence)"))
    else:
        findings += _catalog(look, table, wanted, objects)
    if look.exists("glue-table") or "glue-table" in look.unlookable:  # no Glue at all: DuckDB answers
        findings.append(_test_query(look, wanted, objects))
    return findings


def _raw_objects(look: Look, bucket: str, prefix: str) -> int:
    """Raw objects under the prefix: 0, 1 or more is all that matters here (one request)."""
    return look.deployment.object_count(bucket, prefix.strip("/") + "/", 2)


def _catalog(look: Look, table: str, wanted: str, objects: int) -> list[Finding]:
    settings = look.settings
    current = look.deployment.glue_table(settings.athena_database, settings.athena_table)
    location = str(current.get("StorageDescriptor", {}).get("Location", ""))
    findings: list[Finding] = []
    if location.rstrip("/") != wanted.rstrip("/"):
        findings.append(problem(GROUP, "location", f"Glue table {table} reads {location or 'no location'}, but "
                                f"process-ticks writes {wanted}: Athena finds nothing there",
                                "stockpipe init points it back", location=location))
    elif (look.found["glue-table"] or Found(None)).drift:  # same place, other columns or partition keys
        findings.append(problem(GROUP, "location", f"Glue table {table} reads {wanted}, but its columns are not the "
                                "raw ticks' (or its partition keys not dt, symbol)", "stockpipe init brings it in line"))
    else:
        findings.append(ok(GROUP, "location", f"Glue table {table} reads {wanted}, where process-ticks writes"))
    partitions: list[dict[str, Any]] = look.deployment.partitions(settings.athena_database, settings.athena_table,
                                                                  PARTITIONS_READ)
    outside = [p for p in partitions if not str(p.get("StorageDescriptor", {}).get("Location", "")).startswith(wanted)]
    more = "+" if len(partitions) >= PARTITIONS_READ else ""
    if not partitions:
        findings.append(problem(GROUP, "partitions", f"Glue table {table} has no partitions while {wanted} holds raw "
                                "objects: Athena reads none of them", "stockpipe query --repair registers them")
                        if objects else warning(GROUP, "partitions", f"Glue table {table} has no partitions yet: "
                                                "nothing has been archived", "stockpipe produce sends ticks"))
    elif outside:
        where = outside[0].get("StorageDescriptor", {}).get("Location", "?")
        findings.append(problem(GROUP, "partitions", f"{len(outside)} of the {len(partitions)}{more} partitions of "
                                f"{table} point outside {wanted} (first: {where})",
                                "stockpipe query --repair registers them where the objects are"))
    else:
        findings.append(ok(GROUP, "partitions", f"Glue table {table} has {len(partitions)}{more} partition(s), all "
                           f"under {wanted}", partitions=len(partitions)))
    return findings


def _test_query(look: Look, wanted: str, objects: int) -> Finding:
    table = look.settings.athena_table
    sql = f'SELECT symbol, "timestamp" FROM {table} LIMIT 1'
    notes: list[str] = []
    try:
        result = query.run(look.aws, sql, "auto", note=notes.append)
    except (QueryError, AwsError) as error:
        if isinstance(error, AwsError) and not error.answered:
            raise  # the target does not answer: the check could not finish
        if isinstance(error, AwsError) and unsupported(error):
            return skipped(GROUP, "test-query", f"no test query: this engine answers neither Athena nor S3 reads "
                           f"({query.one_line(error, 120)})")
        return problem(GROUP, "test-query", f"a test query ({sql}) failed: {query.one_line(error)}",
                       "stockpipe query --sql '…' shows the same error")
    who = result.source + (" (no Athena here)" if notes else "")
    if result.rows:
        return ok(GROUP, "test-query", f"a test query returned a row from {who} in {result.seconds:.1f} s",
                  source=result.source, seconds=round(result.seconds, 3))
    if objects:
        return problem(GROUP, "test-query", f"a test query returned no row from {who} while {wanted} holds raw "
                       "objects", "see the Glue table's location and partitions above; stockpipe query --repair "
                       "registers the partitions")
    return warning(GROUP, "test-query", f"a test query returned no row from {who}: nothing archived yet",
                   "stockpipe produce sends ticks")


__all__ = ["check"]
