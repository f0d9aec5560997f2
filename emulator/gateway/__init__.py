"""The HTTP edge: one port that answers as SageMaker (JSON 1.1), SageMaker Runtime
(rest-json) and, through moto, every other AWS service the SDKs touch.

Wire formats come from botocore's service models only (``protocol``); handlers stay thin and
call the platform services.
"""
