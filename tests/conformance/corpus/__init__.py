"""Servers written the way their ecosystems write them, run by ``tests/conformance/test_corpus.py``.

Each Python module exposes an app factory for ``uvicorn --factory``; ``node/`` holds an express server.
They read their signing secret from ``CORPUS_SECRET`` (random per test run) and seed the same users:
the primary user, a second user and a disabled user (``users.py``), with cheap password hashing.
"""
