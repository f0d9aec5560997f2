"""Batch transform executed for real against the model's container (CreateTransformJob and friends).

``service`` has the operations; ``runner`` drives a job; ``instances`` starts the model
containers and weighs /execution-parameters; ``objects`` puts one input object through the
model; ``records`` splits and batches (pure); ``filters`` is DataProcessing (pure);
``validation`` the rules beyond botocore's model.
"""
