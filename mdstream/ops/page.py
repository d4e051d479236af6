"""The chart page: one HTML document with the vendored lightweight-charts build, the app and its data inline."""

from __future__ import annotations

import html
from functools import cache
from importlib import resources

import orjson

LWC_VERSION = "5.2.1"
WEB = "web"
ASSETS = {"__STYLE__": "style.css", "__LWC__": "vendor/lightweight-charts.standalone.production.js",
          "__SERIES__": "series.js", "__APP__": "app.js"}


@cache
def asset(name: str) -> str:
    """Text of mdstream/ops/web/<name> (shipped as package data)."""
    return resources.files("mdstream.ops").joinpath(WEB, name).read_text(encoding="utf-8")


def script_json(value) -> str:
    """`value` as JSON safe inside a <script> element ('</' would end the element early; '\\/' is the same JSON)."""
    return orjson.dumps(value).decode().replace("</", "<\\/")


def render(config: dict, *, title: str) -> str:
    """The whole page: styles, the chart library, the app and `config` (mode, series, data) inline; no network needed."""
    text = asset("page.html").replace("__TITLE__", html.escape(title))
    for marker, name in ASSETS.items():
        text = text.replace(marker, asset(name))
    # Last: the data may contain any text, including the markers above.
    return text.replace("__CONFIG__", script_json(config))
