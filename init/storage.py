"""Where raw ticks rest: the S3 bucket (encrypted, TLS only, never public, with lifecycle rules on our
prefixes) and the Glue catalog over it that Athena queries (the seeds' ``stock_data.stock_data_table``)."""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from stockpipe.aws import catalog
from stockpipe.aws.errors import error_code, unsupported
from stockpipe.provision.model import TAG_KEY, Found, Grant, ProvisionError, Resource, Run, Template

WAITER = {"Delay": 1, "MaxAttempts": 60}
_MISSING_BUCKET = {"404", "NoSuchBucket", "NotFound"}
PUBLIC_ACCESS_BLOCK = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                       "RestrictPublicBuckets": True}
ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


# Lifecycle rules whose ID starts so are ours (init replaces them); any other rule of the bucket is kept.
RULE_PREFIX = "stockpipe-"


@dataclass(frozen=True)
class Lifecycle:
    """One lifecycle rule of ours, on one prefix only (never the whole bucket): objects move to
    Glacier after ``glacier_days`` and are deleted after ``expire_days`` (None: never)."""

    id: str
    prefix: str
    glacier_days: int | None = None
    expire_days: int | None = None

    def rule(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"ID": self.id, "Filter": {"Prefix": self.prefix}, "Status": "Enabled"}
        if self.glacier_days is not None:
            rule["Transitions"] = [{"Days": self.glacier_days, "StorageClass": "GLACIER"}]
        if self.expire_days is not None:
            rule["Expiration"] = {"Days": self.expire_days}
        return rule

    def template(self) -> dict[str, Any]:
        """The rule as CloudFormation's LifecycleConfiguration takes it."""
        rule: dict[str, Any] = {"Id": self.id, "Prefix": self.prefix, "Status": "Enabled"}
        if self.glacier_days is not None:
            rule["Transitions"] = [{"TransitionInDays": self.glacier_days, "StorageClass": "GLACIER"}]
        if self.expire_days is not None:
            rule["ExpirationInDays"] = self.expire_days
        return rule

    @property
    def shown(self) -> str:
        moved = f"Glacier after {self.glacier_days} days" if self.glacier_days is not None else "no Glacier"
        kept = f"deleted after {self.expire_days} days" if self.expire_days is not None else "kept"
        return f"{moved}, {kept}"

    @classmethod
    def of(cls, rule: dict[str, Any]) -> Lifecycle:
        """A rule as GetBucketLifecycleConfiguration answers it, in our terms (a rule we did not write,
        or one changed by hand, shows as what it does to the prefix)."""
        prefix = (rule.get("Filter") or {}).get("Prefix", rule.get("Prefix", ""))
        glacier = [t.get("Days") for t in rule.get("Transitions", []) if t.get("StorageClass") == "GLACIER"]
        others = [t for t in rule.get("Transitions", []) if t.get("StorageClass") != "GLACIER"]
        expire = (rule.get("Expiration") or {}).get("Days")
        disabled = rule.get("Status", "Enabled") != "Enabled"
        return cls(str(rule.get("ID", "")), f"{prefix}{' (disabled)' if disabled else ''}{' (+ other moves)' if others else ''}",
                   glacier[0] if glacier else None, expire)


def lifecycle_drift(current: Sequence[dict[str, Any]] | None, wanted: Sequence[Lifecycle]) -> list[str]:
    """How our rules among ``current`` (None: the bucket has no lifecycle configuration) differ from
    ``wanted``, one line per rule: ``lifecycle <prefix>: now -> wanted``."""
    ours = {rule.get("ID", ""): Lifecycle.of(rule) for rule in current or () if str(rule.get("ID", "")).startswith(RULE_PREFIX)}
    drift = []
    for want in wanted:
        have = ours.pop(want.id, None)
        if have is None:
            drift.append(f"lifecycle {want.prefix}: none -> {want.shown}")
        elif have != want:
            drift.append(f"lifecycle {want.prefix}: {have.shown}{'' if have.prefix == want.prefix else f' on {have.prefix}'}"
                         f" -> {want.shown}")
    drift += [f"lifecycle {have.prefix}: {have.shown} -> none" for have in ours.values()]
    return drift


