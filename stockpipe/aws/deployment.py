"""The deployment as it is, for those who look at it or change it by hand rather than run it:
``stockpipe doctor`` (the names that exist, for a near miss; where each resource is; a function as
deployed; IAM's policy simulation; the stream and the failure queues read without taking anything;
the e-mail subscription), the labs (a mistake planted in a function or a trigger) and the embedded
engine (its table triggers made again after a restart).

Every method raises ``AwsError`` (stockpipe/aws/errors.py), never botocore's errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stockpipe.aws.context import PROBE_CONFIG, AwsContext
from stockpipe.aws.errors import translated

STREAM_PAGE = 10_000  # GetRecords' maximum
PEEKED = 10  # messages looked at in a failure queue (one ReceiveMessage)


def _pages(call: Callable[..., dict[str, Any]], key: str, token: str, next_key: str, **kwargs: Any) -> Iterator[Any]:
    while True:
        page = call(**kwargs)
        yield from page.get(key, [])
        if not page.get(next_key):
            return
        kwargs[token] = page[next_key]


def _first(names: Iterable[str], limit: int) -> list[str]:
    return list(islice(names, limit))


class Deployment:
    """Reads (and the labs' few changes) of a deployment through the context's clients."""

    def __init__(self, aws: AwsContext) -> None:
        self.aws = aws

    # -- the names that exist, up to ``limit`` of a kind (for "did you mean") ------------------------

    @translated()
    def stream_names(self, limit: int) -> list[str]:
        def names() -> Iterator[str]:
            kinesis = self.aws.client("kinesis")
            kwargs: dict[str, Any] = {"Limit": 100}
            while True:
                page = kinesis.list_streams(**kwargs)
                listed = [str(name) for name in page.get("StreamNames", [])]
                yield from listed
                if not page.get("HasMoreStreams") or not listed:
                    return
                kwargs["ExclusiveStartStreamName"] = listed[-1]

        return _first(names(), limit)

    @translated()
    def table_names(self, limit: int) -> list[str]:
        return _first(_pages(self.aws.client("dynamodb").list_tables, "TableNames", "ExclusiveStartTableName",
                             "LastEvaluatedTableName"), limit)

    @translated()
    def bucket_names(self, limit: int) -> list[str]:
        return _first((str(b["Name"]) for b in self.aws.client("s3").list_buckets().get("Buckets", [])), limit)

    @translated()
    def queue_names(self, limit: int) -> list[str]:
        urls = _pages(self.aws.client("sqs").list_queues, "QueueUrls", "NextToken", "NextToken", MaxResults=1000)
        return _first((str(url).rstrip("/").rsplit("/", 1)[-1] for url in urls), limit)

    @translated()
    def topic_names(self, limit: int) -> list[str]:
        topics = _pages(self.aws.client("sns").list_topics, "Topics", "NextToken", "NextToken")
        return _first((str(topic["TopicArn"]).rsplit(":", 1)[-1] for topic in topics), limit)

    @translated()
    def function_names(self, limit: int) -> list[str]:
        functions = _pages(self.aws.client("lambda").list_functions, "Functions", "Marker", "NextMarker")
        return _first((str(function["FunctionName"]) for function in functions), limit)

    @translated()
    def database_names(self, limit: int) -> list[str]:
        databases = _pages(self.aws.client("glue").get_databases, "DatabaseList", "NextToken", "NextToken")
        return _first((str(database["Name"]) for database in databases), limit)

    @translated()
    def glue_table_names(self, database: str, limit: int) -> list[str]:
        tables = _pages(self.aws.client("glue").get_tables, "TableList", "NextToken", "NextToken",
                        DatabaseName=database)
        return _first((str(table["Name"]) for table in tables), limit)

    # -- where things are ----------------------------------------------------------------------------

    def stream_region(self, name: str, regions: Iterable[str]) -> str | None:
        """The first of ``regions`` that has a stream of that name, asked once each with short timeouts
        (a region that does not answer is passed over)."""
        aws = self.aws
        for region in regions:
            kinesis = aws.session.client("kinesis", region_name=region, endpoint_url=aws.endpoint_url,
                                         config=PROBE_CONFIG)
            try:
                kinesis.describe_stream_summary(StreamName=name)
            except (ClientError, BotoCoreError):
                continue
            return region
        return None

    @property
    def session_region(self) -> str | None:
        """The region the credentials' profile names (AWS_DEFAULT_REGION, ~/.aws/config), if any."""
        return self.aws.session.region_name or None

    @translated()
    def queue_arn(self, url: str) -> str | None:
        attributes = self.aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        arn = attributes.get("Attributes", {}).get("QueueArn")
        return str(arn) if arn else None

    @translated()
    def bucket_region(self, name: str) -> str | None:
        """Where the bucket is: S3 says it in HeadBucket's answer (also when it redirects or refuses)."""
        try:
            answer = self.aws.client("s3").head_bucket(Bucket=name)
        except ClientError as error:
            answer = error.response
        headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        return str(answer.get("BucketRegion") or headers.get("x-amz-bucket-region") or "") or None

    # -- functions and triggers --------------------------------------------------------------------

    @translated()
    def function(self, name: str) -> dict[str, Any]:
        """GetFunction's answer: the configuration, the code's location, the tags."""
        return dict(self.aws.client("lambda").get_function(FunctionName=name))

    @translated()
    def function_configuration(self, name: str) -> dict[str, Any]:
        """The function as deployed (GetFunctionConfiguration): its environment, code hash, last change."""
        answer: dict[str, Any] = self.aws.client("lambda").get_function_configuration(FunctionName=name)
        return answer

    @translated()
    def replace_code(self, name: str, package: bytes) -> None:
        self.aws.client("lambda").update_function_code(FunctionName=name, ZipFile=package)

    @translated()
    def replace_environment(self, name: str, variables: dict[str, str]) -> None:
        self.aws.client("lambda").update_function_configuration(FunctionName=name,
                                                               Environment={"Variables": variables})

    @translated()
    def disable_trigger(self, uuid: str) -> None:
        self.aws.client("lambda").update_event_source_mapping(UUID=uuid, Enabled=False)

    # -- IAM -----------------------------------------------------------------------------------------

    @translated()
    def role_arn(self, name: str) -> str:
        """A role's ARN as IAM has it (with its path)."""
        return str(self.aws.client("iam").get_role(RoleName=name)["Role"]["Arn"])

    @translated()
    def simulate(self, principal: str, actions: list[str], resource: str | None,
                 context: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """IAM's policy simulation of ``actions`` by ``principal`` on ``resource`` (None: any), with the
        condition keys ``context`` as the request would set them: one result per action, every page."""
        iam = self.aws.client("iam")
        request: dict[str, Any] = {"PolicySourceArn": principal, "ActionNames": actions}
        if context:
            request["ContextEntries"] = [{"ContextKeyName": key, "ContextKeyValues": [value], "ContextKeyType": "string"}
                                         for key, value in context.items()]
        if resource is not None:
            request["ResourceArns"] = [resource]
        results: list[dict[str, Any]] = []
        while True:
            answer = iam.simulate_principal_policy(**request)
            results += answer.get("EvaluationResults", [])
            if not answer.get("IsTruncated"):
                return results
            request["Marker"] = answer["Marker"]

    # -- the archive and its catalog ---------------------------------------------------------------

    @translated()
    def object_count(self, bucket: str, prefix: str, limit: int) -> int:
        """Objects under the prefix, counted up to ``limit`` (one request)."""
        answer = self.aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=limit)
        return int(answer.get("KeyCount", len(answer.get("Contents", []))))

    @translated()
    def glue_table(self, database: str, name: str) -> dict[str, Any]:
        table: dict[str, Any] = self.aws.client("glue").get_table(DatabaseName=database, Name=name)["Table"]
        return table

    @translated()
    def partitions(self, database: str, table: str, limit: int) -> list[dict[str, Any]]:
        """The table's partitions, page by page until at least ``limit`` are read (or all are)."""
        glue = self.aws.client("glue")
        partitions: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"DatabaseName": database, "TableName": table}
        while len(partitions) < limit:
            page = glue.get_partitions(**kwargs)
            partitions += page.get("Partitions", [])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        return partitions

    # -- what waits: the stream, the queues, the subscription --------------------------------------

    def stream_pages(self, name: str, since_ms: int | None) -> Iterator[list[dict[str, Any]]]:
        """The stream's records, a page at a time, shard after shard: from its beginning (``since_ms``
        None) or from that time on; each shard until it is caught up. Only reads (iterators), so
        nothing is taken from anyone; stop reading by leaving the loop."""
        with translated():
            kinesis = self.aws.client("kinesis")
            shards: list[str] = []
            kwargs: dict[str, Any] = {"StreamName": name}
            while True:
                page = kinesis.list_shards(**kwargs)
                shards += [str(shard["ShardId"]) for shard in page.get("Shards", [])]
                if not page.get("NextToken"):
                    break
                kwargs = {"NextToken": page["NextToken"]}
            for shard in shards:
                start: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"} if since_ms is None else {
                    "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": datetime.fromtimestamp(since_ms / 1000, UTC)}
                iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, **start).get("ShardIterator")
                while iterator:
                    page = kinesis.get_records(ShardIterator=iterator, Limit=STREAM_PAGE)
                    records: list[dict[str, Any]] = page.get("Records", [])
                    yield records
                    if not records and int(page.get("MillisBehindLatest", 0) or 0) == 0:
                        break
                    iterator = page.get("NextShardIterator")

    @translated()
    def peek(self, url: str) -> tuple[int, list[tuple[int, str]]]:
        """How many messages a queue holds, and up to 10 of them (sent time, body), oldest first;
        received with a visibility timeout of 0, so they stay visible to their readers."""
        sqs = self.aws.client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        count = int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
        if not count:
            return 0, []
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=PEEKED, VisibilityTimeout=0, WaitTimeSeconds=0,
                                     AttributeNames=["SentTimestamp"])
        messages = sorted((int(m.get("Attributes", {}).get("SentTimestamp", 0)), str(m.get("Body", "")))
                          for m in answer.get("Messages", []))
        return count, messages

    @translated()
    def email_pending(self, topic_arn: str, address: str) -> bool | None:
        """Whether the e-mail subscription of ``address`` to the topic still waits for its confirmation;
        None when the address is not subscribed."""
        sns = self.aws.client("sns")
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            for sub in page.get("Subscriptions", []):
                if sub.get("Protocol") != "email" or sub.get("Endpoint") != address:
                    continue
                arn = str(sub.get("SubscriptionArn", ""))
                if not arn.startswith("arn:"):
                    return True
                attributes = sns.get_subscription_attributes(SubscriptionArn=arn).get("Attributes", {})
                return str(attributes.get("PendingConfirmation", "false")).lower() == "true"
        return None


