"""The bench's own functions ship as one file each, importing nothing the Lambda runtime lacks."""

import ast
import io
import sys
import zipfile

import pytest

from bench.deploy import module_zip
from bench.naive_trend import crossing

MODULES = ("ceiling_write", "ceiling_log", "naive_process", "naive_trend")


@pytest.mark.parametrize("module", MODULES)
def test_each_function_is_a_single_file_that_imports_only_the_standard_library_and_boto3(module):
    archive = zipfile.ZipFile(io.BytesIO(module_zip(module)))
    assert archive.namelist() == [f"{module}.py"]
    tree = ast.parse(archive.read(f"{module}.py"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - {"boto3", "__future__"} <= set(sys.stdlib_module_names)
    assert any(isinstance(node, ast.FunctionDef) and node.name == "handler" for node in tree.body)
    assert "print(" in archive.read(f"{module}.py").decode()  # one line per batch: no 50 ms wait for output


def test_the_zip_is_the_same_every_time():
    assert module_zip("ceiling_write") == module_zip("ceiling_write")


def test_the_naive_rule_fires_when_the_short_average_crosses_the_long_one():
    from decimal import Decimal

    flat = [Decimal(100)] * 20
    assert crossing([*flat, Decimal(101)]) == "BUY"
    assert crossing([*flat, Decimal(99)]) == "SELL"
    assert crossing([*flat, Decimal(100)]) is None
    assert crossing(flat) is None  # 21 prices needed
