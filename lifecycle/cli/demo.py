"""``lifecycle demo``: the whole engine on a fresh machine, from a synthetic stream to a dashboard.

Starts the bundled broker, produces a synthetic history (with duplicates and a few malformed
messages) to ``lead.touchpoints``, runs ingest, relay and the views until they have caught up,
prints what the views say, and serves the dashboard over the result.
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from kafka.errors import KafkaError
from rich.progress import Progress
from rich.table import Table

from consumers import kafka
from consumers.relay import Relay
from consumers.worker import Worker, run_until_stopped
from lifecycle import wiring
from lifecycle.adapters.database_url import DEFAULT_DATABASE_URL
from lifecycle.adapters.logs import configure_logging
from lifecycle.adapters.metrics import counted
from lifecycle.cli.common import app, err, fail, open_engine, open_views, out
from lifecycle.cli.render import print_costs, print_funnel, progress_bars
from lifecycle.cli.serve import listen, serve_until_stopped
from lifecycle.cli.sources import print_compared
from lifecycle.demo.broker import LocalBroker, free_port
from lifecycle.demo.sample import generate
from lifecycle.domain.vocabulary import Conversion, Model
from lifecycle.errors import LifecycleError
from lifecycle.projections import queries
from lifecycle.projections.attribution import Question, attribution
from lifecycle.settings import Settings

HOME = Path(".lifecycle")
DAYS = 90
DUPLICATE_SHARE = 0.03
# What upstream systems get wrong now and then: each ends up on the dead-letter topic.
_encode = msgspec.json.Encoder().encode
_FORM = {"specversion": "1.0", "type": "lead.touchpoint", "source": "https://forms.example.com"}
MALFORMED: tuple[bytes, ...] = (
    b"{not json",
    _encode({"specversion": "1.0", "id": "m-1", "source": "https://forms.example.com"}),
    _encode(_FORM | {"id": "m-2", "time": "2026-13-40T00:00:00Z", "data": {}}),
    _encode(
        _FORM
        | {
            "id": "m-3",
            "time": "2026-10-01T09:00:00Z",
            "data": {"kind": "telepathy", "identity": {"email": "x@example.com"}},
        }
    ),
)


def demo_stream(people: int, *, seed: int, end: datetime) -> list[tuple[bytes, bytes]]:
    """(key, value) messages: ``people`` people over 90 days up to ``end``, some sent twice."""
    events = generate(people=people, days=DAYS, seed=seed, start=end - timedelta(days=DAYS))
    rng = random.Random(seed)  # noqa: S311 (synthetic data)
    messages = [(_key(event), _encode(event)) for event in events]
    # At-least-once upstreams resend: the same CloudEvent again, a little later.
    for index in sorted(rng.sample(range(len(messages)), int(len(messages) * DUPLICATE_SHARE))):
        messages.insert(min(index + rng.randint(1, 50), len(messages)), messages[index])
    for position, value in zip(
        rng.sample(range(len(messages)), len(MALFORMED)), MALFORMED, strict=True
    ):
        messages.insert(position, (b"malformed", value))
    return messages


def _key(event: dict[str, Any]) -> bytes:
    """Partition by the person (or the campaign, for spend), so one's events stay in order."""
    data = event.get("data", {})
    identity = data.get("identity") or {}
    for name in ("email", "customer_id", "phone", "anonymous_id"):
        if identity.get(name):
            return str(identity[name]).encode()
    return str((data.get("campaign") or {}).get("id", "")).encode()


def _produce(settings: Settings, messages: list[tuple[bytes, bytes]], bar: Progress) -> int:
    task = bar.add_task("producing touchpoints", total=len(messages))
    producer = kafka.producer(settings, linger_ms=20, batch_size=256 * 1024)
    try:
        for number, (key, value) in enumerate(messages, 1):
            producer.send(settings.touchpoints_topic, key=key, value=value)
            if number % 1000 == 0:
                bar.update(task, completed=number)
        producer.flush()
    finally:
        producer.close()
    bar.update(task, completed=len(messages))
    return len(messages)


def _wait_until_caught_up(
    settings: Settings,
    produced: int,
    relay: Relay,
    failed: Callable[[], bool],
    bar: Progress,
) -> None:
    """Progress bars until ingest has consumed everything and relay and views are idle."""
    topic, events = settings.touchpoints_topic, settings.lead_events_topic
    ingest = bar.add_task("ingest (touchpoints → event store)", total=produced)
    published = bar.add_task("relay (event store → lead.events)", total=None)
    viewed = bar.add_task("views (lead.events → view tables)", total=None)
    quiet_since: float | None = None
    while not failed():
        consumed = counted(topic, "consumed")
        sent, projected = counted(events, "published"), counted(events, "consumed")
        bar.update(ingest, completed=consumed)
        bar.update(published, completed=sent, total=sent or None)
        bar.update(viewed, completed=projected, total=max(sent, projected) or None)
        done = consumed >= produced and projected >= sent > 0 and relay.caught_up()
        if not done:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 1.0:  # nothing new for a second: caught up
            return
        time.sleep(0.2)


