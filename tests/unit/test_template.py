"""The CloudFormation template is the resource list init walks, rendered: nothing in one route that is
not in the other, parameters checked like the settings, and a folder of someone's files never
overwritten. (tests/e2e/test_cloudformation.py deploys it.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stockpipe.aws.context import EngineInfo
from stockpipe.provision.template import HEADER, TEMPLATE_FILE, TemplateError, parameters, render, write
from stockpipe.settings import Settings, SettingsError

AWS = EngineInfo("AWS", honours_stream_failures=True)
MINISTACK = EngineInfo("MiniStack 1.5.33", honours_stream_failures=False)


def settings(**variables: str) -> Settings:
    return Settings.from_env(variables)


@pytest.mark.parametrize("variables", [{}, {"INGEST": "sqs"}, {"ALERT_EMAIL": "ops@example.com"},
                                       {"INGEST": "sqs", "STREAM_MODE": "PROVISIONED", "STREAM_SHARDS": "2"}])
def test_every_resource_of_the_list_is_in_the_template_and_nothing_else(variables):
    rendered = render(settings(**variables), AWS)
    body = rendered.body["Resources"]
    listed = {r.logical_id for r in rendered.listed}
    # Each resource of the list is there under its own ID; the only others are the policies CloudFormation
    # keeps as resources of their own (a queue's, the bucket's).
    assert listed <= set(body)
    assert {k for k in set(body) - listed} == {f"{r}Policy" for r in listed if f"{r}Policy" in body}
    assert all(body[f"{r}Policy"]["Type"].endswith(("::QueuePolicy", "::BucketPolicy")) for r in listed
               if f"{r}Policy" in body)
    # The e-mail subscription is in every template, there only when the parameter is given.
    assert body["EmailSubscription"]["Condition"] == "AlertEmailGiven"
    assert body["OpsEmailSubscription"]["Condition"] == "OpsEmailGiven"
    assert ("Stream" in body) == (variables.get("INGEST") != "sqs")
    assert ("Locks" in body) == ("IngestQueue" in body) == (variables.get("INGEST") == "sqs")


def test_the_template_is_yaml_with_a_header_and_references_only_what_it_declares():
    rendered = render(settings(), AWS)
    text = rendered.text()
    assert text.startswith(HEADER)
    loaded = yaml.safe_load(text)
    assert loaded == rendered.body
    declared = set(loaded["Resources"]) | set(loaded["Parameters"])
    refs = set(re.findall(r"'Ref': '([A-Za-z0-9:]+)'", repr(loaded)))
    refs |= {name for name, _ in re.findall(r"'Fn::GetAtt': \['([A-Za-z0-9]+)', '([A-Za-z]+)'\]", repr(loaded))}
    subs = set(re.findall(r"\$\{([A-Za-z0-9:]+)(?:\.[A-Za-z]+)?\}", repr(loaded)))
    assert {r for r in refs | subs if not r.startswith("AWS::")} - {"RawBucketName"} <= declared


def test_the_functions_get_what_init_gives_them_and_the_engine_decides_partial_batch_responses():
    body = render(settings(), MINISTACK).body
    assert body["Parameters"]["PartialBatchResponse"]["Default"] == "false"
    assert render(settings(), AWS).body["Parameters"]["PartialBatchResponse"]["Default"] == "true"
    variables = body["Resources"]["Process"]["Properties"]["Environment"]["Variables"]
    assert variables["PARTIAL_BATCH_RESPONSE"] == {"Ref": "PartialBatchResponse"}
    assert variables["DLQ_URL"] == {"Ref": "Dlq"}  # the queue's URL
    assert variables["RAW_BUCKET"] == {"Ref": "Bucket"}  # the bucket's name, whichever way it is named
    assert body["Resources"]["Process"]["Properties"]["Code"] == "process_ticks.zip"
    trigger = body["Resources"]["ProcessTrigger"]["Properties"]
    assert trigger["BisectBatchOnFunctionError"] is True
    assert trigger["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert trigger["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": ["OnFailure", "Arn"]}}}


@pytest.mark.parametrize(("name", "value", "good"), [
    ("StackName", "stockpipe-2", True), ("StackName", "my stack", False), ("StackName", "x" * 65, False),
    ("RawBucket", "", True), ("RawBucket", "my-raw-bucket", True), ("RawBucket", "My_Bucket", False),
    ("AlertEmail", "", True), ("AlertEmail", "ops@example.com", True), ("AlertEmail", "ops at example", False),
])
def test_a_parameter_accepts_exactly_what_its_setting_accepts(name, value, good):
    parameter = next(p for p in parameters(Settings(), AWS) if p.name == name)
    declared = parameter.declaration()
    allowed = bool(re.fullmatch(declared["AllowedPattern"], value)) and len(value) <= declared.get("MaxLength", 10**6)
    try:
        settings(**{parameter.variable: value})
        accepted = True
    except SettingsError:
        accepted = False
    assert allowed == accepted == good


def test_write_refuses_a_folder_of_other_files_and_replaces_its_own_output(tmp_path):
    rendered = render(settings(), AWS)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(TemplateError, match=r"is not empty and holds no stockpipe template \(notes.txt\)"):
        write(rendered, mine)
    assert (mine / "notes.txt").read_text() == "keep me" and not (mine / TEMPLATE_FILE).exists()

    out = tmp_path / "out"
    written = write(rendered, out)
    assert sorted(p.name for p in written) == ["process_ticks.zip", TEMPLATE_FILE, "trend_alerts.zip"]
    (out / "packaged.yaml").write_text("what aws cloudformation package wrote")
    assert write(rendered, out) == written  # an earlier output: written again
    assert (out / "process_ticks.zip").read_bytes() == rendered.packages["process_ticks.zip"]


def test_the_command_refuses_in_one_line(tmp_path):
    (tmp_path / "yours").mkdir()
    (tmp_path / "yours" / "a.txt").write_text("x")
    done = subprocess.run([sys.executable, "-m", "stockpipe.cli", "template", "--out", "yours"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "stockpipe template: error: yours is not empty and holds no stockpipe template (a.txt): give --out a new "
        "or empty folder"]
    assert not Path(tmp_path / "yours" / TEMPLATE_FILE).exists()
