"""Hyperparameter tuning jobs whose training jobs run for real (CreateHyperParameterTuningJob and friends).

``service`` has the operations and the validation; ``runner`` launches and follows the
training jobs through the training service; ``search`` is the parameter space and the
strategies (optuna); ``children`` computes summaries, counters and the best training job.
"""
