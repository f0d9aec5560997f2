"""The contract rules' judges on hand-made observations (no Docker, no emulator)."""

from __future__ import annotations

import pytest

from emulator.contract import KINDS, rules_of
from emulator.contract.multi_model_rules import Call, MultiModelObservations
from emulator.contract.observations import (
    FileReads,
    InvokeResult,
    JobRun,
    ListeningPorts,
    LoadObservation,
    StopObservation,
)
from emulator.contract.processing_rules import ProcessingObservations
from emulator.contract.rules import DG, Outcome, Rule, Verdict, evaluate, passed
from emulator.contract.serving_rules import EndpointStart, ServingObservations
from emulator.contract.training_rules import TrainingObservations
from emulator.contract.transform_rules import TransformObservations
from emulator.training.collect import NO_FAILURE_FILE

DONE = JobRun("job", "Completed", seconds=1.0)
SIGTERM_ONLY = StopObservation(signals=(15,), exit_code=0, seconds_to_exit=0.2, grace_seconds=120)


def outcomes(kind: str, observations: object) -> dict[str, Outcome]:
    return {r.rule.id: r.outcome for r in evaluate(rules_of(kind), observations)}


def test_every_rule_cites_sagemaker_documentation_and_has_a_unique_id() -> None:
    ids = [rule.id for kind in KINDS for rule in rules_of(kind)]
    assert len(ids) == len(set(ids))
    for kind in KINDS:
        for rule in rules_of(kind):
            assert rule.id.startswith(kind + ".")
            assert rule.source.url.startswith("https://docs.aws.amazon.com/sagemaker/latest/"), rule.id
            assert rule.source.quote and rule.title


def test_a_judge_that_raises_is_reported_as_a_failure_not_hidden() -> None:
    def broken(_o: object) -> Verdict:
        raise KeyError("x")

    rule = Rule("training.x", "x", rules_of("training")[0].source, broken)
    [result] = evaluate([rule], None)
    assert result.outcome is Outcome.FAIL and "KeyError" in result.verdict.evidence


# -- training -----------------------------------------------------------------------------------


def good_training() -> TrainingObservations:
    return TrainingObservations(
        main=DONE,
        hyperparameter_reads=FileReads(read=("hyperparameters.json",), present=("hyperparameters.json",)),
        channel_reads={"train": FileReads(read=("a.csv",), present=("a.csv", "b.csv"))},
        model_files=("model.json",),
        error=JobRun("err", "Failed", "AlgorithmError: bad input"),
        error_stimulus="fail=1", error_explicit=True,
        stop=SIGTERM_ONLY,
    )


def test_a_conforming_training_container_passes_every_rule() -> None:
    assert set(outcomes("training", good_training()).values()) == {Outcome.PASS}


def test_a_failed_normal_run_fails_only_the_train_rule_and_blocks_the_rest() -> None:
    seen = good_training()
    seen = TrainingObservations(**{**seen.__dict__, "main": JobRun("job", "Failed", "AlgorithmError: exit 2")})
    result = outcomes("training", seen)
    assert result.pop("training.train-argument") is Outcome.FAIL
    assert set(result.values()) == {Outcome.SKIP}


@pytest.mark.parametrize(("change", "rule"), [
    ({"hyperparameter_reads": FileReads(read=(), present=("hyperparameters.json",))}, "training.hyperparameters"),
    ({"channel_reads": {"train": FileReads(read=(), present=("a.csv",))}}, "training.channels"),
    ({"model_files": (), "output_files": ("model.json",)}, "training.model-dir"),
    ({"error": JobRun("err", "Completed")}, "training.error-exit-code"),
    ({"error": JobRun("err", "Failed", f"{NO_FAILURE_FILE} (algo-1 exited with code 1)")}, "training.failure-file"),
    ({"stop": StopObservation(signals=(15, 9), exit_code=137, grace_seconds=120)}, "training.sigterm"),
])
def test_each_training_fault_fails_exactly_its_rule(change: dict[str, object], rule: str) -> None:
    seen = TrainingObservations(**{**good_training().__dict__, **change})
    failed = [r for r, o in outcomes("training", seen).items() if o is Outcome.FAIL]
    assert failed == [rule]


