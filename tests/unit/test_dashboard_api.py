"""The dashboard middleware: its files from the package, its read-only JSON API, the edge's
Host/Origin policy applied to it, and every other request passed through untouched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from emulator.config import Settings
from emulator.gateway import http_policy
from emulator.observe.dashboard import STATIC, DashboardMiddleware
from emulator.observe.views import Observer
from emulator.store import Store


def _inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"inner " + environ["PATH_INFO"].encode()]


@pytest.fixture()
def client(tmp_path: Path) -> Client:
    store = Store(tmp_path / "db.sqlite")
    store.put("training-job", "j", {"TrainingJobName": "j", "TrainingJobStatus": "Completed",
                                    "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/j",
                                    "CreationTime": 1.0}, 1.0)
    settings = Settings(home=tmp_path, port=4599)
    return Client(DashboardMiddleware(_inner, Observer(store, settings), settings))


def test_the_page_and_its_files_come_from_the_package_with_a_strict_policy(client: Client) -> None:
    page = client.get("/_smemu/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    html = page.get_data(as_text=True)
    assert 'src="app.js"' in html and 'href="app.css"' in html
    for name, content_type in STATIC.items():
        answer = client.get(f"/_smemu/{name}")
        assert answer.status_code == 200 and answer.headers["Content-Type"] == content_type
    assert client.get("/_smemu").status_code == 301


def test_the_files_reference_nothing_outside_the_machine() -> None:
    from emulator.observe.dashboard import static_file

    for name in STATIC:
        text = static_file(name).decode()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text and "//cdn" not in text
        assert " on" + "click=" not in text and "javascript:" not in text  # no inline handlers


def test_api_answers_json_and_clear_errors(client: Client) -> None:
    status = client.get("/_smemu/api/status").get_json()
    assert [j["Name"] for j in status["Jobs"]] == ["j"]
    resource = client.get("/_smemu/api/resources/training-job/j")
    assert resource.status_code == 200 and resource.get_json()["Status"] == "Completed"
    missing = client.get("/_smemu/api/resources/training/nope")
    assert missing.status_code == 404 and missing.get_json()["message"] == "There is no training job named nope."
    assert client.get("/_smemu/api/resources/notebook/x").status_code == 400
    assert client.get("/_smemu/api/resources/training/j/logs?cursor=%25%25").status_code == 400
    assert client.get("/_smemu/api/resources/training/j/logs?limit=0").status_code == 400
    assert client.get("/_smemu/api/resources/training/j/other").status_code == 404
    assert client.get("/_smemu/api/nothing").status_code == 404
    logs = client.get("/_smemu/api/resources/training/j/logs").get_json()
    assert logs["Terminal"] and logs["Events"] == []
    assert client.get("/_smemu/api/resources/training/j/metrics").get_json()["Series"] == []


def test_only_reads_are_served_and_other_paths_pass_through(client: Client) -> None:
    assert client.post("/_smemu/api/status").status_code == 405
    assert client.delete("/_smemu/").status_code == 405
    for path in ("/", "/_smemu/health", "/_smemu/endpoints/e/models", "/_smemu/credentials", "/_smemu/secret.txt"):
        assert client.get(path).get_data() == b"inner " + path.encode()


def test_the_edge_policy_refuses_what_it_refuses(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str, dict[str, str]]] = []

    def refuse(settings: Settings, method: str, path: str, headers: dict[str, str]) -> http_policy.Refusal | None:
        seen.append((method, path, dict(headers)))
        if headers.get("host") == "evil.example":
            return http_policy.Refusal(403, "InvalidHost", "not our host")
        return None

    monkeypatch.setattr(http_policy, "refusal", refuse)
    refused = client.get("/_smemu/api/status", headers={"Host": "evil.example"})
    assert refused.status_code == 403 and json.loads(refused.get_data()) == {"__type": "InvalidHost",
                                                                              "message": "not our host"}
    assert client.get("/_smemu/", headers={"Host": "localhost:4599"}).status_code == 200
    assert [(m, p, h["host"]) for m, p, h in seen] == [("GET", "/_smemu/api/status", "evil.example"),
                                                      ("GET", "/_smemu/", "localhost:4599")]
