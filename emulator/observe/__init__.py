"""Seeing what runs: resource kinds as data, read-only views, the dashboard, lifecycle log lines.

Everything here reads; nothing here changes a job or an endpoint. The views are built from
the store's Describe-shaped records, CloudWatch Logs and metrics (moto's backends in this
process) and the views hosting publishes on the platform (fleet, multi-model cache).
"""
