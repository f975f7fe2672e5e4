"""The alert rules and the dashboard in deploy/observability, checked offline with
Debian's promtool: the rules load, their unit tests pass, every dashboard query is
valid PromQL, and every business metric they use is one the cases report."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
OBS = ROOT / "deploy" / "observability"


def _promtool(*args: str, cwd: Path = OBS) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make test` installs Debian's prometheus package"
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def _dashboard_queries() -> list[str]:
    dashboard = json.loads((OBS / "dashboard.json").read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["panels"]
    queries = []
    for panel in dashboard["panels"]:
        assert panel["title"] and panel["targets"], panel
        queries += [target["expr"] for target in panel["targets"]]
    return queries


def test_alert_rules_load_and_their_unit_tests_pass() -> None:
    checked = _promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    rules = yaml.safe_load((OBS / "alerts.yml").read_text(encoding="utf-8"))["groups"][0]["rules"]
    tests = (OBS / "alerts.test.yml").read_text(encoding="utf-8")
    for rule in rules:  # every alert has a test that expects it to fire
        assert f"alertname: {rule['alert']}" in tests, rule["alert"]


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": expr}
                    for n, expr in enumerate(_dashboard_queries())
                ],
            }
        ]
    }
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    checked = _promtool("check", "rules", "queries.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_metrics_used_are_the_ones_the_cases_and_the_front_door_report() -> None:
    reported = {
        name
        for source in ("workflows/metrics.py", "api/metrics.py")
        for name in re.findall(
            r'"(reissue_[a-z_]+)"', (ROOT / "reissue" / source).read_text(encoding="utf-8")
        )
    }
    used_text = (OBS / "alerts.yml").read_text(encoding="utf-8") + "\n".join(_dashboard_queries())
    used = {
        re.sub(r"_(bucket|count|sum|total)$", "", m)
        for m in re.findall(r"reissue_[a-z_]+", used_text)
    }
    assert used and used <= reported, used - reported
