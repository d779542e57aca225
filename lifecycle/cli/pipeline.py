"""Pipeline commands: the bundled broker, ingest, relay, run, and the dead-letter queue."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Annotated, Literal

import msgspec
import prometheus_client
import typer
from eventsourcing.persistence import PersistenceError
from kafka.errors import KafkaError
from rich import box
from rich.table import Table

from consumers.dead_letters import DeadLetter, read_dead_letters, redrive
from consumers.relay import Relay
from consumers.webhooks import redrive_webhooks
from consumers.worker import Worker, collect_garbage_less_often, run_until_stopped
from lifecycle import wiring
from lifecycle.adapters.logs import describe
from lifecycle.cli.common import app, err, fail, load_settings, open_engine, open_views, out
from lifecycle.demo.broker import LocalBroker
from lifecycle.errors import LifecycleError
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.settings import Settings

dlq_app = typer.Typer(help="Look at and redrive dead letters.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
webhooks_app = typer.Typer(help="Signed webhooks of the lifecycle changes.")
app.add_typer(webhooks_app, name="webhooks")

FromStart = Annotated[
    bool,
    typer.Option("--from-start", help="Republish every event in the store to lead.events."),
]


@app.command()
def broker(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 9092,
    partitions: Annotated[int, typer.Option(min=1, help="Partitions of each topic.")] = 6,
) -> None:
    """Run the bundled Kafka-compatible broker (in memory) in the foreground, with our topics."""
    local = LocalBroker(port=port, partitions=partitions)
    # SIGTERM ends the wait as Ctrl-C does (stopping the broker inside the handler would wait
    # for the child while the interrupted wait holds its lock: a hang). Set before the start:
    # a SIGTERM while it starts must stop the broker too, not leave it running alone.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            local.start()
        except (LifecycleError, KafkaError) as error:
            raise fail(f"cannot start the broker: {error}") from None
        err.print(
            f"broker listening on {local.bootstrap} with topics {', '.join(local.topics)} "
            f"({partitions} partitions each); Ctrl-C stops it",
            highlight=False,
        )
        err.print(KNOWN_CLIENTS, highlight=False)
        local.wait()
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM is how it is meant to stop
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the stop short
        local.stop()


KNOWN_CLIENTS = (
    "clients known to work with it: kafka-python 3, confluent-kafka 2 (librdkafka 2.16); "
    "not Debian's kcat 1.7 (librdkafka 2.0: its ApiVersion request fails)"
)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM: workers finish their batch and return."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _RelayFromStart:
    """The relay, told to republish everything first."""

    name = "relay"

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def run(self, stop: threading.Event) -> None:
        self.relay.run(stop, from_start=True)


WorkerName = Literal["ingest", "relay", "views", "changes", "webhooks"]


def _workers(
    name: WorkerName, settings: Settings, stack: ExitStack, *, from_start: bool
) -> list[Worker]:
    """The workers of one name, each with its own application and connections."""
    if name == "webhooks":
        try:
            return list(wiring.webhook_workers(settings))
        except LifecycleError as error:
            raise fail(str(error)) from None
    if name in {"views", "changes"}:
        store = open_views(settings)
        stack.callback(store.close)
        if name == "changes":
            return [wiring.changes_publisher(settings, store)]
        # The engine is opened for its rules, and so that a store that cannot be reached is
        # said at start-up, as by the other workers.
        rules = stack.enter_context(open_engine(settings)).rules
        return [wiring.views_worker(settings, store, rules)]
    engine: LeadLifecycle = stack.enter_context(open_engine(settings))
    if name == "ingest":
        return [wiring.ingest(settings, engine)]
    relay = wiring.relay(settings, engine)
    return [_RelayFromStart(relay) if from_start else relay]


def _serve_metrics(settings: Settings) -> None:
    """The workers' counters at http://METRICS_HOST:METRICS_PORT/metrics, if a port is set."""
    if not settings.metrics_port:
        return
    try:
        prometheus_client.start_http_server(settings.metrics_port, addr=settings.metrics_host)
    except OSError as error:
        raise fail(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: "
            f"{error.strerror or error}"
        ) from None


def _run(settings: Settings, names: list[WorkerName], *, from_start: bool = False) -> None:
    """Run the workers in threads until SIGINT or SIGTERM."""
    collect_garbage_less_often()
    _serve_metrics(settings)
    with ExitStack() as stack, _stop_on_signals() as stop:
        workers = [
            worker
            for name in names
            for worker in _workers(name, settings, stack, from_start=from_start)
        ]
        try:
            run_until_stopped(workers, stop)
        except KafkaError as error:
            raise fail(f"Kafka at {settings.kafka_bootstrap} failed: {describe(error)}") from None
        except (LifecycleError, PersistenceError):
            raise  # open_engine's messages and exit codes
        except Exception as error:  # noqa: BLE001 (any crash: one line, never a traceback)
            # The worker_failed log line has its traceback; the terminal gets one line.
            raise fail(
                f"a worker failed: {describe(error)} (see the worker_failed log line)", 3
            ) from None
    err.print("stopped cleanly", highlight=False)


@app.command()
def ingest() -> None:
    """Record touchpoints from Kafka into the event store, exactly once, until stopped."""
    _run(load_settings(), ["ingest"])


@app.command()
def relay(from_start: FromStart = False) -> None:
    """Publish the event store's lead and campaign events to lead.events, until stopped."""
    _run(load_settings(), ["relay"], from_start=from_start)


