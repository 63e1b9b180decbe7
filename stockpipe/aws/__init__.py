"""Adapters: the only place that talks to AWS (with init/, which provisions). Each takes the one
``AwsContext`` (clients from one cached boto3 session, built from ``Settings``); no endpoint, region or
credential appears anywhere else, and AWS errors leave as ``AwsError``, one of the project's own."""

from stockpipe.aws.context import AwsContext, Located, TargetError
from stockpipe.aws.errors import AwsError

__all__ = ["AwsContext", "AwsError", "Located", "TargetError"]
