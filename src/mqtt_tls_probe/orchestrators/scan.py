"""``run_scan``: many targets, each with the full staged probe of ``probe connect``.

Rules:
- the trust is read and the SSL context built once (``SharedTrust``), before
  any target; certificates seen before are not described again (``core.memo``);
- ``concurrency`` worker threads take probe runs in input order; with
  ``--repeat``, a target's next round is due ``interval`` seconds after its
  previous round started (at once when that round took longer);
- every run has a whole-target deadline (``AbortHandle``): its stages get at
  most the time left, and the coordinating thread (the caller's) cuts the
  connections of a run still going at its deadline. A hanging target thus
  holds a worker for at most the deadline plus the moment it takes to unwind,
  and a scan ends within ceil(hanging / concurrency) x deadline plus the
  others' work;
- outcomes reach ``on_outcome`` in the caller's thread as each target finishes
  (all its rounds). Reports are kept for the returned ``ScanReport`` only when
  asked (``keep``: JSON needs them in input order; text and JSONL stream), so
  a long scan's memory does not grow with its targets;
- certificate checks are dated by one ``now`` per minute of the scan;
- a bug in a probe stops the scan and is raised here, in the caller's thread;
  no thread or socket outlives ``run_scan``.
"""

from __future__ import annotations

import contextlib
import heapq
import queue
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from mqtt_tls_probe.adapters.abort import AbortHandle
from mqtt_tls_probe.config import ProbeConfig, new_client_id
from mqtt_tls_probe.core.tally import RunTally, ScanTally
from mqtt_tls_probe.errors import UsageError
from mqtt_tls_probe.model import ProbeReport
from mqtt_tls_probe.orchestrators.connect import run_probe
from mqtt_tls_probe.orchestrators.shared_trust import SharedTrust, prepare_trust
from mqtt_tls_probe.scan_config import RepeatOptions, ScanPlan
from mqtt_tls_probe.scan_model import RepeatedProbeReport, ScanReport, TargetOutcome

_TICK = 0.25  # longest wait of the coordinator: progress and deadlines stay fresh
_NOW_REFRESH = 60.0  # seconds one ``now`` dates the certificate checks
_UNWIND = 5.0  # how long a worker may take to unwind once its run was cut
# Descriptors one worker may hold at once: its connection, the abort handle's
# duplicate of it, and a second connection (MQTT 3.1.1 retry, chain fetch).
_FDS_PER_WORKER = 4
_FDS_SPARE = 64


@dataclass(frozen=True)
class ScanProgress:
    done: int  # targets finished
    total: int
    failed: int
    probes: int  # runs finished
    elapsed: float


_Job = tuple[int, int]  # (target index, round)


@dataclass
class _Finished:
    target: int
    round: int
    started: float
    report: ProbeReport | None = None
    bug: BaseException | None = None


def run_scan(
    plan: ScanPlan,
    *,
    on_outcome: Callable[[TargetOutcome], None] | None = None,
    on_progress: Callable[[ScanProgress], None] | None = None,
    keep: bool = True,
) -> ScanReport:
    """Probe every target of ``plan``; failures are data, only bugs raise.

    Raises:
        UsageError: the process may not open enough files for ``concurrency``.
    """
    workers = min(plan.concurrency, len(plan.targets))
    _allow_descriptors(workers, plan.concurrency)
    return _Scan(plan, workers, on_outcome, on_progress, keep=keep).run()