@app.command()
def project() -> None:
    """Keep the view tables up to date with lead.events, exactly once, until stopped.

    Runs the views worker (``consumers/views.py``), which announces what changed, and the
    changes publisher (``consumers/changes.py``), which sends that to lead.lifecycle; the
    command keeps its first name.
    """
    _run(load_settings(), ["views", "changes"])


@app.command()
def run(from_start: FromStart = False) -> None:
    """Run ingest, relay, the views, the changes and webhooks (if configured) until stopped."""
    names: list[WorkerName] = ["ingest", "relay", "views", "changes", "webhooks"]
    _run(load_settings(), names, from_start=from_start)


@webhooks_app.callback(invoke_without_command=True)
def webhooks(context: typer.Context) -> None:
    """POST lead.lifecycle's changes, signed, to the endpoints of LIFECYCLE_WEBHOOKS."""
    if context.invoked_subcommand is not None:
        return
    settings = load_settings()
    if settings.webhooks is None:
        raise fail("set LIFECYCLE_WEBHOOKS to the endpoints file (see README, Webhooks)")
    _run(settings, ["webhooks"])


@webhooks_app.command("redrive")
def webhooks_redrive(
    endpoint: Annotated[
        str | None, typer.Option(help="Only the changes set aside for this endpoint.")
    ] = None,
) -> None:
    """Deliver the changes in lead.lifecycle.webhooks.dlq again, to the endpoints they missed."""
    settings = load_settings()
    if settings.webhooks is None:
        raise fail("set LIFECYCLE_WEBHOOKS to the endpoints file (see README, Webhooks)")
    try:
        workers = {w.endpoint.name: w for w in wiring.webhook_workers(settings)}
        outcomes = redrive_webhooks(settings, workers, only=endpoint)
    except LifecycleError as error:
        raise fail(str(error)) from None
    except KafkaError as error:
        raise fail(f"Kafka at {settings.kafka_bootstrap} failed: {error}") from None
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())) or "nothing"
    err.print(f"webhook dead letters: {summary}", highlight=False)
    if outcomes.get("dead_lettered"):
        raise typer.Exit(1)


def _dead_letters(settings: Settings) -> list[DeadLetter]:
    try:
        return read_dead_letters(settings)
    except KafkaError as error:
        raise fail(f"Kafka at {settings.kafka_bootstrap} failed: {error}") from None


@dlq_app.command("show")
def dlq_show(
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 100,
    json: Annotated[
        bool, typer.Option("--json", help="Print JSON lines instead of a table.")
    ] = False,
) -> None:
    """List dead letters with where they came from and why they were refused."""
    letters = _dead_letters(load_settings())[:limit]
    if json:
        for letter in letters:
            sys.stdout.buffer.write(msgspec.json.encode(_summary(letter)) + b"\n")
        return
    # The ref (for redrive) whole, the origin and the reason wrapped but whole, the value a
    # glimpse (--json has it): readable in 80 columns.
    table = Table(
        title=f"{len(letters)} dead letters",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
    )
    table.add_column("ref", no_wrap=True, min_width=6)
    table.add_column("from", overflow="fold")
    table.add_column("reason", overflow="fold", min_width=24)
    table.add_column("value", overflow="ellipsis", no_wrap=True, max_width=20)
    for letter in letters:
        origin = f"{letter.original_topic}[{letter.original_partition}]@{letter.original_offset}"
        preview = (letter.value or b"")[:60].decode(errors="replace")
        table.add_row(letter.ref, origin, letter.reason, preview)
    out.print(table)


# A dead letter may be 256 KiB and more: the JSON shows its start and says how long it is.
VALUE_SHOWN = 1_000


def _summary(letter: DeadLetter) -> dict[str, object]:
    value = letter.value or b""
    return {
        "ref": letter.ref,
        "original_topic": letter.original_topic,
        "original_partition": letter.original_partition,
        "original_offset": letter.original_offset,
        "exception": letter.exception,
        "reason": letter.reason,
        "value": value[:VALUE_SHOWN].decode(errors="replace"),
        "value_bytes": len(value),
        "value_truncated": len(value) > VALUE_SHOWN,
    }


@dlq_app.command("redrive")
def dlq_redrive(
    refs: Annotated[
        list[str] | None, typer.Argument(help="Dead letters as PARTITION:OFFSET (see dlq show).")
    ] = None,
    redrive_all: Annotated[bool, typer.Option("--all", help="Redrive every dead letter.")] = False,
) -> None:
    """Send chosen dead letters back to lead.touchpoints (after they were fixed upstream)."""
    if not refs and not redrive_all:
        raise fail("name dead letters as PARTITION:OFFSET, or pass --all")
    settings = load_settings()
    letters = _dead_letters(settings)
    if not redrive_all:
        by_ref = {letter.ref: letter for letter in letters}
        unknown = [ref for ref in refs or [] if ref not in by_ref]
        if unknown:
            raise fail(f"no dead letter {', '.join(unknown)} (see lifecycle dlq show)", code=1)
        letters = [by_ref[ref] for ref in refs or []]
    try:
        sent = redrive(settings, letters)
    except KafkaError as error:
        raise fail(f"Kafka at {settings.kafka_bootstrap} failed: {error}") from None
    err.print(f"{sent} dead letters sent back to {settings.touchpoints_topic}", highlight=False)