def lifecycle_rules(current: Sequence[dict[str, Any]] | None, wanted: Sequence[Lifecycle]) -> list[dict[str, Any]]:
    """The bucket's rules once ours are as ``wanted``: the rules of others kept as they are."""
    others = [rule for rule in current or () if not str(rule.get("ID", "")).startswith(RULE_PREFIX)]
    return [*others, *(want.rule() for want in wanted)]


def tls_only_policy(bucket_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "TLSOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    }


class Bucket(Resource):
    """``prefixes``: the only folders that are ours inside it; teardown deletes those, then the
    bucket only if nothing else is left in it."""

    kind = "s3 bucket"
    # S3 names its actions apart from its calls: HeadBucket and ListObjectsV2 are s3:ListBucket,
    # Get/PutBucketEncryption s3:Get/PutEncryptionConfiguration, Get/PutPublicAccessBlock
    # s3:Get/PutBucketPublicAccessBlock, DeleteObjects s3:DeleteObject (on each object).
    deploy_actions = (
        "s3:ListBucket", "s3:GetBucketTagging", "s3:GetEncryptionConfiguration", "s3:GetBucketPolicy",
        "s3:GetBucketPublicAccessBlock",  # find (ListBucket: the waiters too)
        "s3:CreateBucket", "s3:PutBucketTagging", "s3:PutBucketPublicAccessBlock", "s3:PutEncryptionConfiguration",
        "s3:PutBucketPolicy",  # create and update
        "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration",  # find, create and update: its rules
        "s3:DeleteBucket",  # teardown
    )
    object_actions = ("s3:DeleteObject",)  # teardown: our prefixes' objects, and only those

    def __init__(self, key: str, name: str, variable: str, *, prefixes: tuple[str, ...],
                 lifecycle: tuple[Lifecycle, ...] = ()) -> None:
        """``lifecycle``: our rules (each on one of our prefixes); a prefix without one is kept."""
        super().__init__(key, name, variable)
        self.prefixes, self.lifecycle = prefixes, lifecycle

    def deploy_arns(self, run: Run) -> tuple[str, ...]:
        return (run.aws.where.bucket_arn(),)

    def deploy_grants(self, run: Run) -> list[Grant]:
        objects = tuple(run.aws.where.bucket_arn(f"/{prefix}/*") for prefix in self.prefixes)
        return [*super().deploy_grants(run), Grant(self.object_actions, objects, part="Objects")]

    def settings(self, run: Run) -> dict[str, object]:
        region = run.aws.region
        ruled = {rule.prefix for rule in self.lifecycle}
        return {"location constraint": region if region != "us-east-1" else "none (us-east-1)",
                "encryption": "SSE-S3 (AES256) by default", "policy": "deny non-TLS requests",
                "public access": "blocked", "ours": ", ".join(p + "/" for p in self.prefixes),
                "lifecycle": [f"{rule.prefix}: {rule.shown}" for rule in self.lifecycle]
                + [f"{p}/: kept" for p in self.prefixes if p + "/" not in ruled]}

    def find(self, run: Run) -> Found | None:
        s3 = run.aws.client("s3")
        try:
            s3.head_bucket(Bucket=self.name)
        except ClientError as error:
            code = error_code(error)
            if code in _MISSING_BUCKET:
                return None
            if code in ("403", "AccessDenied", "Forbidden"):
                return Found(None, conflict=f"{self.label} belongs to another account (bucket names are global): "
                             f"set {self.variable} to a unique name")
            raise
        owner = self._tags(run).get(TAG_KEY)
        empty = True if owner is not None else not s3.list_objects_v2(Bucket=self.name, MaxKeys=1).get("KeyCount")
        return Found(owner, empty=empty, drift=tuple(self._drift(run)))

    def _tags(self, run: Run) -> dict[str, str]:
        try:
            tag_set = run.aws.client("s3").get_bucket_tagging(Bucket=self.name).get("TagSet", [])
        except ClientError as error:
            if error_code(error) in ("NoSuchTagSet", "NoSuchTagSetError") or unsupported(error):
                return {}
            raise
        return {t["Key"]: t["Value"] for t in tag_set}

    def _drift(self, run: Run) -> list[str]:
        s3, drift = run.aws.client("s3"), []
        checks: tuple[tuple[str, Callable[[], Any], tuple[str, ...]], ...] = (
            ("encryption", lambda: s3.get_bucket_encryption(Bucket=self.name)["ServerSideEncryptionConfiguration"],
             ("ServerSideEncryptionConfigurationNotFoundError",)),
            ("policy", lambda: json.loads(s3.get_bucket_policy(Bucket=self.name)["Policy"]), ("NoSuchBucketPolicy",)),
            ("public access block",
             lambda: s3.get_public_access_block(Bucket=self.name)["PublicAccessBlockConfiguration"],
             ("NoSuchPublicAccessBlockConfiguration",)),
        )
        wanted = {"encryption": None, "policy": tls_only_policy(run.aws.where.bucket_arn()),
                  "public access block": PUBLIC_ACCESS_BLOCK}
        for name, read, absent in checks:
            try:
                current = read()
            except ClientError as error:
                if unsupported(error):
                    continue  # an engine without it: nothing to compare, nothing to set
                if error_code(error) not in absent:
                    raise
                drift.append(f"{name}: none -> set")
                continue
            if wanted[name] is not None and current != wanted[name]:
                drift.append(f"{name}: differs -> ours")
        try:
            drift += lifecycle_drift(self._rules(run), self.lifecycle)
        except ClientError as error:
            if not unsupported(error):
                raise
        return drift

    def _rules(self, run: Run) -> list[dict[str, Any]] | None:
        """The bucket's lifecycle rules; None when it has no lifecycle configuration."""
        try:
            return list(run.aws.client("s3").get_bucket_lifecycle_configuration(Bucket=self.name).get("Rules", []))
        except ClientError as error:
            if error_code(error) == "NoSuchLifecycleConfiguration":
                return None
            raise

    def _put_lifecycle(self, run: Run) -> None:
        s3 = run.aws.client("s3")
        current = self._rules(run)
        rules = lifecycle_rules(current, self.lifecycle)
        if rules:
            s3.put_bucket_lifecycle_configuration(Bucket=self.name, LifecycleConfiguration={"Rules": rules})
        elif current is not None:
            s3.delete_bucket_lifecycle(Bucket=self.name)

    def create(self, run: Run) -> None:
        s3 = run.aws.client("s3")
        request: dict[str, Any] = {"Bucket": self.name}
        if run.aws.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": run.aws.region}
        try:
            s3.create_bucket(**request)
        except ClientError as error:
            if error_code(error) == "BucketAlreadyExists":
                raise ProvisionError(f"{self.label}: the name is taken by another account: set {self.variable} "
                                     "to a unique name") from None
            if error_code(error) != "BucketAlreadyOwnedByYou":
                raise
        s3.get_waiter("bucket_exists").wait(Bucket=self.name, WaiterConfig=WAITER)
        self._configure(run, [])

    def update(self, run: Run, found: Found) -> None:
        self._configure(run, list(self._tags(run).items()))

    def _configure(self, run: Run, other_tags: list[tuple[str, str]]) -> None:
        s3 = run.aws.client("s3")
        tags = dict(other_tags) | run.tags
        steps: tuple[tuple[str, Callable[[], Any]], ...] = (
            ("tags", lambda: s3.put_bucket_tagging(
                Bucket=self.name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})),
            # Raw market data is nobody's public business.
            ("public access block", lambda: s3.put_public_access_block(
                Bucket=self.name, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)),
            ("encryption", lambda: s3.put_bucket_encryption(
                Bucket=self.name, ServerSideEncryptionConfiguration=ENCRYPTION)),
            ("policy", lambda: s3.put_bucket_policy(
                Bucket=self.name, Policy=json.dumps(tls_only_policy(run.aws.where.bucket_arn())))),
            ("lifecycle", lambda: self._put_lifecycle(run)),
        )
        for name, call in steps:
            try:
                call()
            except ClientError as error:
                if not unsupported(error):
                    raise
                run.note(f"{self.label}: this engine has no bucket {name}; skipped")

    def delete(self, run: Run, found: Found) -> str:
        s3 = run.aws.client("s3")
        removed = 0
        for prefix in self.prefixes:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix + "/"):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    s3.delete_objects(Bucket=self.name, Delete={"Objects": keys, "Quiet": True})
                    removed += len(keys)
        left = s3.list_objects_v2(Bucket=self.name, MaxKeys=1000).get("KeyCount", 0)
        if left:
            return (f"kept: {left}{'+' if left == 1000 else ''} object(s) outside "
                    f"{', '.join(p + '/' for p in self.prefixes)} ({removed} of ours deleted)")
        s3.delete_bucket(Bucket=self.name)
        return f"deleted ({removed} object(s))"

    def wait_gone(self, run: Run) -> None:
        run.aws.client("s3").get_waiter("bucket_not_exists").wait(Bucket=self.name, WaiterConfig=WAITER)

    def template(self, run: Run) -> Template:
        """The bucket, and its policy (a resource of its own in CloudFormation). Deleting the stack
        deletes the bucket only when it is empty, as AWS does for any bucket."""
        return {
            self.logical_id: {"Type": "AWS::S3::Bucket", "Properties": {
                "BucketName": self.name, "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                    # The API's ApplyServerSideEncryptionByDefault, as CloudFormation names it.
                    {"ServerSideEncryptionByDefault": rule["ApplyServerSideEncryptionByDefault"]}
                    for rule in ENCRYPTION["Rules"]]},
                "PublicAccessBlockConfiguration": PUBLIC_ACCESS_BLOCK, "Tags": run.tag_list,
                **({"LifecycleConfiguration": {"Rules": [rule.template() for rule in self.lifecycle]}}
                   if self.lifecycle else {})}},
            f"{self.logical_id}Policy": {"Type": "AWS::S3::BucketPolicy", "Properties": {
                "Bucket": f"${{{self.logical_id}}}", "PolicyDocument": tls_only_policy(run.aws.where.bucket_arn())}},
        }


