#!/usr/bin/env python3
"""Writes the seed inputs of calls_fuzz (tests/fuzz/calls_fuzz.cc) to
tests/fuzz/corpus/calls_fuzz/: short programs for the main call flows, in the
harness's operation encoding. Run from anywhere; rerun after changing it."""
import pathlib

EVENTS = ["initiateCall", "acceptCall", "rejectCall", "endCall", "sendOffer",
          "sendAnswer", "sendIceCandidate", "reportIce", "rejoinCall"]
ANN, BEN, CAT = 0, 1, 2


def header():
    return [4, 0]  # options: rate limits off; call ids c1, c2, ...


def connect(user):
    return [0, user]


def disconnect(index):  # index into the connected sockets, ascending
    return [2, index]


def resume_lost(index):  # index into every socket seen, ascending
    return [3, index, 0]


def send(index, event, *payload):
    return [5, 1, index, EVENTS.index(event), 1] + list(payload)


def initiate(index, user, video=True):
    return send(index, "initiateCall", 0, user, 1 if video else 0)


def with_call(index, event):  # the newest call's id
    return send(index, event, 0, 0)


def offer(index):
    return with_call(index, "sendOffer") + [0]


def answer(index):
    return with_call(index, "sendAnswer") + [0]


def candidate(index):
    return with_call(index, "sendIceCandidate") + [1]


def report_ice(index, failed=False):
    return with_call(index, "reportIce") + [1 if failed else 0, 0, 1, 0, 0]


def advance(which):  # 0 ring timeout, 1 reconnect grace, 2 retention, 3 one second
    return [11, which]


# ann: socket 1; ben: sockets 2 and 3 (two devices); cat: socket 4.
CAST = connect(ANN) + connect(BEN) + connect(BEN) + connect(CAT)
ANSWERED = CAST + initiate(0, BEN) + offer(0) + with_call(2, "acceptCall")

SEEDS = {
    "basic_call": ANSWERED + answer(2) + candidate(0) + candidate(2) + report_ice(0)
    + report_ice(2) + with_call(0, "endCall"),
    "reject": CAST + initiate(0, BEN) + with_call(1, "rejectCall"),
    "busy": CAST + initiate(0, BEN) + initiate(3, BEN, video=False),
    "timeout": CAST + initiate(0, BEN) + advance(0) + advance(2),
    "glare": CAST + initiate(0, BEN) + initiate(1, ANN) + offer(0) + answer(1),
    "reconnect": ANSWERED + disconnect(2) + offer(0) + resume_lost(2)
    + with_call(2, "rejoinCall") + answer(2) + with_call(2, "endCall"),
    "grace_expiry": ANSWERED + disconnect(0) + answer(2) + advance(1) + report_ice(2, True),
    "cancel": CAST + initiate(0, BEN) + disconnect(0) + connect(ANN) + advance(3),
}

out = pathlib.Path(__file__).resolve().parent / "corpus" / "calls_fuzz"
out.mkdir(parents=True, exist_ok=True)
for name, program in SEEDS.items():
    (out / name).write_bytes(bytes(header() + program))
