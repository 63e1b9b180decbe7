"""stockpipe doctor on a real engine: a healthy pipeline passes every check, and each mistake of
the seeds' troubleshooting notes, planted, is named in one line with its fix. Doctor only reads.

Mistakes in the configuration only (a name, a region) are planted in doctor's environment over one
healthy deployment shared by this module; mistakes in the deployment are each planted in the session's
deployment, reset before each test (``pipeline``); the two tests of real AWS played by the engine share
one deployment there.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stockpipe.aws.catalog import table_input
from stockpipe.aws.context import AwsContext
from stockpipe.aws.queue import ingest_sender
from stockpipe.doctor import Diagnosis, Status, diagnose
from stockpipe.engine import free_port
from stockpipe.producer.sources import synthetic
from stockpipe.provision import Stack
from stockpipe.provision.deployer import deployer_policy
from stockpipe.provision.model import TAG_KEY
from stockpipe.settings import Settings, unique_names
from stockpipe.status import Adapters
from tests.helpers import wait_for
from tests.recording import PlayedBy, Recorder, aws_target

SYMBOLS = ("AAPL", "MSFT", "AMZN")
EMAIL = "alerts@example.com"


def lines(diagnosis: Diagnosis) -> list[str]:
    return [finding.line for finding in diagnosis.findings]


def named(diagnosis: Diagnosis, words: str) -> str:
    """The one line that says ``words``."""
    found = [line for line in lines(diagnosis) if words in line]
    assert len(found) == 1, "\n".join(lines(diagnosis))
    return found[0]


def send(settings: Settings, count: int, seed: int = 7) -> None:
    """``count`` synthetic ticks; each seed has its own hour, so that no two sends repeat a tick."""
    start = datetime(2026, 3, 2, 9, tzinfo=UTC) + timedelta(hours=seed)
    ingest_sender(AwsContext(settings)).send(list(synthetic(SYMBOLS, seed, count, start)))


def stored(settings: Settings, items: int) -> None:
    """Wait until the table holds ``items`` and the archive's partitions are registered."""
    aws = AwsContext(settings)
    glue = aws.client("glue")
    wait_for(lambda: (Adapters(aws).table.count(), len(glue.get_partitions(
        DatabaseName=settings.athena_database, TableName=settings.athena_table)["Partitions"])),
        lambda seen: seen[0] >= items and seen[1] >= len(SYMBOLS), what=f"{items} ticks stored and archived")


