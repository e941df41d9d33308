"""The end-to-end harness: real Airflow processes against the bundled simulator, then a report.

Test and tooling code, outside the wheel. ``tests/``, ``scripts/`` and ``benchmarks/`` import it one way,
as ``aib_harness`` (the repository root is on ``sys.path`` through the editable install's ``.pth``). Its
layers, each importing only the ones before it:

1. ``processes``: ports, process tables and trees, process groups, deadlines;
2. ``logs``: Airflow's task and trigger logs parsed; 3. ``report``: what a run did, printed;
4. ``airflow``: a throwaway Airflow (:class:`~aib_harness.airflow.AirflowHarness`), a DAG run in it;
5. ``distributed`` (PostgreSQL, Celery, fault drills) and ``browser`` (the UI in Chromium) build on them.

Beside the layers, ``media``: real MP4 files (PyAV) and moto's S3 server, for ``make demo-object-storage`` and
the tests.
"""
