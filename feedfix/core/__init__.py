"""The pure core: parse, rules, render. Bytes and a clock value in, bytes out.

Nothing here touches the network, the disk or the current time, and importing it does not
import aiohttp (an import-linter contract in ``pyproject.toml`` keeps it so).
"""
