"""Adapters: the only place that talks to AWS. Each takes the one ``AwsContext`` (clients from one
cached boto3 session, built from ``Settings``); no endpoint, region or credential appears anywhere else."""

from stockpipe.aws.context import AwsContext, Located, TargetError

__all__ = ["AwsContext", "Located", "TargetError"]
