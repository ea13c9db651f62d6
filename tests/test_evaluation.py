"""``batchocr-eval`` reads page sets of every image type the worker takes, and refuses a folder
with nothing to score instead of reporting a perfect CER for zero items."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers import eval_dir, eval_page
from worker.offline.evaluation import main, page_images, page_items


def test_png_page_sets_are_read_whole():
    assert len(page_items(eval_dir("funsd_forms"))) == 50, "FUNSD forms are PNG scans"
    tapuscorpus = page_images(eval_dir("tapuscorpus_fr") / "pages")
    assert len(tapuscorpus) == 47 and {p.suffix for p in tapuscorpus} == {".jpg", ".png"}


def test_page_images_take_every_type_in_any_case_and_nothing_else(tmp_path):
    for name in ("a.PNG", "b.jpeg", "c.tif", "d.webp", "e.bmp", "f.json", "g.gif", "h.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in page_images(tmp_path)] == ["a.PNG", "b.jpeg", "c.tif", "d.webp", "e.bmp"]


def test_eval_page_finds_a_png_page():
    image, labels = eval_page("funsd_forms", "0000971160")
    assert image.startswith(b"\x89PNG") and labels


def test_batchocr_eval_scores_a_png_page_set(tmp_path, capsys):
    out = tmp_path / "figures.json"
    assert main(["--data", str(eval_dir("funsd_forms")), "--limit", "1", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["items"] == 1 and 0 < figures["cer"] < 0.5, figures
    assert "(1 pages)" in capsys.readouterr().out


@pytest.mark.parametrize("layout", ["empty pages/", "only unreadable types", "empty labels.tsv"])
def test_batchocr_eval_refuses_a_folder_with_nothing_to_score(tmp_path, capsys, layout):
    if layout == "empty labels.tsv":
        (tmp_path / "labels.tsv").write_text("")
    else:
        (tmp_path / "pages").mkdir()
    if layout == "only unreadable types":
        shutil.copy(eval_dir("funsd_forms") / "pages" / "0000971160.json", tmp_path / "pages" / "scan.json")
        (tmp_path / "pages" / "scan.gif").write_bytes(b"GIF89a")
    with pytest.raises(SystemExit) as exit_:
        main(["--data", str(tmp_path)])
    assert exit_.value.code == 2
    assert "nothing to score" in capsys.readouterr().err


def test_batchocr_eval_scores_turned_pages_and_the_order_as_returned(tmp_path):
    """One receipt (gt-region CER 0.072 upright) at 0 and 180 degrees: the boxes are turned back,
    so both score alike; the reading-order CER is reported beside the page CER."""
    out = tmp_path / "figures.json"
    assert main(["--data", str(eval_dir("sroie_receipts")), "--limit", "1", "--ignore-case", "--rotate", "0,180",
                 "--json", str(out)]) == 0
    models = json.loads(out.read_text())["models"]
    upright, turned = (figures for key, figures in sorted(models.items()))
    assert (upright["rotate"], turned["rotate"]) == (0, 180)
    assert upright["cer_gt_region"] < 0.1 and turned["cer_gt_region"] <= upright["cer_gt_region"] + 0.005
    assert 0 <= upright["cer_reading_order"] < 0.1


@pytest.mark.parametrize("angles", ["", "up", "720", "nan"])
def test_batchocr_eval_refuses_a_bad_rotate(angles, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--data", str(eval_dir("sroie_receipts")), "--rotate", angles])
    assert exit_.value.code == 2 and "--rotate" in capsys.readouterr().err
