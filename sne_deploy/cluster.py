"""Backend calls in this process or sharded across a Ray cluster, with the same results.

Every backend call the runtime makes (one member over the samples that woke it, one round of the
cascade, one ``run-nir`` graph) goes through an :class:`Executor`. :class:`Serial` runs the calls
here, one after the other: the default, and it imports no Ray. :class:`RayExecutor` cuts each
call into shards of consecutive samples, runs every shard of every call of a round as a Ray task
at once, and joins each call's shards in sample order
(:func:`~sne_deploy.simulators.result.concat_results`). Each sample's simulation is independent of
the others on every backend, so the joined result is the unsharded one: counts, trains, readouts
and overflow counters bit for bit (``tests/test_cluster.py``); only timings differ.

What travels: a network goes to the object store once per executor as its ``Network.to_arrays``
npz bytes (a conv member's pickled ``Network`` is 1000x its NIR size), and each worker process
unpacks it once, cached by content hash. Spikes travel per shard.

Faults: a worker that dies (the OOM killer, a node lost, a Lava run killed) is retried by Ray
(``max_retries``); the orphaned Lava worker of the dead task kills its own process group and
removes its job folder (``lava_worker.watch_parent``). A user error raised in a task (a bad graph
or input) is never retried and comes back as the same one-line :class:`SneError`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Sequence

import numpy as np

from sne_deploy.simulators.errors import BackendUnavailable, InputError, SneError
from sne_deploy.simulators.network import Network
from sne_deploy.simulators.result import Result, concat_results

ADDRESS_VARIABLE = "SNE_RAY_ADDRESS"
INSTALL_HINT = "pip install -c constraints.txt 'sne-deploy[cluster]' (Ray 2.60)"
# The fewest samples worth a shard of its own when the work is balanced over the workers. A Lava shard starts its own worker
# (~2 s and ~1 CPU-s here, benchmarks/results/scale_out.json): at ~300 samples/s for a small MLP,
# 1000 samples are ~3 s of work. Brian2 builds (compiled code is cached per node) each time.
MIN_SHARD_SAMPLES = {"lava": 1000, "brian2": 200}
DEFAULT_MIN_SHARD = 50
TASK_RETRIES = 3  # worker deaths only: Ray never retries an exception raised by the task


@dataclass(frozen=True)
class Call:
    """One backend call: ``network`` over ``spikes`` (N, T, n_in), trains kept if ``record``."""

    network: Network
    spikes: np.ndarray
    record: bool = False


class Executor(Protocol):
    def run(self, calls: Sequence[Call], backend: str, mode: str, options: Optional[dict] = None) -> list[Result]:
        """One result per call, in order."""
        ...

    def map(
        self,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        threads: int = 1,
        desc: str = "jobs",
        progress: bool = False,
    ) -> list[Any]:
        """``fn(item)`` for every item, in order, each with ``threads`` torch threads (a
        benchmark's seeds and ablations: equal thread counts give equal results)."""
        ...


def _with_threads(fn: Callable[[Any], Any], threads: int, item: Any) -> Any:
    """``fn(item)`` with ``threads`` torch threads: torch's float sums depend on the thread count,
    so a job gives the same result wherever it runs only with the same count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(item)
    finally:
        torch.set_num_threads(before)


def run_call(network: Network, spikes: np.ndarray, backend: str, mode: str, record: bool, options: dict) -> Result:
    """One call on one backend in this process; ``options`` go to that backend only."""
    if backend == "torch":
        from .snn import run_network_torch

        return run_network_torch(network, spikes, mode, record)
    from sne_deploy.simulators import run

    return run(network, spikes, backend=backend, mode=mode, record=record, **options)


class Serial:
    """Every call here, in order: the default."""

    def run(self, calls: Sequence[Call], backend: str, mode: str, options: Optional[dict] = None) -> list[Result]:
        return [run_call(c.network, c.spikes, backend, mode, c.record, options or {}) for c in calls]

    def map(
        self,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        threads: int = 1,
        desc: str = "jobs",
        progress: bool = False,
    ) -> list[Any]:
        from tqdm.auto import tqdm

        return [_with_threads(fn, threads, item) for item in tqdm(items, desc=desc, disable=not progress, leave=False)]


def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` consecutive sample ranges covering ``n`` samples, sizes differing by at most one."""
    edges = np.linspace(0, n, max(1, min(shards, n)) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def plan_shards(
    sizes: Sequence[int], workers: int, backend: str, shard_samples: Optional[int] = None
) -> list[list[tuple[int, int]]]:
    """How to cut calls of ``sizes`` samples. With ``shard_samples`` every call is cut into shards
    of about that many samples. Otherwise the work is balanced over the workers: a call smaller
    than its share (total / workers) stays whole, a larger one is cut into shares, and no shard is
    smaller than the backend's :data:`MIN_SHARD_SAMPLES` (a Lava shard starts a worker of its own,
    so 8 members woken over 2 workers are 8 tasks, not 16)."""
    if shard_samples:
        return [shard_bounds(n, math.ceil(n / shard_samples)) for n in sizes]
    least = MIN_SHARD_SAMPLES.get(backend, DEFAULT_MIN_SHARD)
    share = max(least, math.ceil(sum(sizes) / max(workers, 1)))
    return [shard_bounds(n, max(1, min(math.ceil(n / share), n // least))) for n in sizes]


def network_bytes(network: Network) -> bytes:
    """The network as the npz bytes of :meth:`Network.to_arrays` (what a worker unpacks)."""
    buf = io.BytesIO()
    np.savez(buf, **network.to_arrays())
    return buf.getvalue()


_UNPACKED: dict[str, Network] = {}  # per worker process: networks by content hash


def _network(digest: str, blob: bytes) -> Network:
    if digest not in _UNPACKED:
        with np.load(io.BytesIO(blob), allow_pickle=False) as a:
            _UNPACKED[digest] = Network.from_arrays(a)
    return _UNPACKED[digest]


def _shard_task(
    digest: str, blob: bytes, spikes: np.ndarray, backend: str, mode: str, record: bool, options: dict
) -> Result:
    """A Ray task: one shard of one call."""
    return run_call(_network(digest, blob), spikes, backend, mode, record, options)


def check_address(address: str, timeout: float = 5.0) -> None:
    """A ``HOST:PORT`` that no server answers is one line at once (Ray itself would retry for
    minutes); ``auto`` and ``ray://`` addresses are left to Ray."""
    import socket

    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise InputError(f"--cluster {address}: give HOST:PORT of the Ray head (ray start --head prints it), or 'auto'")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise InputError(f"--cluster {address}: no Ray cluster answers there ({e.strerror or e})") from None


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BackendUnavailable(f"--workers/--cluster need Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


class RayExecutor:
    """Calls sharded across a Ray cluster: a local one of ``workers`` CPUs, or the running cluster
    at ``address`` (``ray start --head`` …; ``auto`` finds one on this node). A Ray session already
    initialised in this process (a notebook's, a test's) is used as it is."""

    def __init__(
        self,
        workers: Optional[int] = None,
        address: Optional[str] = None,
        shard_samples: Optional[int] = None,
        progress: bool = False,
    ) -> None:
        self.ray = import_ray()
        if not self.ray.is_initialized():
            try:
                if address:
                    check_address(address)
                    self.ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
                else:
                    self.ray.init(
                        num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
                    )
            except ConnectionError as e:
                raise InputError(
                    f"--cluster {address}: no Ray cluster answers there ({str(e).splitlines()[0]})"
                ) from None
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        self.workers = min(workers, cpus) if workers else cpus
        self.shard_samples = shard_samples
        self.progress = progress
        self._task = self.ray.remote(num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=False)(_shard_task)
        self._refs: dict[int, tuple[str, Any]] = {}  # id(network) -> (digest, object ref of its bytes)
        self._keep: list[Network] = []  # the networks whose ids are keys above stay alive

    def _put(self, network: Network) -> tuple[str, Any]:
        if id(network) not in self._refs:
            blob = network_bytes(network)
            self._refs[id(network)] = (hashlib.sha256(blob).hexdigest(), self.ray.put(blob))
            self._keep.append(network)
        return self._refs[id(network)]

    def run(self, calls: Sequence[Call], backend: str, mode: str, options: Optional[dict] = None) -> list[Result]:
        pending: list[list[Any]] = []
        plan = plan_shards([len(c.spikes) for c in calls], self.workers, backend, self.shard_samples)
        for c, bounds in zip(calls, plan):
            digest, blob = self._put(c.network)
            pending.append(
                [
                    self._task.remote(digest, blob, c.spikes[a:b], backend, mode, c.record, options or {})
                    for a, b in bounds
                ]
            )
        values = iter(self._gather([r for shards in pending for r in shards], f"{backend} shards", self.progress))
        return [concat_results([next(values) for _ in shards]) for shards in pending]

    def map(
        self,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        threads: int = 1,
        desc: str = "jobs",
        progress: bool = False,
    ) -> list[Any]:
        task = self.ray.remote(num_cpus=threads, max_retries=TASK_RETRIES, retry_exceptions=False)(_with_threads)
        fn_ref = self.ray.put(fn)
        slots = max(1, self.workers // threads)  # at most this many jobs at once
        refs: list[Any] = []
        for item in items:
            if len(refs) >= slots:
                self.ray.wait(refs, num_returns=len(refs) - slots + 1, fetch_local=False)
            refs.append(task.remote(fn_ref, threads, item))
        return self._gather(refs, desc, progress or self.progress)

    def _gather(self, refs: list[Any], desc: str, progress: bool) -> list[Any]:
        """Every task's value, in order, with a bar as they finish; the first failure cancels the
        rest and a user's error comes back as itself."""
        from tqdm.auto import tqdm

        bar = tqdm(total=len(refs), desc=desc, disable=not progress, leave=False)
        try:
            waiting = list(refs)
            while waiting:
                done, waiting = self.ray.wait(waiting, num_returns=1)
                self.ray.get(done)  # a failed task raises here, before the rest finish
                bar.update(len(done))
            return list(self.ray.get(refs))
        except self.ray.exceptions.RayTaskError as e:
            for r in refs:
                self.ray.cancel(r, force=True)
            cause = e.cause if isinstance(e.cause, BaseException) else None
            if isinstance(cause, SneError):
                raise cause from None  # the user's error, in its own words, not retried
            raise
        finally:
            bar.close()


def executor_for(
    workers: Optional[int] = None,
    cluster: Optional[str] = None,
    shard_samples: Optional[int] = None,
    progress: bool = False,
) -> Executor:
    """The executor the options ask for: Ray with ``workers`` (a local cluster) or ``cluster``
    (an address; ``$SNE_RAY_ADDRESS`` when not given), else :class:`Serial`."""
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if shard_samples is not None and shard_samples < 1:
        raise InputError(f"--shard-samples must be at least 1, got {shard_samples}")
    address = cluster or os.environ.get(ADDRESS_VARIABLE) or None
    if workers is None and address is None:
        return Serial()
    return RayExecutor(workers, address, shard_samples, progress)