def test_an_error_run_that_completes_is_a_failure_only_when_the_user_named_the_failing_input() -> None:
    completed = JobRun("err", "Completed", log_tail=("done",))
    told = TrainingObservations(**{**good_training().__dict__, "error": completed})
    guessed = TrainingObservations(**{**good_training().__dict__, "error": completed, "error_explicit": False,
                                      "error_stimulus": "every channel file replaced by malformed bytes"})
    assert outcomes("training", told)["training.error-exit-code"] is Outcome.FAIL
    assert outcomes("training", guessed)["training.error-exit-code"] is Outcome.SKIP


def test_unobservable_reads_and_stops_are_skipped_with_the_reason() -> None:
    seen = TrainingObservations(**{**good_training().__dict__,
                                   "hyperparameter_reads": FileReads(not_observed="no inotify here"),
                                   "stop": StopObservation(finished_before_stop=True)})
    results = {r.rule.id: r.verdict for r in evaluate(rules_of("training"), seen)}
    assert results["training.hyperparameters"].outcome is Outcome.SKIP
    assert "no inotify" in results["training.hyperparameters"].evidence
    assert results["training.sigterm"].outcome is Outcome.SKIP
    assert "--stop-hyperparameter" in results["training.sigterm"].evidence


# -- serving ------------------------------------------------------------------------------------


def ok(detail: str = "200 application/json (10 bytes)") -> InvokeResult:
    return InvokeResult(True, 200, detail, 0.01)


def good_serving() -> ServingObservations:
    return ServingObservations(
        endpoint=EndpointStart("ep", "InService", 1.0, deadline=240),
        requests=[("application/json", ok()), ("text/csv", ok())],
        load=LoadObservation(clients=2, results=[ok(), ok()], pings=[200, 200]),
        max_payload=ok(), malformed=InvokeResult(False, 424, "ModelError", original_status=400),
        after_malformed=ok(), bind_label=True, bind_endpoint=EndpointStart("bind", "InService", 1.0),
        bind_invokes=[("first", ok()), ("second", ok())], bind_ports={"first": 8080, "second": 8081},
        ports=ListeningPorts((8080, 21001), 8080, (21000, 21999)), stop=SIGTERM_ONLY,
    )


def test_a_conforming_inference_container_passes_every_rule() -> None:
    assert set(outcomes("serving", good_serving()).values()) == {Outcome.PASS}


@pytest.mark.parametrize(("change", "rule"), [
    ({"requests": [("application/json", ok()), ("text/csv", InvokeResult(False, 424, "ModelError: 415"))]},
     "serving.invocations"),
    ({"load": LoadObservation(clients=2, results=[ok(), InvokeResult(False, 424, "ModelError: 503")])},
     "serving.concurrency"),
    ({"load": LoadObservation(clients=2, results=[ok()], pings=[200, "no answer within 2 s"])},
     "serving.concurrency"),
    ({"max_payload": InvokeResult(False, 424, "ModelError: 413")}, "serving.max-payload"),
    ({"alive_after_malformed": "the container has exited (code 1)"}, "serving.malformed-request"),
    ({"bind_endpoint": EndpointStart("bind", "Failed", 20.0, "did not pass the ping health check")},
     "serving.bind-to-port"),
    ({"ports": ListeningPorts((8080, 9000), 8080, (21000, 21999))}, "serving.safe-port-range"),
    ({"stop": StopObservation(signals=(15, 9), exit_code=137, grace_seconds=30)}, "serving.sigterm"),
])
def test_each_serving_fault_fails_exactly_its_rule(change: dict[str, object], rule: str) -> None:
    seen = good_serving()
    seen.__dict__.update(change)
    failed = [r for r, o in outcomes("serving", seen).items() if o is Outcome.FAIL]
    assert failed == [rule]


