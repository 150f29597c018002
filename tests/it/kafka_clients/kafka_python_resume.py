"""A kafka-python consumer group member that commits, or resumes, driven by a test.

Usage:
  kafka_python_resume.py commit BOOTSTRAP GROUP TOPIC COUNT P=OFFSET...
    Joins GROUP, consumes COUNT records of TOPIC from the earliest offset, commits
    the offsets given (partition=offset), reads them back, and leaves.
  kafka_python_resume.py resume BOOTSTRAP GROUP TOPIC COUNT
    Joins GROUP, reads its committed offsets, then consumes COUNT records from
    them, and leaves.

Reports on stdout, one JSON object a line: {"event": "consumed", "offsets":
{p: [offset...]}}, {"event": "committed", "offsets": {p: offset or null}}. Exits 1
if COUNT records do not come within DEADLINE_S.
"""

import json
import logging
import sys
import time

from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition

DEADLINE_S = 90


def emit(event):
    print(json.dumps(event), flush=True)


def consume(consumer, count):
    offsets = {}
    got = 0
    deadline = time.monotonic() + DEADLINE_S
    while got < count:
        if time.monotonic() > deadline:
            emit({"event": "timeout", "offsets": offsets})
            sys.exit(1)
        for tp, records in consumer.poll(timeout_ms=200).items():
            offsets.setdefault(tp.partition, []).extend(r.offset for r in records)
            got += len(records)
    emit({"event": "consumed", "offsets": offsets})


def committed(consumer, topic):
    partitions = sorted(consumer.partitions_for_topic(topic))
    return {p: consumer.committed(TopicPartition(topic, p)) for p in partitions}


def main():
    mode, bootstrap, group, topic, count, *commits = sys.argv[1:]
    # The client's own account of joining and fetching, for a failure's message.
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        heartbeat_interval_ms=300,
    )
    if mode == "resume":
        emit({"event": "committed", "offsets": committed(consumer, topic)})
    consume(consumer, int(count))
    if mode == "commit":
        offsets = {}
        for c in commits:
            p, o = c.split("=")
            offsets[TopicPartition(topic, int(p))] = OffsetAndMetadata(int(o), "", -1)
        consumer.commit(offsets)
        emit({"event": "committed", "offsets": committed(consumer, topic)})
    consumer.close()


if __name__ == "__main__":
    main()
