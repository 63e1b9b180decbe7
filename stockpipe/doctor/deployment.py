"""Checks 4 and 3, existence and regions: every resource of init's list under its configured name
(a missing one named, with the near miss that does exist: the seeds' bucket typo), as init would
make it; and one region for all of it: the producer's, the resources' and each function's (its ARN
and the ARNs and URLs in its environment)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from stockpipe.aws.errors import AwsError, translated, unsupported
from stockpipe.doctor.model import Finding, Look, ok, problem, skipped, warning
from stockpipe.provision.functions import Function, Mapping, Role
from stockpipe.provision.messaging import Queue, Topic
from stockpipe.provision.model import TAG_KEY, Action, Resource, decide
from stockpipe.provision.storage import Bucket, GlueDatabase, GlueTable
from stockpipe.provision.streams import Stream
from stockpipe.provision.tables import Table
from stockpipe.settings import REGION_PATTERN

# Regions looked in for the stream when it is not in the configured one (besides AWS_DEFAULT_REGION
# and the profile's): where workshops and accounts usually are.
USUAL_REGIONS = ("us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2",
                 "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
                 "ap-northeast-1", "sa-east-1")
NEAR = 0.8  # how alike a name must be to be offered as "did you mean"
LISTED = 1000  # names of a kind read for the near miss, at most


def existence(look: Look) -> list[Finding]:
    findings: list[Finding] = []
    for resource in look.resources:
        try:
            with translated():
                look.found[resource.key] = resource.find(look.run)
        except AwsError as error:
            if not error.answered or not unsupported(error):
                raise
            look.unlookable[resource.key] = f"this engine has no {resource.kind.split()[0]} API"
            findings.append(skipped("existence", resource.key, f"{resource.kind} {resource.name} not looked for: "
                                    f"{look.unlookable[resource.key]}"))
    lookable = [r for r in look.resources if r.key not in look.unlookable]
    missing = [r for r in lookable if look.found.get(r.key) is None]
    if "stream" in {r.key for r in missing}:
        look.elsewhere = _stream_elsewhere(look)
    # Roles (IAM is global) and the bucket (its name is global) are found from any region: they do not
    # tell where the pipeline is.
    regional = [r for r in lookable if not isinstance(r, Role | Bucket)]
    if regional and all(r in missing for r in regional):
        region = look.aws.region
        fix = (f"they are in {look.elsewhere}: set AWS_REGION={look.elsewhere} (see regions)" if look.elsewhere
               else "stockpipe init creates them (or check AWS_REGION and the names)")
        return [*findings, problem("existence", "all", f"none of the {len(regional)} regional resources of stack "
                                   f"{look.run.stack!r} exist in {region} ({look.aws.target_name})", fix)]
    findings += [_missing(look, resource) for resource in missing]
    if not missing:  # a missing one (a typo in a name) shows in the others' settings too: named first, alone
        findings += [finding for resource in lookable if (finding := _as_made(look, resource)) is not None]
    present = len(lookable) - len(missing)
    if present:
        others = "the other " if missing else "all "
        findings.append(ok("existence", "resources", f"{others}{present} resources of stack {look.run.stack!r} exist "
                           "under their configured names"))
    return findings


def _missing(look: Look, resource: Resource) -> Finding:
    variable = resource.variable
    named = f"no {resource.kind} {resource.name!r} ({variable}, {look.where(variable)}) in {look.aws.region}"
    ours = {r.name for r in look.resources if type(r) is type(resource)}
    near = difflib.get_close_matches(resource.name, [n for n in _names(look, resource) if n not in ours], n=1,
                                     cutoff=NEAR)
    if near:
        return problem("existence", resource.key, f"{named}, but {near[0]!r} exists",
                       f"did you mean {variable}={near[0]}? (or stockpipe init creates {resource.name!r})",
                       near_miss=near[0])
    return problem("existence", resource.key, named, "stockpipe init creates it")


def _as_made(look: Look, resource: Resource) -> Finding | None:
    """A resource that exists but is not as init makes it: another's, or its settings differ. Its code
    and its trigger's state are the code and flow checks' to name."""
    found = look.found.get(resource.key)
    if found is None:
        return None
    step = decide(resource, found, look.run.stack)
    if step.action is Action.REFUSE:
        message, _, fix = step.reason.partition(": ")  # "<label> belongs to ...: set <VARIABLE> to ..."
        return problem("existence", resource.key, message, fix)
    if isinstance(resource, GlueTable):
        return None  # the query check compares its location and columns with what process-ticks writes
    changes = [change for change in step.changes if not change.startswith(("code:", "state:"))]
    if step.action is Action.UPDATE and changes and changes[0].startswith("adopt"):
        return warning("existence", resource.key, f"{resource.kind} {resource.name} is not tagged {TAG_KEY}="
                       f"{look.run.stack}", "stockpipe init adopts it (it is empty)")
    if changes:
        return problem("existence", resource.key, f"{resource.kind} {resource.name} is not as init makes it "
                       f"({'; '.join(changes)})", "stockpipe init brings it in line")
    return None


def _names(look: Look, resource: Resource) -> list[str]:
    """Names of the resources of that kind that exist (for a near miss), or none when unlisted."""
    listing = _LISTINGS.get(type(resource))
    if listing is None:
        return []
    try:
        return listing(look, resource)
    except AwsError:
        return []


def _glue_tables(look: Look, resource: Resource) -> list[str]:
    assert isinstance(resource, GlueTable)
    return look.deployment.glue_table_names(resource.database, LISTED)


_LISTINGS: dict[type[Resource], Callable[[Look, Resource], list[str]]] = {
    Stream: lambda look, _: look.deployment.stream_names(LISTED),
    Table: lambda look, _: look.deployment.table_names(LISTED),
    Bucket: lambda look, _: look.deployment.bucket_names(LISTED),
    Queue: lambda look, _: look.deployment.queue_names(LISTED),
    Topic: lambda look, _: look.deployment.topic_names(LISTED),
    Function: lambda look, _: look.deployment.function_names(LISTED),
    GlueDatabase: lambda look, _: look.deployment.database_names(LISTED),
    GlueTable: _glue_tables,
}


def _stream_elsewhere(look: Look) -> str | None:
    """The region the pipeline's stream is in, when it is not in the configured one (the seeds' note 4:
    the producer in one region, the resources in another)."""
    aws = look.aws
    candidates = [look.environ.get("AWS_DEFAULT_REGION", ""), look.deployment.session_region or "", *USUAL_REGIONS]
    regions = dict.fromkeys(r for r in candidates if r and r != aws.region and REGION_PATTERN.fullmatch(r))
    return look.deployment.stream_region(aws.settings.stream_name, regions)


# -- regions ----------------------------------------------------------------------------------


def regions(look: Look) -> list[Finding]:
    aws = look.aws
    region = aws.region
    variable = "AWS_REGION" if look.environ.get("AWS_REGION") else (
        "AWS_DEFAULT_REGION" if look.environ.get("AWS_DEFAULT_REGION") else "AWS_REGION")
    producer = f"{variable}={region}, {look.where(variable)}"
    if look.elsewhere:
        return [problem("regions", "producer", f"the producer sends to {region} ({producer}), but the pipeline is in "
                        f"{look.elsewhere} (stream {aws.settings.stream_name!r} is there, not in {region})",
                        f"set {variable}={look.elsewhere} (or run stockpipe init to build it in {region})")]
    findings: list[Finding] = []
    seen: list[str] = []
    for label, where, fix in _placed(look):
        if where is None:
            continue
        seen.append(label)
        if where != region:
            findings.append(problem("regions", label, f"{label} is in {where}, the producer ({producer}) and the "
                                    f"pipeline in {region}", fix))
    if not seen:
        return [skipped("regions", "all", f"regions not compared: no resource of the pipeline in {region} to compare "
                        "with (see existence)")]
    if not findings:
        findings.append(ok("regions", "all", f"one region, {region}: the producer's ({producer}) and {len(seen)} "
                           "places of the pipeline's (the resources' ARNs, the bucket's location, each function's "
                           "ARN and environment)"))
    return findings


def _placed(look: Look) -> Iterator[tuple[str, str | None, str]]:
    """(what, the region it is in or None when it does not say, the fix) for each place a region shows."""
    aws = look.aws
    redo = "stockpipe init --teardown, then stockpipe init, makes it again in the configured region"
    for resource in look.resources:
        found = look.found.get(resource.key)
        if found is None:
            continue
        if isinstance(resource, Stream):
            yield f"kinesis stream {resource.name}", _arn_region(found.detail.get("StreamARN")), redo
        elif isinstance(resource, Table):
            yield f"dynamodb table {resource.name}", _arn_region(found.detail.get("TableArn")), redo
        elif isinstance(resource, Queue):
            yield f"sqs queue {resource.name}", _arn_region(look.deployment.queue_arn(found.detail)), redo
        elif isinstance(resource, Bucket):
            yield (f"s3 bucket {resource.name}", look.deployment.bucket_region(resource.name),
                   f"set RAW_BUCKET to a bucket in {aws.region} (or leave it unset: init names one per region)")
        elif isinstance(resource, Function):
            yield from _function_places(look, resource)
        elif isinstance(resource, Mapping):
            trigger = f"trigger {resource.name}"
            yield f"the source of {trigger}", _arn_region(found.detail.get("EventSourceArn")), "stockpipe init makes it again"


def _function_places(look: Look, function: Function) -> Iterator[tuple[str, str | None, str]]:
    answer = look.function(function.key)
    if answer is None:
        return
    configuration = answer.get("Configuration", {})
    yield f"lambda function {function.name}", _arn_region(configuration.get("FunctionArn")), "stockpipe init"
    variables = (configuration.get("Environment") or {}).get("Variables", {})
    fix = "stockpipe init sets its environment again"
    for name, value in sorted(variables.items()):
        value = str(value)
        if name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            yield f"{name} in the environment of {function.name}", value, fix
        elif value.startswith("arn:"):
            yield f"{name} in the environment of {function.name}", _arn_region(value), fix
        elif value.startswith(("http://", "https://")):
            yield f"{name} in the environment of {function.name}", _url_region(value), fix


def _arn_region(arn: object) -> str | None:
    parts = str(arn or "").split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" and parts[3] else None


def _url_region(url: str) -> str | None:
    """The region in an AWS service URL (https://sqs.us-east-1.amazonaws.com/...), if it names one."""
    host = urlsplit(url).hostname or ""
    return next((label for label in host.split(".") if REGION_PATTERN.fullmatch(label)), None)


__all__ = ["existence", "regions"]