def remake_table_triggers(endpoint_url: str, region: str) -> int:
    """On an engine that restarted from a saved state (MiniStack): each DynamoDB-Streams trigger made
    again from TRIM_HORIZON, keeping its settings. Returns how many were (see EmbeddedEngine)."""
    import boto3

    with translated():
        lam = boto3.client("lambda", endpoint_url=endpoint_url, region_name=region,
                           aws_access_key_id="engine", aws_secret_access_key="engine")
        remade = 0
        for mapping in lam.list_event_source_mappings().get("EventSourceMappings", []):
            if "/stream/" not in str(mapping.get("EventSourceArn", "")) or ":dynamodb:" not in mapping["EventSourceArn"]:
                continue
            kept = {key: mapping[key] for key in (
                "BatchSize", "MaximumBatchingWindowInSeconds", "ParallelizationFactor", "BisectBatchOnFunctionError",
                "MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "DestinationConfig",
                "FunctionResponseTypes") if key in mapping}
            lam.delete_event_source_mapping(UUID=mapping["UUID"])
            lam.create_event_source_mapping(FunctionName=mapping["FunctionArn"], EventSourceArn=mapping["EventSourceArn"],
                                            StartingPosition="TRIM_HORIZON", Enabled=True, **kept)
            remade += 1
        return remade


__all__ = ["Deployment", "remake_table_triggers"]
