"""``python -m tests.support.moto_iam_server -H HOST -p PORT``: moto's server, for tests
that enforce IAM (``INITIAL_NO_AUTH_ACTION_COUNT``), with its signature check of
query strings mended.

moto checks a request's signature against a canonical request it rebuilds from
the URL as its web framework re-encoded it, where ``/`` in a query value is no
longer percent-encoded; every signed listing with a ``Prefix`` such as
``outputs/<ds>/`` then fails with SignatureDoesNotMatch.  Here the query is
encoded again as SigV4 prescribes before moto computes the signature.
"""

from __future__ import annotations

import sys
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from moto.iam import access_control

_rebuild = access_control.IAMRequestBase._create_aws_request


def _create_aws_request(self):
    request = _rebuild(self)
    parts = urlsplit(request.url)
    if parts.query:
        pairs = (pair.partition("=") for pair in parts.query.split("&"))
        query = "&".join(
            quote(unquote(key), safe="-_.~") + eq + quote(unquote(value), safe="-_.~")
            for key, eq, value in pairs
        )
        request.url = urlunsplit(parts._replace(query=query))
    return request


access_control.IAMRequestBase._create_aws_request = _create_aws_request

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
