"""IAM documents for the two functions: each may touch only what it uses."""

from __future__ import annotations

from typing import Any

from stockpipe.aws.locate import Located

LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def _logs(where: Located, function: str) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": where.arn("logs", f"log-group:/aws/lambda/{function}:*"),
    }


def process_ticks_policy(where: Located) -> dict[str, Any]:
    s = where.settings
    return {
        "Version": "2012-10-17",
        "Statement": [
            _logs(where, s.process_function_name),
            {
                "Effect": "Allow",
                "Action": [
                    "kinesis:GetRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:ListShards",
                    "kinesis:ListStreams",
                ],
                "Resource": where.stream_arn,
            },
            {
                "Effect": "Allow",
                "Action": ["dynamodb:BatchWriteItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:Query"],
                "Resource": where.table_arn,
            },
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": f"arn:{where.partition}:s3:::{where.raw_bucket}/{s.raw_prefix}/*",
            },
            {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": where.dlq_arn},
            {
                "Effect": "Allow",
                "Action": ["glue:GetTable", "glue:BatchCreatePartition"],
                "Resource": where.glue_arns,
            },
        ],
    }


def trend_alerts_policy(where: Located) -> dict[str, Any]:
    s = where.settings
    return {
        "Version": "2012-10-17",
        "Statement": [
            _logs(where, s.trends_function_name),
            {
                "Effect": "Allow",
                "Action": [
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                    "dynamodb:ListStreams",
                ],
                "Resource": f"{where.table_arn}/stream/*",
            },
            {"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": where.table_arn},
            {
                "Effect": "Allow",
                "Action": ["dynamodb:PutItem", "dynamodb:DeleteItem"],
                "Resource": where.ledger_arn,
            },
            {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": where.topic_arn},
            {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": where.dlq_arn},
        ],
    }


def queue_policy_for_topic(queue_arn: str, topic_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }
