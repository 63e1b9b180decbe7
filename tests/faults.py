"""Faults built by the tests, not by the product: a function whose every AWS call fails at random.

``install_faults`` replaces a deployed function's code with its own zip plus a wrapper handler that
makes a share of the function's AWS calls answer 503 before they are sent (as AWS does when it is
overloaded), so that botocore's retries, the handlers' failure paths and the triggers' retries are
exercised on an engine that never fails. It returns what puts the function's own code back.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any

from stockpipe.provision.packaging import build
from tests.helpers import wait_for

# The wrapper: botocore registers BUILTIN_HANDLERS on every session it creates, and the function
# creates its session after this module has run.
WRAPPER = '''"""Fault injection for a test: {rate:.0%} of this function's AWS calls answer 503."""
import random

from botocore import handlers
from botocore.awsrequest import AWSResponse

_chance = random.Random()


class _EmptyBody:
    def stream(self, **_):
        yield b""


def _fail(request, **_):
    if _chance.random() >= {rate!r}:
        return None
    return AWSResponse(request.url, 503, {{}}, _EmptyBody())


handlers.BUILTIN_HANDLERS.append(("before-send", _fail))

from function_handler import lambda_handler  # noqa: E402,F401
'''


def faulty_zip(function_dir: str, rate: float) -> bytes:
    """The function's own zip, its handler renamed function_handler.py, and the wrapper as handler.py."""
    original = zipfile.ZipFile(io.BytesIO(build(function_dir).data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for info in original.infolist():
            name = "function_handler.py" if info.filename == "handler.py" else info.filename
            out.writestr(name, original.read(info))
        out.writestr("handler.py", WRAPPER.format(rate=rate))
    return buffer.getvalue()


def _deploy(lam: Any, name: str, code: bytes) -> None:
    lam.update_function_code(FunctionName=name, ZipFile=code)
    wait_for(lambda: lam.get_function_configuration(FunctionName=name).get("LastUpdateStatus"),
             lambda status: status in (None, "Successful"), what=f"{name} updated")


def install_faults(aws: Any, name: str, function_dir: str, rate: float) -> Callable[[], None]:
    """Deploy the faulty code of ``function_dir`` as function ``name``; returns what restores its own."""
    lam = aws.client("lambda")
    _deploy(lam, name, faulty_zip(function_dir, rate))
    return lambda: _deploy(lam, name, build(function_dir).data)
