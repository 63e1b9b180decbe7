"""What a resource is to init, plan and teardown: a spec that can find itself, say how it differs
from what exists, create, update and delete itself, and wait until that is done.

The pipeline is one ordered list of these (``stack.py``). ``plan`` asks each what it would do;
``init`` does it, in order; teardown walks the same list backwards and deletes only what carries
our ownership tag. Nothing is listed twice.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from stockpipe.aws.context import AwsContext
from stockpipe.errors import StockpipeError
from stockpipe.settings import STACK_TAG_KEY

# Every resource init creates carries this tag (value: STACK_NAME); teardown touches nothing else.
TAG_KEY = STACK_TAG_KEY

# CloudFormation resources by logical ID, as one resource of the list renders itself (template.py).
Template = dict[str, dict[str, Any]]


class ProvisionError(StockpipeError):
    """A step that cannot complete; the message names the resource and what to do."""


class Action(Enum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    REFUSE = "refuse"
    SKIP = "skip"  # the engine does not offer this service (LocalStack community has no Glue)


@dataclass(frozen=True)
class Found:
    """What exists under a resource's name.

    ``owner``: the stack named by our tag, None when untagged. ``empty``: holds no data, so an
    untagged one may be adopted. ``drift``: the settings that differ from the spec, as
    ``"setting: now -> wanted"``. ``conflict``: why it cannot be used at all (wrong keys, another
    account's bucket). ``detail``: what the kind needs later to update or delete it.
    """

    owner: str | None
    empty: bool = True
    drift: tuple[str, ...] = ()
    conflict: str = ""
    detail: Any = None


@dataclass
class Run:
    """One init, plan or teardown: the AWS context, the stack's name and where lines go."""

    aws: AwsContext
    stack: str
    report: Callable[[str], None]
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.report(f"    ! {text}")

    @property
    def tags(self) -> dict[str, str]:
        return {TAG_KEY: self.stack}

    @property
    def tag_list(self) -> list[dict[str, str]]:
        """The tags as most AWS APIs and CloudFormation types take them."""
        return [{"Key": k, "Value": v} for k, v in self.tags.items()]


@dataclass(frozen=True)
class Grant:
    """IAM actions the person deploying needs on some ARNs (deployer.py makes their policy of these).
    ``when``: a condition IAM evaluates, as (operator, key, values)."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    when: tuple[str, str, tuple[str, ...]] | None = None
    part: str = ""  # the statement's Sid beside the kind's (e.g. "Objects", "PassRole")


class Resource(ABC):
    """One resource of the pipeline. ``variable`` names the setting that names it."""

    kind: ClassVar[str]
    # The IAM actions plan, init (create, update, adopt) and teardown call on it, declared beside the
    # calls in each kind: ``deploy_actions`` on its ARNs (``deploy_arns``), ``deploy_unscoped`` on "*"
    # (list and describe calls IAM cannot scope to one resource). The deployer's policy is made of these.
    deploy_actions: ClassVar[tuple[str, ...]] = ()
    deploy_unscoped: ClassVar[tuple[str, ...]] = ()
    # An untagged, empty one may be adopted (tagged as ours). Data holders say False for non-empty
    # ones through ``Found.empty``; kinds that must never be adopted (a role, a function) set this.
    adoptable: ClassVar[bool] = True

    def __init__(self, key: str, name: str, variable: str, depends_on: tuple[str, ...] = ()) -> None:
        self.key, self.name, self.variable, self.depends_on = key, name, variable, depends_on

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def logical_id(self) -> str:
        """Its name in the CloudFormation template: the key in CamelCase ("process-trigger": ProcessTrigger)."""
        return "".join(part.capitalize() for part in re.split(r"[-_]", self.key))

    @abstractmethod
    def settings(self, run: Run) -> dict[str, object]:
        """What it will be, for people (plan shows it)."""

    @abstractmethod
    def template(self, run: Run) -> Template:
        """What init would create, as CloudFormation resources by logical ID: the same names, settings
        and tags. ``run`` is symbolic (template.py): its ARNs, URLs and the stack's name are
        ``${...}`` references the template turns into Ref, GetAtt and Sub."""

    @abstractmethod
    def find(self, run: Run) -> Found | None:
        """What exists under this name, or None."""

    @abstractmethod
    def create(self, run: Run) -> None: ...

    @abstractmethod
    def update(self, run: Run, found: Found) -> None:
        """Make an existing one match the spec (and carry our tag)."""

    @abstractmethod
    def delete(self, run: Run, found: Found) -> str:
        """Delete it (ours); returns what happened, e.g. "deleted" or "kept: ..."."""

    def wait_ready(self, run: Run) -> None:
        """Block until it can be used by the next resource."""
        return None

    def wait_gone(self, run: Run) -> None:
        """Block until it is really gone, so that init right after teardown works."""
        return None

    def deploy_arns(self, run: Run) -> tuple[str, ...]:
        """The ARNs ``deploy_actions`` apply to: its own."""
        arn = getattr(self, "arn", None)
        if arn is None:
            raise TypeError(f"{self!r} has no ARN: its kind says which ARNs its deploy_actions apply to")
        return (str(arn(run)),)

    def deploy_grants(self, run: Run) -> list[Grant]:
        """What the person deploying needs on it; a kind with calls on other ARNs adds its own."""
        grants = [Grant(self.deploy_actions, self.deploy_arns(run))] if self.deploy_actions else []
        if self.deploy_unscoped:
            grants.append(Grant(self.deploy_unscoped, ("*",)))
        return grants


@dataclass(frozen=True)
class Need:
    """A call a function's code makes: ``actions`` on the resource ``key`` (``within``: a path inside
    it, e.g. the raw prefix of the bucket). The function's IAM policy is made of these."""

    key: str
    actions: tuple[str, ...]
    within: str = ""


@dataclass(frozen=True)
class Step:
    """What init would do (or did) to one resource."""

    resource: Resource
    action: Action
    changes: tuple[str, ...] = ()
    reason: str = ""
    found: Found | None = None


def decide(resource: Resource, found: Found | None, stack: str) -> Step:
    if found is None:
        return Step(resource, Action.CREATE)
    if found.conflict:
        return Step(resource, Action.REFUSE, reason=found.conflict, found=found)
    if found.owner == stack:
        return Step(resource, Action.UPDATE if found.drift else Action.UNCHANGED, found.drift, found=found)
    if found.owner is not None:
        return Step(resource, Action.REFUSE, found=found,
                    reason=f"{resource.label} belongs to stack {found.owner!r} ({TAG_KEY}={found.owner}): "
                    f"set {resource.variable} to another name, or STACK_NAME={found.owner}")
    if resource.adoptable and found.empty:
        return Step(resource, Action.UPDATE, (f"adopt: tag {TAG_KEY}={stack} (exists, empty)", *found.drift),
                    found=found)
    what = "holds data" if resource.adoptable else "exists"
    return Step(resource, Action.REFUSE, found=found,
                reason=f"{resource.label} {what} and is not tagged {TAG_KEY}={stack}: it is not ours to "
                f"change or delete; set {resource.variable} to another name")


__all__ = ["TAG_KEY", "Action", "Found", "Grant", "Need", "ProvisionError", "Resource", "Run", "Step", "Template",
           "decide"]
