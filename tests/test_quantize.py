"""INT8: batchocr-quantize writes an INT8 recogniser and registers it only past the CER gate."""

from __future__ import annotations

import json

from shared.models import load_versions
from tests.helpers import eval_dir
from worker.offline.quantize import main as quantize


def run(tmp_path, *extra: str) -> tuple[int, dict]:
    report = tmp_path / "report.json"
    code = quantize(["--base", "ppocrv6-small", "--method", "dynamic", "--model-dir", str(tmp_path / "models"),
                     "--gate", str(eval_dir("uw3_lines")), "--gate-lines", "40", "--json", str(report), *extra])
    return code, json.loads(report.read_text())


def test_an_int8_model_within_the_margin_is_registered_and_serves(tmp_path, settings, redis, make_worker):
    code, report = run(tmp_path)
    assert code == 0, report
    figures = report["figures"]["uw3_lines"]
    assert figures["ppocrv6-small-int8-dynamic.candidate"]["cer"] - figures["ppocrv6-small"]["cer"] <= 0.012
    assert report["size_mb"]["int8"] < report["size_mb"]["fp32"]
    registry = load_versions(str(tmp_path / "models"))
    assert set(registry) >= {"ppocrv6-small-int8-dynamic"} and registry["ppocrv6-small-int8-dynamic"].installed()
    assert not any(name.endswith(".candidate") for name in registry)

    import base64

    from api import create_app
    from tests.helpers import ROOT

    with_int8 = settings.replace(model_dir=str(tmp_path / "models"))
    client = create_app(with_int8, connection=redis).test_client()
    line = base64.b64encode((ROOT / "samples" / "lines" / "address.png").read_bytes()).decode()
    job_id = client.post("/v1/jobs", json={"image_base64": line, "mode": "line"},
                         headers={"X-Model-Version": "ppocrv6-small-int8-dynamic"}).get_json()["id"]
    make_worker(model_dir=str(tmp_path / "models")).work(burst=True)
    result = client.get(f"/v1/jobs/{job_id}").get_json()["result"]
    assert result["model"] == "ppocrv6-small-int8-dynamic" and "Wallaby Way" in result["text"]


def test_a_model_that_fails_the_gate_is_not_registered(tmp_path):
    """No margin can be met (a loss must be at most -1): the gate refuses on the loss it
    measured, and nothing of the candidate is left to serve."""
    code, report = run(tmp_path, "--max-cer-loss", "-1")
    figures = report["figures"]["uw3_lines"]
    measured = figures["ppocrv6-small-int8-dynamic.candidate"]["cer"] - figures["ppocrv6-small"]["cer"]
    assert code == 1 and report["cer_loss"] == {"uw3_lines": measured}
    assert all(f["items"] == 40 for f in figures.values())
    assert "ppocrv6-small-int8-dynamic" not in load_versions(str(tmp_path / "models"))
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["manifest.json"], "no candidate files left"
