"""Ingest's positions belong to one life of a topic (its Kafka topic id)."""

from __future__ import annotations

from uuid import uuid4

from eventsourcing.persistence import Tracking

from lifecycle.ledger.positions import TopicPositions


def positions(engine) -> TopicPositions:
    return TopicPositions(engine.process_recorder, group="g", topic="lead.touchpoints")


def test_the_first_topic_id_takes_over_positions_kept_before_ids_were(engine):
    engine.process_recorder.insert_tracking(Tracking("g:lead.touchpoints:0", 41))
    first = positions(engine).incarnation(uuid4())

    assert (first.number, first.recreated) == (1, False)
    assert positions(engine).position(first.number, 0) == 41
    assert positions(engine).name(first.number, 0) == "g:lead.touchpoints:0"


def test_the_same_topic_id_is_the_same_incarnation(engine):
    topic_id = uuid4()
    positions(engine).incarnation(topic_id)

    again = positions(engine).incarnation(topic_id)

    assert (again.number, again.recreated) == (1, False)


def test_a_new_topic_id_is_a_new_incarnation_with_positions_of_its_own(engine):
    old = positions(engine).incarnation(uuid4())
    engine.process_recorder.insert_tracking(Tracking(positions(engine).name(old.number, 2), 900))

    new = positions(engine).incarnation(uuid4())

    assert (new.number, new.previous, new.recreated) == (2, 1, True)
    assert positions(engine).name(new.number, 2) == "g:lead.touchpoints#2:2"
    assert positions(engine).position(new.number, 2) is None
    assert positions(engine).latest() == 2


def test_two_processes_meeting_a_new_topic_id_give_it_one_number(open_engine):
    one, two = open_engine(), open_engine()
    positions(one).incarnation(uuid4())
    topic_id = uuid4()

    numbers = {positions(app).incarnation(topic_id).number for app in (one, two, one)}

    assert numbers == {2}


def test_without_a_topic_id_the_newest_incarnation_goes_on(engine):
    positions(engine).incarnation(uuid4())
    positions(engine).incarnation(uuid4())

    assert positions(engine).incarnation(None).number == 2


def test_a_number_claimed_by_a_process_that_failed_before_naming_its_id_is_not_given_again(
    engine,
):
    positions(engine).incarnation(uuid4())
    engine.process_recorder.insert_tracking(Tracking("g:lead.touchpoints:incarnation", 2))

    numbers = [positions(engine).incarnation(uuid4()).number for _ in range(2)]

    assert numbers == [3, 4]