class _Glue(Resource):
    """Glue has no tags on tables; ownership is a parameter of the database and of the table."""

    @abstractmethod
    def _find(self, run: Run) -> Found | None: ...

    def find(self, run: Run) -> Found | None:
        try:
            return self._find(run)
        except ClientError as error:
            if error_code(error) == "EntityNotFoundException":
                return None
            raise


class GlueDatabase(_Glue):
    kind = "glue database"
    deploy_actions = (
        "glue:GetDatabase", "glue:GetTables",  # find; GetTables: is an untagged one empty? teardown: any not ours?
        "glue:CreateDatabase", "glue:UpdateDatabase",  # create; update: adopt an empty one
        "glue:DeleteDatabase",  # teardown
    )

    def deploy_arns(self, run: Run) -> tuple[str, ...]:
        """Glue authorises a database's calls on the catalog and the database; GetTables and
        DeleteDatabase on its tables (and functions) too."""
        where = run.aws.where
        return (where.arn("glue", "catalog"), where.arn("glue", f"database/{self.name}"),
                where.arn("glue", f"table/{self.name}/*"), where.arn("glue", f"userDefinedFunction/{self.name}/*"))

    def settings(self, run: Run) -> dict[str, object]:
        return {"for": "Athena over the raw archive"}

    def _find(self, run: Run) -> Found | None:
        glue = run.aws.client("glue")
        database = glue.get_database(Name=self.name)["Database"]
        owner = (database.get("Parameters") or {}).get(TAG_KEY)
        empty = True if owner else not glue.get_tables(DatabaseName=self.name).get("TableList")
        return Found(owner, empty=empty, detail=database)

    def create(self, run: Run) -> None:
        run.aws.client("glue").create_database(DatabaseInput=self._input(run, {}))

    def _input(self, run: Run, parameters: dict[str, str]) -> dict[str, Any]:
        return {"Name": self.name, "Description": "stockpipe: raw ticks for Athena",
                "Parameters": parameters | run.tags}

    def update(self, run: Run, found: Found) -> None:
        run.aws.client("glue").update_database(
            Name=self.name, DatabaseInput=self._input(run, dict(found.detail.get("Parameters") or {})))

    def template(self, run: Run) -> Template:
        return {self.logical_id: {"Type": "AWS::Glue::Database", "Properties": {
            "CatalogId": "${AWS::AccountId}", "DatabaseInput": self._input(run, {})}}}

    def delete(self, run: Run, found: Found) -> str:
        glue = run.aws.client("glue")
        others = [t["Name"] for t in glue.get_tables(DatabaseName=self.name).get("TableList", [])]
        if others:
            return f"kept: holds table(s) that are not ours: {', '.join(others)}"
        glue.delete_database(Name=self.name)
        return "deleted"


