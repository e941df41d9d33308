"""Developer scripts: ``make demo`` (``demo.py``) and the real-Airflow harness it and the e2e test share."""
