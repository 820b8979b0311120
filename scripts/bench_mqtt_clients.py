#!/usr/bin/env python3
"""MQTT client side of scripts/bench_mqtt_access.sh (PyPI paho-mqtt).

connects HOST PORT STORE KEY COUNT
    Connects COUNT API clients one after another (the Printago way), each waiting for its
    CONNACK; prints connects/s.
fanout HOST PORT STORE KEY CLIENTS DSN EVENTS
    Subscribes CLIENTS API clients to the store's entity events, then inserts EVENTS outbox rows
    in one statement (psql) and waits until every client has every event; prints deliveries/s.
"""
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt


def client(store, key, suffix):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"apiclient_{key[:24]}_{suffix}")
    c.username_pw_set(store, key)
    return c


def connects(host, port, store, key, count):
    started = time.monotonic()
    for i in range(count):
        c = client(store, key, f"bench{i}")
        done = threading.Event()
        result = {}

        def on_connect(_c, _u, _f, reason, _p, result=result, done=done):
            result["rc"] = reason
            done.set()

        c.on_connect = on_connect
        c.connect(host, port)
        c.loop_start()
        if not done.wait(10) or result["rc"].is_failure:
            sys.exit(f"client {i} was refused: {result.get('rc')}")
        c.disconnect()
        c.loop_stop()
    secs = time.monotonic() - started
    print(f"{count / secs:.0f} connects/s ({count} API clients in {secs:.1f} s)")


def fanout(host, port, store, key, clients, dsn, events):
    received = [0] * clients
    lock = threading.Lock()
    subscribed = threading.Semaphore(0)
    conns = []
    for i in range(clients):
        c = client(store, key, f"fan{i}")

        def on_connect(c, _u, _f, _r, _p):
            c.subscribe(f"stores/{store}/entities/#", qos=1)

        def on_subscribe(_c, _u, _m, _r, _p):
            subscribed.release()

        def on_message(_c, _u, _msg, i=i):
            with lock:
                received[i] += 1

        c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
        c.connect(host, port)
        c.loop_start()
        conns.append(c)
    for _ in range(clients):
        if not subscribed.acquire(timeout=20):
            sys.exit("not every client subscribed")
    started = time.monotonic()
    subprocess.run(["psql", dsn, "-q", "-c", f"""
        insert into outbox (event_id, store_id, type, entity_type, entity_id, action, entity)
        select gen_random_uuid(), '{store}', 'printer.updated', 'printer', gen_random_uuid(),
               'UPDATE', '{{"name": "bench"}}'::jsonb from generate_series(1, {events})"""],
                   check=True)
    deadline = started + 60
    while time.monotonic() < deadline:
        with lock:
            if all(r >= events for r in received):
                break
        time.sleep(0.01)
    secs = time.monotonic() - started
    with lock:
        total = sum(min(r, events) for r in received)
    for c in conns:
        c.disconnect()
        c.loop_stop()
    print(f"{total / secs:.0f} deliveries/s ({events} events x {clients} clients, "
          f"{total} delivered in {secs:.2f} s)")


if __name__ == "__main__":
    mode, host, port, store, key = sys.argv[1:6]
    if mode == "connects":
        connects(host, int(port), store, key, int(sys.argv[6]))
    else:
        fanout(host, int(port), store, key, int(sys.argv[6]), sys.argv[7], int(sys.argv[8]))