def stockpipe(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # cwd is a scratch folder, so a developer's own .env never leaks into the test.
    return subprocess.run([sys.executable, "-m", "stockpipe.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def healthy(engine) -> Iterator[dict[str, str]]:
    """One deployment with ticks through it and an e-mail subscription: the environment that names it."""
    env = {**os.environ, **unique_names(f"dr{uuid.uuid4().hex[:8]}"), "ALERT_EMAIL": EMAIL}
    settings = Settings.from_env(env)
    stack = Stack(AwsContext(settings), report=lambda line: None)
    stack.up()
    try:
        send(settings, 30)
        stored(settings, 30)
        yield env
    finally:
        stack.down()


@pytest.fixture
def own(pipeline, settings, names) -> dict[str, str]:
    """The session's deployment, empty, then ticks through it: the environment that names it."""
    send(settings, 30)
    stored(settings, 30)
    return {**os.environ, **names, "INGEST": settings.ingest}


# -- a healthy pipeline, and what doctor does to it ---------------------------------------------


def test_a_healthy_pipeline_passes_every_check(healthy, tmp_path):
    done = stockpipe("doctor", env=healthy, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout.splitlines()
    assert [line[0] for line in output[:-1]] == ["✓"] * 2 + ["-"] + ["✓"] * (len(output) - 4), done.stdout
    assert output[2].startswith("- IAM policy simulation skipped: MiniStack")
    for words in ("answered in", "credentials work: arn:aws:iam::000000000000:root",
                  "resources of stack", "one region, us-east-1", "runs this build", "is Enabled, last batch OK",
                  "every tick in stream", "dead-letter queue", "on-failure queue", f"ALERT_EMAIL={EMAIL} is subscribed "
                  "and confirmed", "where process-ticks writes", "partition(s), all under", "a test query returned a row"):
        assert any(words in line for line in output), (words, done.stdout)
    assert output[-1].startswith("doctor: all checks pass (") and done.stderr == ""
    data = json.loads(stockpipe("doctor", "--json", env=healthy, cwd=tmp_path).stdout)
    assert data["ok"] is True and data["counts"]["problem"] == data["counts"]["warning"] == 0
    assert {f["group"] for f in data["findings"]} == {"reachability", "existence", "regions", "code", "flow", "query"}


@pytest.mark.parametrize("ingest", ["sqs"])
def test_over_the_queue_a_healthy_pipeline_passes_and_a_disabled_trigger_leaves_ticks_waiting(own, settings, tmp_path):
    """INGEST=sqs: the queue's trigger, the queue's counts for the stall (never received from: a
    receive would count toward its redrive policy)."""
    done = stockpipe("doctor", env=own, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    queue, function = settings.ingest_queue_name, settings.process_function_name
    assert f"✓ trigger {queue} -> {function} is Enabled, last batch OK" in done.stdout
    assert f"✓ queue {queue} is empty: every tick sent is in table {settings.table_name} or quarantined" in done.stdout
    lam = AwsContext(settings).client("lambda")
    lam.update_event_source_mapping(UUID=process_trigger(settings), Enabled=False)
    wait_for(lambda: lam.get_event_source_mapping(UUID=process_trigger(settings))["State"], lambda s: s == "Disabled")
    send(settings, 12, seed=8)
    diagnosis = diagnose(own, stall_after=0)
    assert named(diagnosis, "has stored nothing").startswith(f"✗ {function} has stored nothing for ")
    assert named(diagnosis, "has stored nothing").endswith(
        f" while 12 ticks wait in queue {queue} (mapping Disabled): stockpipe init re-enables it")


def test_doctor_only_reads(healthy):
    """Every call is a read: receives leave the messages visible (timeout 0); the test query is a
    SELECT, whose result Athena writes under athena-results/ as for any query."""
    settings = Settings.from_env(healthy)
    import boto3

    session = boto3.Session(region_name=settings.region)
    recorder = Recorder().attach(session)
    diagnosis = diagnose(healthy, {}, session=session)
    assert diagnosis.passed, diagnosis.text()
    changing = [op for op in recorder.mutating() if op not in ("sqs:ReceiveMessage", "athena:StartQueryExecution")]
    assert changing == [] and recorder.invalid == []
    assert all(c.params["VisibilityTimeout"] == 0 for c in recorder.calls if c.operation == "ReceiveMessage")
    assert all(c.params["QueryString"].startswith("SELECT ") for c in recorder.calls
               if c.operation == "StartQueryExecution")


# -- 1. configuration ---------------------------------------------------------------------------


def test_a_trailing_space_in_the_stream_name_is_named_with_its_env_line(healthy, tmp_path):
    stream = healthy["STREAM_NAME"]
    env = {k: v for k, v in healthy.items() if k != "STREAM_NAME"}
    (tmp_path / ".env").write_text(f"# the seeds' note 3\nAWS_REGION=us-east-1\nSTREAM_NAME=\"{stream} \"\n")
    done = stockpipe("doctor", env=env, cwd=tmp_path)
    assert done.returncode == 1 and done.stderr == ""
    output = done.stdout.splitlines()
    assert output[0] == f"✗ STREAM_NAME='{stream} ' has a trailing space (.env line 3): remove it"
    # Every other check still ran, on the name as it will be without the space.
    assert any(line.startswith("✓ all ") and "exist under their configured names" in line for line in output)
    assert output[-1].startswith("doctor: some checks fail (1 problem, ")


def test_an_invisible_character_in_a_region_and_a_symbol_is_named_each(healthy):
    diagnosis = diagnose({**healthy, "AWS_REGION": "\u200bus-east-1", "PRODUCER_SYMBOLS": "AAPL,MSFT\u00a0,AMZN"},
                         {"PRODUCER_SYMBOLS": ".env line 9"})
    assert named(diagnosis, "✗ AWS_REGION=") == (
        "✗ AWS_REGION='\\u200bus-east-1' has a leading U+200B ZERO WIDTH SPACE (environment): remove it")
    assert named(diagnosis, "PRODUCER_SYMBOLS=") == (
        "✗ PRODUCER_SYMBOLS='AAPL,MSFT\\xa0,AMZN': symbol 2 ('MSFT\\xa0') has a trailing U+00A0 NO-BREAK SPACE "
        "(.env line 9): remove it")
    assert [f.status for f in diagnosis.findings].count(Status.PROBLEM) == 2


# -- 3. regions ---------------------------------------------------------------------------------


def test_a_producer_in_another_region_than_the_pipeline_is_named(healthy):
    diagnosis = diagnose({**healthy, "AWS_REGION": "us-east-2"})
    assert named(diagnosis, "the producer sends to") == (
        f"✗ the producer sends to us-east-2 (AWS_REGION=us-east-2, environment), but the pipeline is in us-east-1 "
        f"(stream '{healthy['STREAM_NAME']}' is there, not in us-east-2): set AWS_REGION=us-east-1 (or run stockpipe "
        "init to build it in us-east-2)")
    assert "none of the 33 regional resources" in named(diagnosis, "none of the")


def test_a_function_whose_environment_names_another_region_is_named(own, settings):
    lam = AwsContext(settings).client("lambda")
    variables = lam.get_function_configuration(FunctionName=settings.trends_function_name)["Environment"]["Variables"]
    variables["TOPIC_ARN"] = variables["TOPIC_ARN"].replace(":us-east-1:", ":us-west-2:")
    lam.update_function_configuration(FunctionName=settings.trends_function_name, Environment={"Variables": variables})
    diagnosis = diagnose(own)
    assert named(diagnosis, "TOPIC_ARN in the environment") == (
        f"✗ TOPIC_ARN in the environment of {settings.trends_function_name} is in us-west-2, the producer "
        "(AWS_REGION=us-east-1, environment) and the pipeline in us-east-1: stockpipe init sets its environment again")


# -- 4. existence -------------------------------------------------------------------------------


def test_a_bucket_name_typo_is_named_with_the_bucket_that_exists(healthy):
    bucket = healthy["RAW_BUCKET"]
    diagnosis = diagnose({**healthy, "RAW_BUCKET": bucket[:-1]}, {"RAW_BUCKET": ".env line 12"})
    assert named(diagnosis, "no s3 bucket") == (
        f"✗ no s3 bucket '{bucket[:-1]}' (RAW_BUCKET, .env line 12) in us-east-1, but '{bucket}' exists: did you "
        f"mean RAW_BUCKET={bucket}? (or stockpipe init creates '{bucket[:-1]}')")
    # Named alone: what the typo changes elsewhere (the functions' environment) follows from it.
    assert [f.check for f in diagnosis.findings if f.status is Status.PROBLEM] == ["bucket"]


# -- 2. code ------------------------------------------------------------------------------------


def deploy(settings: Settings, edit) -> None:
    """process-ticks' zip as init builds it, with handler.py edited, deployed."""
    from stockpipe.provision.packaging import build

    package, out = build("process_ticks"), io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package.data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name in source.namelist():
            data = source.read(name)
            zipped.writestr(name, edit(data.decode()).encode() if name == "handler.py" else data)
    AwsContext(settings).client("lambda").update_function_code(FunctionName=settings.process_function_name,
                                                              ZipFile=out.getvalue())


def test_a_stale_deploy_and_an_invisible_character_in_the_code_are_named(own, settings):
    function = settings.process_function_name
    deploy(settings, lambda text: text.replace('"""', '"""(an older build) ', 1))
    diagnosis = diagnose(own)
    assert named(diagnosis, "not this build").startswith(f"✗ {function} runs code that is not this build (deployed ")
    assert named(diagnosis, "not this build").endswith("; handler.py differs): stockpipe init deploys this build")
    assert not any("invisible)" in line for line in lines(diagnosis))

    # The seeds' note 5: a U+200B typed into the handler, which breaks it.
    deploy(settings, lambda text: text.replace("def lambda_handler", "def lambda\u200b_handler", 1))
    diagnosis = diagnose(own)
    line = named(diagnosis, "deployed code of")
    assert line.startswith(f"✗ the deployed code of {function} has U+200B ZERO WIDTH SPACE (invisible) at handler.py "
                           "line ")
    assert line.endswith(", column 11: stockpipe init deploys this build, which has none")


# -- 6. flow ------------------------------------------------------------------------------------


def process_trigger(settings: Settings) -> str:
    lam = AwsContext(settings).client("lambda")
    return str(lam.list_event_source_mappings(FunctionName=settings.process_function_name)["EventSourceMappings"][0]
               ["UUID"])


def test_a_trigger_not_enabled_and_the_ticks_it_leaves_waiting_are_named(own, settings):
    """The seeds' "Lambda not firing: event source mapping not Enabled"."""
    lam = AwsContext(settings).client("lambda")
    lam.update_event_source_mapping(UUID=process_trigger(settings), Enabled=False)
    wait_for(lambda: lam.get_event_source_mapping(UUID=process_trigger(settings))["State"], lambda s: s == "Disabled")
    send(settings, 12, seed=8)
    diagnosis = wait_for(lambda: diagnose(own, stall_after=1), lambda d: any("has not read" in line for line in lines(d)),
                         what="the stall named")
    stream, function = settings.stream_name, settings.process_function_name
    assert named(diagnosis, f"trigger {stream}") == (
        f"✗ trigger {stream} -> {function} is Disabled ({function} reads nothing): stockpipe init re-enables it")
    stall = named(diagnosis, "has not read")
    assert stall.startswith(f"✗ {function} has not read the stream for ")
    assert stall.endswith(" while 12 ticks wait to be stored (mapping Disabled): stockpipe init re-enables it")


def test_a_trigger_whose_batches_fail_is_named_with_where_to_look(own, settings):
    lam = AwsContext(settings).client("lambda")
    variables = lam.get_function_configuration(FunctionName=settings.process_function_name)["Environment"]["Variables"]
    lam.update_function_configuration(FunctionName=settings.process_function_name,
                                      Environment={"Variables": {**variables, "TABLE_NAME": "no-such-table"}})
    send(settings, 6, seed=9)
    diagnosis = wait_for(lambda: diagnose(own, stall_after=1), lambda d: any(
        "has not read" in line and "'FAILED'" in line for line in lines(d)), what="the failing batches' stall named")
    function, stream = settings.process_function_name, settings.stream_name
    assert named(diagnosis, f"trigger {stream}") == (
        f"✗ trigger {stream} -> {function}: its last batch 'FAILED': the function fails on its batches; its log says "
        f"why: aws logs tail /aws/lambda/{function}")
    assert named(diagnosis, "has not read").endswith(
        f" while 6 ticks wait to be stored (mapping Enabled, last batch 'FAILED'): the function fails on every batch and the "
        f"engine retries it; its log says why: aws logs tail /aws/lambda/{function}")


def test_dead_letters_and_batches_given_up_on_are_counted_with_the_oldest_reason(own, settings):
    aws = AwsContext(settings)
    aws.client("kinesis").put_record(StreamName=settings.stream_name, PartitionKey="AAPL",
                                     Data=b'{"symbol": "AAPL", "timestamp": "2026-03-02T14:00:00Z", "price": -5}')
    aws.client("sqs").send_message(QueueUrl=aws.queue_url(settings.onfailure_queue_name), MessageBody=json.dumps({
        "requestContext": {"condition": "RetryAttemptsExhausted"}, "KinesisBatchInfo": {
            "shardId": "shardId-000000000000", "startSequenceNumber": "1", "endSequenceNumber": "9", "batchSize": 10,
            "streamArn": aws.where.stream_arn}}))
    diagnosis = wait_for(lambda: diagnose(own), lambda d: any("dead-letter queue" in line and line[0] == "!"
                                                               for line in lines(d)), what="the dead letter")
    dead = named(diagnosis, "dead-letter queue")
    assert dead.startswith(f"! 1 record(s) in dead-letter queue {settings.dlq_name}, oldest ")
    assert dead.endswith(" ago: price: must be a positive number, got -5 (process-ticks): stockpipe dead-letters shows each "
                         "with its reason and payload")
    failed = named(diagnosis, "given up on")
    assert failed.startswith(f"✗ 1 stream batch(es) given up on in {settings.onfailure_queue_name}, oldest ")
    assert failed.endswith(" ago: 10 kinesis record(s) of shardId-000000000000, RetryAttemptsExhausted: stockpipe "
                           "replay-failed puts them through again")
    # Looked at, not taken: both are still there for their readers.
    assert (Adapters(aws).status(full=False).dead_letters, Adapters(aws).status(full=False).failed_batches) == (1, 1)


# -- 7. query -----------------------------------------------------------------------------------


def test_a_glue_table_reading_the_wrong_folder_is_named_and_the_test_query_finds_nothing(own, settings):
    """The seeds' "Athena empty: verify the S3 LOCATION"."""
    aws = AwsContext(settings)
    bucket = aws.where.raw_bucket
    wrong = table_input(settings.athena_table, f"s3://{bucket}/processed/")
    wrong["Parameters"][TAG_KEY] = settings.stack_name
    aws.client("glue").update_table(DatabaseName=settings.athena_database, TableInput=wrong)
    diagnosis = diagnose(own)
    table = f"{settings.athena_database}.{settings.athena_table}"
    assert named(diagnosis, "reads s3://") == (
        f"✗ Glue table {table} reads s3://{bucket}/processed/, but process-ticks writes s3://{bucket}/raw-data/: Athena "
        "finds nothing there: stockpipe init points it back")
    assert named(diagnosis, "test query") == (
        f"✗ a test query returned no row from Athena (workgroup primary) while s3://{bucket}/raw-data/ holds raw "
        "objects: see the Glue table's location and partitions above; stockpipe query --repair registers the partitions")


def test_an_archive_without_partitions_is_named_with_the_repair(own, settings):
    glue = AwsContext(settings).client("glue")
    partitions = glue.get_partitions(DatabaseName=settings.athena_database,
                                     TableName=settings.athena_table)["Partitions"]
    for partition in partitions:  # (MiniStack has no BatchDeletePartition)
        glue.delete_partition(DatabaseName=settings.athena_database, TableName=settings.athena_table,
                              PartitionValues=partition["Values"])
    diagnosis = diagnose(own)
    bucket = AwsContext(settings).where.raw_bucket
    assert named(diagnosis, "partitions") == (
        f"✗ Glue table {settings.athena_database}.{settings.athena_table} has no partitions while s3://{bucket}/raw-data/ "
        "holds raw objects: Athena reads none of them: stockpipe query --repair registers them")


# -- 5. reachability ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def on_aws(engine) -> Iterator[tuple[AwsContext, list[str], Stack, dict[str, str]]]:
    """One deployment on real AWS (eu-west-1) played by the engine: the context, every operation its
    init called (recorded), the stack and its names."""
    if engine.url is None:
        pytest.skip("--engine aws runs the real thing; this plays AWS with an engine")
    names = unique_names(f"sp{uuid.uuid4().hex[:8]}")
    aws, recorder = aws_target(names, region="eu-west-1", account=None)
    PlayedBy(aws, engine.url)
    stack = Stack(aws, report=lambda line: None)
    try:
        stack.up()
        yield aws, list(recorder.operations), stack, names
    finally:
        stack.down()


def test_on_aws_a_role_that_may_not_make_a_call_its_code_makes_is_named(on_aws):
    """Real AWS, played by the engine: IAM's policy simulation of each role (the engine evaluates the
    role's policy as IAM would); the deployer here is the account's root, which is not simulated."""
    aws, _, stack, names = on_aws
    role = Settings.role_name(names["TRENDS_FUNCTION_NAME"])
    iam = aws.client("iam")
    derived = next(r for r in stack.resources if r.key == "trends-role").policy(stack.run)
    policy = json.loads(json.dumps(derived))
    for statement in policy["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != "sns:Publish"] or ["sns:GetTopicAttributes"]
    iam.put_role_policy(RoleName=role, PolicyName="stockpipe", PolicyDocument=json.dumps(policy))
    try:
        diagnosis = diagnose({**names, "AWS_REGION": "eu-west-1"}, {}, session=aws.session)
    finally:  # the module's deployment as init made it, for the next test
        iam.put_role_policy(RoleName=role, PolicyName="stockpipe", PolicyDocument=json.dumps(derived, sort_keys=True))
    assert named(diagnosis, f"the role of {names['TRENDS_FUNCTION_NAME']}") == (
        f"✗ the role of {names['TRENDS_FUNCTION_NAME']}, {role}, may not make sns:Publish on "
        f"arn:aws:sns:eu-west-1:{aws.identity.account_id}:{names['TOPIC_NAME']} (implicitDeny): stockpipe init puts its "
        "policy back (derived from what the code calls)")
    assert named(diagnosis, f"the role of {names['PROCESS_FUNCTION_NAME']}").startswith("✓ ")
    assert named(diagnosis, "the deployer").startswith("- the deployer's permissions are not simulated: arn:aws:")


def test_every_call_init_makes_on_aws_is_one_doctor_simulates_for_the_deployer(on_aws):
    """Doctor simulates the deployer's policy (derived from the list); every action init made is in it."""
    from tests.permissions import IRREGULAR, PREFIXES

    aws, init_called, _, _ = on_aws
    made = {IRREGULAR.get(f"{PREFIXES.get(s, s)}:{o}", f"{PREFIXES.get(s, s)}:{o}")
            for s, _, o in (op.partition(":") for op in init_called)} - {"sts:GetCallerIdentity"}
    simulated = {a for st in deployer_policy(aws)["Statement"]
                 for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    assert made - simulated == set()


def test_an_engine_that_is_not_there_is_one_line_within_3_seconds(tmp_path):
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    started = time.monotonic()
    done = stockpipe("doctor", env=env, cwd=tmp_path)
    seconds = time.monotonic() - started
    assert done.returncode == 1 and done.stderr == "" and "Traceback" not in done.stdout
    output = done.stdout.splitlines()
    assert output[0].startswith(f"✗ cannot reach the AWS engine at AWS_ENDPOINT_URL={env['AWS_ENDPOINT_URL']} "
                                "(EndpointConnectionError): start it")
    assert output[1] == "- the deployment was not looked at: the target does not answer (above)"
    assert seconds <= 3, seconds


def test_an_engine_that_accepts_but_never_answers_is_one_line_within_3_seconds(tmp_path):
    """The hard case of "not there": the connection opens, no answer comes (a hung engine)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{listener.getsockname()[1]}"}
        started = time.monotonic()
        done = stockpipe("doctor", env=env, cwd=tmp_path)
        seconds = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()
    assert done.returncode == 1 and done.stderr == "" and "Traceback" not in done.stdout
    assert done.stdout.splitlines()[0].startswith(f"✗ cannot reach the AWS engine at AWS_ENDPOINT_URL="
                                                  f"{env['AWS_ENDPOINT_URL']} (ReadTimeoutError): start it")
    assert seconds <= 3, seconds


def test_missing_credentials_for_real_aws_are_one_line_within_3_seconds(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_REGION="eu-west-1", AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    started = time.monotonic()
    done = stockpipe("doctor", env=env, cwd=tmp_path)
    seconds = time.monotonic() - started
    assert done.returncode == 1 and done.stderr == "" and "Traceback" not in done.stdout
    assert done.stdout.splitlines()[0] == ("✗ no AWS credentials for real AWS in eu-west-1: set AWS_PROFILE or "
                                           "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    assert seconds <= 3, seconds
