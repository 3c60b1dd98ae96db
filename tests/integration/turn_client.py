"""A small TURN client (RFC 8656, RFC 6156, RFC 8489 long-term credentials).

Written for the integration tests from the RFCs, independent of turnkey's C++
codec, so that a bug shared by server and codec cannot hide. It speaks UDP,
TCP and TLS to the server, keeps Data indications and ChannelData that arrive
while it waits for a response, and returns error responses to the caller
instead of raising: the tests assert on exact error codes.
"""

import base64
import binascii
import hashlib
import hmac
import os
import select
import socket
import ssl
import struct
import time

MAGIC = 0x2112A442
FINGERPRINT_XOR = 0x5354554E

# Methods (RFC 8489 s18.2, RFC 8656 s17).
BINDING = 0x001
ALLOCATE = 0x003
REFRESH = 0x004
SEND = 0x006
DATA = 0x007
CREATE_PERMISSION = 0x008
CHANNEL_BIND = 0x009

# Classes.
REQUEST = 0
INDICATION = 1
SUCCESS = 2
ERROR = 3

# Attributes (RFC 8489 s18.3, RFC 8656 s18).
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
CHANNEL_NUMBER = 0x000C
LIFETIME = 0x000D
XOR_PEER_ADDRESS = 0x0012
DATA_ATTR = 0x0013
REALM = 0x0014
NONCE = 0x0015
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_ADDRESS_FAMILY = 0x0017
REQUESTED_TRANSPORT = 0x0019
MESSAGE_INTEGRITY_SHA256 = 0x001C
XOR_MAPPED_ADDRESS = 0x0020
PASSWORD_ALGORITHMS = 0x8002
ICMP = 0x8004
FINGERPRINT = 0x8028

FAMILY_IPV4 = 0x01
FAMILY_IPV6 = 0x02
PROTO_UDP = 17
PROTO_TCP = 6


def message_type(method, cls):
    """RFC 8489 s5: M11..M7 C1 M6..M4 C0 M3..M0."""
    return ((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) |
            ((cls & 1) << 4) | ((cls & 2) << 7))


def split_type(mtype):
    method = (mtype & 0x000F) | ((mtype & 0x00E0) >> 1) | ((mtype & 0x3E00) >> 2)
    cls = ((mtype >> 4) & 1) | ((mtype >> 7) & 2)
    return method, cls


