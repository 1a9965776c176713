"""One line for each failure, saying what failed and whether a retry helps."""

from __future__ import annotations

import pytest

from cronwarden.plugin.errors import ClusterError, describe
from cronwarden.wire import ApiError


@pytest.mark.parametrize(
    ("err", "line"),
    [
        (ApiError(503, "ServiceUnavailable", "etcd is down"), "Error from server "
         "(ServiceUnavailable): etcd is down (the API server is overloaded or failing: "
         "retrying later may help)"),
        (ApiError(429, "TooManyRequests", "slow down", 2.0), "Error from server "
         "(TooManyRequests): slow down (the API server is overloaded or failing: retrying "
         "later may help)"),
        (ApiError(409, "Conflict", "the object has been modified"), "Error from server "
         "(Conflict): the object has been modified (the object changed meanwhile: retrying "
         "may help)"),
        (ApiError(401, "Unauthorized", "Unauthorized"), "Error from server (Unauthorized): "
         "Unauthorized (the kubeconfig's credentials were refused: retrying will not help)"),
        (ApiError(500, "InternalError", "failed to create typed patch object: dup"),
         "Error from server (InternalError): failed to create typed patch object: dup"),
        (ApiError(403, "Forbidden", 'User "bob" cannot list\nresource "jobs"'),
         'Error from server (Forbidden): User "bob" cannot list resource "jobs"'),
        (ApiError(404, "NotFound", 'jobs.batch "x" not found'),
         'Error from server (NotFound): jobs.batch "x" not found'),
        (ApiError(0, "ConnectionError", "cannot connect to the API server at x"),
         "cannot connect to the API server at x"),
        (ClusterError("the kubeconfig has no current-context: give --context"),
         "the kubeconfig has no current-context: give --context"),
    ],
)  # fmt: skip
def test_each_failure_is_one_line_that_says_whether_a_retry_helps(
    err: ApiError | ClusterError, line: str
) -> None:
    assert describe(err) == line
