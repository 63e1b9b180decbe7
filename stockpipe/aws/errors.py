"""Turn AWS failures into one line that says what is wrong and what to do."""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)


def error_code(error: BaseException) -> str:
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
    code = error_code(error)
    message = str(error.response.get("Error", {}).get("Message", "")) if isinstance(error, ClientError) else ""
    if code in {"ResourceNotFoundException", "NoSuchBucket", "AWS.SimpleQueueService.NonExistentQueue",
                "QueueDoesNotExist", "NotFound", "NotFoundException"}:
        return f"{message or code} (in {where}): run 'stockpipe init', and check that AWS_REGION={region} matches"
    if code in {"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
                "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "AccessDeniedException"}:
        return f"{where} refused the credentials ({code}): {message}"
    return None
