"""caldp.storage.s3_client: S3 errors classified, retried with the run's policy, and
``s3://bucket/prefix`` locations, keys and URLs (no server needed)."""

from __future__ import annotations

import pytest

from caldp.errors import DownloadError
from caldp.retry import RetryPolicy
from caldp.storage import s3_client
from tests.support.retries import flaky

botocore_exceptions = pytest.importorskip("botocore.exceptions")

FAST = RetryPolicy(attempts=3, first_wait=0.0, max_wait=0.0)


def client_error(code: str, status: int, message: str = "it went wrong"):
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return botocore_exceptions.ClientError(response, "GetObject")


def test_error_codes_of_client_errors_only():
    assert s3_client.error_code(client_error("NoSuchKey", 404)) == "NoSuchKey"
    assert s3_client.error_code(OSError("connection reset")) == ""


@pytest.mark.parametrize(
    "error, final",
    [
        (client_error("NoSuchBucket", 404), True),
        (client_error("AccessDenied", 403), True),
        (client_error("InvalidRange", 416), True),  # any other 4xx
        (client_error("RequestTimeout", 408), False),  # the client's 4xx worth retrying
        (client_error("SlowDown", 429), False),
        (client_error("InternalError", 500), False),
        (client_error("ServiceUnavailable", 503), False),
        (botocore_exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), False),
    ],
)
def test_final_errors_are_those_retrying_cannot_fix(error, final):
    assert s3_client.is_final(error) is final


class Coded(Exception):
    """An error with an S3 response whose message does not say its code."""

    response = {"Error": {"Code": "SlowDown"}}


def test_described_errors_name_their_code_once():
    assert s3_client.describe_error(Coded("please reduce your request rate")) == (
        "SlowDown: please reduce your request rate"
    )
    said = client_error("SlowDown", 503, "reduce your rate")
    assert s3_client.describe_error(said) == str(said)  # botocore's text names the code
    assert s3_client.describe_error(OSError("connection reset")) == "connection reset"
    assert s3_client.describe_error(OSError()) == "OSError"


def test_locations_keys_and_urls():
    assert s3_client.split_location("s3://bucket/a/b/") == ("bucket", "a/b")
    assert s3_client.split_location("bucket") == ("bucket", "")
    assert s3_client.split_location("/bucket//prefix/") == ("bucket", "prefix")
    with pytest.raises(ValueError, match="without a bucket"):
        s3_client.split_location("s3://")
    assert s3_client.join_key("outputs/ds", "x.fits") == "outputs/ds/x.fits"
    assert s3_client.join_key("", "x.fits") == "x.fits"
    assert s3_client.s3_url("b", "k/x") == "s3://b/k/x"


def test_transient_failures_are_retried(sleeps):
    func = flaky([client_error("SlowDown", 503), OSError("reset")])
    got = s3_client.call_with_retries(
        "get", func, error=DownloadError, policy=FAST, retry_on=(OSError,)
    )
    assert got == "done" and len(func.calls) == 3 and len(sleeps) == 2


def test_a_final_error_is_raised_as_the_given_error_at_once(sleeps):
    func = flaky([client_error("NoSuchKey", 404, "The key does not exist")])
    with pytest.raises(DownloadError) as raised:
        s3_client.call_with_retries("get s3://b/k", func, error=DownloadError, policy=FAST)
    assert str(raised.value) == (
        "get s3://b/k failed after 1 attempt(s): An error occurred (NoSuchKey) "
        "when calling the GetObject operation: The key does not exist"
    )
    assert len(func.calls) == 1 and not sleeps


def test_failures_that_go_on_end_in_the_given_error(sleeps):
    func = flaky([client_error("InternalError", 500) for _ in range(5)])
    with pytest.raises(DownloadError, match="after 3 attempt"):
        s3_client.call_with_retries("get", func, error=DownloadError, policy=FAST)
    assert len(func.calls) == 3


@pytest.mark.parametrize("error", [MemoryError(), KeyError("a bug")])
def test_memory_errors_and_bugs_propagate_unchanged(sleeps, error):
    func = flaky([error])
    with pytest.raises(type(error)):
        s3_client.call_with_retries(
            "get", func, error=DownloadError, policy=FAST, retry_on=(OSError,)
        )
    assert len(func.calls) == 1
