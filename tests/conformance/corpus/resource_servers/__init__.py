"""Resource servers that trust an OpenID provider, written the way their ecosystems write them.

None of them issues tokens: each verifies the access tokens of the provider named by ``ISSUER``
(OpenID discovery, then its JWKS) for the audience ``AUDIENCE``, and serves ``GET /users/me`` and
``GET /protected-resource``. The FastAPI + PyJWT modules here expose ``create_app`` for
``uvicorn --factory``; the express + jose servers are in ``../node_rs/``. Each module or script
says in its opening comment whether it is correct or which one defect it has and the rule broken;
a twin differs from its correct sibling only by that defect. ``running.py`` starts them, and the
test issuer they trust, as real processes.
"""
