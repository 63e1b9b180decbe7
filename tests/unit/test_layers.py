"""The layers hold: only the adapters (stockpipe/aws/) and provisioning (init/) talk to AWS through
boto3 and botocore. Everything else (doctor, query, the dashboard, the CLI, the demo, the labs, the
producer, the functions) goes through an adapter and sees AWS errors as ``AwsError``.

Read from the source (an AST scan), so an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("stockpipe", "lambdas", "services")
# Where boto3 and botocore belong. init/ (provisioning) and bench/ (a development tool, outside the
# package) are not scanned.
ALLOWED = ("stockpipe/aws/",)
# Files that still import them and are being changed elsewhere; each entry says what it should use
# instead. An entry whose file no longer imports them must leave this list (the test says so).
NOT_YET_THROUGH_ADAPTERS: dict[str, str] = {}
AWS_PACKAGES = ("boto3", "botocore")
# A client or a resource asked for by service name ("lambda", "s3"): only an adapter builds those.
CLIENT_CALLS = ("client", "resource")


def python_files() -> Iterator[tuple[str, Path]]:
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path


def aws_imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] in AWS_PACKAGES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in AWS_PACKAGES:
            found.append(str(node.module))
    return found


def client_calls(tree: ast.AST) -> list[str]:
    """``x.client("sqs")`` and ``x.resource("dynamodb")``: a raw client by service name."""
    return [f"{node.func.attr}({node.args[0].value!r}) at line {node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLIENT_CALLS
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)]


def test_boto3_and_botocore_are_imported_only_by_the_adapters():
    outside: dict[str, list[str]] = {}
    for name, path in python_files():
        if name.startswith(ALLOWED):
            continue
        imported = aws_imports(ast.parse(path.read_text(encoding="utf-8"), name))
        if imported and name not in NOT_YET_THROUGH_ADAPTERS:
            outside[name] = imported
    assert outside == {}, "go through an adapter in stockpipe/aws/ (and catch AwsError, not botocore's errors)"


def test_the_list_of_files_not_yet_through_adapters_only_names_files_that_still_need_it():
    done = [name for name in NOT_YET_THROUGH_ADAPTERS
            if (ROOT / name).exists() and not aws_imports(ast.parse((ROOT / name).read_text(encoding="utf-8")))]
    gone = [name for name in NOT_YET_THROUGH_ADAPTERS if not (ROOT / name).exists()]
    assert done + gone == [], "take them off NOT_YET_THROUGH_ADAPTERS: the guard now holds for them"


def test_no_raw_aws_client_is_asked_for_outside_the_adapters():
    outside: dict[str, list[str]] = {}
    for name, path in python_files():
        if name.startswith(ALLOWED) or name in NOT_YET_THROUGH_ADAPTERS:
            continue
        calls = client_calls(ast.parse(path.read_text(encoding="utf-8"), name))
        if calls:
            outside[name] = calls
    assert outside == {}, "an adapter in stockpipe/aws/ makes that call"


def test_the_scan_sees_an_import_anywhere_in_a_module():
    tree = ast.parse("import os\n\ndef f():\n    from botocore.exceptions import ClientError\n    import boto3.session\n"
                     "    return aws.client('sqs'), look.resource(key)\n")
    assert aws_imports(tree) == ["botocore.exceptions", "boto3.session"]
    assert client_calls(tree) == ["client('sqs') at line 6"]
