"""Check 5, reachability: the endpoint answers (and how fast), the credentials work (whose they
are), and on real AWS, by IAM policy simulation, the deployer may make the calls init makes (the deployer's policy,
derived from the resource list: stockpipe.provision.deployer) and
each function's role the calls its code and trigger make (its policy, derived from the resource
list's ``Need``s). Emulators do not enforce IAM: there the simulation is skipped, saying why."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from stockpipe.aws.context import AwsContext, TargetError
from stockpipe.aws.deployment import Deployment
from stockpipe.aws.errors import AwsError
from stockpipe.doctor.model import Finding, Look, ok, problem, skipped
from stockpipe.provision.deployer import deployer_policy
from stockpipe.provision.functions import Function

GROUP = "reachability"
SHOWN = 3  # denied calls named in the line; --json lists every one


def endpoint_and_credentials(aws: AwsContext) -> tuple[list[Finding], bool]:
    """The first call to the target (STS: who am I?), one attempt with short timeouts: an endpoint
    that does not answer, or credentials that are missing or refused, is one line within 3 s.
    Returns the findings and whether the target can be looked at."""
    started = time.monotonic()
    try:
        who = aws.identity
    except TargetError as error:
        seconds = time.monotonic() - started
        return [problem(GROUP, "endpoint", str(error), seconds=round(seconds, 3))], False
    seconds = time.monotonic() - started
    if aws.is_emulator:
        answered = f"{aws.engine.name} at {aws.endpoint_url} answered in {seconds * 1000:.0f} ms"
    else:
        answered = f"AWS (STS in {aws.region}) answered in {seconds * 1000:.0f} ms"
    source = "" if aws.is_emulator else f", credentials from {aws.credentials_source()}"
    return [ok(GROUP, "endpoint", answered, seconds=round(seconds, 3)),
            ok(GROUP, "credentials", f"credentials work: {who.arn} (account {who.account_id}{source})",
               account=who.account_id, arn=who.arn)], True


def permissions(look: Look) -> list[Finding]:
    aws = look.aws
    if aws.is_emulator:
        return [skipped(GROUP, "permissions", f"IAM policy simulation skipped: {aws.engine.name} does not enforce "
                        "IAM, so its answer would say nothing about AWS (on real AWS doctor simulates the "
                        "deployer's calls and each function role's)")]
    return [_deployer(look), *(_role(look, function) for function in look.resources if isinstance(function, Function))]


def _deployer(look: Look) -> Finding:
    aws = look.aws
    arn = aws.identity.arn
    principal = _principal(look.deployment, arn)
    if principal is None:
        return skipped(GROUP, "deployer", f"the deployer's permissions are not simulated: {arn} is "
                       + ("the account's root user, which may make every call" if arn.endswith(":root")
                          else "not a user or role IAM can simulate"))
    # The deployer's policy, derived from the resource list (what plan, init and teardown call, on what).
    # A statement with a condition (iam:PassRole only to Lambda) is simulated with the request's keys set so.
    calls = [(tuple(_as_list(s["Action"])), arn, {key: _as_list(values)[0] for condition in s.get("Condition", {}).values()
                                                  for key, values in condition.items()})
             for s in deployer_policy(aws)["Statement"] for arn in _as_list(s["Resource"])]
    denied = _denied(look.deployment, principal, calls)
    total = sum(len(actions) for actions, _, _ in calls)
    if not denied:
        return ok(GROUP, "deployer", f"the deployer {principal} may make every call init makes ({total}, by IAM "
                  "policy simulation)")
    return problem(GROUP, "deployer", f"the deployer {principal} may not make {len(denied)} of the {total} calls init "
                   f"makes: {_listed(denied)}", f"grant them to {principal} (stockpipe doctor --json lists each)",
                   denied=denied)


def _role(look: Look, function: Function) -> Finding:
    role = function.role
    check = f"{function.key}-role"
    if not look.exists(role.key):
        return skipped(GROUP, check, f"the permissions of {function.name} not simulated: its role {role.name} "
                       "does not exist (see existence)")
    statements = role.policy(look.run)["Statement"]  # derived from the list: what init grants
    calls: list[tuple[tuple[str, ...], str, dict[str, str]]] = [
        (tuple(_as_list(s["Action"])), arn, {}) for s in statements for arn in _as_list(s["Resource"])]
    denied = _denied(look.deployment, role.arn(look.run), calls)
    total = sum(len(actions) for actions, _, _ in calls)
    if not denied:
        return ok(GROUP, check, f"the role of {function.name}, {role.name}, may make every call its code and trigger make "
                  f"({total}, by IAM policy simulation)")
    return problem(GROUP, check, f"the role of {function.name}, {role.name}, may not make {_listed(denied)}",
                   "stockpipe init puts its policy back (derived from what the code calls)", denied=denied)


def _principal(deployment: Deployment, arn: str) -> str | None:
    """The IAM ARN to simulate for the caller: a user as it is; an assumed role's session as its role."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return None
    resource = parts[5]
    if resource.startswith("user/"):
        return arn
    if resource.startswith("assumed-role/"):
        name = resource.split("/")[1]
        try:
            return deployment.role_arn(name)  # with its path
        except AwsError as error:
            if not error.answered:
                raise
            return f"arn:{parts[1]}:iam::{parts[4]}:role/{name}"
    return None


def _denied(deployment: Deployment, principal: str,
            calls: Iterable[tuple[Sequence[str], str, dict[str, str]]]) -> list[str]:
    """Each "action on resource" the principal may not make, by IAM's simulation (``calls``: actions,
    the resource, and the condition keys the request sets)."""
    denied: list[str] = []
    for actions, resource, context in calls:
        if not actions:
            continue
        # A wildcard path in a policy ("bucket/raw-data/*") is simulated on one key inside it.
        simulated = None if resource == "*" else (resource[:-1] + "stockpipe-doctor" if resource.endswith("*")
                                                  else resource)
        try:
            results = deployment.simulate(principal, list(actions), simulated, context)
        except AwsError as error:
            if not error.answered:
                raise
            denied.append(f"iam:SimulatePrincipalPolicy on {principal} ({error.code}: doctor may not simulate)")
            return denied
        denied += [f"{result['EvalActionName']} on {resource} ({result['EvalDecision']})"
                   for result in results if result.get("EvalDecision") != "allowed"]
    return denied


def _listed(denied: Sequence[str]) -> str:
    shown = ", ".join(denied[:SHOWN])
    return shown + (f" and {len(denied) - SHOWN} more" if len(denied) > SHOWN else "")


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


__all__ = ["endpoint_and_credentials", "permissions"]
