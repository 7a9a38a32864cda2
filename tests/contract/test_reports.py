"""The one report writer: a section replaced between its markers, appended or put first where there are none."""

from __future__ import annotations

from pathlib import Path

from contract.reports import replace_section
from contract.run_summary import RunData


def test_section_replaced_between_markers_and_rest_kept(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("intro\n\n<!-- a:begin -->\nold\n<!-- a:end -->\n\noutro\n", encoding="utf-8")
    replace_section(page, "<!-- a:begin -->", "<!-- a:end -->", "<!-- a:begin -->\nnew\n<!-- a:end -->\n")
    assert page.read_text(encoding="utf-8") == "intro\n\n<!-- a:begin -->\nnew\n<!-- a:end -->\n\noutro\n"
    assert [p.name for p in tmp_path.iterdir()] == ["page.md"]  # no staging file left behind


def test_section_appended_or_put_first(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("intro\n", encoding="utf-8")
    replace_section(page, "<b>", "</b>", "<b>x</b>\n")
    assert page.read_text(encoding="utf-8") == "intro\n\n<b>x</b>\n"
    replace_section(page, "<c>", "</c>", "<c>y</c>\n", append=False)
    assert page.read_text(encoding="utf-8").startswith("<c>y</c>\n\nintro")


def test_run_data_round_trips_a_synthetic_set() -> None:
    data = RunData.of_synthetic(24, 3)
    summary = {"data": {**data.model_dump(mode="json", exclude_none=True), "n_tiles": 24}}
    back = RunData.of_summary(summary)
    assert back.synthetic is not None and (back.synthetic.n_tiles, back.synthetic.seed) == (24, 3)
    assert back.source == "synthetic:24 tiles (seed 3)"
    assert RunData.of_summary({}).synthetic is None
