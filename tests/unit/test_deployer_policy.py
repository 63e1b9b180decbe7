"""The deployer's policy as a document (init/deployer.py): valid, under IAM's size limit for one
managed policy on every configuration and route, readable (one statement per kind, named), and for
the account the target answers for. What it allows is checked against recorded calls in
tests/e2e/test_deployer.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stockpipe.cli import build_parser
from stockpipe.provision import ProvisionError
from stockpipe.provision.deployer import (
    MANAGED_POLICY_LIMIT,
    PACKAGE_BUCKET_PLACEHOLDER,
    ROUTES,
    deployer_policy,
    parts,
    policy_size,
)
from tests.recording import ACCOUNT, aws_target

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATIONS = [{}, {"INGEST": "sqs"}, {"ALERT_EMAIL": "ops@example.com"},
                  {"INGEST": "sqs", "ALERT_EMAIL": "ops@example.com"}]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("env", CONFIGURATIONS, ids=lambda env: "+".join(env.values()) or "default")
def test_the_policy_is_valid_json_in_parts_under_the_managed_policy_limit_with_named_statements(env, route):
    aws, recorder = aws_target(env)
    policy = deployer_policy(aws, route)
    assert recorder.calls == []  # the account is the target's (here given); nothing else is asked
    assert json.loads(json.dumps(policy)) == policy and policy["Version"] == "2012-10-17"
    split = parts(policy)
    assert all(policy_size(part) < MANAGED_POLICY_LIMIT for part in split), [policy_size(p) for p in split]
    assert [s for part in split for s in part["Statement"]] == policy["Statement"]  # the same grants, in order
    assert len(split) <= 2
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(set(sids)) == len(sids) and all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids)
    for statement in policy["Statement"]:
        for arn in [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]:
            assert arn == "*" or arn.startswith("arn:aws:"), arn
            assert ":000000000000:" not in arn and (ACCOUNT in arn or ":::" in arn or arn == "*"), arn


def test_it_follows_the_configuration_stream_or_queue():
    def actions(env: dict[str, str]) -> str:
        return json.dumps(deployer_policy(aws_target(env)[0]))

    assert "kinesis:CreateStream" in actions({}) and "kinesis:" not in actions({"INGEST": "sqs"})
    assert "stock-market-locks" in actions({"INGEST": "sqs"}) and "stock-market-locks" not in actions({})


def test_the_cloudformation_route_adds_the_stack_and_the_package_bucket():
    aws, _ = aws_target()
    init, stack = deployer_policy(aws), deployer_policy(aws, "cloudformation")
    added = {s["Sid"]: s for s in stack["Statement"]}
    for statement in init["Statement"]:  # the same resource actions (the unscoped ones with CloudFormation's)
        same = added.pop(statement["Sid"])
        assert same["Resource"] == statement["Resource"] and set(statement["Action"]) <= set(same["Action"])
    anywhere = next(s for s in stack["Statement"] if s["Sid"] == "AnyResource")
    assert {"cloudformation:ValidateTemplate", "cloudformation:GetTemplateSummary"} <= set(anywhere["Action"])
    assert added["CloudFormationStack"]["Resource"] == f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/stockpipe/*"
    assert "cloudformation:ExecuteChangeSet" in added["CloudFormationStack"]["Action"]
    assert added["CloudFormationPackage"]["Resource"] == f"arn:aws:s3:::{PACKAGE_BUCKET_PLACEHOLDER}/*"
    named = deployer_policy(aws, "cloudformation", package_bucket="my-artifacts")
    assert named["Statement"][-1]["Resource"] == "arn:aws:s3:::my-artifacts/*"


# The CloudFormation calls behind the page's commands that are not named after one (the AWS CLI's
# deploy, package and waiters); every other `aws cloudformation <command>` is its own action.
CLI_CALLS = {
    "deploy": {"DescribeStacks", "CreateChangeSet", "DescribeChangeSet", "ExecuteChangeSet", "DescribeStackEvents"},
    "package": set(),  # S3 only: the package bucket's statement
    "wait": {"DescribeStacks"},
}


def test_every_cloudformation_command_the_page_shows_is_allowed_by_the_routes_policy():
    from tests.workshop import sh_blocks

    aws, _ = aws_target()
    policy = deployer_policy(aws, "cloudformation")
    allowed = {action for statement in policy["Statement"] for action in statement["Action"]}
    script = "\n".join(sh_blocks(ROOT / "docs" / "cloudformation.md"))
    commands = set(re.findall(r"aws cloudformation ([a-z-]+)", script))
    assert {"deploy", "package", "detect-stack-drift", "describe-stack-drift-detection-status",
            "describe-stack-resource-drifts", "describe-events", "delete-stack", "wait"} <= commands
    needed = {f"cloudformation:{action}" for command in commands
              for action in CLI_CALLS.get(command, {command.title().replace("-", "")})}
    assert needed - allowed == set()


def test_a_route_it_does_not_know_or_a_package_bucket_without_cloudformation_is_refused():
    aws, _ = aws_target()
    with pytest.raises(ProvisionError, match="no deployment route 'terraform': one of init, cloudformation"):
        deployer_policy(aws, "terraform")
    with pytest.raises(ProvisionError, match="package bucket is CloudFormation's"):
        deployer_policy(aws, package_bucket="b")


def test_the_plan_commands_routes_are_the_policys():
    plan = build_parser().parse_args(["plan", "--deployer-policy"])
    assert plan.deployer_policy == "init"
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    option = next(a for a in sub.choices["plan"]._actions if "--deployer-policy" in a.option_strings)
    assert tuple(option.choices) == ROUTES
