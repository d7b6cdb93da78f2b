"""moto's server, with its Batch DescribeJobs giving the container's exit code as AWS does.

    python -m tests.support.moto_batch_server -H 127.0.0.1 -p PORT

moto 5.2 runs Batch jobs as containers and records their exit codes, but its
DescribeJobs replaces the job's ``container`` (where AWS reports ``exitCode``)
with the container's settings; only ListJobs shows the code.  caldp-batch, like
CALCLOUD, decides from DescribeJobs: this adds the recorded code back.
"""

import sys

from moto.batch import models
from moto.server import main

_details = models.Job._container_details


def _container_details_with_exit_code(self):
    details = _details(self)
    if self.exit_code is not None:
        details["exitCode"] = self.exit_code
    return details


models.Job._container_details = _container_details_with_exit_code

if __name__ == "__main__":
    sys.exit(main())
