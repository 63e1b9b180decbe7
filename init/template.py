"""The CloudFormation route: the same resource list init walks (``stack.py``), rendered as a template.

Each resource renders itself (``Resource.template``) from the same attributes ``init`` sets and ``plan``
compares, with a symbolic run: ARNs, queue URLs and the stack's tag are ``${...}`` references here,
which become Ref, Fn::GetAtt and Fn::Sub. What a user names per stack (the stack's tag, the bucket,
the e-mail address) and what depends on the engine (whether it honours partial batch responses) are
parameters whose defaults are the settings'. Nothing is listed twice: a resource added to the list
appears in the template, and a kind without ``template`` cannot be made at all.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from stockpipe import __version__
from stockpipe.aws.context import AwsContext, EngineInfo, Located
from stockpipe.errors import StockpipeError
from stockpipe.provision.functions import Function
from stockpipe.provision.model import Resource, Run
from stockpipe.provision.stack import resources
from stockpipe.settings import BUCKET, EMAIL_PATTERN, STACK, Settings, declared

TEMPLATE_FILE = "template.yaml"
# The first line of every template written here: how a folder is known to be an earlier output.
HEADER = "# stockpipe CloudFormation template"
PSEUDO = ("AWS::AccountId", "AWS::Partition", "AWS::Region", "AWS::StackName", "AWS::URLSuffix")
_REFERENCE = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.([A-Za-z]+))?\}")


class _Plain(yaml.SafeDumper):
    """Each value written out where it is used: no YAML anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class TemplateError(StockpipeError):
    """The template cannot be written where asked; the message says why."""


@dataclass(frozen=True)
class Parameter:
    """A template parameter: what a user names per stack, bound to the setting (``variable``) whose
    value is its default. ``gates``: empty means the resources named by that setting are left out."""

    name: str
    variable: str
    default: str
    description: str
    pattern: str = ""
    allowed: str = ""
    values: tuple[str, ...] = ()
    gates: bool = False
    max_length: int = 0
    environment: bool = False  # the functions' variable of that name takes its value

    @property
    def given(self) -> str:
        """The condition that holds when a value is given."""
        return f"{self.name}Given"

    def declaration(self) -> dict[str, Any]:
        declared: dict[str, Any] = {"Type": "String", "Default": self.default, "Description": self.description}
        if self.pattern:
            declared["AllowedPattern"] = self.pattern
            declared["ConstraintDescription"] = f"must be {self.allowed} (as {self.variable})"
        if self.values:
            declared["AllowedValues"] = list(self.values)
        if self.max_length:
            declared["MaxLength"] = self.max_length
        return declared


def parameters(settings: Settings, engine: EngineInfo) -> tuple[Parameter, ...]:
    """The parameters, each pattern the one the setting is checked with."""
    return (
        Parameter("StackName", "STACK_NAME", settings.stack_name,
                  "The value of the stockpipe:stack tag on every resource (as STACK_NAME for stockpipe init).",
                  f"^{STACK.pattern}$", STACK.allowed, max_length=64),
        Parameter("RawBucket", "RAW_BUCKET", settings.raw_bucket,
                  "The raw archive's bucket; empty: stockpipe-raw-<account id>-<region>.",
                  f"^$|^{BUCKET.pattern}$", BUCKET.allowed, max_length=63),
        Parameter("AlertEmail", "ALERT_EMAIL", settings.alert_email,
                  "Also send alerts to this e-mail address (AWS asks it to confirm); empty: none.",
                  f"^$|^{EMAIL_PATTERN}$", "an e-mail address, or empty", gates=True),
        Parameter("OpsEmail", "OPS_EMAIL", settings.ops_email,
                  "Send the alarms' notifications to this e-mail address (AWS asks it to confirm); empty: none.",
                  f"^$|^{EMAIL_PATTERN}$", "an e-mail address, or empty", gates=True),
        Parameter("PartialBatchResponse", "PARTIAL_BATCH_RESPONSE", "true" if engine.honours_stream_failures
                  else "false", "true where stream triggers honour ReportBatchItemFailures (AWS, LocalStack); "
                  "false on engines that ignore it (MiniStack), so that the handlers quarantine instead.",
                  values=("true", "false"), environment=True),
    )