def _print_views(settings: Settings) -> None:
    store = open_views(settings)
    try:
        with store.reading() as tx:
            slot = store.active_slot(tx)
            now = datetime.now(UTC)
            result = queries.funnel(tx, slot)
            temperature = queries.temperature_counts(tx, slot, now)
            by_campaign = queries.cost_per_lead(tx, slot, "campaign")
            by_channel = queries.cost_per_lead(tx, slot, "channel")
            question = Question(Conversion.CUSTOMER, "channel")
            models = [attribution(tx, slot, model, question) for model in Model]
    finally:
        store.close()
    print_funnel(out, result)
    table = Table("temperature", "leads", title="Temperature now")
    for name in ("hot", "warm", "cold"):
        table.add_row(name, str(sum(n for (_, t), n in temperature.items() if t == name)))
    out.print(table)
    for by, rows in (("campaign", by_campaign), ("channel", by_channel)):
        print_costs(out, rows, by)
    print_compared(models)


@app.command()
def demo(
    people: Annotated[int, typer.Option(min=10, max=200_000, help="People to simulate.")] = 2000,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the dashboard afterwards.")
    ] = True,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Dashboard port (0: any).")] = 8000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic history.")] = 7,
) -> None:
    """Run the whole engine on a synthetic stream, print the views, serve the dashboard.

    Starts afresh each time in .lifecycle/ (the broker keeps nothing on disk).
    """
    configure_logging("auto", level=logging.ERROR)  # progress bars and a summary instead
    # The port first: a port in use is said before anything is wiped or run.
    listening = listen("127.0.0.1", port) if serve else None
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    broker = LocalBroker(port=free_port(), log_path=HOME / "broker.log")
    # The store and the views where every other command looks by default, so that
    # `lifecycle funnel`, `lead show` and `serve` read the demo's data afterwards.
    settings = Settings(
        database_url=DEFAULT_DATABASE_URL,
        kafka_bootstrap=broker.bootstrap,
        session_timeout_ms=6_000,
        heartbeat_interval_ms=1_000,
    )
    stop = threading.Event()
    failures: list[BaseException] = []
    with contextlib.ExitStack() as stack:
        if listening is not None:
            stack.callback(listening.close)
        try:
            broker.start()
        except (LifecycleError, KafkaError) as error:
            raise fail(f"cannot start the bundled broker: {error}") from None
        stack.callback(broker.stop)
        err.print(f"broker on {broker.bootstrap}; store and views in {HOME}/", highlight=False)
        messages = demo_stream(people, seed=seed, end=datetime.now(UTC))
        relay = wiring.relay(settings, stack.enter_context(open_engine(settings)))
        views = open_views(settings)
        stack.callback(views.close)
        views.setup()
        workers: list[Worker] = [
            wiring.ingest(settings, stack.enter_context(open_engine(settings))),
            relay,
            wiring.views_worker(settings, views, relay.engine.rules),
        ]

        def run() -> None:
            try:
                run_until_stopped(workers, stop)
            except BaseException as error:  # noqa: BLE001 (reported by the main thread)
                failures.append(error)

        thread = threading.Thread(target=run, name="workers")
        thread.start()
        stack.callback(thread.join)
        stack.callback(stop.set)
        started = time.monotonic()
        with progress_bars(err, always=True) as bar:
            produced = _produce(settings, messages, bar)
            _wait_until_caught_up(settings, produced, relay, lambda: bool(failures), bar)
        if failures:
            raise fail(f"a worker failed: {failures[0]}")
        err.print(
            f"{produced} messages in {time.monotonic() - started:.0f} s: "
            f"{counted(settings.touchpoints_topic, 'recorded')} recorded, "
            f"{counted(settings.touchpoints_topic, 'duplicate')} duplicates dropped, "
            f"{counted(settings.touchpoints_topic, 'dead_lettered')} dead-lettered",
            highlight=False,
        )
        _print_views(settings)
        where = (
            f"The store and the views are in {HOME}/lifecycle.db, where the other commands "
            "look by default (lifecycle funnel, cpl, sla, lead show email:..., serve)."
        )
        if serve:
            where += (
                f" While the dashboard runs, the broker does too: "
                f"LIFECYCLE_KAFKA_BOOTSTRAP={broker.bootstrap} lifecycle dlq show"
            )
        else:
            where += " The broker stopped with the demo (it keeps nothing): so did its DLQ."
        err.print(where, highlight=False)
        if listening is not None:
            serve_until_stopped(settings, relay.engine, "127.0.0.1", listening)
    err.print("stopped cleanly", highlight=False)
