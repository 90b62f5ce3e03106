"""The web pages: the index, each feed's page, the inspector and the playground.

Server-rendered Jinja2 templates, one stylesheet and a few lines of script (copy buttons,
rule toggles that submit their form); every page reads without script. Article HTML is only
ever shown inside ``<iframe sandbox srcdoc>`` without ``allow-scripts``, under a page CSP
that allows no inline script at all. ``install`` adds the routes to the service's app.
"""

from __future__ import annotations

from feedfix.service.web.pages import Backend, install

__all__ = ["Backend", "install"]
