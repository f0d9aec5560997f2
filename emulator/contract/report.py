"""A check's results as a table for people and as JUnit XML for CI (pure)."""

from __future__ import annotations

import shutil
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from emulator.contract.rules import Outcome, Result


@dataclass
class Report:
    """The results of one ``smemu check IMAGE --as KIND``."""

    image: str
    kind: str
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    def outcome_of(self, rule_id: str) -> Outcome:
        """The outcome of one rule (KeyError when the rule was not part of the check)."""
        for result in self.results:
            if result.rule.id == rule_id:
                return result.outcome
        raise KeyError(rule_id)

    def ids(self, outcome: Outcome) -> list[str]:
        """Ids of the rules with that outcome, in table order."""
        return [r.rule.id for r in self.results if r.outcome is outcome]

    @property
    def failed(self) -> bool:
        """Whether any rule failed (the exit status of ``smemu check``)."""
        return any(r.outcome is Outcome.FAIL for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when no rule failed, 1 otherwise."""
        return 1 if self.failed else 0

    def summary(self) -> str:
        """``3 passed, 1 failed, 2 skipped``."""
        counts = {o: len(self.ids(o)) for o in Outcome}
        return (f"{counts[Outcome.PASS]} passed, {counts[Outcome.FAIL]} failed, {counts[Outcome.SKIP]} skipped "
                f"in {self.seconds:.1f} s")


def render_table(report: Report, width: int | None = None) -> str:
    """The table ``smemu check`` prints: rule, result, evidence, documentation page; then the pages' URLs."""
    width = width or max(100, min(shutil.get_terminal_size((140, 24)).columns, 200))
    rule_w = max(len("RULE"), *(len(r.rule.id) for r in report.results)) if report.results else 4
    source_w = max(len("DOCUMENTATION"), *(len(r.rule.source.page) for r in report.results)) if report.results else 13
    result_w = 6
    evidence_w = max(30, width - rule_w - result_w - source_w - 6)
    lines = [f"smemu check {report.image} --as {report.kind}", ""]
    header = f"{'RULE':<{rule_w}}  {'RESULT':<{result_w}}  {'EVIDENCE':<{evidence_w}}  DOCUMENTATION"
    lines += [header, "-" * len(header)]
    for result in report.results:
        wrapped = textwrap.wrap(result.verdict.evidence, evidence_w) or [""]
        for index, chunk in enumerate(wrapped):
            if index == 0:
                lines.append(f"{result.rule.id:<{rule_w}}  {result.outcome.value:<{result_w}}  {chunk:<{evidence_w}}  "
                             f"{result.rule.source.page}")
            else:
                lines.append(f"{'':<{rule_w}}  {'':<{result_w}}  {chunk}")
    lines += ["", report.summary(), "", "Documentation:"]
    seen: dict[str, str] = {}
    for result in report.results:
        seen.setdefault(result.rule.source.page, result.rule.source.url.split("#")[0])
    lines += [f"  {page}: {url}" for page, url in seen.items()]
    return "\n".join(lines) + "\n"


def junit_xml(report: Report) -> str:
    """JUnit XML: one testsuite, one testcase per rule (FAIL -> failure, SKIP -> skipped)."""
    suite = ET.Element("testsuite", {
        "name": f"smemu check {report.image} --as {report.kind}",
        "tests": str(len(report.results)),
        "failures": str(len(report.ids(Outcome.FAIL))),
        "skipped": str(len(report.ids(Outcome.SKIP))),
        "errors": "0",
        "time": f"{report.seconds:.3f}",
    })
    for result in report.results:
        case = ET.SubElement(suite, "testcase", {"classname": f"smemu.contract.{report.kind}",
                                                 "name": result.rule.id, "time": "0"})
        text = f"{result.rule.title}\n{result.verdict.evidence}\nDocumentation: {result.rule.source.url}"
        if result.outcome is Outcome.FAIL:
            failure = ET.SubElement(case, "failure", {"message": result.verdict.evidence[:500]})
            failure.text = text
        elif result.outcome is Outcome.SKIP:
            ET.SubElement(case, "skipped", {"message": result.verdict.evidence[:500]})
        else:
            ET.SubElement(case, "system-out").text = text
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
