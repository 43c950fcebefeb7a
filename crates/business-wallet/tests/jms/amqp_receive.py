"""Receives up to COUNT messages from an AMQP 1.0 source address and prints one JSON line per
message with its content type, durable flag, application properties, message annotations and
body. Used by the JMS channel tests (AMQP 1.0 against RabbitMQ).

    python3 amqp_receive.py URL ADDRESS COUNT TIMEOUT_SECONDS
"""

import json
import sys

from proton import Timeout
from proton.utils import BlockingConnection


def text(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8")
    return value


def main():
    url, address, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    connection = BlockingConnection(url, timeout=timeout)
    try:
        receiver = connection.create_receiver(address)
        for _ in range(count):
            try:
                message = receiver.receive(timeout=timeout)
            except Timeout:
                break
            receiver.accept()
            print(json.dumps({
                "content_type": message.content_type,
                "durable": message.durable,
                "properties": {str(k): str(v) for k, v in (message.properties or {}).items()},
                "annotations": {str(k): int(v) if isinstance(v, int) else str(v)
                                for k, v in (message.annotations or {}).items()},
                "body": text(message.body),
            }), flush=True)
    finally:
        connection.close()


if __name__ == "__main__":
    main()