@dataclass(frozen=True)
class Symbolic(Located):
    """ARNs as references to the template's own resources (so CloudFormation orders them), or built
    from the account, region and partition of wherever the stack is deployed."""

    ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> logical ID

    @property
    def region(self) -> str:
        return "${AWS::Region}"

    @property
    def raw_bucket(self) -> str:
        return "${RawBucketName}"

    def _ref(self, kind: str, name: str, attribute: str = "") -> str | None:
        logical = self.ids.get((kind, name))
        if logical is None:
            return None
        return f"${{{logical}.{attribute}}}" if attribute else f"${{{logical}}}"

    @property
    def stream_arn(self) -> str:
        return self._ref("kinesis stream", self.settings.stream_name, "Arn") or super().stream_arn

    def table_arn(self, name: str) -> str:
        return self._ref("dynamodb table", name, "Arn") or super().table_arn(name)

    def table_stream_arn(self, name: str) -> str | None:
        return self._ref("dynamodb table", name, "StreamArn")

    def queue_arn(self, name: str) -> str:
        return self._ref("sqs queue", name, "Arn") or super().queue_arn(name)

    def arn(self, service: str, resource: str, *, regional: bool = True, account: bool = True) -> str:
        """A topic's ARN is its Ref."""
        topic = self._ref("sns topic", resource) if service == "sns" else None
        return topic or super().arn(service, resource, regional=regional, account=account)

    def function_arn(self, name: str) -> str:
        return self._ref("lambda function", name, "Arn") or super().function_arn(name)

    def role_arn(self, name: str) -> str:
        return self._ref("iam role", name, "Arn") or super().role_arn(name)


class TemplateContext(AwsContext):
    """An AwsContext that reaches no target: what the resources ask of one is answered symbolically."""

    @cached_property
    def where(self) -> Symbolic:
        return Symbolic("${AWS::AccountId}", "${AWS::Partition}", self.settings)

    def queue_url(self, name: str) -> str:
        return self.where._ref("sqs queue", name) or f"(no queue {name} in the template)"

    @cached_property
    def engine(self) -> EngineInfo:
        return EngineInfo("CloudFormation", honours_stream_failures=True)  # PartialBatchResponse decides


@dataclass
class Rendered:
    """A template and what it needs beside it: the functions' zips, by file name."""

    body: dict[str, Any]
    packages: dict[str, bytes]
    listed: list[Resource]

    @property
    def resource_count(self) -> int:
        return len(self.body["Resources"])

    def text(self) -> str:
        return f"{HEADER} (stockpipe {__version__}): generated by `stockpipe template` from init/stack.py.\n" + \
            yaml.dump(self.body, Dumper=_Plain, sort_keys=False, width=120)


