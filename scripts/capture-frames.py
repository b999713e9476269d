#!/usr/bin/env python3
"""Records the Kafka request frames a real client sends, for golden-byte tests.

A loopback TCP proxy: clients connect to LISTEN, every byte goes on to the broker at TARGET, and
each client->broker frame is appended to OUT as one line `api_key api_version hex` (the 4-byte
size prefix removed). Stops after SECONDS. Loopback only.

    scripts/capture-frames.py 127.0.0.1:29092 127.0.0.1:19092 frames.txt 20
"""
import socket
import sys
import threading
import time


def split(address):
    host, port = address.rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost"):
        sys.exit("capture-frames: loopback addresses only")
    return host, int(port)


def pump(source, sink, record, out, lock):
    buffer = b""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
            if not record:
                continue
            buffer += data
            while len(buffer) >= 4:
                size = int.from_bytes(buffer[:4], "big")
                if len(buffer) < 4 + size:
                    break
                frame, buffer = buffer[4 : 4 + size], buffer[4 + size :]
                key = int.from_bytes(frame[0:2], "big", signed=True)
                version = int.from_bytes(frame[2:4], "big", signed=True)
                with lock:
                    out.write(f"{key} {version} {frame.hex()}\n")
                    out.flush()
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    listen, target, path, seconds = split(sys.argv[1]), split(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(listen)
    server.listen(16)
    server.settimeout(0.2)
    lock = threading.Lock()
    deadline = time.time() + seconds
    with open(path, "a") as out:
        while time.time() < deadline:
            try:
                client, _ = server.accept()
            except socket.timeout:
                continue
            broker = socket.create_connection(target)
            threading.Thread(target=pump, args=(client, broker, True, out, lock), daemon=True).start()
            threading.Thread(target=pump, args=(broker, client, False, out, lock), daemon=True).start()


if __name__ == "__main__":
    main()