def test_an_endpoint_that_never_pings_fails_the_ping_rule_and_blocks_the_rest() -> None:
    seen = ServingObservations(endpoint=EndpointStart("ep", "Failed", 240.0, "did not pass the ping health check"))
    result = outcomes("serving", seen)
    assert result.pop("serving.ping") is Outcome.FAIL
    assert set(result.values()) == {Outcome.SKIP}


def test_bind_to_port_does_not_apply_without_the_label() -> None:
    seen = good_serving()
    seen.bind_label = False
    verdict = {r.rule.id: r.verdict for r in evaluate(rules_of("serving"), seen)}["serving.bind-to-port"]
    assert verdict.outcome is Outcome.SKIP and "accept-bind-to-port=true" in verdict.evidence


# -- multi-model --------------------------------------------------------------------------------


NAME = "0123456789abcdef0123456789abcdef"


def good_multi_model() -> MultiModelObservations:
    listed = Call("GET", "/models", 200, b'{"models": [{"modelName": "%s", "modelUrl": "/x"}]}' % NAME.encode())
    return MultiModelObservations(
        label="true", endpoint=EndpointStart("ep", "InService", 1.0), model_name=NAME, first_invoke=ok(),
        calls={
            "list": listed,
            "get": Call("GET", f"/models/{NAME}", 200, b'{"modelName": "%s"}' % NAME.encode()),
            "get-unknown": Call("GET", "/models/x", 404),
            "load-again": Call("POST", "/models", 409),
            "invoke-unknown": Call("POST", "/models/x/invoke", 404),
            "unload-unknown": Call("DELETE", "/models/x", 404),
            "unload": Call("DELETE", f"/models/{NAME}", 200),
            "get-after-unload": Call("GET", f"/models/{NAME}", 404),
            "list-after-unload": Call("GET", "/models", 200, b'{"models": []}'),
        },
        second_invoke=ok(), stop=SIGTERM_ONLY,
    )


def test_a_conforming_multi_model_container_passes_every_rule() -> None:
    assert set(outcomes("multi-model", good_multi_model()).values()) == {Outcome.PASS}


@pytest.mark.parametrize(("calls", "extra", "rule"), [
    ({}, {"label": ""}, "multi-model.label"),
    ({"load-again": Call("POST", "/models", 200)}, {}, "multi-model.load-conflict"),
    ({"list": Call("GET", "/models", 200, b'{"models": ["%s"]}' % NAME.encode())}, {}, "multi-model.list"),
    ({"get-unknown": Call("GET", "/models/x", 200, b"{}")}, {}, "multi-model.get"),
    ({"invoke-unknown": Call("POST", "/models/x/invoke", 500)}, {}, "multi-model.invoke"),
    ({"get-after-unload": Call("GET", f"/models/{NAME}", 200, b'{"modelName": "%s"}' % NAME.encode())}, {},
     "multi-model.unload"),
    ({}, {"first_invoke": InvokeResult(False, 424, "ModelError: 500 from POST /models")}, "multi-model.load"),
])
def test_each_model_api_fault_fails_exactly_its_rule(calls: dict[str, Call], extra: dict[str, object],
                                                     rule: str) -> None:
    seen = good_multi_model()
    seen.calls.update(calls)
    seen.__dict__.update(extra)
    failed = [r for r, o in outcomes("multi-model", seen).items() if o is Outcome.FAIL]
    assert failed == [rule]


def test_sources_are_pages_of_the_developer_guide_or_api_reference() -> None:
    assert passed("x").outcome is Outcome.PASS
    pages = {rule.source.page for kind in KINDS for rule in rules_of(kind)}
    assert "mms-container-apis" in pages and "your-algorithms-training-algo-output" in pages
    assert all(rule.source.url.startswith(DG) or "APIReference" in rule.source.url
               for kind in KINDS for rule in rules_of(kind))


# -- processing ---------------------------------------------------------------------------------


