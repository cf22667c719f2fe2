"""The drawing page of ``mnist-lit serve`` in headless Chromium (Debian's ``chromium``),
driven by Playwright: shared by the page's test and the screenshot in docs/serving.md.

The screenshot, with models trained on the real MNIST::

    python -m tests.serving_page --model cross_entropy=A.ckpt --model quadratic=B.ckpt \\
        --output docs/serving_page.png
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# Chromium quiet on a closed network: no updates, no sync, no background requests.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30_000  # for an answer from the server, on a busy machine

Stroke = list[tuple[float, float]]  # points in [0, 1] x [0, 1] of the drawing pad
ONE: list[Stroke] = [[(0.5, 0.15), (0.5, 0.85)]]
SEVEN: list[Stroke] = [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]]
BAR: list[Stroke] = [[(0.3, 0.5), (0.7, 0.5)]]  # turns a "1" into a cross


def find_chromium() -> str | None:
    """Chromium's executable: ``$CHROMIUM``, or ``chromium`` on the PATH."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    return found or shutil.which("chromium-browser")


@contextlib.contextmanager
def page_of(url: str, touch: bool = False) -> Iterator[Any]:
    """A Playwright page showing ``url`` in headless Chromium, in a new empty profile."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise FileNotFoundError("no Chromium: apt-get install chromium, or set $CHROMIUM")
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1100, "height": 760},
            has_touch=touch,
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(url)
            page.wait_for_selector(".model")  # the models' cards, from /info
            yield page
        finally:
            browser.close()


def _pad_points(page: Any, stroke: Stroke) -> list[tuple[float, float]]:
    box = page.locator("#pad").bounding_box()
    return [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]


def _along(points: list[tuple[float, float]], steps: int = 12) -> Iterator[tuple[float, float]]:
    """The points of a polyline, with ``steps`` more between each pair, as a hand moves."""
    yield points[0]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        for i in range(1, steps + 1):
            yield x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps


def draw(page: Any, strokes: Sequence[Stroke]) -> None:
    """Draw ``strokes`` on the pad with the mouse."""
    for stroke in strokes:
        points = list(_along(_pad_points(page, stroke)))
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        page.mouse.up()


def draw_by_touch(page: Any, strokes: Sequence[Stroke]) -> None:
    """Draw ``strokes`` with a finger: touch events, as a touch screen sends them."""
    session = page.context.new_cdp_session(page)
    for stroke in strokes:
        points = list(_along(_pad_points(page, stroke)))
        for kind, point in [("touchStart", points[0])] + [("touchMove", p) for p in points[1:]]:
            touch = [{"x": point[0], "y": point[1]}]
            session.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": touch})
        session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def settled_answers(page: Any) -> dict[str, dict[str, Any]]:
    """Once the answers on show are those for the drawing: per model, the digit shown and
    the ten probabilities behind its bars, and the bars' widths."""
    page.wait_for_function(
        "document.getElementById('pad').dataset.busy === '0' && [...document.querySelectorAll("
        "'.model .digit')].every(digit => digit.textContent !== '-')"
    )
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.model')].map(card => [
            card.dataset.model,
            {
                digit: card.querySelector('.digit').textContent,
                probabilities: [...card.querySelectorAll('.bars li')].map(
                    row => Number(row.dataset.probability)),
                widths: [...card.querySelectorAll('.bars .bar')].map(bar => bar.style.width),
            },
        ]))"""
    )


def pad_png(page: Any) -> bytes:
    """The drawing on the pad, as the PNG that the page sends."""
    import base64

    url = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
    return base64.b64decode(url.split(",", 1)[1])


def seen_ink(page: Any) -> int:
    """The sum of the pixels of the 28x28 image shown as what the models saw."""
    return int(
        page.evaluate(
            "Array.from(document.getElementById('seen').getContext('2d')"
            ".getImageData(0, 0, 28, 28).data).filter((_, i) => i % 4 === 0)"
            ".reduce((a, b) => a + b, 0)"
        )
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the models given, draw a seven, and save the page as a PNG."""
    from tests.serve_helpers import serving

    parser = argparse.ArgumentParser(description="Screenshot of the drawing page.")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--output", type=Path, default=Path("docs/serving_page.png"))
    args = parser.parse_args(argv)
    checkpoints = {
        name: Path(path).resolve() for name, path in (m.split("=", 1) for m in args.model)
    }
    with (
        tempfile.TemporaryDirectory() as work,
        serving(checkpoints, cwd=Path(work)) as url,
        page_of(url) as page,
    ):
        draw(page, SEVEN)
        settled_answers(page)
        page.wait_for_timeout(500)  # the bars' transition
        page.screenshot(path=str(args.output), full_page=True)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
