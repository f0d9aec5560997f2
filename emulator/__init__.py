"""sagemaker-emulator: a local emulator of Amazon SageMaker's container platform.

boto3, the AWS CLI and the SageMaker Python SDK talk to it as they would to SageMaker;
training, processing, hosting and batch transform run for real in Docker.
"""

__version__ = "0.2.0.dev0"