def _allow_descriptors(workers: int, concurrency: int) -> None:
    """Raise the soft limit of open files as far as the scan needs (1024 is common)."""
    needed = workers * _FDS_PER_WORKER + _FDS_SPARE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise UsageError(
            f"--concurrency {concurrency} needs about {needed} open files, and this process "
            f"may open {hard}: lower --concurrency"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class _Scan:
    def __init__(
        self,
        plan: ScanPlan,
        workers: int,
        on_outcome: Callable[[TargetOutcome], None] | None,
        on_progress: Callable[[ScanProgress], None] | None,
        *,
        keep: bool,
    ) -> None:
        self.plan = plan
        self.on_outcome = on_outcome
        self.on_progress = on_progress
        self.keep = keep
        self.started = time.monotonic()
        self.now = datetime.now(UTC)
        self.now_read = self.started
        self.shared: SharedTrust = prepare_trust(plan.targets[0], self.now)
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.finished: queue.SimpleQueue[_Finished] = queue.SimpleQueue()
        self.running: dict[int, AbortHandle] = {}  # by worker thread id
        self.lock = threading.Lock()
        self.due: list[tuple[float, int, int]] = []  # (when, target, round), later rounds
        self.tallies: dict[int, RunTally] = {}
        self.outcomes: list[TargetOutcome | None] = [None] * len(plan.targets) if keep else []
        self.tally = ScanTally()
        self.probes = 0
        self.threads = [
            threading.Thread(target=self._work, name=f"probe-scan-{n}", daemon=True)
            for n in range(workers)
        ]

    # --- the coordinator (the caller's thread) ---------------------------------------

    def run(self) -> ScanReport:
        total_runs = len(self.plan.targets) * self.plan.runs
        for index in range(len(self.plan.targets)):
            self.jobs.put((index, 0))
        for thread in self.threads:
            thread.start()
        try:
            while self.probes < total_runs:
                self._wait_and_handle()
                self._release_due_rounds()
                self._cut_expired_runs()
                self._refresh_now()
                if self.on_progress is not None:
                    self.on_progress(self._progress())
        finally:
            self._stop()
        outcomes = tuple(o for o in self.outcomes if o is not None)
        return ScanReport(
            outcomes=outcomes,
            summary=self.tally.summary(),
            probes=self.probes,
            seconds=time.monotonic() - self.started,
        )

    def _wait_and_handle(self) -> None:
        try:
            item = self.finished.get(timeout=self._next_wake())
        except queue.Empty:
            return
        while True:
            self._handle(item)
            try:
                item = self.finished.get_nowait()
            except queue.Empty:
                return

    def _next_wake(self) -> float:
        now = time.monotonic()
        wake = now + _TICK
        with self.lock:
            for handle in self.running.values():
                if not handle.aborted:  # a cut run is unwinding: nothing more to do for it
                    wake = min(wake, handle.deadline)
        if self.due:
            wake = min(wake, self.due[0][0])
        return max(0.0, wake - now)

    def _handle(self, item: _Finished) -> None:
        if item.bug is not None:
            raise item.bug
        assert item.report is not None  # noqa: S101 (narrowing)
        self.probes += 1
        repeat = self.plan.repeat
        if repeat is None:
            self._deliver(TargetOutcome(item.target, item.report))
            return
        tally = self.tallies.setdefault(item.target, RunTally())
        tally.add(item.report)
        if item.round + 1 < repeat.runs:
            heapq.heappush(self.due, (item.started + repeat.interval, item.target, item.round + 1))
            return
        del self.tallies[item.target]
        self._deliver(TargetOutcome(item.target, item.report, tally.summary()))

    def _deliver(self, outcome: TargetOutcome) -> None:
        self.tally.add(outcome)
        if self.keep:
            self.outcomes[outcome.index] = outcome
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def _release_due_rounds(self) -> None:
        now = time.monotonic()
        while self.due and self.due[0][0] <= now:
            _, target, round_ = heapq.heappop(self.due)
            self.jobs.put((target, round_))

    def _cut_expired_runs(self) -> None:
        with self.lock:
            late = [h for h in self.running.values() if not h.aborted and h.remaining() <= 0]
        for handle in late:
            handle.abort()

    def _refresh_now(self) -> None:
        if time.monotonic() - self.now_read >= _NOW_REFRESH:
            self.now, self.now_read = datetime.now(UTC), time.monotonic()

    def _progress(self) -> ScanProgress:
        return ScanProgress(
            done=self.tally.done,
            total=len(self.plan.targets),
            failed=self.tally.failed,
            probes=self.probes,
            elapsed=time.monotonic() - self.started,
        )

    def _stop(self) -> None:
        """No job left for anyone, every run cut, every worker gone (bounded)."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.jobs.get_nowait()
        for _ in self.threads:
            self.jobs.put(None)
        with self.lock:
            for handle in self.running.values():
                handle.abort()
        deadline = time.monotonic() + _UNWIND
        for thread in self.threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    # --- the workers ----------------------------------------------------------------

    def _work(self) -> None:
        me = threading.get_ident()
        while (job := self.jobs.get()) is not None:
            target, round_ = job
            handle = AbortHandle(self.plan.deadline)
            with self.lock:
                self.running[me] = handle
            started = time.monotonic()
            finished = _Finished(target, round_, started)
            try:
                finished.report = run_probe(
                    self._config(target), self.now, shared=self.shared, abort=handle
                )
            except BaseException as exc:  # a bug: the coordinator raises it
                finished.bug = exc
            finally:
                with self.lock:
                    del self.running[me]
            self.finished.put(finished)

    def _config(self, target: int) -> ProbeConfig:
        config = self.plan.targets[target]
        if self.plan.fresh_client_ids:
            config = config._replace(mqtt=config.mqtt._replace(client_id=new_client_id()))
        return config


def run_series(
    config: ProbeConfig, repeat: RepeatOptions, *, fresh_client_ids: bool
) -> RepeatedProbeReport:
    """``probe connect --repeat``: one target's series, as a scan of that target runs it."""
    plan = ScanPlan((config,), 1, repeat=repeat, fresh_client_ids=fresh_client_ids)
    (outcome,) = run_scan(plan).outcomes
    assert outcome.repeat is not None  # noqa: S101 (narrowing: the plan repeats)
    return RepeatedProbeReport(outcome.report, outcome.repeat)
