"""Background jobs: on RQ when REDIS_URL is set, otherwise in a thread of this process.

A job is a function named by its dotted path, run inside the app with plain
arguments, so any process can run it. With Redis, start workers with

    rq worker -u $REDIS_URL letterapp

Without Redis a job runs in a thread of the web worker that enqueued it, and
only that process knows its status; `flask mail retry` and the other commands
do the same work from the command line. A pass (`enqueue_pass`), work that
picks up whatever is waiting, runs after a response instead, in batches.
"""

import importlib
import math
import threading
import time
import uuid
from functools import partial
from typing import Any, NamedTuple

from flask import Flask, Response, after_this_request, current_app, g, has_request_context
from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

QUEUE = "letterapp"
JOB_TIMEOUT = 1800  # seconds an RQ job may run
KEPT = 200  # thread jobs whose status this process remembers

# RQ's states, folded into the four a page needs.
_STATES = {"queued": "queued", "created": "queued", "deferred": "queued", "scheduled": "queued"}
_STATES |= {"started": "started", "finished": "finished"}


class JobStatus(NamedTuple):
    state: str  # queued, started, finished, failed, or unknown
    result: Any = None  # the function's return value, once finished


_thread_jobs: dict[str, JobStatus] = {}
_lock = threading.Lock()


def _function(func_path: str):
    module, _, name = func_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _queue(app: Flask) -> Queue:
    return Queue(QUEUE, connection=Redis.from_url(app.config["REDIS_URL"]))


def enqueue(func_path: str, *args) -> str:
    """Run `package.module.function(*args)` in the background; return the job's id."""
    _function(func_path)  # a typo fails here, in the request, not later in a worker
    app: Flask = current_app._get_current_object()
    if app.config.get("REDIS_URL"):
        return _queue(app).enqueue(run, func_path, *args, job_timeout=JOB_TIMEOUT).id
    job_id = uuid.uuid4().hex
    _remember(job_id, JobStatus("queued"))
    thread = threading.Thread(
        target=_run_in_thread, args=(app, job_id, func_path, args), name=f"job-{job_id}"
    )
    thread.start()
    return job_id


# Passes: a function that does all the work waiting (send the queued mail).


def enqueue_pass(func_path: str, every: float = 0) -> None:
    """Run `func_path()` soon; without RQ, at most once per `every` seconds in this process.

    With RQ, each call is a job, and a later one finds less to do. Without it,
    a call in a request runs the pass in this worker once the response is sent,
    if the last one is `every` seconds old; else a later response runs it, with
    the work of the requests between (one batch), and if none comes, a thread
    does. In a thread while requests come in, a pass would hold the GIL against
    them (measured: the letter page four times slower). Outside a request, the
    pass runs in a thread at once.
    """
    _function(func_path)  # a typo fails here, in the request, not later in a worker
    app: Flask = current_app._get_current_object()
    if app.config.get("REDIS_URL"):
        _queue(app).enqueue(run, func_path, job_timeout=JOB_TIMEOUT)
    elif not has_request_context():
        threading.Thread(target=_run_pass, args=(app, func_path), name=f"job-{func_path}").start()
    elif func_path not in g.setdefault("job_passes", set()):
        g.job_passes.add(func_path)
        after_this_request(partial(_after_response, app, func_path, every))


# Per app and function: when its last pass started (monotonic), whether a pass
# was asked for since, and whether a thread watches for the worker to go idle.
_last_pass: dict[tuple[Flask, str], float] = {}
_waiting: set[tuple[Flask, str]] = set()
_watched: set[tuple[Flask, str]] = set()


def _after_response(app: Flask, func_path: str, every: float, response: Response) -> Response:
    response.call_on_close(partial(_pass_or_wait, app, func_path, every))
    return response


def _pass_or_wait(app: Flask, func_path: str, every: float) -> None:
    key = (app, func_path)
    with _lock:
        now = time.monotonic()
        due = now - _last_pass.get(key, -math.inf) >= every
        if due:
            _last_pass[key] = now
            _waiting.discard(key)
        else:
            _waiting.add(key)
            watch = key not in _watched
            _watched.add(key)
    if due:
        _run_pass(app, func_path)
    elif watch:
        name = f"job-{func_path}"
        threading.Thread(target=_watch, args=(app, func_path, every), name=name).start()


def _watch(app: Flask, func_path: str, every: float) -> None:
    """Run the pass asked for once no response has run one for two periods: the worker is idle."""
    key = (app, func_path)
    while True:
        time.sleep(every)
        with _lock:
            if key not in _waiting:
                _watched.discard(key)
                return
            idle = time.monotonic() - _last_pass[key] >= 2 * every
            if idle:
                _last_pass[key] = time.monotonic()
                _waiting.discard(key)
        if idle:
            _run_pass(app, func_path)


def _run_pass(app: Flask, func_path: str) -> None:
    try:
        with app.app_context():
            _function(func_path)()
    except Exception:
        app.logger.exception("pass of %s failed", func_path)


def status(job_id: str) -> JobStatus:
    """Where a job is: queued, started, finished (with its result), failed, or unknown."""
    if current_app.config.get("REDIS_URL"):
        try:
            job = Job.fetch(job_id, connection=_queue(current_app).connection)
        except NoSuchJobError:
            return JobStatus("unknown")
        state = _STATES.get(job.get_status().value, "failed")
        return JobStatus(state, job.return_value() if state == "finished" else None)
    with _lock:
        return _thread_jobs.get(job_id, JobStatus("unknown"))


def wait(job_id: str, timeout: float) -> JobStatus:
    """The job's status once it has ended, or after `timeout` seconds if it has not."""
    deadline = time.monotonic() + timeout
    while (current := status(job_id)).state in ("queued", "started"):
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return current


def run(func_path: str, *args):
    """Run one job inside the app: what an RQ worker calls."""
    app = _function("letterapp.create_app")()
    with app.app_context():
        return _function(func_path)(*args)


def _run_in_thread(app: Flask, job_id: str, func_path: str, args: tuple) -> None:
    _remember(job_id, JobStatus("started"))
    try:
        with app.app_context():
            result = _function(func_path)(*args)
    except Exception:
        app.logger.exception("job %s (%s) failed", job_id, func_path)
        _remember(job_id, JobStatus("failed"))
    else:
        _remember(job_id, JobStatus("finished", result))


def _remember(job_id: str, job_status: JobStatus) -> None:
    with _lock:
        _thread_jobs[job_id] = job_status
        while len(_thread_jobs) > KEPT:
            del _thread_jobs[next(iter(_thread_jobs))]
