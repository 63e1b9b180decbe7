"""AWS failures as the rest of the project sees them: ``AwsError``, one of its own errors, raised at
the adapters' edge in place of botocore's (nothing outside stockpipe/aws/ and init/ imports botocore);
and each turned into one line that says what is wrong and what to do.

The adapters the functions use too (the table, the archive, the queues, the publisher) still raise
botocore's errors, which their callers outside the functions turn into ``AwsError`` with
``translated()`` where they call them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from stockpipe.errors import StockpipeError


class AwsError(StockpipeError):
    """An AWS call that failed: an answer refusing it (``answered``: ``code``, ``status``, the
    service's ``reason``) or none at all (no connection, a timeout, no credentials). ``str()`` is
    botocore's own message; ``kind`` its class name ("ClientError", "EndpointConnectionError"), for
    the messages that name it; ``explain()`` says it for people."""

    def __init__(self, message: str, *, kind: str = "ClientError", code: str = "", reason: str = "",
                 status: int | None = None, operation: str = "", answered: bool = True,
                 response: dict[str, Any] | None = None, original: BaseException | None = None) -> None:
        super().__init__(message)
        self.kind, self.code, self.reason, self.status, self.operation = kind, code, reason, status, operation
        self.answered = answered
        self.response: dict[str, Any] = response or {}  # the whole answer (HeadBucket's region is in its headers)
        self.original = original

    @classmethod
    def of(cls, error: BaseException) -> AwsError:
        """botocore's error as ours."""
        if isinstance(error, ClientError):
            response: dict[str, Any] = dict(error.response)
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return cls(str(error), kind=type(error).__name__, code=error_code(error),
                       reason=str(response.get("Error", {}).get("Message", "")),
                       status=int(status) if status is not None else None, operation=str(error.operation_name or ""),
                       response=response, original=error)
        return cls(str(error), kind=type(error).__name__, answered=False, original=error)


@contextmanager
def translated() -> Iterator[None]:
    """botocore's errors raised inside, raised again as ``AwsError`` (the adapters' edge); a decorator too."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise AwsError.of(error) from error


def _botocore(error: BaseException) -> BaseException:
    """The botocore error behind one of ours, or the error itself."""
    if isinstance(error, AwsError) and error.original is not None:
        return error.original
    return error


def error_code(error: BaseException) -> str:
    if isinstance(error, AwsError):
        return error.code
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


# What an engine answers for an API it lacks (LocalStack community's Glue: 501 InternalFailure;
# MiniStack: InvalidAction).
UNSUPPORTED_CODES = {"InternalFailure", "NotImplemented", "UnknownOperationException", "501", "InvalidAction"}


def unsupported(error: BaseException) -> bool:
    """The engine does not offer this API at all (as opposed to refusing this request)."""
    text = str(error).lower()
    return error_code(error) in UNSUPPORTED_CODES or any(
        words in text for words in ("not yet implemented", "not included", "not enabled", "not supported",
                                    "unknown action")
    )


def explain(error: BaseException, where: str, region: str) -> str | None:
    """A one-line explanation for errors a user can fix, or None for anything else. ``where``: the
    target as the context names it ("the AWS engine at AWS_ENDPOINT_URL=... (from .env line 9)")."""
    ours = error if isinstance(error, AwsError) else None
    error = _botocore(error)
    if isinstance(error, EndpointConnectionError):
        if "AWS_ENDPOINT_URL" in where:
            return f"cannot reach {where}: start it (stockpipe emulator, or make up) or fix AWS_ENDPOINT_URL"
        return f"cannot reach {where}: check the network and AWS_REGION={region}"
    if isinstance(error, ReadTimeoutError):
        return f"{where} did not answer in time: is it overloaded or still starting?"
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials found: configure a profile or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    if isinstance(error, NoRegionError):
        return "no AWS region: set AWS_REGION (e.g. us-east-1)"
    code = error_code(ours or error)
    message = ours.reason if ours is not None else (
        str(error.response.get("Error", {}).get("Message", "")) if isinstance(error, ClientError) else "")
    if code in {"ResourceNotFoundException", "NoSuchBucket", "AWS.SimpleQueueService.NonExistentQueue",
                "QueueDoesNotExist", "NotFound", "NotFoundException"}:
        return f"{message or code} (in {where}): run 'stockpipe init', and check that AWS_REGION={region} matches"
    if code in {"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
                "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "AccessDeniedException"}:
        return f"{where} refused the credentials ({code}): {message}"
    return None


__all__ = ["UNSUPPORTED_CODES", "AwsError", "error_code", "explain", "translated", "unsupported"]
