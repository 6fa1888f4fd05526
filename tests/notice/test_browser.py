"""The HTML notice in a real browser: headless Chromium lays it out at phone and desktop
widths; nothing may stick out sideways, and every section heading must be on the page.

Chromium is driven by its own flags (`--headless --dump-dom`, `--screenshot
--window-size`): no driver, nothing downloaded at test time. `make browsers` installs
Debian's `chromium`. Without it these tests skip, saying so, unless CI=true, where they
fail: CI must not pass by skipping them.

Chromium's headless window is at least 500 CSS pixels wide whatever --window-size asks,
so the "phone" layout is measured at 500 px: below the notice's 40rem (640 px)
breakpoint, where tables are shown as stacked rows, which is what a phone gets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from lawful.notice import Notices

from .conftest import SEEDS

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")

# Measures the page after layout and writes the result into the DOM, which --dump-dom
# prints: the page's scroll width against the viewport, every element whose right edge
# passes the viewport, and the section headings as shown.
PROBE = """
<script>
window.addEventListener("load", () => {
  const root = document.documentElement;
  const width = root.clientWidth;
  const wide = [...document.querySelectorAll("body *")]
    .filter(e => e.getClientRects().length && e.getBoundingClientRect().right > width + 1)
    .map(e => e.tagName + (e.id ? "#" + e.id : ""));
  const headings = [...document.querySelectorAll("section > h2")].map(h => [h.parentElement.id, h.textContent]);
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({width, scrollWidth: root.scrollWidth, wide, headings});
  document.body.appendChild(out);
});
</script>
"""


def _chromium() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    reason = (
        "headless Chromium is not installed: run `make browsers` (installs Debian's "
        "chromium package) to run the browser tests"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true does not allow skipping them")
    pytest.skip(reason)


def _run(browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",  # root in containers; the page is our own file
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        "--virtual-time-budget=5000",
    ]
    return subprocess.run(
        [browser, *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _layout(browser: str, page: Path, width: int) -> dict:
    result = _run(browser, f"--window-size={width},900", "--dump-dom", page.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, flags=re.S)
    assert found, f"no layout from Chromium (exit {result.returncode}): {result.stderr[-800:]}"
    import html

    return json.loads(html.unescape(found.group(1)))


def _page(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.html"
    path.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def browser() -> str:
    return _chromium()


@pytest.mark.parametrize("seed", SEEDS)
def test_notice_fits_a_phone_and_shows_every_heading(
    browser: str, policies, seed: str, tmp_path: Path
) -> None:
    notices = Notices(policies[seed].policy)
    doc = notices.document()
    page = _page(tmp_path, seed, notices.render(doc, "html"))
    for width in (375, 1280):
        layout = _layout(browser, page, width)
        assert layout["scrollWidth"] <= layout["width"], (width, layout["wide"][:10])
        assert layout["wide"] == [], (width, layout["wide"][:10])
        assert layout["headings"] == [[s.id, s.title] for s in doc.sections]
        if width == 375:
            assert layout["width"] < 640  # the narrow layout was the one measured


@pytest.mark.parametrize("seed", ["seestar_store", "sinesemi"])
def test_chinese_notice_fits_and_shows_every_heading(
    browser: str, policies, seed: str, tmp_path: Path
) -> None:
    notices = Notices(policies[seed].policy)
    doc = notices.document(lang="zh")
    layout = _layout(browser, _page(tmp_path, seed, notices.render(doc, "html")), 375)
    assert layout["scrollWidth"] <= layout["width"] and layout["wide"] == []
    assert [h[1] for h in layout["headings"]] == [s.title for s in doc.sections]


def test_screenshot(browser: str, policies, tmp_path: Path) -> None:
    page = tmp_path / "serai.html"
    page.write_text(Notices(policies["serai"].policy).notice("html"), encoding="utf-8")
    shot = tmp_path / "serai.png"
    result = _run(browser, "--window-size=375,2000", f"--screenshot={shot}", page.as_uri())
    assert shot.exists(), result.stderr[-800:]
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert (width, height) == (375, 2000)
