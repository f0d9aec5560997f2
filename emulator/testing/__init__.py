"""Support for testing against the emulator: the pieces behind the pytest plugin's fixtures.

``local`` starts an emulator for a test session (a child process or a thread of this one) on
a free port with a fresh home; ``clients`` makes boto3 and SageMaker SDK sessions that talk
only to it; ``factories`` creates training jobs and endpoints that are removed afterwards;
``containers`` runs MinIO and the emulator's own image with testcontainers. None of them
imports pytest: ``emulator/pytest_plugin.py`` turns them into fixtures.
"""
