"""sagemaker-emulator: a local emulator of Amazon SageMaker's container platform.

boto3, the AWS CLI and the SageMaker Python SDK talk to it as they would to SageMaker;
training, processing, batch transform, hyperparameter tuning and real-time endpoints run for
real in Docker. SageMaker operations it does not run are either kept as records (moto) or
refused at once; docs/compatibility.md lists each.
"""

__version__ = "0.2.0.dev0"
