"""Running many datasets: on AWS Batch job queues or in a local pool of workers.

Both runners share one retry table (:mod:`caldp.batch.decisions`), decided from
caldp-process exit codes alone: a memory failure (exit 31-34, or the container
runtime's out-of-memory kill) is resubmitted on the next rung of the memory
ladder, a job whose container (or worker process) could not start is retried on
the same rung a bounded number of times, and every other failure is reported.
"""