def long_term_key(username, realm, password):
    """RFC 8489 s9.2.2, MD5 algorithm."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()


def turn_rest_credential(secret, user, expires_at):
    """TURN REST API: username '<expiry>:<user>', password base64(HMAC-SHA1(secret, username))."""
    username = f"{int(expires_at)}:{user}"
    password = base64.b64encode(
        hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()
    return username, password


def encode_xor_address(address, txid):
    """XOR-PEER-ADDRESS and friends (RFC 8489 s14.2); `address` is (ip, port)."""
    ip, port = address
    xport = port ^ (MAGIC >> 16)
    if ":" in ip:
        raw = socket.inet_pton(socket.AF_INET6, ip)
        key = struct.pack("!I", MAGIC) + txid
        return struct.pack("!BBH", 0, FAMILY_IPV6, xport) + bytes(a ^ b for a, b in zip(raw, key))
    raw = struct.unpack("!I", socket.inet_pton(socket.AF_INET, ip))[0]
    return struct.pack("!BBHI", 0, FAMILY_IPV4, xport, raw ^ MAGIC)


def decode_address(value):
    """MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS (RFC 8489 s14.1): (ip, port)."""
    family, port = struct.unpack("!xBH", value[:4])
    if family == FAMILY_IPV4:
        return socket.inet_ntop(socket.AF_INET, value[4:8]), port
    return socket.inet_ntop(socket.AF_INET6, value[4:20]), port


def decode_xor_address(value, txid):
    """XOR-MAPPED-ADDRESS and friends: the cookie (and for IPv6 the
    transaction id) XORed off, then decode_address."""
    key = struct.pack("!HI", MAGIC >> 16, MAGIC) + txid
    return decode_address(value[:2] + bytes(a ^ b for a, b in zip(value[2:], key)))


def _pad(n):
    return (4 - n % 4) % 4


def encode_attrs(attrs):
    out = b""
    for atype, value in attrs:
        out += struct.pack("!HH", atype, len(value)) + value + b"\0" * _pad(len(value))
    return out


def build(method, cls, attrs, txid=None, key=None, fingerprint=True):
    """Encodes a message; adds MESSAGE-INTEGRITY with `key` and FINGERPRINT."""
    txid = txid or os.urandom(12)
    mtype = message_type(method, cls)
    body = encode_attrs(attrs)
    if key is not None:
        header = struct.pack("!HHI", mtype, len(body) + 24, MAGIC) + txid
        mac = hmac.new(key, header + body, hashlib.sha1).digest()
        body += struct.pack("!HH", MESSAGE_INTEGRITY, 20) + mac
    if fingerprint:
        header = struct.pack("!HHI", mtype, len(body) + 8, MAGIC) + txid
        crc = (binascii.crc32(header + body) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
        body += struct.pack("!HHI", FINGERPRINT, 4, crc)
    return txid, struct.pack("!HHI", mtype, len(body), MAGIC) + txid + body


class Message:
    """A decoded STUN message. attrs: list of (type, value) in wire order."""

    def __init__(self, raw):
        if len(raw) < 20:
            raise ValueError("short message")
        mtype, length, cookie = struct.unpack("!HHI", raw[:8])
        if cookie != MAGIC or mtype & 0xC000:
            raise ValueError("not STUN")
        if 20 + length > len(raw) or length % 4:
            raise ValueError("bad length")
        self.raw = raw[:20 + length]
        self.method, self.cls = split_type(mtype)
        self.txid = raw[8:20]
        self.attrs = []
        self.integrity_offset = None
        pos = 20
        while pos + 4 <= len(self.raw):
            atype, alen = struct.unpack("!HH", self.raw[pos:pos + 4])
            if pos + 4 + alen > len(self.raw):
                raise ValueError("attribute runs past the end")
            if atype == MESSAGE_INTEGRITY and self.integrity_offset is None:
                self.integrity_offset = pos
            self.attrs.append((atype, self.raw[pos + 4:pos + 4 + alen]))
            pos += 4 + alen + _pad(alen)

    def get(self, atype):
        for t, v in self.attrs:
            if t == atype:
                return v
        return None

    def has(self, atype):
        return self.get(atype) is not None

    @property
    def error_code(self):
        v = self.get(ERROR_CODE)
        if v is None:
            return None
        return (v[2] & 0x7) * 100 + v[3]

    @property
    def reason(self):
        v = self.get(ERROR_CODE)
        return v[4:].decode(errors="replace") if v is not None else ""

    def text(self, atype):
        v = self.get(atype)
        return v.decode(errors="replace") if v is not None else None

    def address(self, atype):
        v = self.get(atype)
        return decode_xor_address(v, self.txid) if v is not None else None

    @property
    def lifetime(self):
        v = self.get(LIFETIME)
        return struct.unpack("!I", v)[0] if v is not None else None

    def integrity_valid(self, key):
        """Checks MESSAGE-INTEGRITY (RFC 8489 s14.5) with `key`."""
        if self.integrity_offset is None:
            return False
        pos = self.integrity_offset
        header = self.raw[:2] + struct.pack("!H", pos + 24 - 20) + self.raw[4:20]
        mac = hmac.new(key, header + self.raw[20:pos], hashlib.sha1).digest()
        return hmac.compare_digest(mac, self.raw[pos + 4:pos + 24])

    def __repr__(self):
        code = f" {self.error_code} {self.reason}" if self.cls == ERROR else ""
        return f"<method 0x{self.method:03x} class {self.cls}{code}>"


def peer_attr(address, txid):
    return (XOR_PEER_ADDRESS, encode_xor_address(address, txid))


class TurnClient:
    """One client 5-tuple to a TURN server. Use as a context manager.

    transport: "udp", "tcp" or "tls". Requests over UDP are retransmitted from
    500 ms, doubling, until `timeout`. request() returns the response Message
    (success or error) and raises TimeoutError only when nothing came.
    """

    def __init__(self, host, port, transport="udp", username=None, password=None,
                 family=socket.AF_INET, cafile=None, timeout=3.0):
        self.transport = transport
        self.timeout = timeout
        self.username = username
        self.password = password
        self.realm = None
        self.nonce = None
        self.key = None
        self.inbound = []  # ("data", (ip, port), bytes) / ("channel", number, bytes)
        self._buffer = b""
        if transport == "udp":
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            self.sock.connect((host, port))
        else:
            raw = socket.create_connection((host, port), timeout=timeout)
            if transport == "tls":
                ctx = ssl.create_default_context(cafile=cafile)
                if cafile is None:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                raw = ctx.wrap_socket(raw, server_hostname="localhost")
            self.sock = raw
        self.local = self.sock.getsockname()[:2]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # Credentials -------------------------------------------------------

    def set_credentials(self, username, password):
        """Switches user; keeps the realm and nonce learned so far."""
        self.username, self.password = username, password
        if self.realm is not None:
            self.key = long_term_key(username, self.realm, password)

    def learn(self, response):
        """Takes REALM and NONCE from a 401 or 438 (RFC 8489 s9.2.5)."""
        if response.has(REALM):
            self.realm = response.text(REALM)
        self.nonce = response.text(NONCE)
        self.key = long_term_key(self.username, self.realm, self.password)

    def auth_attrs(self):
        return [(USERNAME, self.username.encode()), (REALM, self.realm.encode()),
                (NONCE, self.nonce.encode())]

    # Wire --------------------------------------------------------------

    def send_raw(self, data):
        if self.transport == "udp":
            self.sock.send(data)
        else:
            self.sock.sendall(data)

    def _read_stream(self, deadline):
        """One STUN message or padded ChannelData frame from the stream, or None."""
        while True:
            if len(self._buffer) >= 4:
                first = self._buffer[0] >> 6
                length = struct.unpack("!H", self._buffer[2:4])[0]
                if first == 0:
                    size = 20 + length
                elif first == 1:
                    size = 4 + length + _pad(length)  # RFC 8656 s12.5: padded on streams
                else:
                    raise ValueError("stream out of sync")
                if len(self._buffer) >= size:
                    frame, self._buffer = self._buffer[:size], self._buffer[size:]
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
                ready, _, _ = select.select([self.sock], [], [], left)
                if not ready:
                    return None
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self._buffer += chunk

    def read_packet(self, deadline):
        """Next datagram or frame before `deadline` (monotonic), or None."""
        if self.transport != "udp":
            return self._read_stream(deadline)
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([self.sock], [], [], left)
        if not ready:
            return None
        return self.sock.recv(65536)

    def _classify(self, packet):
        """Queues relayed data; returns a response Message, else None."""
        if not packet:
            return None
        if packet[0] >> 6 == 1:
            channel, length = struct.unpack("!HH", packet[:4])
            self.inbound.append(("channel", channel, packet[4:4 + length]))
            return None
        try:
            msg = Message(packet)
        except ValueError:
            return None
        if msg.cls == INDICATION and msg.method == DATA:
            icmp = msg.get(ICMP)
            if icmp is not None and not msg.has(DATA_ATTR):
                # RFC 8656 s18.13: 16 reserved bits, 7-bit type, 9-bit code, error data.
                type_code, error_data = struct.unpack("!2xHI", icmp)
                self.inbound.append(("icmp", msg.address(XOR_PEER_ADDRESS),
                                     (type_code >> 9, type_code & 0x1FF, error_data)))
                return None
            self.inbound.append(("data", msg.address(XOR_PEER_ADDRESS), msg.get(DATA_ATTR)))
            return None
        if msg.cls in (SUCCESS, ERROR):
            return msg
        return None

    # Requests ----------------------------------------------------------

    def request(self, method, attrs=(), peers=(), auth=True, timeout=None):
        """Sends one request and returns its response. Authenticated once a
        nonce is known (and `auth`). `peers` become XOR-PEER-ADDRESS
        attributes, which are XORed with this request's transaction id."""
        txid = os.urandom(12)
        attrs = list(attrs) + [peer_attr(p, txid) for p in peers]
        key = None
        if auth and self.nonce is not None:
            attrs += self.auth_attrs()
            key = self.key
        _, msg = build(method, REQUEST, attrs, txid=txid, key=key)
        deadline = time.monotonic() + (timeout or self.timeout)
        rto = 0.5
        while True:
            self.send_raw(msg)
            resend = deadline if self.transport != "udp" else min(deadline, time.monotonic() + rto)
            while True:
                packet = self.read_packet(resend)
                if packet is None:
                    break
                response = self._classify(packet)
                if response is not None and response.txid == txid:
                    return response
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no response to method 0x{method:03x}")
            rto *= 2

    def authed(self, method, attrs=(), peers=(), retry_stale=True):
        """request() with the long-term credential steps (RFC 8489 s9.2.5): a
        401 to the first, unauthenticated request gives REALM and NONCE and the
        request is sent again with credentials; a 438 gives a fresh NONCE and
        the request is retried (when `retry_stale`, at most 3 times)."""
        response = self.request(method, attrs, peers)
        if response.cls == ERROR and response.error_code == 401 and self.nonce is None:
            self.learn(response)
            response = self.request(method, attrs, peers)
        tries = 0
        while (retry_stale and response.cls == ERROR and response.error_code == 438 and
               tries < 3):
            tries += 1
            self.learn(response)
            response = self.request(method, attrs, peers)
        return response

    def allocate(self, family=None, transport=PROTO_UDP, lifetime=None, extra=()):
        attrs = []
        if transport is not None:
            attrs.append((REQUESTED_TRANSPORT, struct.pack("!B3x", transport)))
        if family is not None:
            attrs.append((REQUESTED_ADDRESS_FAMILY, struct.pack("!B3x", family)))
        if lifetime is not None:
            attrs.append((LIFETIME, struct.pack("!I", lifetime)))
        attrs += list(extra)
        return self.authed(ALLOCATE, attrs)

    def refresh(self, lifetime, retry_stale=True):
        return self.authed(REFRESH, [(LIFETIME, struct.pack("!I", lifetime))],
                           retry_stale=retry_stale)

    def create_permission(self, *peers):
        return self.authed(CREATE_PERMISSION, peers=peers)

    def channel_bind(self, channel, peer):
        return self.authed(CHANNEL_BIND, [(CHANNEL_NUMBER, struct.pack("!H2x", channel))],
                           peers=[peer])

    # Relaying ----------------------------------------------------------

    def send_indication(self, peer, data):
        txid = os.urandom(12)
        _, msg = build(SEND, INDICATION, [peer_attr(peer, txid), (DATA_ATTR, data)], txid=txid,
                       fingerprint=False)
        self.send_raw(msg)

    def send_channel_data(self, channel, data):
        frame = struct.pack("!HH", channel, len(data)) + data
        if self.transport != "udp":
            frame += b"\0" * _pad(len(data))
        self.send_raw(frame)

    def receive(self, timeout=3.0):
        """Next relayed datagram: ("data", (ip, port), bytes) or ("channel", n, bytes), or an
        ICMP error about one sent, ("icmp", (ip, port), (type, code, error data)); None if
        nothing came within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.inbound:
            packet = self.read_packet(deadline)
            if packet is None:
                return None
            self._classify(packet)
        return self.inbound.pop(0)
