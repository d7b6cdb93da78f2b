"""Test support, not tests: what the tests in ``tests/test_*.py`` use.

* ``standins/``: stand-ins (test doubles) for the calibration programs, never shipped;
* ``docker_standin/``: a recording stand-in for the ``docker`` command;
* ``synthetic``, ``synthetic_references``, ``tarballs``: made-up inputs, references
  and tarballs;
* ``mast_server``, ``moto_batch_server``, ``moto_iam_server``: servers the tests talk to;
* ``fits_images``: made-up FITS images for the preview tests;
* ``s3_fixtures``, ``pipeline_helpers``, ``fault_report``, ``batch_fixtures`` (AWS
  Batch on moto, local workers), ``disks`` (size-limited and read-only file systems):
  helpers and pytest plugins;
* ``injection``: faults placed by the name of a pipeline step (``tests/test_faults.py``).

Product code (``caldp/``) never imports from here.
"""
