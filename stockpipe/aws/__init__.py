"""Adapters: the only place that talks to AWS. Each takes an optional boto3 client so tests can
hand it one pointed at their own emulator. No endpoint appears here: boto3 reads
AWS_ENDPOINT_URL (set = an emulator, unset = real AWS)."""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

from stockpipe.settings import region_from

# Connection errors and throttling are retried by botocore itself (standard mode, with backoff).
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 6}, connect_timeout=5, read_timeout=30)

# LocalStack and MiniStack accept any key; these are what their documentation uses. They are
# only ever used when AWS_ENDPOINT_URL names an emulator and no credentials are configured.
_EMULATOR_PLACEHOLDER_KEY = "test"


def session(env: dict[str, str] | None = None) -> boto3.Session:
    env = dict(os.environ) if env is None else env
    region = region_from(env)
    current = boto3.Session(region_name=region)
    if env.get("AWS_ENDPOINT_URL") and current.get_credentials() is None:
        return boto3.Session(
            region_name=region,
            aws_access_key_id=_EMULATOR_PLACEHOLDER_KEY,
            aws_secret_access_key=_EMULATOR_PLACEHOLDER_KEY,
        )
    return current


def client(service: str, aws_session: boto3.Session | None = None) -> Any:
    return (aws_session or session()).client(service, config=CLIENT_CONFIG)


def resource(service: str, aws_session: boto3.Session | None = None) -> Any:
    return (aws_session or session()).resource(service, config=CLIENT_CONFIG)
