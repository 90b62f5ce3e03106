"""The I/O shell around the core: fetch, poll, store, serve.

Each module depends on the core, never the other way round. This package's ``__init__``
imports nothing, so ``feedfix convert`` (which reads files through ``sources``) does not
pay for aiohttp.
"""
