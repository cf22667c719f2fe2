"""The drawing page in a real browser: headless Chromium draws on the canvas with a mouse and
with a finger, and every model's digit and bars appear, follow the drawing and clear.

Skipped where no Chromium is installed (``apt-get install chromium``), unless
``MNIST_LIT_REQUIRE_BROWSER=1`` (CI sets it) makes that a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.serve_helpers import post
from tests.serving_page import (
    BAR,
    ONE,
    SEVEN,
    draw,
    draw_by_touch,
    find_chromium,
    pad_png,
    page_of,
    seen_ink,
    settled_answers,
)

pytestmark = [pytest.mark.browser, pytest.mark.serve]


@pytest.fixture(scope="module", autouse=True)
def _chromium() -> None:
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    if find_chromium() is None:
        reason = "no Chromium found (apt-get install chromium, or set $CHROMIUM)"
        if os.environ.get("MNIST_LIT_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def test_drawing_shows_every_models_digit_and_bars_as_the_server_answers(
    served_url: str, tmp_path: Path
) -> None:
    with page_of(served_url) as page:
        cards = page.locator(".model")
        assert [cards.nth(i).get_attribute("data-model") for i in range(2)] == ["tutorial", "mlp"]
        assert page.locator(".model .digit").all_text_contents() == ["-", "-"]
        assert seen_ink(page) == 0

        draw(page, ONE)
        shown = settled_answers(page)
        assert seen_ink(page) > 0  # the 28x28 image the models saw
        # What the page shows is what the server answers for the drawing on the pad.
        status, answer = post(served_url + "predict", pad_png(page), "image/png")
        assert status == 200
        for name, model in answer["models"].items():
            np.testing.assert_allclose(shown[name]["probabilities"], model["probabilities"],
                                       atol=1e-6)  # fmt: skip
            assert shown[name]["digit"] == str(model["digit"])
            widths = [float(width.rstrip("%")) for width in shown[name]["widths"]]
            np.testing.assert_allclose(widths, 100 * np.array(model["probabilities"]), atol=0.06)

        draw(page, BAR)  # the bars follow the drawing
        changed = settled_answers(page)
        for name in shown:
            assert changed[name]["probabilities"] != shown[name]["probabilities"]

        screenshot = tmp_path / "serving_page.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"screenshot of the drawing page: {screenshot}")

        page.click("#clear")
        assert page.locator(".model .digit").all_text_contents() == ["-", "-"]
        assert seen_ink(page) == 0
        assert page.locator("#status").text_content() == "Draw a digit."


def test_a_finger_draws_as_the_mouse_does(served_url: str) -> None:
    with page_of(served_url, touch=True) as page:
        draw_by_touch(page, SEVEN)
        shown = settled_answers(page)
        assert seen_ink(page) > 0
        status, answer = post(served_url + "predict", pad_png(page), "image/png")
        assert status == 200
        for name, model in answer["models"].items():
            assert shown[name]["digit"] == str(model["digit"])