def render(settings: Settings, engine: EngineInfo) -> Rendered:
    """The template of the stack ``settings`` describe (INGEST, names, retention, ...)."""
    declared = parameters(settings, engine)
    gated = {p.variable: p for p in declared if p.gates}
    named: dict[str, Any] = {_field(settings, p.variable): f"${{{p.name}}}" for p in gated.values()}
    symbolic = dataclasses.replace(settings, **named)
    aws = TemplateContext(symbolic)
    run = Run(aws, "${StackName}", report=lambda _: None)
    listed = resources(aws)
    aws.where.ids.update({(r.kind, r.name): r.logical_id for r in listed})
    by_key = {r.key: r for r in listed}
    # The bucket's name is a parameter or derived from the account; everything else names it by
    # referring to the bucket (and so is made after it).
    bucket = aws.where.ids[("s3 bucket", aws.where.raw_bucket)]
    body: dict[str, Any] = {}
    for resource in listed:
        for logical, made in resource.template(run).items():
            if logical != bucket:
                made = _replaced(made, aws.where.raw_bucket, f"${{{bucket}}}")
            if logical in body:
                raise ValueError(f"two resources of the list render {logical}")
            if isinstance(resource, Function):
                variables = made["Properties"]["Environment"]["Variables"]
                variables.update({p.variable: f"${{{p.name}}}" for p in declared if p.environment})
            referenced = {m.group(1) for m in _REFERENCE.finditer(repr(made))}
            after = [by_key[key].logical_id for key in resource.depends_on
                     if key in by_key and by_key[key].logical_id not in referenced]
            if resource.variable in gated:
                made["Condition"] = gated[resource.variable].given
            body[logical] = {**made, **({"DependsOn": after} if after else {})}
    given = next(p for p in declared if p.variable == "RAW_BUCKET")
    derived = dataclasses.replace(settings, region="${AWS::Region}", raw_bucket="").raw_bucket_for("${AWS::AccountId}")
    names = {"RawBucketName": {"Fn::If": [given.given, {"Ref": given.name}, {"Fn::Sub": derived}]}}
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"stockpipe {__version__}: the real-time stock pipeline, the stack `stockpipe init` makes "
                       f"(INGEST={settings.ingest}).",
        "Parameters": {p.name: p.declaration() for p in declared},
        "Conditions": {p.given: {"Fn::Not": [{"Fn::Equals": [{"Ref": p.name}, ""]}]}
                       for p in declared if p.gates or p.variable == "RAW_BUCKET"},
        "Resources": _intrinsic(body, names),
        "Outputs": _intrinsic({
            "RawBucketName": {"Description": "The raw archive's bucket", "Value": f"${{{bucket}}}"},
            "TopicArn": {"Description": "The alerts topic", "Value": aws.where.topic_arn},
        }, names),
    }
    packages = {r.zip_name: r.package.data for r in listed if isinstance(r, Function)}
    return Rendered(template, packages, listed)


def _field(settings: Settings, variable: str) -> str:
    for item in dataclasses.fields(settings):
        if declared(item).name == variable:
            return item.name
    raise KeyError(variable)


def _replaced(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {key: _replaced(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_replaced(item, old, new) for item in value]
    return value.replace(old, new) if isinstance(value, str) else value


def _intrinsic(value: Any, names: Mapping[str, Any]) -> Any:
    """``${Name}`` strings to Ref, ``${Name.Attribute}`` to Fn::GetAtt, anything else with a ``${`` to
    Fn::Sub (with ``names``, local names such as the bucket's, when it uses them)."""
    if isinstance(value, dict):
        return {key: _intrinsic(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_intrinsic(item, names) for item in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole and whole.group(1) in names and not whole.group(2):
        return names[whole.group(1)]
    if whole and whole.group(2):
        return {"Fn::GetAtt": [whole.group(1), whole.group(2)]}
    if whole:
        return {"Ref": whole.group(1)}
    used = {m.group(1) for m in _REFERENCE.finditer(value)} & set(names)
    return {"Fn::Sub": [value, {name: names[name] for name in sorted(used)}] if used else value}


def write(rendered: Rendered, out: Path) -> list[Path]:
    """The template and the zips into ``out``: a new or empty folder, or one an earlier run wrote."""
    if out.exists() and not out.is_dir():
        raise TemplateError(f"{out} is a file, not a folder: give --out a folder")
    present = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    earlier = (out / TEMPLATE_FILE).is_file() and (out / TEMPLATE_FILE).read_text().startswith(HEADER)
    if present and not earlier:
        raise TemplateError(f"{out} is not empty and holds no stockpipe template ({', '.join(present[:3])}"
                            f"{', ...' if len(present) > 3 else ''}): give --out a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    written = [out / TEMPLATE_FILE]
    written[0].write_text(rendered.text())
    for name, data in rendered.packages.items():
        (out / name).write_bytes(data)
        written.append(out / name)
    return written


__all__ = ["HEADER", "TEMPLATE_FILE", "Parameter", "Rendered", "TemplateError", "parameters", "render", "write"]
