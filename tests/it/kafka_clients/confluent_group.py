"""Consumer group members with confluent-kafka (librdkafka), driven by a test.

Usage: confluent_group.py BOOTSTRAP GROUP TOPIC CLIENT_ID...

Runs one consumer per client id, all in GROUP, subscribed to TOPIC (no auto commit,
reading from the earliest offset), polled in turn. Reports on stdout, one JSON
object a line:
  {"event": "state", "consumers": {client id: {"member_id", "assignment": [p...],
   "positions": {p: next offset}}}}     whenever any of it changes, and every
                                        REPORT_EVERY_S besides. Positions are the
                                        client's own, of its current assignment:
                                        what it has consumed since it was assigned
                                        (it starts over at each rebalance, as nothing
                                        is committed until asked).
  {"event": "committed", "consumer": id, "offsets": {p: offset}}
  {"event": "closed"}
Takes commands on stdin, one JSON object a line: {"cmd": "commit"} (each consumer
commits its positions, synchronously), {"cmd": "close"} (or end of input):
the consumers leave the group and the script exits. It gives up on its own after
DEADLINE_S, so it never outlives a test that failed to stop it.
"""

import copy
import json
import queue
import sys
import threading
import time

from confluent_kafka import Consumer

DEADLINE_S = 300
REPORT_EVERY_S = 0.5


def emit(event):
    print(json.dumps(event), flush=True)


def consumed(consumer):
    """The next offset of each assigned partition it has consumed from."""
    return {tp.partition: tp.offset
            for tp in consumer.position(consumer.assignment()) if tp.offset >= 0}


def read_commands(commands):
    for line in sys.stdin:
        if line.strip():
            commands.put(json.loads(line))
    commands.put({"cmd": "close"})


def main():
    bootstrap, group, topic, *names = sys.argv[1:]
    consumers = {}
    for name in names:
        c = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": name,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 300,
        })
        c.subscribe([topic])
        consumers[name] = c
    commands = queue.Queue()
    threading.Thread(target=read_commands, args=(commands,), daemon=True).start()
    deadline = time.monotonic() + DEADLINE_S
    last = None
    reported_at = 0.0
    while time.monotonic() < deadline:
        for c in consumers.values():
            c.poll(0.05)
        state = {
            name: {
                "member_id": c.memberid(),
                "assignment": sorted(tp.partition for tp in c.assignment()),
                "positions": consumed(c),
            }
            for name, c in consumers.items()
        }
        now = time.monotonic()
        if state != last or now - reported_at > REPORT_EVERY_S:
            emit({"event": "state", "consumers": state})
            last = copy.deepcopy(state)
            reported_at = now
        try:
            command = commands.get_nowait()
        except queue.Empty:
            continue
        if command["cmd"] == "commit":
            for name, c in consumers.items():
                positions = [tp for tp in c.position(c.assignment()) if tp.offset >= 0]
                committed = c.commit(offsets=positions, asynchronous=False) if positions else []
                emit({"event": "committed", "consumer": name,
                      "offsets": {tp.partition: tp.offset for tp in committed}})
        elif command["cmd"] == "close":
            break
    for c in consumers.values():
        c.close()
    emit({"event": "closed"})


if __name__ == "__main__":
    main()
