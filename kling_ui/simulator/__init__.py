"""A local stand-in for the AIML API's video endpoints, served over real HTTP.

For the tests, for demo mode, and for anyone trying a client offline:
``python -m kling_ui.simulator --port 8000``. It serves create and poll on the
universal path and on the legacy path of the vendor's own sample, validates bodies as
the vendor does (400 with the vendor's error shape), moves each job through queued,
generating and completed on a schedule, and serves a real H.264/AAC clip behind a
signed-looking URL that supports Range requests.

Like the vendor, it keeps a client's ``X-Client-Request-Id`` (1-128 characters of
``A-Za-z0-9._:-``; any other value is silently ignored) and echoes it back, names the
generation in an ``x-inference-id`` header on create and poll answers, and lists every
create that made a job in the usage log, ``GET /v2/logs``.

Money, as the vendor documents it: the model catalogue ``GET /v1/models`` (no key; an
``ETag``, and ``304`` on a matching ``If-None-Match``) prices the model per second of video.
A create answers with the job's price in ``x-aimlapi-credits-used`` / ``x-aimlapi-usd-spent``
and ``meta.usage.credits_used`` (the vendor's hold); a poll after ``completed`` reports the
charge in ``meta.usage``. ``GET /v2/billing`` (key needed) shows ``current_balance``.

It can be scripted to misbehave (``Fault``, ``DownloadFault``, ``script_outcome``,
``script_log_lag``, ``script_max_active``, ``script_catalogue``, ``script_billing``,
``script_outage``) and to price or hold money differently (``script_pricing``,
``set_balance``), from Python or, for an app in another process, through
``POST /__sim__/script``.

Beside ours, it serves other video models (Kling O1, Veo 3.1, Seedance, Wan, Runway): each
listed in the catalogue with its ``info.docsJson`` (the vendor's OpenAPI document, in
``models/``), and each create checked against that model's schema, as the vendor refuses.

The package, one job a module, in the order they build on each other:
  schemas.py    the other models' documents (``models/``) and the schema check of a body
  vendor.py     the vendor's contract: the model id, paths, limits, and the body checks
  money.py      rates, credits and dollars, the pricing block, each key's account
  jobs.py       a job's schedule, status and price, how a poll shows it; a log entry
  usage_log.py  ``GET /v2/logs``: its query checks, rows and pages; how many jobs run at once
  catalogue.py  ``GET /v1/models``: the models, the filters, the ETag
  clips.py      the video host's files: the sample or a zoom clip, signed links
  faults.py     ``Fault``, ``DownloadFault`` and the script of them waiting
  store.py      ``JobStore``: the jobs and all that follows from them, behind one lock,
                with the optional state file
  wire.py       HTTP plumbing: recording, the key, answers and faults in the vendor's shapes
  cdn.py        the routes of the video host
  handler.py    the routes of the API and of ``/__sim__/``
  server.py     ``Simulator``: the store, the fault script and the request log, served
  launch.py     demo mode's ``DemoSimulator`` and the command line

It shares no parsing or validation code with the client (``kling_ui/client/``) on
purpose: a mistake the two shared would pass every test. Standard library only, with
``media`` (the zoom clips), ``files`` (files written whole) and ``jsonschema`` (the other
models' bodies). This module re-exports
the names its users import.
"""

from __future__ import annotations

from .faults import DownloadFault, Fault
from .jobs import Job, Schedule
from .launch import DemoSimulator, main
from .money import USD_PER_SECOND
from .server import Simulator
from .vendor import CREATE_PATHS, DEFAULT_VIDEO, MODEL

__all__ = [
    "CREATE_PATHS",
    "DEFAULT_VIDEO",
    "MODEL",
    "USD_PER_SECOND",
    "DemoSimulator",
    "DownloadFault",
    "Fault",
    "Job",
    "Schedule",
    "Simulator",
    "main",
]