class GlueTable(_Glue):
    kind = "glue table"
    deploy_actions = ("glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable")

    def deploy_arns(self, run: Run) -> tuple[str, ...]:
        """Glue authorises a table's calls on the catalog, its database and the table."""
        where = run.aws.where
        return (where.arn("glue", "catalog"), where.arn("glue", f"database/{self.database}"),
                where.arn("glue", f"table/{self.database}/{self.name}"))

    def __init__(self, key: str, name: str, variable: str, *, database: str, location: str) -> None:
        super().__init__(key, name, variable, depends_on=("catalog",))
        self.database, self.location = database, location

    def settings(self, run: Run) -> dict[str, object]:
        return {"database": self.database, "location": self.location, "format": "JSON lines",
                "partitions": "dt, symbol"}

    def _input(self, run: Run) -> dict[str, Any]:
        table = catalog.table_input(self.name, self.location)
        table["Parameters"] = {**table["Parameters"], **run.tags}
        return table

    def _find(self, run: Run) -> Found | None:
        current = run.aws.client("glue").get_table(DatabaseName=self.database, Name=self.name)["Table"]
        owner = (current.get("Parameters") or {}).get(TAG_KEY)
        wanted = self._input(run)
        have = (current.get("StorageDescriptor", {}).get("Columns"),
                current.get("StorageDescriptor", {}).get("Location"), current.get("PartitionKeys"))
        want = (wanted["StorageDescriptor"]["Columns"], wanted["StorageDescriptor"]["Location"],
                wanted["PartitionKeys"])
        drift = () if _names_and_types(have) == _names_and_types(want) else ("columns or location -> ours",)
        # A table's rows live in S3: an untagged table of this name is someone's view, never adopted.
        return Found(owner, empty=False, drift=drift)

    def create(self, run: Run) -> None:
        run.aws.client("glue").create_table(DatabaseName=self.database, TableInput=self._input(run))

    def update(self, run: Run, found: Found) -> None:
        run.aws.client("glue").update_table(DatabaseName=self.database, TableInput=self._input(run))

    def template(self, run: Run) -> Template:
        return {self.logical_id: {"Type": "AWS::Glue::Table", "Properties": {
            "CatalogId": "${AWS::AccountId}", "DatabaseName": self.database, "TableInput": self._input(run)}}}

    def delete(self, run: Run, found: Found) -> str:
        run.aws.client("glue").delete_table(DatabaseName=self.database, Name=self.name)
        return "deleted (the raw objects stay in S3 until the bucket goes)"


def _names_and_types(value: Any) -> Any:
    """Only the names and types of columns and partition keys: Glue adds fields of its own (Comment)."""
    if isinstance(value, (list, tuple)):
        return [_names_and_types(v) for v in value]
    if isinstance(value, dict):
        return {k: _names_and_types(v) for k, v in value.items() if k in ("Name", "Type")}
    return value
