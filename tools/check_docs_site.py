"""Open the built documentation site in headless Chromium and check what it shows.

``tox -e docs`` (and so ``.ci/run``) runs this after ``mkdocs build --strict``::

    python tools/check_docs_site.py SITE_DIR [--screenshots DIR]

The site is served over HTTP from a local port (as a reader's browser would get
it, so the theme's scripts run), and each page is rendered by Chromium with
``--dump-dom``: the DOM *after* the page's JavaScript ran. The check fails (exit
status 1, naming the page and what is missing) unless

- the home page shows its title, the Quick start commands and a navigation link to
  every page of the site, and the theme's script ran (it adds a copy button to
  every code block);
- the API reference shows every public estimator with its rendered signature and
  numpydoc sections;
- each page with executed examples shows their output, and every embedded figure
  is a decodable PNG.

Chromium is Debian's ``chromium`` (or ``$CHROMIUM``); without it the check fails.
"""

from __future__ import annotations

import argparse
import base64
import functools
import html
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ESTIMATORS = (
    "DualChannelFuser",
    "SkorchCNN",
    "DeepFeatureExtractor",
    "ClinicalEncoder",
    "PValueSelector",
    "LassoSelector",
    "ClassifierSelector",
)


def find_chromium() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    sys.exit(
        "check_docs_site: no Chromium found (install Debian's `chromium`, or set "
        "$CHROMIUM to a Chrome/Chromium binary)"
    )


def dump_dom(chromium: str, url: str, screenshot: Path | None = None) -> str:
    """The page's DOM after its scripts ran (and optionally a screenshot of it)."""
    base = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--virtual-time-budget=8000",
        "--window-size=1280,1600",
    ]
    proc = subprocess.run(
        [*base, "--dump-dom", url], capture_output=True, text=True, timeout=180, check=False
    )
    if "<body" not in proc.stdout:
        raise AssertionError(
            f"{url}: Chromium returned no page (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    if screenshot is not None:
        subprocess.run(
            [*base, f"--screenshot={screenshot}", url],
            capture_output=True,
            timeout=180,
            check=False,
        )
    return proc.stdout


def text_of(dom: str) -> str:
    """Visible-ish text: tags stripped, entities decoded, whitespace collapsed."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def site_pages(site: Path) -> list[tuple[str, str]]:
    """``(path, html)`` of every page of the built site (``""`` is the home page)."""
    pages = []
    for index in sorted(site.rglob("index.html")):
        folder = index.parent.relative_to(site).as_posix()
        if folder.startswith(("assets", "search")):
            continue
        pages.append(("" if folder == "." else folder + "/", index.read_text(encoding="utf-8")))
    return pages


def check_home(dom: str, site: Path) -> list[str]:
    problems = []
    text = text_of(dom)
    for needle in ("thyronet", "Getting started", "thyronet study --demo", "python -m pytest"):
        if needle not in text:
            problems.append(f"home page: {needle!r} not shown")
    links = set(re.findall(r'href="([^"#?]+)"', dom))
    pages = [name for name, _ in site_pages(site) if name]
    for page in pages:
        if not any(link.rstrip("/").endswith(page.rstrip("/")) for link in links):
            problems.append(f"home page: no navigation link to {page}")
    blocks = dom.count('class="highlight"')
    copies = dom.count("data-clipboard-target=")  # the copy buttons the theme's script adds
    if copies == 0:
        problems.append(
            f"home page: the theme's script did not run (no copy button on its "
            f"{blocks} code block(s))"
        )
    return problems


def check_api(dom: str) -> list[str]:
    problems = []
    text = text_of(dom)
    for name in ESTIMATORS:
        if not re.search(rf'id="thyronet\.{name}"', dom):
            problems.append(f"API reference: no entry for thyronet.{name}")
        elif not re.search(rf"thyronet\.{name}\(\w+=", text.replace(" ", "")):
            problems.append(f"API reference: thyronet.{name} has no rendered signature")
    for section in ("Parameters", "Examples"):
        if text.count(section) < len(ESTIMATORS):
            problems.append(f"API reference: fewer {section!r} sections than estimators")
    return problems


def check_figures(name: str, dom: str) -> tuple[list[str], int]:
    problems, count = [], 0
    for payload in re.findall(r'src="data:image/png;base64,([^"]+)"', dom):
        count += 1
        if not base64.b64decode(payload)[:8] == PNG_MAGIC:
            problems.append(f"{name}: embedded figure {count} is not a PNG")
    return problems, count


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the folder mkdocs built")
    parser.add_argument("--screenshots", type=Path, help="also save a PNG of each page here")
    args = parser.parse_args(argv)
    site = args.site.resolve()
    if not (site / "index.html").is_file():
        sys.exit(f"check_docs_site: {site} has no index.html; build the site first")
    chromium = find_chromium()
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)

    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{server.server_address[1]}/"

    def page(path: str) -> str:
        shot = None
        if args.screenshots:
            shot = args.screenshots / ((path.strip("/").replace("/", "-") or "index") + ".png")
        return dump_dom(chromium, root + path, shot)

    problems: list[str] = []
    try:
        problems += check_home(page(""), site)
        problems += check_api(page("api/estimators/"))
        figure_pages = [name for name, html in site_pages(site) if "data:image/png;base64," in html]
        figures = 0
        for name in figure_pages:
            found, count = check_figures(name, page(name))
            problems += found
            figures += count
    finally:
        server.shutdown()
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        return 1
    print(
        f"check_docs_site: home page, API reference and {len(figure_pages)} page(s) with "
        f"{figures} figure(s) render in {Path(chromium).name}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
