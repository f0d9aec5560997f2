"""The SQLite document store: records, case-insensitive names, atomic updates, tags."""

from __future__ import annotations

import threading
from pathlib import Path

from emulator.store import Store


def test_insert_refuses_a_duplicate_name_regardless_of_case(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    assert store.insert("training-job", "Job-A", {"TrainingJobName": "Job-A"}, 1.0)
    assert not store.insert("training-job", "job-a", {"TrainingJobName": "job-a"}, 2.0)
    assert store.get("training-job", "JOB-A") == {"TrainingJobName": "Job-A"}


def test_records_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = Store(path)
    store.put("model", "m", {"ModelName": "m", "n": 1}, 1.0)
    store.close()
    assert Store(path).get("model", "m") == {"ModelName": "m", "n": 1}


def test_list_is_oldest_first_and_per_kind(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.put("model", "b", {"n": "b"}, 2.0)
    store.put("model", "a", {"n": "a"}, 1.0)
    store.put("endpoint", "e", {"n": "e"}, 0.5)
    assert [r["n"] for r in store.list("model")] == ["a", "b"]
    assert list(store.names("endpoint")) == ["e"]


def test_update_is_atomic_under_concurrency(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.put("training-job", "j", {"count": 0}, 1.0)

    def bump() -> None:
        for _ in range(50):
            store.update("training-job", "j", lambda r: {**r, "count": r["count"] + 1})

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("training-job", "j") == {"count": 200}


def test_update_and_delete_of_missing_records(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    assert store.update("model", "nope", lambda r: r) is None
    assert store.delete("model", "nope") is False


def test_tags_add_overwrite_and_delete(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:training-job/j"
    store.add_tags(arn, [{"Key": "b", "Value": "1"}, {"Key": "a", "Value": "2"}])
    store.add_tags(arn, [{"Key": "b", "Value": "3"}])
    assert store.list_tags(arn) == [{"Key": "a", "Value": "2"}, {"Key": "b", "Value": "3"}]
    store.delete_tags(arn, ["a"])
    assert store.list_tags(arn) == [{"Key": "b", "Value": "3"}]
    store.delete_tags(arn)
    assert store.list_tags(arn) == []


def test_listeners_hear_every_saved_change_with_before_and_after(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    heard: list[tuple[str, str, object, object]] = []
    store.subscribe(lambda kind, name, before, after: heard.append((kind, name, before, after)))
    store.insert("endpoint", "e", {"S": "Creating"}, 1.0)
    store.update("endpoint", "e", lambda r: r.update(S="InService"))
    store.put("endpoint", "e", {"S": "Updating"}, 1.0)
    assert not store.insert("endpoint", "E", {"S": "dup"}, 2.0)  # refused: nothing to hear
    store.delete("endpoint", "e")
    assert heard == [
        ("endpoint", "e", None, {"S": "Creating"}),
        ("endpoint", "e", {"S": "Creating"}, {"S": "InService"}),
        ("endpoint", "e", {"S": "InService"}, {"S": "Updating"}),
        ("endpoint", "e", {"S": "Updating"}, None),
    ]


def test_a_failing_listener_does_not_undo_or_stop_the_write(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")

    def broken(*_args: object) -> None:
        raise RuntimeError("listener bug")

    store.subscribe(broken)
    assert store.insert("model", "m", {"n": 1}, 1.0)
    assert store.update("model", "m", lambda r: r.update(n=2)) == {"n": 2}
    assert store.get("model", "m") == {"n": 2}
