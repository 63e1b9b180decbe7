"""The Kinesis stream the producer writes to: on-demand (or provisioned shards), encrypted with the
AWS-managed key, tagged as ours."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from stockpipe.aws.errors import error_code, unsupported
from stockpipe.provision.model import TAG_KEY, Found, Resource, Run, Template

WAITER = {"Delay": 1, "MaxAttempts": 120}
KMS_KEY = "alias/aws/kinesis"


class Stream(Resource):
    kind = "kinesis stream"
    deploy_actions = (
        "kinesis:DescribeStreamSummary", "kinesis:ListTagsForStream",  # find
        "kinesis:ListShards", "kinesis:GetShardIterator", "kinesis:GetRecords",  # find: is an untagged one empty?
        "kinesis:CreateStream", "kinesis:DescribeStream",  # create; DescribeStream: the waiters
        "kinesis:AddTagsToStream", "kinesis:StartStreamEncryption",  # create and update
        "kinesis:UpdateStreamMode", "kinesis:UpdateShardCount",  # update: STREAM_MODE, STREAM_SHARDS changed
        "kinesis:DeleteStream",  # teardown
    )

    def __init__(self, key: str, name: str, variable: str, *, mode: str, shards: int) -> None:
        super().__init__(key, name, variable)
        self.mode, self.shards = mode, shards

    def arn(self, run: Run) -> str:
        return run.aws.where.stream_arn

    def settings(self, run: Run) -> dict[str, object]:
        shape: dict[str, object] = {"mode": self.mode.lower()}
        if self.mode == "PROVISIONED":
            shape["shards"] = self.shards
        shape["encryption"] = f"KMS {KMS_KEY}"
        return shape

    def find(self, run: Run) -> Found | None:
        kinesis = run.aws.client("kinesis")
        try:
            summary = kinesis.describe_stream_summary(StreamName=self.name)["StreamDescriptionSummary"]
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return None
            raise
        if summary.get("StreamStatus") == "DELETING":
            self.wait_gone(run)
            return None
        tags = {t["Key"]: t["Value"] for t in kinesis.list_tags_for_stream(StreamName=self.name).get("Tags", [])}
        owner = tags.get(TAG_KEY)
        drift: list[str] = []
        current = summary.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")
        if current != self.mode:
            drift.append(f"mode: {current.lower()} -> {self.mode.lower()}")
        elif self.mode == "PROVISIONED" and summary.get("OpenShardCount", self.shards) != self.shards:
            drift.append(f"shards: {summary.get('OpenShardCount')} -> {self.shards}")
        if summary.get("EncryptionType", "KMS") != "KMS":
            drift.append(f"encryption: none -> KMS {KMS_KEY}")
        empty = True if owner is not None else self._empty(run)
        return Found(owner, empty=empty, drift=tuple(drift), detail=summary)

    def _empty(self, run: Run) -> bool:
        """No record retained in any shard (only asked of a stream that is not ours)."""
        kinesis = run.aws.client("kinesis")
        for shard in kinesis.list_shards(StreamName=self.name).get("Shards", []):
            iterator = kinesis.get_shard_iterator(StreamName=self.name, ShardId=shard["ShardId"],
                                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            if kinesis.get_records(ShardIterator=iterator, Limit=1).get("Records"):
                return False
        return True

    def create(self, run: Run) -> None:
        shape: dict[str, Any] = {"StreamModeDetails": {"StreamMode": self.mode}}
        if self.mode == "PROVISIONED":
            shape["ShardCount"] = self.shards
        run.aws.client("kinesis").create_stream(StreamName=self.name, **shape)
        self.wait_ready(run)
        self._tag_and_encrypt(run)

    def _tag_and_encrypt(self, run: Run, *, encrypt: bool = True) -> None:
        kinesis = run.aws.client("kinesis")
        # Tags after creation: CreateStream's own Tags are ignored by some engines.
        kinesis.add_tags_to_stream(StreamName=self.name, Tags=run.tags)
        if encrypt:
            try:
                kinesis.start_stream_encryption(StreamName=self.name, EncryptionType="KMS", KeyId=KMS_KEY)
            except ClientError as error:
                if not unsupported(error):
                    raise
                run.note(f"{self.label}: this engine cannot encrypt streams; left unencrypted")
            self.wait_ready(run)

    def update(self, run: Run, found: Found) -> None:
        kinesis = run.aws.client("kinesis")
        summary = found.detail
        for change in found.drift:
            if change.startswith("mode:"):
                try:
                    kinesis.update_stream_mode(StreamARN=summary["StreamARN"],
                                               StreamModeDetails={"StreamMode": self.mode})
                except ClientError as error:
                    if not unsupported(error):
                        raise
                    run.note(f"{self.label} stays {change.split()[1]}: this engine cannot switch modes "
                             "('stockpipe init --teardown', then init, recreates it)")
                self.wait_ready(run)
            elif change.startswith("shards:"):
                kinesis.update_shard_count(StreamName=self.name, TargetShardCount=self.shards,
                                           ScalingType="UNIFORM_SCALING")
                self.wait_ready(run)
        self._tag_and_encrypt(run, encrypt=any(change.startswith("encryption:") for change in found.drift))

    def wait_ready(self, run: Run) -> None:
        run.aws.client("kinesis").get_waiter("stream_exists").wait(StreamName=self.name, WaiterConfig=WAITER)

    def delete(self, run: Run, found: Found) -> str:
        run.aws.client("kinesis").delete_stream(StreamName=self.name, EnforceConsumerDeletion=True)
        return "deleted"

    def wait_gone(self, run: Run) -> None:
        run.aws.client("kinesis").get_waiter("stream_not_exists").wait(StreamName=self.name, WaiterConfig=WAITER)

    def template(self, run: Run) -> Template:
        shape: dict[str, Any] = {"Name": self.name, "StreamModeDetails": {"StreamMode": self.mode}}
        if self.mode == "PROVISIONED":
            shape["ShardCount"] = self.shards
        return {self.logical_id: {"Type": "AWS::Kinesis::Stream", "Properties": {
            **shape, "StreamEncryption": {"EncryptionType": "KMS", "KeyId": KMS_KEY}, "Tags": run.tag_list}}}
