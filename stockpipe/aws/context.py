"""One AWS context: where the pipeline is (an engine at a URL, or real AWS), one boto3 session and
one client per service, built from ``Settings``. Every adapter, init, plan and teardown take it.

``AWS_ENDPOINT_URL`` set means an emulator, unset means real AWS: the context passes the endpoint
to each client itself and tells botocore to ignore endpoints configured elsewhere, so a settings
object built for another engine (the demo's, the bench's) never needs ``os.environ`` rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from stockpipe.aws.errors import AwsError
from stockpipe.errors import StockpipeError
from stockpipe.settings import Settings
from stockpipe.waiting import HEALTH_PATH, probe

# Connection errors and throttling are retried by botocore itself (standard mode, with backoff).
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 6}, connect_timeout=5, read_timeout=30,
                       ignore_configured_endpoint_urls=True)
# The first call to a target (who am I?) fails fast: one attempt, short timeouts, so an endpoint
# that does not answer is one line within 3 seconds instead of half a minute of retries.
PROBE_CONFIG = Config(retries={"total_max_attempts": 1}, connect_timeout=1.5, read_timeout=1.5,
                      ignore_configured_endpoint_urls=True)
# For the functions' hot path: the request is not checked against the API model on our side (the
# service checks it anyway), which costs more than the call itself for a 25-item BatchWriteItem;
# and no CRC32 of each request body where the service does not require one (DynamoDB, SNS, SQS, and
# S3 PutObject over TLS on AWS): 1-2 % of process-ticks' CPU at 1,000 ticks/s.
UNCHECKED = Config(parameter_validation=False, request_checksum_calculation="when_required")
# LocalStack and MiniStack accept any key; only used for an emulator when no credentials are configured.
_EMULATOR_PLACEHOLDER_KEY = "test"
# LocalStack's editions; MiniStack answers the same health path with edition "light".
_LOCALSTACK_EDITIONS = {"community", "pro", "enterprise", "ultimate", "base", "freemium", "trial", "team"}


def _send_body_at_once(request: Any, **_: Any) -> None:
    """botocore asks before every PutObject body whether the server wants it (``Expect:
    100-continue``) and waits for the answer, up to a second: a round trip more per object, which
    only pays for bodies worth refusing before they are sent. Ours are small and in memory (a
    batch's raw lines of one symbol), so the body goes with the headers. At 1,000 ticks/s on the
    embedded engine that wait was half of process-ticks' batch time."""
    if "Expect" in request.headers:
        del request.headers["Expect"]


class ClientSource(Protocol):
    """What an adapter needs of the context: its clients (tests hand in fakes)."""

    def client(self, service: str) -> Any: ...

    def resource(self, service: str) -> Any: ...


class TargetError(StockpipeError):
    """The target cannot be reached or refuses the credentials; the message says which and why."""


@dataclass(frozen=True)
class Identity:
    account_id: str
    partition: str
    arn: str


@dataclass(frozen=True)
class EngineInfo:
    """What answers at the target: ``name`` for people, and whether stream triggers honour
    retries, bisection, on-failure destinations and partial batch responses."""

    name: str
    honours_stream_failures: bool


class AwsContext:
    """``sources``: where each variable was set (``{"AWS_ENDPOINT_URL": ".env line 9"}``), for messages."""

    def __init__(self, settings: Settings, *, session: boto3.Session | None = None,
                 sources: Mapping[str, str] | None = None, validate: bool = True) -> None:
        """``validate=False``: botocore does not check requests against the API model (the functions:
        their requests are built by code the tests check, and the service validates them anyway)."""
        self.settings = settings
        self._config = CLIENT_CONFIG if validate else CLIENT_CONFIG.merge(UNCHECKED)
        self.sources = dict(sources or {})
        self._session = session
        self._clients: dict[str, Any] = {}
        self._resources: dict[str, Any] = {}
        self._queue_urls: dict[str, str] = {}

    # -- the target -------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str | None:
        return self.settings.endpoint_url

    @property
    def is_emulator(self) -> bool:
        return bool(self.settings.endpoint_url)

    @property
    def region(self) -> str:
        return self.settings.region

    def _where_set(self, variable: str) -> str:
        source = self.sources.get(variable)
        return f" (from {source})" if source else ""

    @property
    def target_name(self) -> str:
        if self.endpoint_url:
            return f"the AWS engine at AWS_ENDPOINT_URL={self.endpoint_url}{self._where_set('AWS_ENDPOINT_URL')}"
        return f"real AWS in {self.region}"

    @cached_property
    def session(self) -> boto3.Session:
        if self._session is not None:
            return self._session
        current = boto3.Session(region_name=self.region)
        if self.is_emulator and current.get_credentials() is None:
            current = boto3.Session(region_name=self.region, aws_access_key_id=_EMULATOR_PLACEHOLDER_KEY,
                                    aws_secret_access_key=_EMULATOR_PLACEHOLDER_KEY)
        return current

    def client(self, service: str) -> Any:
        """One client per service. STS answers only "who am I?", the first call to a target: it
        fails fast (PROBE_CONFIG) instead of retrying for half a minute."""
        if service not in self._clients:
            config = PROBE_CONFIG if service == "sts" else self._config
            client = self.session.client(service, region_name=self.region, endpoint_url=self.endpoint_url,
                                         config=config)
            if service == "s3":
                client.meta.events.register("before-sign.s3.PutObject", _send_body_at_once)
            self._clients[service] = client
        return self._clients[service]

    def resource(self, service: str) -> Any:
        """A boto3 resource sharing the cached client (for DynamoDB's Table and batch writer)."""
        if service not in self._resources:
            self._resources[service] = self.session.resource(service, region_name=self.region,
                                                             endpoint_url=self.endpoint_url, config=self._config)
        return self._resources[service]

    @cached_property
    def identity(self) -> Identity:
        """Who we are there; the first call to the target, and so the reachability check."""
        try:
            answer = self.client("sts").get_caller_identity()
        except NoCredentialsError:
            raise TargetError(f"no AWS credentials for {self.target_name}: set AWS_PROFILE or "
                              "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") from None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise TargetError(f"{self.target_name} refused the credentials ({code}): "
                              f"{error.response.get('Error', {}).get('Message', '')}") from None
        except BotoCoreError as error:
            raise TargetError(self.unreachable(error)) from None
        arn = str(answer.get("Arn", ""))
        partition = arn.split(":")[1] if arn.startswith("arn:") else "aws"
        return Identity(str(answer["Account"]), partition, arn)

    def unreachable(self, error: BaseException | None = None) -> str:
        """Why nothing answers, in one line; ``error``: what the call raised (its kind is named)."""
        kind = error.kind if isinstance(error, AwsError) else type(error).__name__
        detail = f" ({kind})" if error is not None else ""
        if self.endpoint_url:
            return (f"cannot reach {self.target_name}{detail}: start it (stockpipe emulator, make up) or fix "
                    "AWS_ENDPOINT_URL; unset it for real AWS")
        return f"cannot reach {self.target_name}{detail}: check the network and AWS_REGION={self.region}"

    def health(self) -> dict[str, Any] | None:
        """The emulator's health document, or None (no health path, or no answer within 1.5 s)."""
        if not self.endpoint_url:
            return None
        return probe(self.endpoint_url.rstrip("/") + HEALTH_PATH, timeout=1.5)

    @cached_property
    def engine(self) -> EngineInfo:
        if not self.endpoint_url:
            return EngineInfo("AWS", honours_stream_failures=True)
        health = self.health() or {}
        edition, version = str(health.get("edition", "")), str(health.get("version", ""))
        if edition in _LOCALSTACK_EDITIONS:
            return EngineInfo(f"LocalStack {version}".strip(), honours_stream_failures=True)
        if edition == "light":
            return EngineInfo(f"MiniStack {version}".strip(), honours_stream_failures=False)
        # Unknown engines are assumed not to honour them: the handlers then raise on AWS errors,
        # which loses nothing anywhere (a partial batch response would, where it is ignored).
        return EngineInfo("an AWS engine", honours_stream_failures=False)

    def credentials_source(self) -> str:
        credentials = self.session.get_credentials()
        if credentials is None:
            return "none"
        method = getattr(credentials, "method", "") or "unknown"
        profile = self.session.profile_name
        if method in ("env", "explicit"):
            where = self._where_set("AWS_ACCESS_KEY_ID")
            return f"{method}{where}"
        return f"{method} (profile {profile})" if profile and profile != "default" else method

    def describe(self) -> str:
        """One line: the target, its account and region, and (real AWS) the credentials' source."""
        who = self.identity
        if self.endpoint_url:
            return (f"target: {self.engine.name} at {self.endpoint_url}{self._where_set('AWS_ENDPOINT_URL')}, "
                    f"account {who.account_id}, region {self.region}")
        return (f"target: real AWS, account {who.account_id} ({who.arn}), region {self.region}, "
                f"credentials {self.credentials_source()}")

    # -- names to addresses -------------------------------------------------------------------

    @cached_property
    def where(self) -> Located:
        who = self.identity
        return Located(who.account_id, who.partition, self.settings)

    def queue_url(self, name: str) -> str:
        if name not in self._queue_urls:
            self._queue_urls[name] = self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
        return self._queue_urls[name]


@dataclass(frozen=True)
class Located:
    """Every resource's ARN, from the settings and the account: no lookup table to keep in sync."""

    account_id: str
    partition: str
    settings: Settings

    @property
    def region(self) -> str:
        return self.settings.region

    @property
    def raw_bucket(self) -> str:
        return self.settings.raw_bucket_for(self.account_id)

    def arn(self, service: str, resource: str, *, regional: bool = True, account: bool = True) -> str:
        return (f"arn:{self.partition}:{service}:{self.region if regional else ''}:"
                f"{self.account_id if account else ''}:{resource}")

    @property
    def stream_arn(self) -> str:
        return self.arn("kinesis", f"stream/{self.settings.stream_name}")

    def table_arn(self, name: str) -> str:
        return self.arn("dynamodb", f"table/{name}")

    def queue_arn(self, name: str) -> str:
        return self.arn("sqs", name)

    @property
    def topic_arn(self) -> str:
        return self.arn("sns", self.settings.topic_name)

    def table_stream_arn(self, name: str) -> str | None:
        """A table's stream carries a label of its own: known only by asking (None), except in a template."""
        return None

    def function_arn(self, name: str) -> str:
        return self.arn("lambda", f"function:{name}")

    def role_arn(self, name: str) -> str:
        return self.arn("iam", f"role/{name}", regional=False)

    def log_group_arn(self, name: str) -> str:
        return self.arn("logs", f"log-group:{name}")

    def bucket_arn(self, suffix: str = "") -> str:
        return self.arn("s3", f"{self.raw_bucket}{suffix}", regional=False, account=False)


__all__ = ["CLIENT_CONFIG", "AwsContext", "ClientSource", "EngineInfo", "Identity", "Located", "TargetError"]