def good_processing() -> ProcessingObservations:
    return ProcessingObservations(
        main=DONE, input_reads={"data": FileReads(read=("a.csv",), present=("a.csv",))},
        outputs={"output": ("manifest.json",)}, output_paths={"output": "/opt/ml/processing/output/output"},
        error=JobRun("err", "Failed", "AlgorithmError: bad", exit_message="bad input"),
        error_stimulus="arguments ['--fail']", error_explicit=True, stop=SIGTERM_ONLY)


def test_a_conforming_processing_container_passes_every_rule() -> None:
    assert set(outcomes("processing", good_processing()).values()) == {Outcome.PASS}


@pytest.mark.parametrize(("change", "rule"), [
    ({"input_reads": {"data": FileReads(read=(), present=("a.csv",))}}, "processing.inputs"),
    ({"outputs": {"output": ()}}, "processing.outputs"),
    ({"error": JobRun("err", "Completed", exit_message="failed but exit 0")}, "processing.error-exit-code"),
    ({"error": JobRun("err", "Failed", f"{NO_FAILURE_FILE} (algo-1 exited with code 1)")},
     "processing.failure-message"),
    ({"stop": StopObservation(signals=(15, 9), exit_code=137, grace_seconds=120)}, "processing.sigterm"),
])
def test_each_processing_fault_fails_exactly_its_rule(change: dict[str, object], rule: str) -> None:
    seen = ProcessingObservations(**{**good_processing().__dict__, **change})
    assert [r for r, o in outcomes("processing", seen).items() if o is Outcome.FAIL] == [rule]


def test_a_failure_file_is_enough_for_the_failure_message_rule() -> None:
    seen = ProcessingObservations(**{**good_processing().__dict__,
                                     "error": JobRun("err", "Failed", "AlgorithmError: bad rows")})
    assert outcomes("processing", seen)["processing.failure-message"] is Outcome.PASS


# -- transform ----------------------------------------------------------------------------------


def good_transform() -> TransformObservations:
    return TransformObservations(job=DONE, execution_parameters='200: {"MaxConcurrentTransforms": 2}',
                                 records_in={"part-0": 3, "part-1": 5}, records_out={"part-0": 3, "part-1": 5})


def test_a_conforming_transform_container_passes_every_rule() -> None:
    assert set(outcomes("transform", good_transform()).values()) == {Outcome.PASS}
    not_offered = TransformObservations(**{**good_transform().__dict__, "execution_parameters": "404"})
    assert outcomes("transform", not_offered)["transform.execution-parameters"] is Outcome.PASS


@pytest.mark.parametrize("body", ['{"MaxConcurrentTransforms": 0}', '{"BatchStrategy": "MultiRecord"}',
                                  '{"MaxPayloadInMB": -1}', "not json", '["MULTI_RECORD"]', '{"Workers": 2}'])
def test_invalid_execution_parameters_fail(body: str) -> None:
    seen = TransformObservations(**{**good_transform().__dict__, "execution_parameters": f"200: {body}"})
    assert [r for r, o in outcomes("transform", seen).items() if o is Outcome.FAIL] == [
        "transform.execution-parameters"]


def test_one_answer_for_many_records_fails_the_records_rule() -> None:
    seen = TransformObservations(**{**good_transform().__dict__, "records_out": {"part-0": 1, "part-1": 1}})
    assert [r for r, o in outcomes("transform", seen).items() if o is Outcome.FAIL] == ["transform.records"]


def test_a_transform_container_that_never_pings_fails_serve_and_blocks_the_rest() -> None:
    seen = TransformObservations(job=JobRun("t", "Failed", "ClientError: did not answer GET /ping"))
    result = outcomes("transform", seen)
    assert result.pop("transform.serve") is Outcome.FAIL
    assert set(result.values()) == {Outcome.SKIP}


def test_the_documentation_lists_every_rule() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "contract-tests.md").read_text()
    missing = [rule.id for kind in KINDS for rule in rules_of(kind) if f"`{rule.id}`" not in page]
    assert missing == []
