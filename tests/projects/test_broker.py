"""The quickstart's filesystem broker never shows a reader a half-written file.

`make run` used kombu's stock filesystem transport at first, and its worker died after a
few minutes with "Unrecoverable error: JSONDecodeError": beat was still writing a message
file when the worker moved and read it. Here a producer process publishes (or binds) while
this process reads every file it can see, as aggressively as a polling worker; with the
stock transport nearly every large message is seen half-written.
"""

import json
import multiprocessing
import os

import pytest
from kombu import Connection, Exchange, Queue

from costwatch.broker import Transport

pytestmark = pytest.mark.django_db(False)
MESSAGES = 150


def folders(tmp_path):
    paths = {name: tmp_path / name for name in ("queue", "processed", "control")}
    for path in paths.values():
        path.mkdir()
    return {"data_folder_in": str(paths["queue"]), "data_folder_out": str(paths["queue"]),
            "processed_folder": str(paths["processed"]), "control_folder": str(paths["control"])}


def publish(options):
    with Connection(transport=Transport, transport_options=options) as conn:
        queue = conn.SimpleQueue("whole")
        for number in range(MESSAGES):
            queue.put({"n": number, "padding": "x" * 200_000})  # large, so a write takes a while


def bind(options, worker):
    exchange = Exchange("shared", type="direct")
    with Connection(transport=Transport, transport_options=options) as conn:
        channel = conn.channel()
        for number in range(40):
            name = f"q{worker}-{number}"
            Queue(name, exchange, routing_key=name)(channel).declare()


def read_visible(folder, suffix):
    """(whole, partial) counts of the files with `suffix` visible right now; messages are consumed."""
    whole = partial = 0
    for name in os.listdir(folder):
        if not name.endswith(suffix):
            continue
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as handle:
                json.loads(handle.read())
            whole += 1
        except FileNotFoundError:
            continue
        except ValueError:
            partial += 1
        if suffix == ".msg":
            os.remove(path)
    return whole, partial


def watch(processes, folder, suffix):
    for process in processes:
        process.start()
    whole = partial = 0
    while any(p.is_alive() for p in processes):
        seen = read_visible(folder, suffix)
        whole, partial = whole + seen[0], partial + seen[1]
    seen = read_visible(folder, suffix)
    for process in processes:
        process.join()
    assert all(p.exitcode == 0 for p in processes)
    return whole + seen[0], partial + seen[1]


def test_a_polling_reader_never_sees_a_half_written_message(tmp_path):
    options = folders(tmp_path)
    with Connection(transport=Transport, transport_options=options) as conn:
        conn.SimpleQueue("whole")  # bind before the producer starts, as the worker does
    producer = multiprocessing.get_context("fork").Process(target=publish, args=(options,))
    whole, partial = watch([producer], options["data_folder_in"], ".msg")
    assert (whole, partial) == (MESSAGES, 0)


def test_concurrent_bindings_keep_the_exchange_table_whole_and_complete(tmp_path):
    options = folders(tmp_path)
    context = multiprocessing.get_context("fork")
    binders = [context.Process(target=bind, args=(options, worker)) for worker in range(3)]
    _whole, partial = watch(binders, options["control_folder"], ".exchange")
    assert partial == 0
    with open(os.path.join(options["control_folder"], "shared.exchange")) as handle:
        queues = {row[2] for row in json.load(handle)}
    assert queues == {f"q{worker}-{number}" for worker in range(3) for number in range(40)}
