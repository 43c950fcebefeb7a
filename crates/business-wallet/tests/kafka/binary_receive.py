"""Reads a topic from its start with kafka-python and turns each record into a CloudEvent with
the CloudEvents SDK's Kafka binding (`cloudevents.kafka.from_binary`), as a consumer of the
binary content mode would; prints one JSON line per record with the event's attributes, its
data, and the record's key and header names. Stops after COUNT records or TIMEOUT_SECONDS
without one. Used by the Kafka channel tests (scripts/setup/brokers.sh installs both packages).

    python3 binary_receive.py BOOTSTRAP TOPIC COUNT TIMEOUT_SECONDS
"""

import json
import sys

from cloudevents.kafka import KafkaMessage, from_binary
from kafka import KafkaConsumer, TopicPartition


def main():
    bootstrap, topic, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=int(timeout * 1000),
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or {0}
        assignment = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assignment)
        consumer.seek_to_beginning(*assignment)
        seen = 0
        for record in consumer:
            headers = {name: value for name, value in record.headers}
            event = from_binary(KafkaMessage(headers=headers, key=record.key, value=record.value))
            attributes = {
                name: value.decode("utf-8") if isinstance(value, bytes) else value
                for name, value in event.get_attributes().items()
            }
            print(json.dumps({
                "key": record.key.decode("utf-8") if record.key is not None else None,
                "headers": [name for name, _ in record.headers],
                "attributes": attributes,
                # The SDK has parsed the value as the JSON its content-type names.
                "data": event.get_data(),
            }), flush=True)
            seen += 1
            if seen >= count:
                break
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
