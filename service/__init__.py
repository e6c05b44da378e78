"""``sgpa serve``: the alignment and explanation service (FastAPI + uvicorn), durable jobs and the web viewer.

``create_app(ServiceConfig(data_dir=...))`` gives the ASGI application; :mod:`sgpa.cli.serve` runs it. Nothing here
is imported by ``import sgpa``; FastAPI and uvicorn come with the ``serve`` extra.
"""
