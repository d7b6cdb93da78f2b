"""S3 plumbing shared by the S3 inputs, outputs and CRDS references.

Clients find the endpoint, region and credentials the standard AWS way (boto3's
default credential chain, ``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``);
their own retries (``AWS_MAX_ATTEMPTS``, ``AWS_RETRY_MODE``) come from the run's
settings.  Failures are classified (final or worth retrying) and retried by
:func:`caldp.retry.retry` with the policy of the run's settings (:func:`retry_policy`:
``CALDP_S3_RETRIES`` attempts, default 4, waiting about ``CALDP_S3_RETRY_SECONDS``,
default 2, doubled after each failure, capped at 60 s).
Also here: ``s3://bucket/prefix`` locations, keys and URLs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from caldp.errors import StepError
from caldp.retry import GaveUp, RetryPolicy, retry
from caldp.settings import Settings

log = logging.getLogger("caldp.s3")

T = TypeVar("T")

# Client errors that retrying cannot fix.
FINAL_ERROR_CODES = frozenset(
    {
        "NoSuchKey",
        "NoSuchBucket",
        "NoSuchUpload",
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidBucketName",
        "AccountProblem",
        "403",
        "404",
    }
)


def retry_policy(settings: Settings) -> RetryPolicy:
    """The S3 retry policy: ``CALDP_S3_RETRIES`` and ``CALDP_S3_RETRY_SECONDS``."""
    return settings.retry_policy("CALDP_S3_RETRIES", "CALDP_S3_RETRY_SECONDS")


def make_client(settings: Settings, max_connections: int = 10) -> Any:
    """A boto3 S3 client: endpoint, region and credentials found the standard AWS way,
    botocore's own retries (per request) from ``settings``."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={
            "total_max_attempts": int(settings.number("AWS_MAX_ATTEMPTS")),
            "mode": settings.get("AWS_RETRY_MODE") or "standard",
        },
        max_pool_connections=max_connections,
        connect_timeout=20,
        read_timeout=120,
    )
    return boto3.session.Session().client("s3", config=config)


def boto_errors() -> tuple[type[BaseException], ...]:
    """Exceptions of botocore that mean "the S3 call failed"."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def error_code(exc: BaseException) -> str:
    """The S3 error code of a ClientError ('' for other errors)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def is_final(exc: BaseException) -> bool:
    """True for errors that retrying cannot fix (missing, denied, malformed)."""
    code = error_code(exc)
    if code in FINAL_ERROR_CODES:
        return True
    status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)


def describe_error(exc: BaseException) -> str:
    code = error_code(exc)
    text = str(exc) or type(exc).__name__
    return f"{code}: {text}" if code and code not in text else text


def split_location(location: str) -> tuple[str, str]:
    """``bucket/prefix`` or ``s3://bucket/prefix`` -> (bucket, prefix without slashes)."""
    text = location[len("s3://") :] if location.startswith("s3://") else location
    text = text.strip("/")
    bucket, _, prefix = text.partition("/")
    if not bucket:
        raise ValueError(f"S3 location without a bucket: {location!r}")
    return bucket, prefix.strip("/")


def join_key(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def s3_url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def call_with_retries(
    what: str,
    func: Callable[[], T],
    *,
    error: type[StepError],
    policy: RetryPolicy,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Run ``func`` with bounded retries; raise ``error`` when it keeps failing.

    Botocore errors (and ``retry_on``) are retried unless :func:`is_final`; other
    exceptions (MemoryError, bugs) propagate unchanged.
    """
    try:
        return retry(
            what,
            func,
            policy,
            boto_errors() + retry_on,
            is_final=is_final,
            describe=describe_error,
            log=log,
        )
    except GaveUp as exc:
        raise error(
            f"{what} failed after {exc.attempts} attempt(s): {describe_error(exc.last)}"
        ) from exc.last
