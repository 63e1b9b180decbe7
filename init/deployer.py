"""The IAM policy of the person deploying: what ``stockpipe plan``, ``init`` (create, update, adopt)
and ``init --teardown`` call, derived from the same resource list they walk (``stack.resources``).
Each kind declares its actions beside the calls (``deploy_actions``, ``deploy_unscoped``, and
``deploy_grants`` where it needs more, in model.py and the kinds' modules); this module only groups
them into statements, one per kind, for the account and region of the target.

Two routes: ``init`` (stockpipe makes every call itself), and ``cloudformation``: a template of the
same resources deployed by CloudFormation with the caller's own permissions (no service role), so
the same resource actions, plus CloudFormation's on this stack and reading and writing the bucket
``aws cloudformation package`` uploads the functions' code to. sts:GetCallerIdentity (who am I?)
needs no permission.
"""

from __future__ import annotations

import json
from typing import Any

from stockpipe.aws.context import AwsContext
from stockpipe.provision.model import Grant, ProvisionError, Run
from stockpipe.provision.stack import resources

ROUTES = ("init", "cloudformation")
# IAM's limit on a customer managed policy: characters, whitespace not counted.
MANAGED_POLICY_LIMIT = 6144
# Where `aws cloudformation package` puts the code, when the caller does not say (`--package-bucket`):
# a name no bucket can have (upper case), for the reader to replace.
PACKAGE_BUCKET_PLACEHOLDER = "REPLACE-WITH-YOUR-PACKAGE-BUCKET"
CLOUDFORMATION_STACK_ACTIONS = (
    "cloudformation:CreateStack", "cloudformation:UpdateStack", "cloudformation:DeleteStack",
    "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents", "cloudformation:DescribeStackResources",
    "cloudformation:CreateChangeSet", "cloudformation:DescribeChangeSet", "cloudformation:ExecuteChangeSet",
    "cloudformation:DeleteChangeSet", "cloudformation:DetectStackDrift", "cloudformation:DescribeStackResourceDrifts",
)
# IAM checks these on "*": the first two name no stack when given a template, a drift detection's
# status is asked by its id, and the page's one-line report of a failed deployment reads DescribeEvents.
CLOUDFORMATION_UNSCOPED = ("cloudformation:ValidateTemplate", "cloudformation:GetTemplateSummary",
                           "cloudformation:DescribeStackDriftDetectionStatus", "cloudformation:DescribeEvents")
ANY = ("*",)


def deployer_policy(aws: AwsContext, route: str = "init", *, package_bucket: str | None = None) -> dict[str, Any]:
    """The policy document, for the account and region ``aws`` targets (its first call: STS)."""
    if route not in ROUTES:
        raise ProvisionError(f"no deployment route {route!r}: one of {', '.join(ROUTES)}")
    if package_bucket is not None and route != "cloudformation":
        raise ProvisionError("a package bucket is CloudFormation's: give it with the cloudformation route")
    run = Run(aws, aws.settings.stack_name, report=lambda line: None)
    named: list[tuple[str, Grant]] = [(_sid(resource.kind, grant.part), grant)
                                      for resource in resources(aws) for grant in resource.deploy_grants(run)]
    if route == "cloudformation":
        where = aws.where
        bucket = package_bucket or PACKAGE_BUCKET_PLACEHOLDER
        named += [("CloudFormationStack", Grant(CLOUDFORMATION_STACK_ACTIONS,
                                                (where.arn("cloudformation", f"stack/{run.stack}/*"),))),
                  ("CloudFormationAnyResource", Grant(CLOUDFORMATION_UNSCOPED, ANY)),
                  ("CloudFormationPackage", Grant(("s3:PutObject", "s3:GetObject"),
                                                  (f"arn:{where.partition}:s3:::{bucket}/*",)))]
    return {"Version": "2012-10-17", "Statement": _statements(named)}


def parts(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The policy as the managed policies IAM takes (each under MANAGED_POLICY_LIMIT), its statements
    in order, as few as fit: attached together they grant exactly what it grants."""
    documents: list[list[dict[str, Any]]] = [[]]
    for statement in policy["Statement"]:
        if documents[-1] and policy_size(_document([*documents[-1], statement])) >= MANAGED_POLICY_LIMIT:
            documents.append([])
        documents[-1].append(statement)
        if policy_size(_document([statement])) >= MANAGED_POLICY_LIMIT:
            raise ProvisionError(f"the statement {statement['Sid']} alone is over IAM's {MANAGED_POLICY_LIMIT} "
                                 "characters for a managed policy")
    return [_document(statements) for statements in documents]


def _document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def policy_size(policy: dict[str, Any]) -> int:
    """Its size as IAM counts it against MANAGED_POLICY_LIMIT (whitespace not counted)."""
    return sum(not c.isspace() for c in json.dumps(policy, separators=(",", ":")))


def _sid(kind: str, part: str) -> str:
    return "".join(word.capitalize() for word in kind.split()) + part


def _statements(named: list[tuple[str, Grant]]) -> list[dict[str, Any]]:
    """One statement per kind (and part), in the list's order: its actions on the ARNs of every
    resource of that kind; the actions no kind can scope, together on "*"; kinds on the same ARNs
    together."""
    merged: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
    for sid, grant in named:
        if grant.resources == ANY and grant.when is None:
            sid = "AnyResource"  # list calls and the like IAM cannot scope to a resource (each kind says why)
        statement = merged.setdefault((sid, () if sid == "AnyResource" else grant.actions),
                                      {"Sid": sid, "Effect": "Allow", "Action": [], "Resource": []})
        _extend(statement["Action"], grant.actions)
        _extend(statement["Resource"], grant.resources)
        if grant.when is not None:
            operator, key, values = grant.when
            _extend(statement.setdefault("Condition", {}).setdefault(operator, {}).setdefault(key, []), values)
    statements: list[dict[str, Any]] = []
    for statement in merged.values():
        # Kinds whose calls name the same ARNs (a topic and its subscriptions) share a statement.
        same = next((s for s in statements if (s["Resource"], s.get("Condition")) ==
                     (statement["Resource"], statement.get("Condition"))), None)
        if same is None:
            statements.append(statement)
        else:
            _extend(same["Action"], tuple(statement["Action"]))
    if len({s["Sid"] for s in statements}) != len(statements):
        raise ValueError("two grants of one kind with different actions need their own parts (Grant.part)")
    for statement in statements:
        for name in ("Action", "Resource"):
            if len(statement[name]) == 1:
                statement[name] = statement[name][0]
    return statements


def _extend(values: list[str], more: tuple[str, ...]) -> None:
    values.extend(value for value in more if value not in values)


__all__ = ["MANAGED_POLICY_LIMIT", "PACKAGE_BUCKET_PLACEHOLDER", "ROUTES", "deployer_policy", "parts", "policy_size"]
