"""Job kinds for the jobs machinery's tests (loaded by workers through JOB_MODULES).

`test.batch` fans out `tasks` tasks of `test.sleep`, each sleeping `seconds` and then storing
its result idempotently: a file named by its key, created only if absent, in the job's
directory. Every run of a task (a redelivered one too) appends a line to `runs.log`. A job's
spec is `<JOB_TEST_DIR>/<job id>/spec.json`, written by the test before it submits.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from services.job_control import JobControl
from services.jobs import register_job, register_task


def job_dir(job_id: object) -> Path:
    return Path(os.environ["JOB_TEST_DIR"]) / str(job_id)


def write_spec(root: Path, job_id: object, **spec: Any) -> Path:
    folder = root / str(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text(json.dumps(spec))
    return folder


@register_job("test.batch")
async def batch(control: JobControl) -> None:
    spec = json.loads((job_dir(control.job_id) / "spec.json").read_text())
    if spec.get("fail"):
        raise ValueError("the test job was told to fail")
    payloads = [
        {
            "index": index,
            "seconds": spec.get("seconds", 0.0),
            "fail": index in spec.get("failing", []),
        }
        for index in range(spec["tasks"])
    ]
    batches = spec.get("batches", 1)
    size = -(-len(payloads) // batches)
    for start in range(0, len(payloads), size):
        await control.run_tasks("test.sleep", payloads[start : start + size])
        stored = len(list(job_dir(control.job_id).glob("task-*")))
        await control.report_progress({"tasksDone": stored, "tasksTotal": len(payloads)})


@register_task("test.sleep")
async def sleep_task(payload: dict[str, Any], control: JobControl) -> None:
    folder = job_dir(control.job_id)
    with (folder / "runs.log").open("a") as log:
        log.write(f"{payload['index']} {control.worker}\n")
    await asyncio.sleep(payload["seconds"])
    await control.check_cancelled()
    if payload["fail"]:
        raise RuntimeError(f"task {payload['index']} was told to fail")
    try:  # stored once, however often it runs
        fd = os.open(folder / f"task-{payload['index']}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, control.worker.encode())
    os.close(fd)
